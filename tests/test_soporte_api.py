"""Seed 003's Flutter app replayed as written (plus a Bearer token): every /admin/api/support
route answers 200 {"success": true, "data": ...} on success and {"success": false, "error"} with
the right 4xx otherwise; one set of tickets with Mesa's API. Also seed 001's direct close and
notes alias, seed 000's /api/v1/tickets aliases and the auto-close command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Envio, Evento, Mensaje, Ticket, db, utcnow

BASE = "/admin/api/support"


@pytest.fixture
def cast(make_user):
    return {"admin": make_user("admin"), "user": make_user("usuario"), "other": make_user("usuario"),
            "ing": make_user("ingeniero")}


def count(model) -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def create_support_ticket(client, user_id):
    """seed 003's createSupportTicket(), byte for byte (headers + Bearer)."""
    return client.post(f"{BASE}/create-ticket", json={
        "user_id": user_id, "subject": "Problema con pago", "description": "No puedo completar mi reserva",
        "priority": "high", "category": "billing"}, headers={"Content-Type": "application/json"})


def test_flutter_create_ticket_is_200_with_success_and_a_mesa_ticket(api, cast):
    r = create_support_ticket(api(cast["user"]), cast["user"].id)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["success"] is True
    data = body["data"]
    assert data["ticket_number"].startswith("TKT-")
    assert (data["status"], data["priority"], data["category"]) == ("open", "high", "billing")
    assert data["user_id"] == cast["user"].id
    ticket = db.session.get(Ticket, data["id"])
    assert (ticket.estado, ticket.prioridad, ticket.categoria.nombre, ticket.canal) == (
        "abierto", "alta", "Facturación", "api")
    # the same ticket through Mesa's own API
    assert api(cast["user"]).get(f"/api/tickets/{ticket.id}").get_json()["numero_ticket"] == data["ticket_number"]


def test_unknown_category_goes_to_general_and_flight_too(api, cast):
    for category in ("flight", "order", "whatever"):
        r = api(cast["user"]).post(f"{BASE}/create-ticket", json={
            "user_id": cast["user"].id, "subject": "S", "description": "D", "category": category})
        assert r.status_code == 200
        assert db.session.get(Ticket, r.get_json()["data"]["id"]).categoria.nombre == "General"


def test_someone_elses_user_id_is_403_and_writes_nothing(api, cast, make_ticket):
    before = count(Ticket)
    r = create_support_ticket(api(cast["user"]), cast["other"].id)
    assert r.status_code == 403
    assert r.get_json()["success"] is False and r.get_json()["error"]["code"] == "forbidden_user"
    assert count(Ticket) == before
    assert api(cast["user"]).get(f"{BASE}/user/{cast['other'].id}/tickets").status_code == 403
    ticket = make_ticket(cast["user"])
    r = api(cast["user"]).post(f"{BASE}/tickets/{ticket.id}/user-message",
                               json={"user_id": cast["other"].id, "message": "x", "message_type": "text"})
    assert r.status_code == 403 and count(Mensaje) == 0


def test_staff_creates_on_behalf_of_a_user(api, cast):
    r = create_support_ticket(api(cast["admin"]), cast["user"].id)
    assert r.status_code == 200 and r.get_json()["data"]["user_id"] == cast["user"].id


def test_errors_are_wrapped_with_the_right_status(api, cast):
    r = api(cast["user"]).post(f"{BASE}/create-ticket", json={"user_id": cast["user"].id, "subject": ""})
    assert r.status_code == 422
    body = r.get_json()
    assert body["success"] is False and "description" in body["error"]["fields"]
    r = api(None).post(f"{BASE}/create-ticket", json={})
    assert r.status_code == 401 and r.get_json()["success"] is False
    assert api(cast["user"]).get(f"{BASE}/tickets/999999").get_json() == {
        "success": False, "error": {"code": "not_found", "message": "Ticket no encontrado."}}  # in the caller's language
    assert api(cast["user"]).get(f"{BASE}/tickets").status_code == 403  # admin list
    assert api(cast["user"]).get(f"{BASE}/statistics").status_code == 403
    r = api(cast["admin"]).get(f"{BASE}/tickets?status=bogus")
    assert r.status_code == 422 and r.get_json()["success"] is False
    # Mesa's own API keeps its usual error shape
    assert "success" not in api(cast["user"]).get("/api/tickets/999999").get_json()


