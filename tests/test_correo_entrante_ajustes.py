"""Email in's settings in Configuración > Email (issue 10): the IMAP mailbox, the unknown-sender
policy and the size limit are stored over .env, the IMAP password write-only and encrypted at
rest, every change audited; `flask fetch-email` (a subprocess, as cron runs it) polls the mailbox
they name, a real dovecot on loopback."""

from __future__ import annotations

import imap_fixture
import pytest
from sqlalchemy import func, select, text
from test_correo_entrante import eml, ingest
from test_correo_entrante_cli import flask_cli

import ajustes_email
from models import CambioConfiguracion, Comunicacion, ConfiguracionEmail, Ticket, db

dovecot, imap = imap_fixture.dovecot, imap_fixture.imap  # the real IMAP server fixtures
CLAVE_IMAP = imap_fixture.CLAVE


@pytest.fixture
def buzon(app, imap):
    """The test mailbox, emptied, with nothing in the app's .env settings: only what the page or
    the API stores can reach it."""
    app.config.update(IMAP_HOST="", IMAP_USER=None, IMAP_PASSWORD=None, IMAP_PORT=993, IMAP_SSL=True)
    return imap


def _fila() -> ConfiguracionEmail:
    db.session.expire_all()
    return db.session.get(ConfiguracionEmail, 1)


def _sin_imap_en_env(**extra) -> dict:
    return {"IMAP_HOST": "", "IMAP_USER": "", "IMAP_PASSWORD": "", **extra}


def test_settings_saved_on_the_page_are_what_fetch_email_uses(app, buzon, database_url, make_user, login):
    admin = make_user("admin")
    c, csrf = login(admin)
    form = {"csrf_token": csrf, "servidor": "smtp.empresa.test", "puerto": "25", "seguridad": "ninguna",
            "remitente_email": "soporte@empresa.test", "imap_servidor": "127.0.0.1", "imap_puerto": str(buzon.port),
            "imap_usuario": imap_fixture.USUARIO, "imap_password": CLAVE_IMAP, "imap_carpeta": "INBOX",
            "entrante_desconocidos": "crear", "entrante_max_mb": "10"}  # imap_ssl unchecked: plain IMAP on loopback
    assert c.post("/admin/configuracion/email", data=form).status_code == 302
    fila = _fila()
    assert (fila.imap_servidor, fila.imap_puerto, fila.imap_ssl, fila.imap_usuario, fila.imap_password,
            fila.entrante_max_mb) == ("127.0.0.1", buzon.port, False, "mesa", CLAVE_IMAP, 10)
    pagina = c.get("/admin/configuracion/email").get_data(as_text=True)
    assert "Correo entrante (IMAP)" in pagina and CLAVE_IMAP not in pagina
    assert 'name="imap_password" value=""' in pagina

    buzon.entregar(eml("nuevo@externo.test", "La VPN no conecta", "Desde esta mañana"))
    r = flask_cli(["fetch-email"], database_url, **_sin_imap_en_env())
    assert r.returncode == 0, r.stderr.decode()
    assert b"creado: 1" in r.stdout
    db.session.expire_all()
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert ticket.titulo == "La VPN no conecta" and ticket.canal == "email"
    assert buzon.vistos() == 1

    # An empty password box keeps the stored one; the box's checkbox removes it.
    assert c.post("/admin/configuracion/email", data={**form, "imap_password": ""}).status_code == 302
    assert _fila().imap_password == CLAVE_IMAP
    c.post("/admin/configuracion/email", data={**form, "imap_password": "", "borrar_imap_password": "1"})
    assert _fila().imap_password is None
    r = flask_cli(["fetch-email"], database_url, **_sin_imap_en_env())
    assert r.returncode != 0 and b"IMAP error" in r.stderr


