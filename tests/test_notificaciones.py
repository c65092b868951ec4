"""In-app notifications (notificaciones.py, rutas/notificaciones.py): the bell's unread count,
mark read / all read, own rows only, the SSE stream resuming from Last-Event-ID and the
long-poll fallback; the SLA admin API recomputes open tickets."""

from __future__ import annotations

import notificaciones
from models import Notificacion, Ticket, db


def _notificar(usuario, texto="Hola", ticket=None):
    fila = notificaciones.crear(usuario, "prueba", texto, ticket=ticket)
    db.session.commit()
    return fila


def test_bell_counts_unread_and_marks_read(make_user, api):
    ana, otro = make_user("ingeniero"), make_user("ingeniero")
    a, b = _notificar(ana, "uno"), _notificar(ana, "dos")
    ajena = _notificar(otro, "ajena")
    r = api(ana).get("/api/notificaciones").get_json()
    assert r["no_leidas"] == 2 and [i["texto"] for i in r["items"]] == ["dos", "uno"]
    r = api(ana).post(f"/api/notificaciones/{a.id}/leida")
    assert r.status_code == 200 and r.get_json()["no_leidas"] == 1
    assert api(ana).post(f"/api/notificaciones/{ajena.id}/leida").status_code == 404
    assert api(ana).post("/api/notificaciones/leidas").get_json()["marcadas"] == 1
    assert api(ana).get("/api/notificaciones").get_json()["no_leidas"] == 0
    db.session.expire_all()
    assert db.session.get(Notificacion, ajena.id).leida is False
    assert b.id


def test_session_writes_need_csrf(make_user, login):
    ana = make_user()
    n = _notificar(ana)
    client, csrf = login(ana)
    assert client.post(f"/api/notificaciones/{n.id}/leida").status_code in (400, 403)
    assert client.post(f"/api/notificaciones/{n.id}/leida", headers={"X-CSRFToken": csrf}).status_code == 200


def test_anonymous_gets_401(client):
    assert client.get("/api/notificaciones", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/api/eventos/stream", headers={"Accept": "application/json"}).status_code == 401


def test_assignment_notifies_the_engineer(make_user, make_ticket, api):
    admin, ing = make_user("admin"), make_user("ingeniero")
    t = make_ticket(make_user())
    assert api(admin).put(f"/api/tickets/{t.id}/asignar", json={"ingeniero_id": ing.ingeniero.id}).status_code == 200
    items = api(ing).get("/api/notificaciones").get_json()["items"]
    assert items[0]["ticket_id"] == t.id and t.numero_ticket in items[0]["texto"]
    assert items[0]["url"] == f"/tickets/{t.numero_ticket}"


def test_sse_stream_resumes_from_last_event_id_and_ends(app, make_user, api):
    app.config.update(SSE_MAX_SECONDS=0.3, SSE_POLL_SECONDS=0.05, SSE_HEARTBEAT_SECONDS=0.1)
    ana = make_user()
    a, b = _notificar(ana, "primera"), _notificar(ana, "segunda")
    _notificar(make_user(), "de otro")
    r = api(ana).get("/api/eventos/stream", headers={"Last-Event-ID": str(a.id)})
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    cuerpo = r.get_data(as_text=True)
    assert f"id: {b.id}\nevent: notificacion" in cuerpo and "segunda" in cuerpo
    assert "primera" not in cuerpo and "de otro" not in cuerpo
    assert ": latido" in cuerpo


def test_long_poll_fallback(app, make_user, api):
    ana = make_user()
    a = _notificar(ana, "primera")
    r = api(ana).get("/api/eventos?desde=0").get_json()
    assert [e["id"] for e in r["eventos"]] == [a.id] and r["ultimo"] == a.id
    r = api(ana).get(f"/api/eventos?desde={a.id}").get_json()
    assert r["eventos"] == [] and r["ultimo"] == a.id and r["cambio"] is False


def test_sla_admin_api_changes_targets_and_recomputes_open_tickets(make_user, make_ticket, api):
    admin = make_user("admin")
    t = make_ticket(make_user(), prioridad="alta")
    antes = t.sla_resolucion_vence
    r = api(admin).put("/api/sla/politicas", json={"prioridad": "alta", "primera_respuesta_min": 30,
                                                  "resolucion_min": 60})
    assert r.status_code == 200, r.get_json()
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).sla_resolucion_vence < antes
    r = api(admin).put("/api/sla/configuracion", json={"horario": {"0": ["9:00", "18:00"]},
                                                      "feriados": ["2026-12-25"], "asignacion_automatica": True})
    assert r.status_code == 200 and r.get_json()["feriados"] == ["2026-12-25"]
    assert api(admin).put("/api/sla/configuracion", json={"horario": {"0": ["25:00", "26:00"]}}).status_code == 422
    assert api(admin).put("/api/sla/politicas", json={"prioridad": "urgente"}).status_code == 422
    assert api(make_user("ingeniero")).get("/api/sla/configuracion").status_code == 403


def test_messages_and_status_changes_notify_the_other_side(make_user, make_ticket, api):
    ana, ing = make_user(), make_user("ingeniero")
    t = make_ticket(ana, ingeniero=ing, estado="en_progreso")
    assert api(ing).post(f"/api/tickets/{t.id}/mensajes", json={"cuerpo": "¿Puedes reiniciar?"}).status_code == 201
    tipos = [i["tipo"] for i in api(ana).get("/api/notificaciones").get_json()["items"]]
    assert "mensaje" in tipos and "estado" in tipos
    assert api(ana).post(f"/api/tickets/{t.id}/mensajes", json={"cuerpo": "Hecho"}).status_code == 201
    assert [i["tipo"] for i in api(ing).get("/api/notificaciones").get_json()["items"]][0] == "mensaje"