def test_whole_conversation_flow(api, cast):
    user, admin, ing = cast["user"], cast["admin"], cast["ing"]
    app_client, panel = api(user), api(admin)
    tid = create_support_ticket(app_client, user.id).get_json()["data"]["id"]

    # sendMessage() as in the seed
    r = app_client.post(f"{BASE}/tickets/{tid}/user-message", json={
        "user_id": user.id, "message": "Hola, ¿alguna novedad?", "message_type": "text"})
    assert r.status_code == 200 and r.get_json()["success"] is True
    msg = r.get_json()["data"]
    assert (msg["sender_type"], msg["message_type"], msg["file_url"], msg["is_read"]) == ("user", "text", None, False)

    mine = app_client.get(f"{BASE}/user/{user.id}/tickets").get_json()
    assert mine["success"] is True and [t["id"] for t in mine["data"]] == [tid]

    listed = panel.get(f"{BASE}/tickets?status=open").get_json()["data"]
    assert [t["id"] for t in listed] == [tid] and listed[0]["unread_count"] == 1
    assert panel.get(f"{BASE}/tickets?status=closed").get_json()["data"] == []

    stats = panel.get(f"{BASE}/statistics").get_json()["data"]
    assert stats["total_tickets"] == 1 and stats["by_status"]["open"] == 1 and stats["by_priority"]["high"] == 1
    assert stats["unread_messages"] == 1

    # admin assigns and starts: {"status": "in_progress", "assigned_to": <engineer's user id>}
    r = panel.put(f"{BASE}/tickets/{tid}/status", json={"status": "in_progress", "assigned_to": ing.id})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["data"]["status"] == "in_progress" and r.get_json()["data"]["assigned_to"] == ing.id

    detail = api(ing).get(f"{BASE}/tickets/{tid}").get_json()["data"]  # engineer reads: user's message read
    assert [m["sender_type"] for m in detail["messages"]] == ["user"]
    assert api(admin).get(f"{BASE}/statistics").get_json()["data"]["unread_messages"] == 0

    r = api(ing).post(f"{BASE}/tickets/{tid}/messages", json={"message": "Respuesta del admin", "message_type": "text"})
    assert r.status_code == 200 and r.get_json()["data"]["sender_type"] == "admin"
    assert app_client.post(f"{BASE}/tickets/{tid}/messages", json={"message": "x"}).status_code == 403

    assert app_client.get(f"{BASE}/user/{user.id}/tickets").get_json()["data"][0]["unread_count"] == 1
    seen = app_client.get(f"{BASE}/tickets/{tid}").get_json()["data"]  # reading the detail marks it read
    assert [(m["sender_type"], m["is_read"]) for m in seen["messages"]] == [("user", True), ("admin", True)]
    assert app_client.get(f"{BASE}/user/{user.id}/tickets").get_json()["data"][0]["unread_count"] == 0

    r = panel.put(f"{BASE}/tickets/{tid}/status", json={"status": "resolved"})
    assert r.get_json()["data"]["status"] == "resolved" and r.get_json()["data"]["resolved_at"]
    r = panel.put(f"{BASE}/tickets/{tid}/status", json={"status": "closed"})
    assert r.status_code == 200 and db.session.get(Ticket, tid).estado == "cerrado"
    r = panel.put(f"{BASE}/tickets/{tid}/status", json={"status": "finished"})
    assert r.status_code == 422 and r.get_json()["success"] is False