def test_settings_changed_through_the_api_are_what_fetch_email_uses(app, buzon, database_url, make_user, api):
    admin = api(make_user("admin"))
    c = buzon.conectar()
    c.create("Soporte")
    c.logout()
    try:
        resp = admin.put("/api/configuracion/email", json={
            "imap_servidor": "127.0.0.1", "imap_puerto": buzon.port, "imap_ssl": False,
            "imap_usuario": imap_fixture.USUARIO, "imap_password": CLAVE_IMAP, "imap_carpeta": "Soporte"})
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["imap_password_configurado"] is True and CLAVE_IMAP not in resp.get_data(as_text=True)
        buzon.entregar(eml("a@externo.test", "En la bandeja", "no se lee"))
        buzon.entregar(eml("b@externo.test", "En Soporte", "se lee"), carpeta="Soporte")
        r = flask_cli(["fetch-email"], database_url, **_sin_imap_en_env())
        assert r.returncode == 0 and b"creado: 1" in r.stdout, (r.stdout, r.stderr)
        db.session.expire_all()
        assert [t.titulo for t in db.session.execute(select(Ticket)).scalars()] == ["En Soporte"]

        # A wrong password stored through the API is what the next poll tries.
        admin.put("/api/configuracion/email", json={"imap_password": "clave-erronea-xyz"})
        r = flask_cli(["fetch-email"], database_url, **_sin_imap_en_env())
        assert r.returncode != 0 and b"IMAP error" in r.stderr
    finally:
        c = buzon.conectar()
        c.delete("Soporte")
        c.logout()


def test_database_settings_override_env_and_null_goes_back_to_it(app, buzon, make_user, api):
    app.config.update(IMAP_HOST="imap.env.test", IMAP_FOLDER="EnvFolder", INBOUND_UNKNOWN_SENDER="crear",
                      INBOUND_MAX_BYTES=3 * 1024 * 1024)
    admin = api(make_user("admin"))
    got = admin.get("/api/configuracion/email").get_json()
    assert (got["imap_servidor"], got["imap_carpeta"], got["entrante_max_mb"], got["entrante_desconocidos"]) == (
        "imap.env.test", "EnvFolder", 3, "crear")
    assert got["origen"]["imap_servidor"] == "env" and got["imap_password_configurado"] is False
    admin.put("/api/configuracion/email", json={"imap_servidor": "imap.bd.test", "entrante_desconocidos": "ignorar"})
    cfg = ajustes_email.ajustes_entrada()
    assert (cfg.servidor, cfg.carpeta, cfg.desconocidos, cfg.max_bytes) == (
        "imap.bd.test", "EnvFolder", "ignorar", 3 * 1024 * 1024)
    admin.put("/api/configuracion/email", json={"imap_servidor": None})
    assert ajustes_email.ajustes_entrada().servidor == "imap.env.test"


def test_unknown_sender_policy_and_size_limit_come_from_the_settings(app, make_user, api):
    app.config.update(INBOUND_UNKNOWN_SENDER="crear", INBOUND_MAX_BYTES=25 * 1024 * 1024)
    admin = api(make_user("admin"))
    assert admin.put("/api/configuracion/email", json={"entrante_desconocidos": "ignorar",
                                                        "entrante_max_mb": 1}).status_code == 200
    r = ingest(eml("nadie@externo.test", "Hola", "¿Me ayudan?"))
    assert r.estado == "ignorado" and "unknown sender" in r.comunicacion.error
    grande = ingest(eml("nadie@externo.test", "Adjunto grande", "x",
                        adjuntos=[("datos.pdf", b"%PDF-1.4 " + b"0" * (1024 * 1024 + 10), "application/pdf")]))
    assert grande.estado == "fallido" and "too large" in grande.comunicacion.error
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    admin.put("/api/configuracion/email", json={"entrante_desconocidos": "crear"})
    assert ingest(eml("nadie@externo.test", "Otra vez", "¿Me ayudan?")).estado == "creado"


def test_imap_password_is_encrypted_at_rest_and_never_returned(app, make_user, api, login):
    admin = make_user("admin")
    resp = api(admin).put("/api/configuracion/email", json={"imap_usuario": "mesa", "imap_password": CLAVE_IMAP})
    assert resp.status_code == 200 and "imap_password" not in resp.get_json()
    crudo = db.session.execute(text("SELECT imap_password FROM configuracion_email")).scalar_one()
    assert crudo.startswith("fernet:") and CLAVE_IMAP not in crudo
    got = api(admin).get("/api/configuracion/email")
    assert got.get_json()["imap_password_configurado"] is True
    assert "imap_password" not in got.get_json() and CLAVE_IMAP not in got.get_data(as_text=True)
    c, _ = login(admin)
    assert CLAVE_IMAP not in c.get("/admin/configuracion/email").get_data(as_text=True)
    assert ajustes_email.ajustes_entrada().password == CLAVE_IMAP  # what the IMAP login gets

    app.config["SECRET_KEY"] = "rotated-secret"  # the token cannot be read: "not configured", no crash
    db.session.expire_all()
    assert ajustes_email.ajustes_entrada().password is None
    assert api(make_user("admin")).get("/api/configuracion/email").get_json()["imap_password_configurado"] is False


