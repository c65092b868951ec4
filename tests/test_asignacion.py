"""Automatic assignment (asignacion.py): available engineers under their cap, specialty first,
least weighted load, round-robin ties, history with the reason, manual assignment wins."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

import tickets
from models import AlertaSLA, Categoria, ConfiguracionSLA, Envio, Evento, Notificacion, Ticket, db, utcnow
from schemas import TicketCreate


@pytest.fixture
def auto(app):
    db.session.merge(ConfiguracionSLA(id=1, horario={str(d): ["00:00", "24:00"] for d in range(7)}, feriados=[],
                                      umbral_aviso_pct=80, minutos_critico_sin_asignar=15,
                                      asignacion_automatica=True))
    db.session.query(Categoria).filter_by(nombre="Redes").update({"especialidad": "Redes"})
    db.session.commit()
    return app


def _nuevo(usuario, categoria="Hardware", prioridad="media"):
    return tickets.crear_ticket(TicketCreate(titulo="No funciona", descripcion="Detalle.", categoria=categoria,
                                             prioridad=prioridad), usuario=usuario)


def _abiertos():
    return dict(db.session.execute(select(Ticket.ingeniero_id, func.count()).where(
        Ticket.ingeniero_id.is_not(None)).group_by(Ticket.ingeniero_id)).all())


def test_thousand_tickets_respect_caps_spread_evenly_and_follow_specialty(auto, make_user, admin_user):
    ana = make_user()
    generales = [make_user("ingeniero").ingeniero for _ in range(3)]
    redes = make_user("ingeniero").ingeniero
    redes.especialidad = "Redes"
    for i in generales:
        i.max_abiertos = 200
    redes.max_abiertos = 100
    apagado = make_user("ingeniero").ingeniero
    apagado.disponible = False
    db.session.commit()
    rng = random.Random(12)
    sin_asignar = 0
    for n in range(1000):
        categoria = "Redes" if rng.random() < 0.2 else "Hardware"
        carga_redes = _abiertos().get(redes.id, 0) if categoria == "Redes" else None
        t = _nuevo(ana, categoria)
        if t.ingeniero_id is None:
            sin_asignar += 1
        elif categoria == "Redes" and carga_redes < redes.max_abiertos:
            assert t.ingeniero_id == redes.id  # specialty respected while the specialist has room
        carga = _abiertos()
        assert all(carga.get(i.id, 0) <= i.max_abiertos for i in [*generales, redes])
        iguales = [carga.get(i.id, 0) for i in generales]
        assert max(iguales) - min(iguales) <= 1, (n, iguales)
        if n % 100 == 99:
            db.session.commit()
    db.session.commit()
    carga = _abiertos()
    assert apagado.id not in carga
    assert sum(carga.values()) == 700 and sin_asignar == 300
    # Nobody fits → unassigned, each with its history row; the admins alerted once for the period.
    assert db.session.execute(select(func.count()).select_from(Evento).where(
        Evento.tipo == "asignacion_automatica", Evento.despues.is_(None))).scalar_one() == 300
    assert db.session.execute(select(func.count()).select_from(AlertaSLA).where(
        AlertaSLA.tipo == "sin_candidato")).scalar_one() == 1


def _alertas_sin_candidato():
    return list(db.session.execute(select(AlertaSLA).where(AlertaSLA.tipo == "sin_candidato")
                                   .order_by(AlertaSLA.id)).scalars())


def test_nobody_to_assign_alerts_the_admins_once_per_period(auto, app, make_user):
    app.config["ALERTA_SIN_CANDIDATO_MINUTOS"] = 30
    admins, ana = [make_user("admin"), make_user("admin")], make_user()
    primero, segundo, tercero = (_nuevo(ana) for _ in range(3))  # no engineer at all
    db.session.commit()
    assert [a.ticket_id for a in _alertas_sin_candidato()] == [primero.id]
    for admin in admins:
        avisos = db.session.execute(select(Notificacion.ticket_id).where(
            Notificacion.usuario_id == admin.id, Notificacion.tipo == "sin_candidato")).scalars().all()
        assert avisos == [primero.id]
    correos = db.session.execute(select(Envio.destinatarios).where(Envio.tipo == "sla_sin_candidato")).scalars()
    assert sorted(correos) == sorted(a.email for a in admins)
    for t in (segundo, tercero):  # still in the history and in the unassigned list
        assert t.ingeniero_id is None
        assert db.session.execute(select(Evento.id).where(
            Evento.ticket_id == t.id, Evento.tipo == "asignacion_automatica")).first() is not None
    # The period over, the next ticket nobody can take alerts again.
    _alertas_sin_candidato()[0].fecha = utcnow() - timedelta(minutes=31)
    db.session.commit()
    cuarto = _nuevo(ana)
    db.session.commit()
    assert [a.ticket_id for a in _alertas_sin_candidato()] == [primero.id, cuarto.id]


@pytest.fixture
def admin_user(make_user):
    return make_user("admin")


def test_history_says_why_and_ties_go_round_robin(auto, make_user):
    ana = make_user()
    a, b = make_user("ingeniero").ingeniero, make_user("ingeniero").ingeniero
    primeros = [_nuevo(ana).ingeniero_id for _ in range(4)]
    assert primeros == [a.id, b.id, a.id, b.id]
    t = _nuevo(ana, "Redes")
    motivo = db.session.execute(select(Evento.despues).where(
        Evento.ticket_id == t.id, Evento.tipo == "asignacion_automatica")).scalar_one()
    assert motivo.startswith("asignado automáticamente: menor carga, 2 abiertos")


def test_priority_weighs_on_the_load(auto, make_user):
    ana = make_user()
    a, b = make_user("ingeniero").ingeniero, make_user("ingeniero").ingeniero
    assert _nuevo(ana, prioridad="critica").ingeniero_id == a.id  # a: weight 4
    assert _nuevo(ana, prioridad="baja").ingeniero_id == b.id  # b: weight 1
    assert _nuevo(ana, prioridad="baja").ingeniero_id == b.id  # b: 2 < 4
    assert _nuevo(ana, prioridad="baja").ingeniero_id == b.id  # b: 3 < 4


def test_switched_off_means_no_automatic_assignment(app, make_user):
    make_user("ingeniero")
    assert _nuevo(make_user()).ingeniero_id is None  # no settings row: off


def test_manual_assignment_wins(auto, make_user, api):
    admin, a, b = make_user("admin"), make_user("ingeniero"), make_user("ingeniero")
    t = _nuevo(make_user())
    db.session.commit()
    otro = b if t.ingeniero_id == a.ingeniero.id else a
    r = api(admin).put(f"/api/tickets/{t.id}/asignar", json={"ingeniero_id": otro.ingeniero.id})
    assert r.status_code == 200, r.get_json()
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).ingeniero_id == otro.ingeniero.id


def test_admin_maps_specialties_and_caps_engineer_switches_availability(auto, make_user, api):
    admin, ing, otro = make_user("admin"), make_user("ingeniero"), make_user("ingeniero")
    hw = db.session.query(Categoria).filter_by(nombre="Hardware").one()
    r = api(admin).put(f"/api/sla/categorias/{hw.id}/especialidad", json={"especialidad": "Hardware"})
    assert r.status_code == 200 and r.get_json()["especialidad"] == "Hardware"
    r = api(admin).put(f"/api/sla/ingenieros/{ing.ingeniero.id}", json={"max_abiertos": 3})
    assert r.get_json()["max_abiertos"] == 3
    assert api(ing).put(f"/api/sla/ingenieros/{ing.ingeniero.id}", json={"max_abiertos": 99}).status_code == 403
    assert api(ing).put(f"/api/sla/ingenieros/{ing.ingeniero.id}", json={"disponible": False}).status_code == 200
    assert api(ing).put(f"/api/sla/ingenieros/{otro.ingeniero.id}", json={"disponible": False}).status_code == 404
    assert api(make_user()).put(f"/api/sla/ingenieros/{ing.ingeniero.id}", json={"disponible": True}).status_code == 403
    assert _nuevo(make_user()).ingeniero_id == otro.ingeniero.id  # ing is unavailable
