"""Redistribution (issue 12, part 4): when an engineer cannot take work and still holds open
tickets, admins are offered to reassign them through the automatic rules (never back to
them), with history saying why; those nobody fits stay unassigned and the admins are alerted;
manual assignment still wins."""

from __future__ import annotations

from sqlalchemy import select

from models import Categoria, Evento, Notificacion, Ticket, db


def _ticket(tid: int) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, tid)


def _motivos(tid: int) -> list[str]:
    return list(db.session.execute(select(Evento.despues).where(
        Evento.ticket_id == tid, Evento.tipo == "asignacion_automatica")).scalars())


def _notificaciones(usuario, tipo):
    return db.session.execute(select(Notificacion).where(
        Notificacion.usuario_id == usuario.id, Notificacion.tipo == tipo)).scalars().all()


def test_marking_unavailable_offers_to_redistribute(make_user, make_ticket, api):
    admin, ing = make_user("admin"), make_user("ingeniero")
    for _ in range(2):
        make_ticket(make_user(), ingeniero=ing)
    make_ticket(make_user(), ingeniero=ing, estado="cerrado")
    r = api(ing).put(f"/api/sla/ingenieros/{ing.ingeniero.id}", json={"disponible": False})
    assert r.status_code == 200
    assert r.get_json()["abiertos_por_redistribuir"] == 2 and r.get_json()["redistribuir"] is None  # admins act
    r = api(admin).put(f"/api/sla/ingenieros/{ing.ingeniero.id}", json={"disponible": False}).get_json()
    assert r["abiertos_por_redistribuir"] == 2
    assert r["redistribuir"] == f"/api/ingenieros/{ing.ingeniero.id}/redistribuir"
    r = api(admin).put(f"/api/sla/ingenieros/{ing.ingeniero.id}", json={"disponible": True}).get_json()
    assert r["abiertos_por_redistribuir"] == 0 and r["redistribuir"] is None


def test_redistribution_follows_the_automatic_rules_and_writes_why(make_user, make_ticket, api):
    admin, ausente, redes, general = (make_user("admin"), make_user("ingeniero", nombre="Ausente"),
                                      make_user("ingeniero"), make_user("ingeniero"))
    db.session.query(Categoria).filter_by(nombre="Redes").update({"especialidad": "Redes"})
    redes.ingeniero.especialidad = "Redes"
    db.session.commit()
    de_redes = make_ticket(make_user(), ingeniero=ausente, categoria="Redes", estado="en_progreso")
    de_hw = make_ticket(make_user(), ingeniero=ausente, categoria="Hardware", prioridad="critica")
    cerrado = make_ticket(make_user(), ingeniero=ausente, estado="cerrado")
    make_ticket(make_user(), ingeniero=redes)  # redes carries one already: Hardware goes to general
    assert api(admin).put(f"/api/sla/ingenieros/{ausente.ingeniero.id}", json={"disponible": False}).status_code == 200

    r = api(admin).post(f"/api/ingenieros/{ausente.ingeniero.id}/redistribuir")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["sin_asignar"] == []
    # most urgent first: the critical one is placed before the medium one
    assert [x["ticket_id"] for x in body["reasignados"]] == [de_hw.id, de_redes.id]
    assert _ticket(de_redes.id).ingeniero_id == redes.ingeniero.id
    assert _ticket(de_hw.id).ingeniero_id == general.ingeniero.id
    assert _ticket(cerrado.id).ingeniero_id == ausente.ingeniero.id  # closed tickets stay
    assert any(m.startswith("redistribuido (Ausente no disponible); asignado automáticamente: especialidad Redes")
               for m in _motivos(de_redes.id))
    historial = api(admin).get(f"/api/tickets/{de_redes.id}/historial").get_json()
    assert any(e.get("tipo") == "asignacion" for e in (historial.get("items") or historial))
    assert len(_notificaciones(ausente, "desasignado")) == 2
    assert len(_notificaciones(redes, "asignado")) == 1


