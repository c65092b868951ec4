# ruff: noqa: F811 - the graph fixture is imported, then requested by name
"""WhatsApp media (issue 9): fetched from the Graph API into the attachment store right after
the message is stored, retried like the outbox, "not available" when it failed for good."""

from __future__ import annotations

from datetime import timedelta

from graph_fixture import graph  # noqa: F401 - fixture
from sqlalchemy import select
from test_whatsapp_webhook import NUMERO, payload, post

import outbox
from models import Adjunto, Comunicacion, Conversacion, db, utcnow

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def imagen(wamid="wamid.IMG1", media_id="MEDIA-PNG"):
    return {"from": NUMERO, "id": wamid, "timestamp": str(int(utcnow().timestamp())), "type": "image",
            "image": {"id": media_id, "mime_type": "image/png", "caption": "mira esto"}}


def test_an_inbound_image_is_fetched_stored_and_shown_only_to_who_sees_the_conversation(
        client, graph, make_user, login, tmp_path, app):
    app.config["UPLOAD_DIR"] = str(tmp_path)
    graph.media["MEDIA-PNG"] = (PNG, "image/png")
    post(client, payload(imagen()))
    outbox.enviar_pendientes()
    gets = [r for r in graph.requests if r["json"] is None]
    assert [g["path"] for g in gets] == ["/v21.0/MEDIA-PNG", "/files/MEDIA-PNG"]
    assert all(g["auth"] == "Bearer token-graph" for g in gets)
    db.session.expire_all()
    com = db.session.scalars(select(Comunicacion).where(Comunicacion.id_externo == "wamid.IMG1")).one()
    adjunto = db.session.scalars(select(Adjunto)).one()
    assert com.datos["media_estado"] == "ok" and com.datos["adjunto_id"] == adjunto.id and com.cuerpo == "mira esto"
    assert adjunto.tipo_mime == "image/png" and adjunto.comunicacion_id == com.id
    conv = db.session.scalars(select(Conversacion)).one()
    c, _ = login(make_user("admin"))
    chat = c.get(f"/conversaciones/{conv.id}").get_data(as_text=True)
    url = f"/conversaciones/{conv.id}/adjuntos/{adjunto.id}"
    assert f'src="{url}"' in chat
    r = c.get(url)
    assert r.status_code == 200 and r.data == PNG and r.mimetype == "image/png"
    otro, _ = login(make_user("ingeniero"))
    assert otro.get(url).status_code == 404


def test_a_media_fetch_is_retried_then_shown_as_not_available(client, graph, make_user, login, tmp_path, app):
    app.config["UPLOAD_DIR"] = str(tmp_path)
    app.config["OUTBOX_MAX_INTENTOS"] = 2
    graph.media["MEDIA-PNG"] = (PNG, "image/png")
    graph.media_fail = True
    post(client, payload(imagen()))
    assert outbox.enviar_pendientes()["pendiente"] == 1
    db.session.expire_all()
    com = db.session.scalars(select(Comunicacion).where(Comunicacion.id_externo == "wamid.IMG1")).one()
    assert com.datos["media_estado"] == "pendiente"
    assert outbox.enviar_pendientes(ahora=utcnow() + timedelta(hours=2))["fallido"] == 1
    db.session.expire_all()
    assert com.datos["media_estado"] == "fallido"
    c, _ = login(make_user("admin"))
    assert "no disponible" in c.get(f"/conversaciones/{com.conversacion_id}").get_data(as_text=True)


def test_unknown_media_fails_at_once(client, graph, tmp_path, app):
    app.config["UPLOAD_DIR"] = str(tmp_path)
    post(client, payload(imagen(media_id="NOPE")))
    assert outbox.enviar_pendientes()["fallido"] == 1
    db.session.expire_all()
    # the customer's image (the bot's reply is a communication too: no "first" row without an order)
    entrante = db.session.scalars(select(Comunicacion).where(Comunicacion.direccion == "entrante")).one()
    assert entrante.datos["media_estado"] == "fallido"


def test_an_agent_sends_an_image_from_the_chat_view(client, graph, make_user, login, tmp_path, app):
    import io

    app.config["UPLOAD_DIR"] = str(tmp_path)
    post(client, payload({"from": NUMERO, "id": "wamid.T1", "timestamp": str(int(utcnow().timestamp())),
                          "type": "text", "text": {"body": "hola"}}))
    conv = db.session.scalars(select(Conversacion)).one()
    c, csrf = login(make_user("admin"))
    r = c.post(f"/conversaciones/{conv.id}/responder", content_type="multipart/form-data", data={
        "csrf_token": csrf, "texto": "la captura", "archivo": (io.BytesIO(PNG), "captura.png")})
    assert r.status_code == 302
    # a refused type is a clear message and nothing is queued
    r = c.post(f"/conversaciones/{conv.id}/responder", content_type="multipart/form-data", data={
        "csrf_token": csrf, "archivo": (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 60), "virus.exe")}, follow_redirects=True)
    assert db.session.scalar(select(__import__("sqlalchemy").func.count()).select_from(Adjunto)) == 1
    outbox.enviar_pendientes()
    assert len(graph.uploads) == 1 and PNG in graph.uploads[0]["body"]
    assert graph.uploads[0]["auth"] == "Bearer token-graph" and graph.uploads[0]["path"].endswith("/106540352242922/media")
    enviado = graph.sent()[-1]["json"]
    assert enviado["type"] == "image" and enviado["image"] == {"caption": "la captura", "id": "UP1"}
    db.session.expire_all()
    com = db.session.scalars(select(Comunicacion).where(Comunicacion.tipo == "image")).one()
    assert com.estado == "enviado" and com.direccion == "saliente"
    chat = c.get(f"/conversaciones/{conv.id}").get_data(as_text=True)
    assert f"/conversaciones/{conv.id}/adjuntos/{com.datos['adjunto_id']}" in chat
