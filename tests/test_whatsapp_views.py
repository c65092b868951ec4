# ruff: noqa: F811 - the graph fixture is imported, then requested by name
"""WhatsApp views and seed 004's API (issue 9): inbox, chat view, client tab, who sees what."""

from __future__ import annotations

import json

from graph_fixture import graph  # noqa: F401 - fixture
from sqlalchemy import select
from test_whatsapp_webhook import NUMERO, payload, post, texto

import outbox
from models import Cliente, Comunicacion, Conversacion, Ticket, db


def _escalada(client):
    post(client, payload(texto("hola")))
    post(client, payload(texto("quiero hablar con un agente")))
    outbox.enviar_pendientes()
    db.session.expire_all()
    return db.session.scalars(select(Conversacion)).one()


def test_inbox_chat_and_client_tab_in_spanish_and_english(client, graph, make_user, login):
    conv = _escalada(client)
    admin = make_user("admin")
    c, csrf = login(admin)
    for idioma, textos in (("en", ("WhatsApp conversations", "Escalated", "Reply on WhatsApp", "Bot")),
                           ("es", ("Conversaciones de WhatsApp", "Escalada", "Responder por WhatsApp", "Bot"))):
        c.post("/idioma", data={"idioma": idioma, "csrf_token": csrf})
        inbox = c.get("/conversaciones").get_data(as_text=True)
        assert textos[0] in inbox and textos[1] in inbox and "+34600111222" in inbox
        assert "quiero hablar con un agente" in inbox or "TKT-" in inbox
        chat = c.get(f"/conversaciones/{conv.id}").get_data(as_text=True)
        assert textos[2] in chat and "quiero hablar con un agente" in chat and conv.ticket.numero_ticket in chat
        cliente = c.get(f"/clientes/{conv.cliente_id}").get_data(as_text=True)
        assert "quiero hablar con un agente" in cliente and "Ana Pérez" in cliente
        assert "Ana Pérez" in c.get("/clientes?q=ana").get_data(as_text=True)
        ticket = c.get(f"/tickets/{conv.ticket.numero_ticket}").get_data(as_text=True)
        assert f"/conversaciones/{conv.id}" in ticket


def test_an_agent_replies_and_escalates_from_the_chat_view(client, graph, make_user, login):
    post(client, payload(texto("hola")))
    conv = db.session.scalars(select(Conversacion)).one()
    admin = make_user("admin")
    c, csrf = login(admin)
    r = c.post(f"/conversaciones/{conv.id}/responder", data={"texto": "Te atiendo yo", "csrf_token": csrf})
    assert r.status_code == 302
    assert c.post(f"/conversaciones/{conv.id}/responder", data={"texto": "sin csrf"}).status_code in (400, 403)
    outbox.enviar_pendientes()
    assert graph.sent()[-1]["json"]["text"]["body"] == "Te atiendo yo"
    assert c.post(f"/conversaciones/{conv.id}/escalar", data={"csrf_token": csrf}).status_code == 302
    db.session.expire_all()
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.canal == "whatsapp" and ticket.conversacion_whatsapp_id == conv.id
    assert any(e.tipo == "escalado" and e.actor_id == admin.id for e in ticket.eventos)


def test_an_unknown_number_is_linked_to_a_new_client_by_an_admin(client, graph, make_user, login):
    post(client, payload(texto("hola"), nombre="Perfil WA"))
    conv = db.session.scalars(select(Conversacion)).one()
    assert conv.cliente_id is None
    c, csrf = login(make_user("admin"))
    c.post(f"/conversaciones/{conv.id}/cliente", data={"nombre": "Nueva Cliente", "csrf_token": csrf})
    db.session.expire_all()
    cliente = db.session.scalars(select(Cliente)).one()
    assert cliente.telefono == "+34600111222" and conv.cliente_id == cliente.id
    assert all(m.cliente_id == cliente.id for m in db.session.scalars(select(Comunicacion)))


