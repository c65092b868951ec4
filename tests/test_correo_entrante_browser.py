"""Configuración > Email in a real browser: the admin fills in the "Correo entrante (IMAP)"
fieldset, saves, and the connection test logs in to a real dovecot on loopback."""

from __future__ import annotations

import imap_fixture
import pytest
from test_panels_browser import Person, live_server  # noqa: F401  (fixture reused)

from models import ConfiguracionEmail, db

pytestmark = pytest.mark.browser
dovecot, imap = imap_fixture.dovecot, imap_fixture.imap  # the real IMAP server fixtures


def test_admin_sets_up_the_imap_mailbox_and_tests_the_connection(app, browser, live_server, imap, make_user):  # noqa: F811
    app.config.update(IMAP_HOST="", IMAP_USER=None, IMAP_PASSWORD=None)
    make_user("admin", username="jefa_correo")
    jefa = Person(browser, live_server)
    try:
        jefa.login("jefa_correo")
        jefa.goto("/admin/configuracion/email")
        assert jefa.page.locator("legend#imap-titulo").inner_text() == "Correo entrante (IMAP)"
        jefa.page.fill("#cfg-remitente_email", "soporte@empresa.test")  # the .env default (@localhost) is refused
        jefa.page.fill("#cfg-imap_servidor", "127.0.0.1")
        jefa.page.fill("#cfg-imap_puerto", str(imap.port))
        jefa.page.uncheck("#cfg-imap_ssl")
        jefa.page.fill("#cfg-imap_usuario", imap_fixture.USUARIO)
        jefa.page.fill("#cfg-imap_password", imap_fixture.CLAVE)
        jefa.page.check("#cfg-entrante_desconocidos-ignorar")
        jefa.page.fill("#cfg-entrante_max_mb", "15")
        response = jefa.submit("form[action$='/admin/configuracion/email']")
        assert response.status == 200 and "guardada" in jefa.flash().lower(), jefa.flash()
        db.session.expire_all()
        fila = db.session.get(ConfiguracionEmail, 1)
        assert (fila.imap_servidor, fila.imap_puerto, fila.imap_ssl, fila.imap_password, fila.entrante_desconocidos,
                fila.entrante_max_mb) == ("127.0.0.1", imap.port, False, imap_fixture.CLAVE, "ignorar", 15)
        assert jefa.page.input_value("#cfg-imap_password") == ""  # write-only
        assert jefa.page.is_checked("#cfg-entrante_desconocidos-ignorar")

        jefa.submit("form[action$='/imap/prueba']")
        assert "Conexión IMAP correcta" in jefa.flash()
        jefa.shoot("config-email")
    finally:
        jefa.close()