def test_every_imap_change_is_audited_without_the_password(make_user, api):
    admin = make_user("admin", username="jefa")
    client = api(admin)
    client.put("/api/configuracion/email", json={"imap_servidor": "imap.empresa.test", "imap_password": CLAVE_IMAP})
    client.put("/api/configuracion/email", json={"imap_servidor": "imap.empresa.test"})  # no change: no row
    client.put("/api/configuracion/email", json={"entrante_max_mb": 5})
    db.session.expire_all()
    cambios = list(db.session.execute(select(CambioConfiguracion).order_by(CambioConfiguracion.id)).scalars())
    assert [c.campos for c in cambios] == [["imap_servidor", "imap_password"], ["entrante_max_mb"]]
    assert all(c.seccion == "email" and c.usuario_id == admin.id for c in cambios)
    assert cambios[0].detalle["imap_password"] == {"cambiado": True} and CLAVE_IMAP not in str(cambios[0].detalle)
    assert cambios[1].detalle["entrante_max_mb"] == {"antes": 25, "despues": 5}
    listed = client.get("/api/configuracion/email").get_json()["auditoria"]
    assert listed[0]["campos"] == ["entrante_max_mb"] and listed[0]["usuario"] == "jefa"


@pytest.mark.parametrize("body", [
    {"imap_puerto": 0},
    {"imap_servidor": "imap empresa"},
    {"imap_carpeta": ""},
    {"entrante_desconocidos": "quizas"},
    {"entrante_max_mb": 0},
    {"entrante_max_mb": 5000},
])
def test_bad_imap_settings_are_422_and_change_nothing(make_user, api, body):
    assert api(make_user("admin")).put("/api/configuracion/email", json=body).status_code == 422
    assert _fila() is None


@pytest.mark.parametrize("rol", ["usuario", "ingeniero"])
def test_only_admins_see_change_or_test_the_imap_settings(make_user, api, login, rol):
    user = make_user(rol)
    assert api(user).get("/api/configuracion/email").status_code == 403
    assert api(user).put("/api/configuracion/email", json={"imap_servidor": "x.test"}).status_code == 403
    assert api(user).post("/api/configuracion/email/imap/prueba", json={}).status_code == 403
    c, csrf = login(user)
    assert c.post("/admin/configuracion/email", data={"csrf_token": csrf, "imap_servidor": "x.test"}).status_code == 403
    assert c.post("/admin/configuracion/email/imap/prueba", data={"csrf_token": csrf}).status_code == 403
    assert _fila() is None


def test_imap_connection_test_reports_success_and_the_servers_refusal(app, buzon, make_user, api, login):
    admin = make_user("admin")
    assert api(admin).post("/api/configuracion/email/imap/prueba", json={}).get_json()["error"]["code"] == \
        "imap_not_configured"
    api(admin).put("/api/configuracion/email", json={
        "imap_servidor": "127.0.0.1", "imap_puerto": buzon.port, "imap_ssl": False,
        "imap_usuario": imap_fixture.USUARIO, "imap_password": CLAVE_IMAP})
    buzon.entregar(eml("a@externo.test", "Uno", "x"))
    ok = api(admin).post("/api/configuracion/email/imap/prueba", json={})
    assert ok.status_code == 200 and ok.get_json() == {"conectado": True, "servidor": "127.0.0.1",
                                                        "carpeta": "INBOX", "mensajes": 1}
    assert buzon.vistos() == 0  # a test reads nothing

    c, csrf = login(admin)
    pagina = c.post("/admin/configuracion/email/imap/prueba", data={"csrf_token": csrf}, follow_redirects=True)
    assert "Conexión IMAP correcta" in pagina.get_data(as_text=True)

    api(admin).put("/api/configuracion/email", json={"imap_password": "clave-erronea-xyz"})
    mal = api(admin).post("/api/configuracion/email/imap/prueba", json={})
    assert mal.status_code == 502 and mal.get_json()["error"]["code"] == "imap_error"
    pagina = c.post("/admin/configuracion/email/imap/prueba", data={"csrf_token": csrf}, follow_redirects=True)
    html = pagina.get_data(as_text=True)
    assert pagina.status_code == 200 and "El servidor IMAP rechazó el inicio de sesión" in html and "clave-erronea-xyz" not in html
    assert db.session.scalar(select(func.count()).select_from(Comunicacion)) == 0