def test_nobody_fits_leaves_it_unassigned_and_alerts_admins(make_user, make_ticket, api):
    admin, ausente, lleno = make_user("admin"), make_user("ingeniero"), make_user("ingeniero")
    lleno.ingeniero.max_abiertos = 0
    ausente.ingeniero.disponible = False
    db.session.commit()
    t = make_ticket(make_user(), ingeniero=ausente)
    body = api(admin).post(f"/api/ingenieros/{ausente.ingeniero.id}/redistribuir").get_json()
    assert body == {"reasignados": [], "sin_asignar": [{"ticket_id": t.id, "numero_ticket": t.numero_ticket}]}
    assert _ticket(t.id).ingeniero_id is None
    assert any("no available engineer" in m for m in _motivos(t.id))
    assert [n.ticket_id for n in _notificaciones(admin, "sin_candidato")] == [t.id]


def test_only_admins_redistribute(make_user, make_ticket, api):
    ing = make_user("ingeniero")
    t = make_ticket(make_user(), ingeniero=ing)
    assert api(ing).post(f"/api/ingenieros/{ing.ingeniero.id}/redistribuir").status_code == 403
    assert api(make_user()).post(f"/api/ingenieros/{ing.ingeniero.id}/redistribuir").status_code == 403
    assert api(make_user("admin")).post("/api/ingenieros/999999/redistribuir").status_code == 404
    assert _ticket(t.id).ingeniero_id == ing.ingeniero.id


def test_manual_assignment_wins(make_user, make_ticket, api):
    admin, ausente, elegido, otro = (make_user("admin"), make_user("ingeniero"), make_user("ingeniero"),
                                     make_user("ingeniero"))
    movido, queda = make_ticket(make_user(), ingeniero=ausente), make_ticket(make_user(), ingeniero=ausente)
    assert api(admin).put(f"/api/sla/ingenieros/{ausente.ingeniero.id}", json={"disponible": False}).status_code == 200
    # the admin moved one by hand before redistributing: it is not touched again
    assert api(admin).put(f"/api/tickets/{movido.id}/asignar", json={"ingeniero_id": otro.ingeniero.id}).status_code == 200
    body = api(admin).post(f"/api/ingenieros/{ausente.ingeniero.id}/redistribuir").get_json()
    assert [x["ticket_id"] for x in body["reasignados"]] == [queda.id]
    assert _ticket(movido.id).ingeniero_id == otro.ingeniero.id
    # and after it the admin can still put the redistributed one wherever they want
    destino = otro if _ticket(queda.id).ingeniero_id != otro.ingeniero.id else elegido
    assert api(admin).put(f"/api/tickets/{queda.id}/asignar", json={"ingeniero_id": destino.ingeniero.id}).status_code == 200
    assert _ticket(queda.id).ingeniero_id == destino.ingeniero.id


def test_admin_page_offers_and_runs_the_redistribution(make_user, make_ticket, login):
    admin, ausente, otro = make_user("admin"), make_user("ingeniero"), make_user("ingeniero")
    tickets_ = [make_ticket(make_user(), ingeniero=ausente) for _ in range(3)]
    cliente, csrf = login(admin)
    r = cliente.post(f"/admin/ingenieros/{ausente.ingeniero.id}",
                     data={"csrf_token": csrf, "campo": "disponible", "valor": "0"}, follow_redirects=True)
    pagina = r.get_data(as_text=True)
    assert "3 tickets abiertos" in pagina  # the flash says so
    assert "Redistribuir 3 tickets abiertos" in pagina
    assert f'action="/admin/ingenieros/{ausente.ingeniero.id}/redistribuir"' in pagina
    r = cliente.post(f"/admin/ingenieros/{ausente.ingeniero.id}/redistribuir", data={"csrf_token": csrf},
                     follow_redirects=True)
    assert r.status_code == 200 and "Redistribuir" not in r.get_data(as_text=True)
    assert {_ticket(t.id).ingeniero_id for t in tickets_} == {otro.ingeniero.id}