def test_open_to_closed_walks_mesa_steps(api, cast, make_ticket):
    ticket = make_ticket(cast["user"])
    r = api(cast["admin"]).put(f"{BASE}/tickets/{ticket.id}/status", json={"status": "closed"})
    assert r.status_code == 200, r.get_json()
    pasos = db.session.execute(select(Evento.despues).where(Evento.ticket_id == ticket.id, Evento.campo == "estado")
                               .order_by(Evento.id)).scalars().all()
    assert pasos == ["en_progreso", "resuelto", "cerrado"]


def test_user_cannot_see_another_users_ticket(api, cast, make_ticket):
    ticket = make_ticket(cast["other"])
    r = api(cast["user"]).get(f"{BASE}/tickets/{ticket.id}")
    assert r.status_code == 404 and r.get_json()["success"] is False


def test_admin_support_page_redirects_to_the_panel(login, cast):
    client, _ = login(cast["admin"])
    r = client.get("/admin/support")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin")


def test_session_client_with_csrf(login, cast):
    client, csrf = login(cast["user"])
    r = client.post(f"{BASE}/create-ticket", json={"subject": "S", "description": "D"}, headers={"X-CSRFToken": csrf})
    assert r.status_code == 200 and r.get_json()["data"]["user_id"] == cast["user"].id
    r = client.post(f"{BASE}/create-ticket", json={"subject": "S", "description": "D"})
    assert r.status_code == 400 and r.get_json()["success"] is False


# --- seed 001 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("desde", ["en_progreso", "en_espera"])
def test_seed001_engineer_closes_directly(api, cast, make_ticket, desde):
    ticket = make_ticket(cast["user"], ingeniero=cast["ing"], estado=desde)
    r = api(cast["ing"]).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "cerrado"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["estado"] == "cerrado" and body["fecha_resolucion"] and body["fecha_cierre"]
    hist = api(cast["user"]).get(f"/api/tickets/{ticket.id}/historial").get_json()["items"]
    assert [(e["antes"], e["despues"]) for e in hist if e["campo"] == "estado"][-2:] == [
        (desde, "resuelto"), ("resuelto", "cerrado")]
    # the requester may not skip steps
    other = make_ticket(cast["user"], ingeniero=cast["ing"], estado=desde)
    assert api(cast["user"]).put(f"/api/tickets/{other.id}/estado", json={"estado": "cerrado"}).status_code == 409


