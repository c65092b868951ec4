"""One outbox for every channel: adapters plug in, failures are per channel, the admin page
filters by channel, and an email queued before the upgrade to the channel outbox is delivered
after it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import ROOT
from flask_migrate import upgrade
from smtp_fixture import SMTPServer
from sqlalchemy import text

import outbox
from models import Envio, db, utcnow


def test_an_email_queued_before_the_channel_outbox_is_delivered_after_the_upgrade(fresh_database_url):
    from app import create_app

    server = SMTPServer()
    server.start()
    try:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_database_url, "SECRET_KEY": "t",
                          "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": server.port, "MAIL_USE_TLS": False,
                          "MAIL_USE_SSL": False, "MAIL_TIMEOUT": 5,
                          "MAIL_DEFAULT_SENDER": "Mesa <soporte@mesa.test>"})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"), revision="0003")
            now = utcnow()
            db.session.execute(text(
                "INSERT INTO correos_salientes (tipo, destinatarios, asunto, cuerpo_html, cuerpo_texto, adjuntos, "
                "estado, intentos, proximo_intento, fecha_creacion) VALUES ('prueba', 'ana@example.test', "
                "'Queued before the upgrade', '<p>hola</p>', 'hola', '[]', 'pendiente', 0, :now, :now)"),
                {"now": now.replace(tzinfo=None) - timedelta(seconds=1)})
            db.session.commit()
            upgrade(directory=str(ROOT / "migrations"))
            row = db.session.execute(db.select(Envio)).scalar_one()
            assert (row.canal, row.estado, row.asunto) == ("email", "pendiente", "Queued before the upgrade")
            assert outbox.enviar_pendientes()["enviado"] == 1
            db.session.remove()
            db.engine.dispose()
    finally:
        server.stop()
    [message] = server.to("ana@example.test")
    assert message["Subject"] == "Queued before the upgrade"


class RecordingAdapter:
    """A channel adapter that records what it was asked to send and can be told to fail."""

    sent: list[int] = []
    closed = 0
    fail_with: Exception | None = None

    def enviar(self, envio):
        if RecordingAdapter.fail_with is not None:
            raise RecordingAdapter.fail_with
        RecordingAdapter.sent.append(envio.id)
        return f"ext-{envio.id}"

    def cerrar(self):
        RecordingAdapter.closed += 1


@pytest.fixture
def whatsapp_adapter(app):
    RecordingAdapter.sent, RecordingAdapter.closed, RecordingAdapter.fail_with = [], 0, None
    previous = outbox._CANALES.get("whatsapp")
    outbox.registrar_canal("whatsapp", RecordingAdapter)
    yield RecordingAdapter
    if previous is None:
        outbox._CANALES.pop("whatsapp", None)
    else:
        outbox._CANALES["whatsapp"] = previous


def test_a_channel_plugs_in_an_adapter_and_gets_its_rows_with_the_external_id_recorded(app, whatsapp_adapter):
    envio = outbox.encolar("whatsapp", "bot", "+34600111222", cuerpo_texto="Hola", datos={"type": "text"})
    db.session.commit()
    assert outbox.enviar_pendientes() == {"enviado": 1, "pendiente": 0, "fallido": 0}
    db.session.refresh(envio)
    assert whatsapp_adapter.sent == [envio.id] and whatsapp_adapter.closed == 1
    assert (envio.estado, envio.id_externo, envio.intentos) == ("enviado", f"ext-{envio.id}", 1)


def test_a_failing_channel_backs_off_then_fails_visibly_and_a_permanent_error_fails_at_once(app, whatsapp_adapter):
    app.config.update(OUTBOX_MAX_INTENTOS=2, OUTBOX_BACKOFF_SECONDS=60)
    retried = outbox.encolar("whatsapp", "bot", "+34600111222", cuerpo_texto="uno")
    db.session.commit()
    whatsapp_adapter.fail_with = ConnectionError("graph down")
    assert outbox.enviar_pendientes()["pendiente"] == 1
    db.session.refresh(retried)
    assert retried.estado == "pendiente" and retried.proximo_intento > utcnow() + timedelta(seconds=50)
    assert outbox.enviar_pendientes(ahora=utcnow() + timedelta(minutes=2))["fallido"] == 1
    db.session.refresh(retried)
    assert retried.estado == "fallido" and "graph down" in retried.ultimo_error

    permanent = outbox.encolar("whatsapp", "bot", "+34600111333", cuerpo_texto="dos")
    db.session.commit()
    whatsapp_adapter.fail_with = outbox.ErrorPermanente("(#131026) Message undeliverable")
    assert outbox.enviar_pendientes()["fallido"] == 1
    db.session.refresh(permanent)
    assert permanent.estado == "fallido" and permanent.intentos == 1 and "131026" in permanent.ultimo_error


def test_a_row_of_a_channel_without_adapter_waits_instead_of_failing(app):
    outbox._CANALES.pop("whatsapp", None)
    envio = outbox.encolar("whatsapp", "bot", "+34600111222", cuerpo_texto="Hola")
    db.session.commit()
    assert outbox.enviar_pendientes() == {"enviado": 0, "pendiente": 0, "fallido": 0}
    db.session.refresh(envio)
    assert envio.estado == "pendiente" and envio.intentos == 0


def test_admin_outbox_page_and_api_filter_by_channel(app, client, make_user, login, whatsapp_adapter):
    admin = make_user("admin")
    failed = []
    for canal, dest in (("email", "a@example.test"), ("whatsapp", "+34600111222")):
        envio = outbox.encolar(canal, "prueba", dest, asunto=f"{canal} msg", cuerpo_texto="x")
        envio.estado, envio.ultimo_error = "fallido", f"{canal} broke"
        failed.append(envio)
    db.session.commit()
    client, _csrf = login(admin)
    html = client.get("/admin/correos?canal=whatsapp").get_data(as_text=True)
    assert "whatsapp broke" in html and "email broke" not in html
    html = client.get("/admin/correos").get_data(as_text=True)
    assert "whatsapp broke" in html and "email broke" in html
    body = client.get("/api/correos?canal=email&estado=fallido").get_json()
    assert [e["canal"] for e in body["items"]] == ["email"] and body["total"] == 1
    assert client.get("/api/correos?canal=fax").status_code == 422
