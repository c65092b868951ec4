# ruff: noqa: F811 - the graph fixture is imported, then requested by name
"""WhatsApp webhook (issue 9): handshake, signatures, idempotency, every message type, statuses,
the bot's greeting sent once, escalation to a ticket, agent replies reaching the Graph API."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import timedelta

from graph_fixture import graph  # noqa: F401 - fixture
from sqlalchemy import select

import outbox
from models import Cliente, Comunicacion, Conversacion, Envio, Evento, Mensaje, ReglaBot, Ticket, db, utcnow

_ids = itertools.count(1)
NUMERO = "34600111222"


def firmar(cuerpo: bytes, secreto: str = "secreto-app") -> str:
    return "sha256=" + hmac.new(secreto.encode(), cuerpo, hashlib.sha256).hexdigest()


def payload(*mensajes, statuses=(), nombre="Ana Pérez", numero=NUMERO) -> dict:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
             "contacts": [{"profile": {"name": nombre}, "wa_id": numero}]}
    if mensajes:
        value["messages"] = list(mensajes)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}


def texto(body: str, numero=NUMERO, wamid=None) -> dict:
    return {"from": numero, "id": wamid or f"wamid.IN{next(_ids)}", "timestamp": str(int(utcnow().timestamp())),
            "type": "text", "text": {"body": body}}


def post(client, data, firma=None):
    cuerpo = json.dumps(data).encode() if not isinstance(data, bytes) else data
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = firma if firma is not None else firmar(cuerpo)
    return client.post("/webhooks/whatsapp", data=cuerpo, headers=headers)


def enviar_cola(**kw):
    return outbox.enviar_pendientes(**kw)


def test_handshake_echoes_the_challenge_and_refuses_anything_else(client, graph):
    ok = client.get("/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verifica-123")
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "1158201444"
    assert ok.mimetype == "text/plain"
    assert client.get("/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=otro").status_code == 403
    assert client.get("/webhooks/whatsapp?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=verifica-123"
                      ).status_code == 403
    assert client.get("/webhooks/whatsapp").status_code == 403


def test_bad_or_missing_signature_is_403_and_stores_nothing(client, graph):
    cuerpo = json.dumps(payload(texto("hola"))).encode()
    assert post(client, cuerpo, firma="sha256=" + "0" * 64).status_code == 403
    assert post(client, cuerpo, firma=firmar(cuerpo, "otro-secreto")).status_code == 403
    assert client.post("/webhooks/whatsapp", data=cuerpo,
                       headers={"Content-Type": "application/json"}).status_code == 403
    # signed over other bytes (re-serialised JSON) does not pass
    assert post(client, cuerpo, firma=firmar(json.dumps(json.loads(cuerpo), indent=1).encode())).status_code == 403
    assert db.session.scalar(select(Comunicacion.id)) is None


def test_hola_three_times_stores_one_message_and_greets_once_on_the_graph_api(client, graph):
    data = payload(texto("hola", wamid="wamid.HOLA1"))
    for _ in range(3):
        assert post(client, data).status_code == 200
    db.session.expire_all()
    entrantes = db.session.scalars(select(Comunicacion).where(Comunicacion.direccion == "entrante")).all()
    assert len(entrantes) == 1 and entrantes[0].cuerpo == "hola" and entrantes[0].estado == "procesado"
    conv = db.session.scalars(select(Conversacion)).one()
    assert conv.contacto == "+34600111222" and conv.nombre_contacto == "Ana Pérez" and conv.estado == "bot"
    assert enviar_cola()["enviado"] == 1
    enviados = graph.sent()
    assert len(enviados) == 1
    r = enviados[0]
    assert r["path"] == "/v21.0/106540352242922/messages" and r["auth"] == "Bearer token-graph"
    assert r["json"]["to"] == NUMERO and r["json"]["type"] == "text" and r["json"]["messaging_product"] == "whatsapp"
    assert "Hola" in r["json"]["text"]["body"]
    db.session.expire_all()
    bot = db.session.scalars(select(Comunicacion).where(Comunicacion.direccion == "saliente")).one()
    assert bot.es_bot and bot.estado == "enviado" and bot.id_externo == "wamid.OUT1"
    assert enviar_cola()["enviado"] == 0 and len(graph.sent()) == 1


def test_a_known_number_is_linked_to_its_client_whatever_the_format(client, graph):
    db.session.add(Cliente(nombre="Ana Cliente", telefono="600 111 222"))
    db.session.commit()
    post(client, payload(texto("hola")))
    conv = db.session.scalars(select(Conversacion)).one()
    assert conv.cliente.nombre == "Ana Cliente"
    assert db.session.scalars(select(Comunicacion)).first().cliente_id == conv.cliente_id


def test_several_entries_and_every_message_type_are_stored_none_crashes(client, graph):
    ts = str(int(utcnow().timestamp()))
    tipos = [
        {"type": "image", "image": {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "la pantalla"}},
        {"type": "audio", "audio": {"id": "MEDIA2", "mime_type": "audio/ogg"}},
        {"type": "document", "document": {"id": "MEDIA3", "filename": "factura.pdf", "mime_type": "application/pdf"}},
        {"type": "location", "location": {"latitude": 40.4, "longitude": -3.7, "name": "Oficina"}},
        {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Sí"}}},
        {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
        {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
        {"type": "sticker"},  # no media object at all
        {"type": "futuro", "futuro": "??"},
    ]
    mensajes = [{"from": NUMERO, "id": f"wamid.T{i}", "timestamp": ts, **t} for i, t in enumerate(tipos)]
    data = payload(*mensajes[:5])
    data["entry"].append(payload(*mensajes[5:])["entry"][0])
    assert post(client, data).status_code == 200
    db.session.expire_all()
    filas = {c.id_externo: c for c in db.session.scalars(
        select(Comunicacion).where(Comunicacion.direccion == "entrante"))}
    assert len(filas) == len(tipos)
    assert filas["wamid.T0"].tipo == "image" and filas["wamid.T0"].cuerpo == "la pantalla"
    assert filas["wamid.T0"].datos["media_id"] == "MEDIA1"
    assert filas["wamid.T2"].datos["filename"] == "factura.pdf"
    assert "Oficina" in filas["wamid.T3"].cuerpo
    assert filas["wamid.T4"].cuerpo == "Sí" and filas["wamid.T5"].cuerpo == "👍"
    assert "131051" in filas["wamid.T6"].cuerpo
    assert all(json.loads(c.original)["id"] == k for k, c in filas.items())


def test_malformed_or_unknown_payloads_are_answered_200(client, graph):
    for data in (b"not json", b"[]", json.dumps({"entry": "x"}).encode(),
                 json.dumps({"entry": [{"changes": [{"value": {"messages": [{"type": "text"}, 5]}}]}]}).encode(),
                 json.dumps({"object": "page", "entry": [None, {"changes": None}]}).encode()):
        assert post(client, data).status_code == 200
    assert db.session.scalar(select(Comunicacion.id)) is None


def test_statuses_move_forward_and_failed_keeps_metas_error(client, graph):
    post(client, payload(texto("hola")))
    enviar_cola()
    wamid = graph.sent()[0] and db.session.scalars(select(Comunicacion.id_externo).where(
        Comunicacion.direccion == "saliente")).one()

    def estado(s, **extra):
        return {"id": wamid, "status": s, "timestamp": "1694492482", "recipient_id": NUMERO, **extra}

    post(client, payload(statuses=[estado("delivered")]))
    post(client, payload(statuses=[estado("sent")]))  # late: never moves back
    db.session.expire_all()
    assert db.session.scalars(select(Comunicacion.estado).where(Comunicacion.id_externo == wamid)).one() == "entregado"
    post(client, payload(statuses=[estado("read")]))
    db.session.expire_all()
    assert db.session.scalars(select(Comunicacion.estado).where(Comunicacion.id_externo == wamid)).one() == "leido"
    post(client, payload(statuses=[estado("failed", errors=[{"code": 131047, "title": "Re-engagement message"}])]))
    db.session.expire_all()
    com = db.session.scalars(select(Comunicacion).where(Comunicacion.id_externo == wamid)).one()
    assert com.estado == "fallido" and "131047" in com.error and "Re-engagement" in com.error


def _escalar(client, graph, frase="quiero hablar con un agente"):
    post(client, payload(texto("hola")))
    post(client, payload(texto(frase)))
    enviar_cola()
    db.session.expire_all()
    return db.session.scalars(select(Ticket).where(Ticket.canal == "whatsapp")).one()


def test_asking_for_an_agent_opens_a_whatsapp_ticket_and_the_customer_gets_its_number(client, graph, api, make_user):
    ticket = _escalar(client, graph, "Quiero hablar con un AGENTE, por favor")
    conv = db.session.scalars(select(Conversacion)).one()
    assert ticket.conversacion_whatsapp_id == conv.id and conv.ticket_id == ticket.id and conv.estado == "escalada"
    assert ticket.cliente is not None and ticket.cliente.telefono == "+34600111222"
    assert ticket.cliente.nombre == "Ana Pérez" and "agente" in ticket.titulo.lower()
    assert "hola" in ticket.descripcion
    assert any(e.tipo == "escalado" and "person" in e.despues for e in ticket.eventos)
    assert any(ticket.numero_ticket in r["json"]["text"]["body"] for r in graph.sent())
    # the admin sees it in the ticket list
    admin = make_user("admin")
    listado = api(admin).get("/api/todos-tickets").get_json()
    assert ticket.numero_ticket in json.dumps(listado)
    # the next inbound message goes to the ticket's thread instead of a new ticket
    post(client, payload(texto("sigo sin poder entrar")))
    db.session.expire_all()
    assert db.session.scalar(select(Ticket.id).where(Ticket.id != ticket.id)) is None
    hilo = db.session.scalars(select(Mensaje).where(Mensaje.ticket_id == ticket.id)).all()
    assert [m.cuerpo for m in hilo] == ["sigo sin poder entrar"] and hilo[0].cliente_id == ticket.cliente_id


def test_escalation_words_are_accent_and_case_insensitive(client, graph):
    ticket = _escalar(client, graph, "¿Puedo HABLAR con alguien?")
    assert ticket.canal == "whatsapp"


def test_two_messages_the_bot_does_not_understand_escalate(client, graph):
    post(client, payload(texto("hola")))
    post(client, payload(texto("xyzzy plugh")))
    db.session.expire_all()
    assert db.session.scalar(select(Ticket.id)) is None
    assert db.session.scalars(select(Conversacion)).one().fallos_bot == 1
    post(client, payload(texto("qwerty asdf")))
    db.session.expire_all()
    ticket = db.session.scalars(select(Ticket)).one()
    assert any(e.tipo == "escalado" and "understand" in e.despues for e in ticket.eventos)


def test_a_keyword_rule_answers_and_resets_the_misses(client, graph):
    db.session.add(ReglaBot(palabras_clave="horario, horarios", respuesta="Abrimos de 9 a 18.", idioma="es",
                            activa=True, orden=1))
    db.session.add(ReglaBot(palabras_clave="horario", respuesta="otra", idioma="es", activa=False, orden=0))
    db.session.commit()
    post(client, payload(texto("hola")))
    post(client, payload(texto("cual es el HORARIO?")))
    enviar_cola()
    cuerpos = [r["json"]["text"]["body"] for r in graph.sent()]
    assert cuerpos[-1] == "Abrimos de 9 a 18."
    assert db.session.scalars(select(Conversacion)).one().fallos_bot == 0


def test_an_agent_reply_on_the_ticket_reaches_the_graph_api_and_notes_never_leave(client, graph, api, make_user):
    ticket = _escalar(client, graph)
    admin = make_user("admin")
    antes = len(graph.sent())
    r = api(admin).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "Hola Ana, ya lo miro."})
    assert r.status_code in (200, 201), r.get_json()
    api(admin).put(f"/api/tickets/{ticket.id}/notas", json={"texto": "nota interna secreta"})
    enviar_cola()
    nuevos = graph.sent()[antes:]
    assert [n["json"]["text"]["body"] for n in nuevos] == ["Hola Ana, ya lo miro."]
    assert nuevos[0]["json"]["to"] == NUMERO
    db.session.expire_all()
    com = db.session.scalars(select(Comunicacion).where(Comunicacion.cuerpo == "Hola Ana, ya lo miro.")).one()
    assert com.autor_id == admin.id and not com.es_bot and com.ticket_id == ticket.id


def test_outside_the_24_hour_window_only_a_template_goes_out(client, graph, api, make_user, app):
    ticket = _escalar(client, graph)
    conv = db.session.scalars(select(Conversacion)).one()
    conv.ultimo_entrante_en = utcnow() - timedelta(hours=25)
    db.session.commit()
    admin = make_user("admin")
    antes = len(graph.sent())
    api(admin).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "¿Sigue pasando?"})
    enviar_cola()
    assert graph.sent()[antes:] == []
    db.session.expire_all()
    fallida = db.session.scalars(select(Comunicacion).where(Comunicacion.cuerpo == "¿Sigue pasando?")).one()
    assert fallida.estado == "fallido" and "24-hour" in fallida.error
    app.config["WHATSAPP_TEMPLATE"] = "seguimiento_ticket"
    api(admin).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "¿Sigue pasando? (2)"})
    enviar_cola()
    ultimo = graph.sent()[-1]["json"]
    assert ultimo["type"] == "template" and ultimo["template"]["name"] == "seguimiento_ticket"


def test_graph_errors_are_retried_or_fail_visibly_with_metas_error(client, graph):
    graph.fail_with = (503, {"error": {"code": 2, "message": "Service temporarily unavailable"}})
    post(client, payload(texto("hola")))
    assert enviar_cola() == {"enviado": 0, "pendiente": 1, "fallido": 0}
    graph.fail_with = (400, {"error": {"code": 131026, "message": "Message undeliverable"}})
    outbox.enviar_pendientes(ahora=utcnow() + timedelta(hours=2))
    db.session.expire_all()
    envio = db.session.scalars(select(Envio)).one()
    assert envio.estado == "fallido" and "131026" in envio.ultimo_error
    com = db.session.scalars(select(Comunicacion).where(Comunicacion.direccion == "saliente")).one()
    assert com.estado == "fallido" and "Message undeliverable" in com.error
    assert db.session.scalar(select(Evento.id)) is None


def test_the_ticket_lists_find_whatsapp_tickets_by_client_name_and_phone(client, graph, api, make_user):
    ticket = _escalar(client, graph)
    a = api(make_user("admin"))
    for q in ("Ana P", "600 111 222", "+34600111222", "34-600-111-222"):
        encontrados = a.get("/api/todos-tickets", query_string={"q": q}).get_json()
        assert ticket.numero_ticket in json.dumps(encontrados), q
    assert ticket.numero_ticket not in json.dumps(a.get("/api/todos-tickets?q=699999999").get_json())


def test_out_of_hours_the_greeting_comes_with_the_notice(client, graph, app):
    app.config["WHATSAPP_OFFICE_HOURS"] = "00:00-00:00"  # never open
    post(client, payload(texto("hola")))
    enviar_cola()
    cuerpos = [r["json"]["text"]["body"] for r in graph.sent()]
    assert len(cuerpos) == 2 and "fuera de horario" in cuerpos[1]


def test_closing_the_ticket_closes_the_conversation_and_the_next_message_starts_a_new_one(
        client, graph, make_user):
    import tickets

    ticket = _escalar(client, graph)
    admin = make_user("admin")
    for paso in ("en_progreso", "resuelto", "cerrado"):
        tickets.cambiar_estado(ticket, admin, paso)
    db.session.commit()
    primera = db.session.scalars(select(Conversacion)).one()
    assert primera.estado == "cerrada"
    post(client, payload(texto("hola otra vez")))
    db.session.expire_all()
    convs = db.session.scalars(select(Conversacion).order_by(Conversacion.id)).all()
    assert [c.estado for c in convs] == ["cerrada", "bot"] and convs[1].cliente_id == ticket.cliente_id
    assert db.session.scalar(select(Mensaje.id).where(Mensaje.cuerpo == "hola otra vez")) is None


def test_oversized_or_odd_fields_never_fail_the_webhook(client, graph):
    raro = texto("hola", numero="no-es-un-numero")
    largo = texto("hola", wamid="wamid." + "x" * 400)
    assert post(client, payload(raro, largo, nombre="N" * 500, numero="no-es-un-numero")).status_code == 200
    db.session.expire_all()
    conv = db.session.scalars(select(Conversacion)).one()
    assert len(conv.nombre_contacto) == 120
    assert db.session.scalar(select(Comunicacion.id).where(Comunicacion.id_externo.like("wamid.xxx%"))) is None


def test_concurrent_webhook_posts_are_all_stored_none_answered_503(app, graph):
    """Meta delivers in parallel. Each POST reads (the conversation, the wamid) before it writes;
    on SQLite a write that follows a read of an older snapshot used to fail at once with
    "database is locked" (503 after retries); on PostgreSQL two first messages of one number
    opened two conversations. Every POST lands, each message exactly once, one conversation
    per number."""
    import threading

    hilos, por_hilo = 6, 5
    barrera = threading.Barrier(hilos)
    codigos: list[int] = []

    def trabajo(i: int) -> None:
        cliente = app.test_client()
        barrera.wait()
        for n in range(por_hilo):
            numero = f"3460099{i % 3:02d}{n % 2:02d}"  # threads share contacts: same conversations
            codigos.append(post(cliente, payload(texto(f"mensaje {i}-{n}", numero=numero,
                                                       wamid=f"wamid.C{i}-{n}"), numero=numero)).status_code)

    threads = [threading.Thread(target=trabajo, args=(i,)) for i in range(hilos)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert codigos == [200] * (hilos * por_hilo)
    db.session.expire_all()
    entrantes = db.session.scalars(select(Comunicacion).where(Comunicacion.direccion == "entrante")).all()
    assert sorted(c.id_externo for c in entrantes) == sorted(f"wamid.C{i}-{n}" for i in range(hilos)
                                                             for n in range(por_hilo))
    assert {c.estado for c in entrantes} == {"procesado"}
    assert len(db.session.scalars(select(Conversacion)).all()) == 6