def test_who_sees_what(client, graph, make_user, login, api):
    conv = _escalada(client)
    ing, otro, usuario = make_user("ingeniero"), make_user("ingeniero"), make_user("usuario")
    conv.ticket.ingeniero = ing.ingeniero
    db.session.commit()
    assert api(ing).get(f"/api/v1/conversaciones-whatsapp/{conv.id}").status_code == 200
    assert api(otro).get(f"/api/v1/conversaciones-whatsapp/{conv.id}").status_code == 404
    assert api(otro).get("/api/v1/conversaciones-whatsapp").get_json()["total"] == 0
    assert api(usuario).get("/api/v1/conversaciones-whatsapp").status_code == 403
    assert api(None).get("/api/v1/conversaciones-whatsapp").status_code == 401
    c, _ = login(otro)
    assert c.get(f"/conversaciones/{conv.id}").status_code == 404
    c, _ = login(usuario)
    assert c.get("/conversaciones").status_code == 403


def test_seed_004_api(client, graph, make_user, api):
    conv = _escalada(client)
    post(client, payload(texto("hola", numero="5215512345678"), nombre="Luis", numero="5215512345678"))
    a = api(make_user("admin"))
    lista = a.get("/api/v1/conversaciones-whatsapp").get_json()
    assert lista["total"] == 2 and lista["page"] == 1 and set(lista["items"][0]) >= {"id", "numero", "estado"}
    assert a.get("/api/v1/conversaciones-whatsapp?estado=escalada").get_json()["items"][0]["id"] == conv.id
    assert a.get(f"/api/v1/conversaciones-whatsapp?cliente_id={conv.cliente_id}").get_json()["total"] == 1
    assert a.get("/api/v1/conversaciones-whatsapp?q=luis").get_json()["total"] == 1
    assert a.get("/api/v1/conversaciones-whatsapp?q=quiero%20hablar").get_json()["total"] == 1
    assert a.get("/api/v1/conversaciones-whatsapp?estado=nope").status_code == 422
    assert a.get("/api/v1/conversaciones-whatsapp?desde=2000-01-01&hasta=2999-01-01").get_json()["total"] == 2
    assert a.get("/api/v1/conversaciones-whatsapp?hasta=2000-01-01").get_json()["total"] == 0
    for forma in ("+34600111222", "34600111222", "600 111 222", "+34 600-111-222", "0034600111222"):
        hilos = a.get(f"/api/v1/conversaciones-whatsapp/numero/{forma}").get_json()
        assert len(hilos) == 1, forma
        cuerpos = [m["cuerpo"] for m in hilos[0]["mensajes"]]
        assert "hola" in cuerpos and "quiero hablar con un agente" in cuerpos
        assert {m["direccion"] for m in hilos[0]["mensajes"]} == {"entrante", "saliente"}
    assert a.get("/api/v1/conversaciones-whatsapp/numero/abc").status_code == 422
    por_cliente = a.get(f"/api/v1/conversaciones-whatsapp/cliente/{conv.cliente_id}").get_json()
    assert [h["id"] for h in por_cliente] == [conv.id]
    detalle = a.get(f"/api/v1/conversaciones-whatsapp/{conv.id}").get_json()
    assert detalle["ticket_id"] == conv.ticket_id and any(m["es_bot"] for m in detalle["mensajes"])
    est = a.get("/api/v1/conversaciones-whatsapp/estadisticas").get_json()
    assert est["total_conversaciones"] == 2 and est["escaladas"] == 1 and est["resueltas_por_bot"] == 1
    assert sum(d["entrantes"] for d in est["mensajes_por_dia"].values()) == 3
    assert est["mediana_primera_respuesta_segundos"] is not None
    assert json.dumps(est)
    assert NUMERO


def test_a_reply_from_the_chat_view_is_the_tickets_first_response(client, graph, make_user, login):
    """Answering an escalated customer on WhatsApp answers the ticket: the first response is
    dated and its SLA outcome stored, as a reply on the ticket page would; later replies keep it."""
    conv = _escalada(client)
    ticket = conv.ticket
    assert ticket.fecha_primera_respuesta is None and ticket.sla_primera_respuesta_vence is not None
    c, csrf = login(make_user("admin"))
    assert c.post(f"/conversaciones/{conv.id}/responder", data={"texto": "Le llamo ahora", "csrf_token": csrf}
                  ).status_code == 302
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    primera = ticket.fecha_primera_respuesta
    assert primera is not None
    assert ticket.sla_primera_respuesta_segundos is not None and ticket.sla_primera_respuesta_cumplida is True
    assert [m.cuerpo for m in ticket.mensajes if m.es_staff] == ["Le llamo ahora"]
    c.post(f"/conversaciones/{conv.id}/responder", data={"texto": "Ya está", "csrf_token": csrf})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).fecha_primera_respuesta == primera