def test_seed001_notas_alias_and_flat_ids(api, cast, make_ticket):
    ticket = make_ticket(cast["user"], ingeniero=cast["ing"])
    r = api(cast["ing"]).put(f"/api/tickets/{ticket.id}/notas", json={"notas": "Revisando configuración de correo"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["notas_internas"][-1]["texto"] == "Revisando configuración de correo"
    assert body["usuario_id"] == cast["user"].id and body["ingeniero_id"] == cast["ing"].ingeniero.id
    assert api(cast["ing"]).put(f"/api/tickets/{ticket.id}/notas", json={"nota": "otra"}).status_code == 200
    assert api(cast["ing"]).put(f"/api/tickets/{ticket.id}/notas", json={}).status_code == 422


# --- seed 000 ------------------------------------------------------------------------------------

def test_seed000_v1_aliases(api, cast):
    crm = api(cast["user"])
    r = crm.post("/api/v1/tickets", json={"titulo": "Sin red", "descripcion": "No hay red", "categoria": "Redes",
                                          "prioridad": "alta", "conversacion_whatsapp_id": None,
                                          "comunicacion_email_id": None})
    assert r.status_code == 201, r.get_json()
    tid = r.get_json()["id"]
    assert crm.get(f"/api/v1/tickets/{tid}").get_json() == crm.get(f"/api/tickets/{tid}").get_json()
    r = crm.put(f"/api/v1/tickets/{tid}", json={"titulo": "Sin red en planta 2"})
    assert r.status_code == 200 and r.get_json()["titulo"] == "Sin red en planta 2"
    page = crm.get("/api/v1/tickets?per_page=5").get_json()
    assert page["total"] == 1 and page["items"][0]["id"] == tid
    r = crm.post("/api/v1/tickets", json={"titulo": "x", "descripcion": "y", "categoria": "Redes",
                                          "conversacion_whatsapp_id": 12345})
    assert r.status_code == 422 and "conversacion_whatsapp_id" in r.get_json()["error"]["fields"]
    assert api(cast["other"]).get(f"/api/v1/tickets/{tid}").status_code == 404
    assert api(None).get("/api/v1/tickets").status_code == 401
    paths = api(None).get("/api/openapi.json").get_json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/tickets"]) and {"get", "put"} <= set(paths["/api/v1/tickets/{ticket_id}"])
    for p in ("/create-ticket", "/user/{user_id}/tickets", "/tickets/{ticket_id}/user-message", "/tickets",
              "/tickets/{ticket_id}", "/tickets/{ticket_id}/status", "/tickets/{ticket_id}/messages", "/statistics"):
        assert BASE + p in paths


# --- auto-close ------------------------------------------------------------------------------------

def test_cerrar_resueltos_closes_silent_resolved_tickets(app, cast, make_ticket):
    silent = make_ticket(cast["user"], ingeniero=cast["ing"], estado="resuelto")
    replied = make_ticket(cast["user"], ingeniero=cast["ing"], estado="resuelto")
    recent = make_ticket(cast["user"], ingeniero=cast["ing"], estado="resuelto")
    old = utcnow() - timedelta(days=8)
    silent.fecha_resolucion = old
    replied.fecha_resolucion = old
    db.session.add(Mensaje(ticket=replied, autor=cast["user"], es_staff=False, cuerpo="sigue fallando",
                           fecha=old + timedelta(days=1)))
    db.session.commit()
    emails_before = count(Envio)

    result = app.test_cli_runner().invoke(args=["cerrar-resueltos"])
    assert result.exit_code == 0, result.output
    assert silent.numero_ticket in result.output

    db.session.expire_all()
    assert db.session.get(Ticket, silent.id).estado == "cerrado"
    assert db.session.get(Ticket, silent.id).fecha_cierre is not None
    assert db.session.get(Ticket, replied.id).estado == "resuelto"
    assert db.session.get(Ticket, recent.id).estado == "resuelto"
    last = db.session.execute(select(Evento).where(Evento.ticket_id == silent.id).order_by(Evento.id.desc())).scalars().first()
    assert (last.antes, last.despues, last.actor_id) == ("resuelto", "cerrado", None)
    nuevos = db.session.execute(select(Envio).order_by(Envio.id).offset(emails_before)).scalars().all()
    assert [(e.tipo, e.ticket_id, e.destinatarios) for e in nuevos] == [("ticket_cerrado", silent.id, cast["user"].email)]


def test_admin_maps_a_category(api, cast):
    admin = api(cast["admin"])
    assert {"clave": "flight", "categoria": "General"} in admin.get("/api/soporte/categorias").get_json()["items"]
    r = admin.put("/api/soporte/categorias/flight", json={"categoria": "Redes"})
    assert r.status_code == 200 and r.get_json() == {"clave": "flight", "categoria": "Redes"}
    assert admin.put("/api/soporte/categorias/flight", json={"categoria": "Nope"}).status_code == 422
    assert api(cast["user"]).put("/api/soporte/categorias/flight", json={"categoria": "Redes"}).status_code == 403
    r = api(cast["user"]).post(f"{BASE}/create-ticket", json={"subject": "Vuelo", "description": "D", "category": "flight"})
    assert r.get_json()["data"]["category"] == "flight"
    assert db.session.get(Ticket, r.get_json()["data"]["id"]).categoria.nombre == "Redes"
