"""Per-user email preferences (issue 12, Zammad #1113): each user chooses which notifications
they also get by email; the in-app notification is always written; receipts always go."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

import alertas
import sla
from models import Envio, Notificacion, PreferenciaEmail, db, utcnow


def _envios(tipo: str, email: str) -> list[Envio]:
    db.session.expire_all()
    return [e for e in db.session.execute(select(Envio).where(Envio.tipo == tipo)).scalars()
            if email in e.destinatarios]


def _notificaciones(usuario, tipo: str) -> int:
    return len(db.session.execute(select(Notificacion).where(
        Notificacion.usuario_id == usuario.id, Notificacion.tipo == tipo)).scalars().all())


def test_defaults_are_all_on_and_depend_on_the_role(make_user, api):
    usuario = api(make_user()).get("/api/me/preferencias").get_json()
    assert usuario["email"] == {"mensaje": True, "estado": True}
    assert set(usuario["etiquetas"]) == {"mensaje", "estado"}
    assert api(make_user("ingeniero")).get("/api/me/preferencias").get_json()["email"] == {
        "asignado": True, "mensaje": True, "estado": True, "prioridad_critica": True, "alertas_sla": True}
    assert set(api(make_user("admin")).get("/api/me/preferencias").get_json()["email"]) == {
        "mensaje", "estado", "nuevo_ticket", "prioridad_critica", "alertas_sla"}


def test_status_change_email_off_still_notifies_in_app(make_user, make_ticket, api):
    ana, ing = make_user(), make_user("ingeniero")
    t = make_ticket(ana, ingeniero=ing)
    r = api(ana).put("/api/me/preferencias", json={"email": {"estado": False}})
    assert r.status_code == 200 and r.get_json()["email"] == {"mensaje": True, "estado": False}

    assert api(ing).put(f"/api/tickets/{t.id}/estado", json={"estado": "en_progreso"}).status_code == 200
    assert _envios("estado_cambiado", ana.email) == []
    assert _notificaciones(ana, "estado") == 1
    # closing is a status change too; messages are still mailed
    assert api(ing).post(f"/api/tickets/{t.id}/mensajes", json={"cuerpo": "Mirando"}).status_code == 201
    assert len(_envios("mensaje_nuevo", ana.email)) == 1
    # and back on: the next change is mailed
    assert api(ana).put("/api/me/preferencias", json={"email": {"estado": True}}).status_code == 200
    assert api(ing).put(f"/api/tickets/{t.id}/estado", json={"estado": "en_espera"}).status_code == 200
    assert len(_envios("estado_cambiado", ana.email)) == 1


def test_receipt_is_always_sent(make_user, api):
    ana = make_user()
    db.session.add_all([PreferenciaEmail(usuario_id=ana.id, clave=c, email=False) for c in ("mensaje", "estado")])
    db.session.commit()
    r = api(ana).post("/api/tickets", json={"titulo": "Sin red", "descripcion": "Nada", "categoria": "Redes"})
    assert r.status_code == 201
    assert len(_envios("ticket_recibido", ana.email)) == 1


def test_assignment_and_new_ticket_emails_honour_the_choice(make_user, make_ticket, api):
    admin, ing = make_user("admin"), make_user("ingeniero")
    assert api(ing).put("/api/me/preferencias", json={"email": {"asignado": False}}).status_code == 200
    assert api(admin).put("/api/me/preferencias", json={"email": {"nuevo_ticket": False}}).status_code == 200
    t = make_ticket(make_user())
    assert _envios("nuevo_ticket", admin.email) == []
    assert api(admin).put(f"/api/tickets/{t.id}/asignar", json={"ingeniero_id": ing.ingeniero.id}).status_code == 200
    assert _envios("ticket_asignado", ing.email) == [] and _notificaciones(ing, "asignado") == 1


def test_sla_alert_emails_honour_the_choice(make_user, make_ticket, api):
    admin, ing = make_user("admin"), make_user("ingeniero")
    assert api(ing).put("/api/me/preferencias", json={"email": {"alertas_sla": False}}).status_code == 200
    t = make_ticket(make_user(), ingeniero=ing, prioridad="critica", estado="en_progreso")
    t.fecha_creacion = utcnow() - timedelta(hours=9)
    sla.recalcular(t)
    db.session.commit()
    assert alertas.tick().get("resolucion_vencida") == 1
    db.session.commit()
    assert [e.destinatarios for e in _envios("sla_resolucion_vencida", "@")] == [admin.email]
    assert _notificaciones(ing, "resolucion_vencida") == 1


def test_unknown_keys_are_a_422_and_change_nothing(make_user, api):
    ana = make_user()
    for body in ({"email": {"estado": False, "spam": False}},  # unknown key
                 {"email": {"alertas_sla": False}},  # a key of another role
                 {"email": {"estado": "quizá"}},  # not a boolean
                 {"email": {"estado": False}, "usuario_id": 1}):  # no field names another user
        r = api(ana).put("/api/me/preferencias", json=body)
        assert r.status_code == 422, (body, r.get_json())
    assert api(ana).get("/api/me/preferencias").get_json()["email"] == {"mensaje": True, "estado": True}


def test_nobody_changes_another_users_preferences(make_user, login, api):
    ana, luis = make_user(), make_user()
    assert api(ana).put("/api/me/preferencias", json={"email": {"mensaje": False}}).status_code == 200
    assert api(luis).get("/api/me/preferencias").get_json()["email"]["mensaje"] is True
    assert db.session.execute(select(PreferenciaEmail.usuario_id)).scalars().all() == [ana.id]
    # a session write needs its CSRF token; anonymous is a 401
    cliente, csrf = login(luis)
    assert cliente.put("/api/me/preferencias", json={"email": {"mensaje": False}}).status_code == 400
    assert api(None).put("/api/me/preferencias", json={"email": {"mensaje": False}}).status_code == 401


def test_preferences_page_saves_the_switches(make_user, login):
    ing = make_user("ingeniero")
    cliente, csrf = login(ing)
    pagina = cliente.get("/cuenta/preferencias").get_data(as_text=True)
    assert 'name="alertas_sla"' in pagina and 'href="/cuenta/preferencias"' in pagina
    r = cliente.post("/cuenta/preferencias", data={"csrf_token": csrf, "asignado": "1", "mensaje": "1"})
    assert r.status_code == 302
    r = cliente.get("/api/me/preferencias", headers={"Accept": "application/json"}).get_json()
    assert r["email"] == {"asignado": True, "mensaje": True, "estado": False, "prioridad_critica": False,
                          "alertas_sla": False}


def test_openapi_documents_the_preferences(client):
    doc = client.get("/api/openapi.json").get_json()
    assert {"get", "put"} <= set(doc["paths"]["/api/me/preferencias"])
    assert "Preferencias" in doc["components"]["schemas"]
    assert "post" in doc["paths"]["/api/ingenieros/{ingeniero_id}/redistribuir"]
