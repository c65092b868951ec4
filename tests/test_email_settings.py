"""Configuración > Email: stored in the database over .env, validated, audited, and the
password never leaves the server."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from models import CambioConfiguracion, ConfiguracionEmail, db

SECRET = "n0-lo-muestres-jamas"


def _config():
    db.session.expire_all()
    return db.session.get(ConfiguracionEmail, 1)


def test_password_is_write_only_in_the_api_and_the_page(app, make_user, api, login):
    admin = make_user("admin")
    resp = api(admin).put("/api/configuracion/email", json={"usuario": "mesa", "password": SECRET})
    assert resp.status_code == 200
    assert SECRET not in resp.get_data(as_text=True)
    assert resp.get_json()["password_configurada"] is True and "password" not in resp.get_json()
    got = api(admin).get("/api/configuracion/email")
    assert got.status_code == 200 and SECRET not in got.get_data(as_text=True)
    assert got.get_json()["usuario"] == "mesa"

    client, _ = login(admin)
    page = client.get("/admin/configuracion/email")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert SECRET not in html
    assert 'name="password" value=""' in html
    assert "Contactos para notificación de tickets" in html
    assert _config().password == SECRET  # kept for SMTP AUTH


def test_bad_contact_addresses_are_rejected_and_nothing_changes(make_user, api, login):
    admin = make_user("admin")
    resp = api(admin).put("/api/configuracion/email",
                          json={"contactos_notificacion": "bien@empresa.test, no-es-correo, otro@@x", "puerto": 587})
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert "no-es-correo" in error["fields"]["contactos_notificacion"]
    assert "otro@@x" in error["fields"]["contactos_notificacion"]
    assert _config() is None

    client, csrf = login(admin)
    page = client.post("/admin/configuracion/email", data={
        "csrf_token": csrf, "servidor": "smtp.empresa.test", "puerto": "587", "seguridad": "tls",
        "contactos_notificacion": "bien@empresa.test; mal", "password": SECRET})
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert "mal" in html and "is-invalid" in html
    assert SECRET not in html
    assert _config() is None


@pytest.mark.parametrize("body", [
    {"usar_tls": True, "usar_ssl": True},
    {"puerto": 0},
    {"puerto": 70000},
    {"remitente_email": "no es un correo"},
    {"remitente_email": "soporte@localhost\r\nBcc: x@y.es"},
    {"remitente_email": "@localhost"},
    {"servidor": "smtp empresa test"},
    {"desconocido": 1},
])
def test_other_bad_settings_are_422(make_user, api, body):
    assert api(make_user("admin")).put("/api/configuracion/email", json=body).status_code == 422


@pytest.mark.parametrize("remitente", ["soporte@localhost", "mesa@servidor.local", "soporte@oficina.es"])
def test_a_sender_on_the_offices_own_relay_may_be_local(make_user, api, remitente):
    """The page shows the .env default (soporte@localhost): saving it unchanged must work."""
    admin = make_user("admin")
    resp = api(admin).put("/api/configuracion/email", json={"remitente_email": remitente})
    assert resp.status_code == 200, resp.get_json()
    assert api(admin).get("/api/configuracion/email").get_json()["remitente_email"] == remitente


def test_only_admins_may_read_or_change_email_settings(make_user, api, login):
    for rol in ("usuario", "ingeniero"):
        user = make_user(rol)
        assert api(user).get("/api/configuracion/email").status_code == 403
        assert api(user).put("/api/configuracion/email", json={"puerto": 25}).status_code == 403
        client, _ = login(user)
        assert client.get("/admin/configuracion/email").status_code == 403
    assert api(None).get("/api/configuracion/email").status_code == 401


def test_every_change_is_audited_without_the_password_value(make_user, api):
    admin = make_user("admin", username="jefa")
    client = api(admin)
    client.put("/api/configuracion/email", json={"servidor": "smtp.empresa.test", "password": SECRET})
    client.put("/api/configuracion/email", json={"servidor": "smtp.empresa.test"})  # no change: no audit row
    client.put("/api/configuracion/email", json={"contactos_notificacion": "A@Empresa.test,b@empresa.test"})
    db.session.expire_all()
    cambios = list(db.session.execute(select(CambioConfiguracion).order_by(CambioConfiguracion.id)).scalars())
    assert [c.campos for c in cambios] == [["servidor", "password"], ["contactos_notificacion"]]
    assert all(c.usuario_id == admin.id and c.seccion == "email" and c.fecha for c in cambios)
    assert cambios[0].detalle["password"] == {"cambiado": True}
    assert SECRET not in str(cambios[0].detalle)
    assert cambios[1].detalle["contactos_notificacion"]["despues"] == "A@empresa.test, b@empresa.test"
    listed = client.get("/api/configuracion/email").get_json()["auditoria"]
    assert [a["campos"] for a in listed] == [["contactos_notificacion"], ["servidor", "password"]]
    assert listed[0]["usuario"] == "jefa"


def test_database_settings_override_env_for_delivery(app, make_user, make_ticket, api, smtp_server, closed_port,
                                                     deliver):
    app.config.update(MAIL_PORT=closed_port, TICKETS_NOTIFY_EMAIL="env@empresa.test")
    admin = make_user("admin")
    resp = api(admin).put("/api/configuracion/email", json={
        "servidor": "127.0.0.1", "puerto": smtp_server.port, "remitente_nombre": "Soporte TI",
        "remitente_email": "ti@empresa.test", "contactos_notificacion": "db@empresa.test"})
    assert resp.status_code == 200
    assert resp.get_json()["origen"]["puerto"] == "bd" and resp.get_json()["origen"]["usar_tls"] == "env"
    make_ticket(make_user("usuario"))
    assert deliver()["enviado"] == 3
    assert all(m["From"] == "Soporte TI <ti@empresa.test>" for m in smtp_server.messages)
    assert smtp_server.to("db@empresa.test") and not smtp_server.to("env@empresa.test")
    assert all(e.mail_from == "ti@empresa.test" for e in smtp_server.envelopes)

    # null goes back to the .env value
    api(admin).put("/api/configuracion/email", json={"puerto": None})
    assert api(admin).get("/api/configuracion/email").get_json()["puerto"] == closed_port


def test_settings_form_saves_and_keeps_the_password_when_left_empty(make_user, login):
    admin = make_user("admin")
    client, csrf = login(admin)
    form = {"csrf_token": csrf, "servidor": "smtp.empresa.test", "puerto": "465", "seguridad": "ssl",
            "usuario": "mesa", "password": SECRET, "remitente_nombre": "Mesa", "remitente_email": "mesa@empresa.test",
            "contactos_notificacion": "a@empresa.test, b@empresa.test"}
    assert client.post("/admin/configuracion/email", data=form).status_code == 302
    cfg = _config()
    assert (cfg.servidor, cfg.puerto, cfg.usar_ssl, cfg.usar_tls, cfg.password) == (
        "smtp.empresa.test", 465, True, False, SECRET)
    assert client.post("/admin/configuracion/email", data={**form, "password": "", "seguridad": "tls"}).status_code == 302
    cfg = _config()
    assert cfg.password == SECRET and cfg.usar_tls and not cfg.usar_ssl
    client.post("/admin/configuracion/email", data={**form, "password": "", "borrar_password": "1"})
    assert _config().password is None


def test_send_test_email_reports_success_and_smtp_errors(app, make_user, api, login, smtp_server, closed_port):
    admin = make_user("admin", email="jefa@empresa.test")
    resp = api(admin).post("/api/configuracion/email/prueba", json={})
    assert resp.status_code == 200 and resp.get_json()["destinatario"] == "jefa@empresa.test"
    msg, = smtp_server.messages
    assert msg["Subject"] == "Correo de prueba de Mesa de Ayuda" and "la configuración de correo funciona" in msg.get_body(
        preferencelist=("plain",)).get_content()

    client, csrf = login(admin)
    resp = client.post("/admin/configuracion/email/prueba", data={"csrf_token": csrf, "destinatario": "otro@empresa.test"})
    assert resp.status_code == 302
    assert smtp_server.to("otro@empresa.test")

    app.config["MAIL_PORT"] = closed_port
    failed = api(admin).post("/api/configuracion/email/prueba", json={"destinatario": "x@empresa.test"})
    assert failed.status_code == 502 and failed.get_json()["error"]["code"] == "smtp_error"
    assert api(admin).post("/api/configuracion/email/prueba", json={"destinatario": "nope"}).status_code == 422


def test_smtp_password_is_encrypted_at_rest(app, make_user, api):
    api(make_user("admin")).put("/api/configuracion/email", json={"usuario": "mesa", "password": SECRET})
    raw = db.session.execute(text("SELECT password FROM configuracion_email")).scalar_one()
    assert SECRET not in raw and raw.startswith("fernet:")
    assert _config().password == SECRET  # what SMTP AUTH gets
    import ajustes_email

    assert ajustes_email.ajustes().password == SECRET


def test_a_password_encrypted_under_another_secret_key_reads_as_missing(app, make_user, api):
    api(make_user("admin")).put("/api/configuracion/email", json={"usuario": "mesa", "password": SECRET})
    app.config["SECRET_KEY"] = "rotated-secret"
    db.session.expire_all()
    assert _config().password is None  # the admin is asked to enter it again; nothing crashes
    body = api(make_user("admin")).get("/api/configuracion/email").get_json()
    assert body["password_configurada"] is False


def test_the_contacts_read_alone_are_the_settings_contacts(app, make_user, api, monkeypatch):
    """``contactos()`` (what a creation reads) says what ``ajustes().contactos`` says: the .env
    value, then the stored one, then the .env value again once the stored one is removed."""
    import ajustes_email

    monkeypatch.setitem(app.config, "TICKETS_NOTIFY_EMAIL", "env@example.test; otro@example.test")
    admin = api(make_user("admin"))
    for cuerpo in ({}, {"contactos_notificacion": "jefa@example.test,\njefe@example.test"},
                   {"contactos_notificacion": None}):
        if cuerpo:
            assert admin.put("/api/configuracion/email", json=cuerpo).status_code == 200
        db.session.expire_all()
        assert ajustes_email.contactos() == ajustes_email.ajustes().contactos
    assert ajustes_email.contactos() == ["env@example.test", "otro@example.test"]
