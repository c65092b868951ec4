"""registrar_ingenieros.py: idempotent seeding, generated passwords, demo mode rules."""

from __future__ import annotations

import re
from datetime import UTC

import pytest
from sqlalchemy import func, select

import registrar_ingenieros
from models import Envio, Ingeniero, Ticket, Usuario, db


@pytest.fixture
def seed_env(app, monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.setenv("APP_ENV", "development")
    return app


def accounts():
    db.session.expire_all()
    return {u.username: u for u in db.session.execute(select(Usuario)).scalars()}


def test_generated_passwords_are_printed_once_and_work(seed_env, capsys):
    assert registrar_ingenieros.main([]) == 0
    out = capsys.readouterr().out
    users = accounts()
    assert set(users) == {"admin", "ing_carlos", "ing_maria", "ing_jorge"}
    specialties = {i.usuario.username: i.especialidad for i in db.session.execute(select(Ingeniero)).scalars()}
    assert specialties == {"ing_carlos": "Redes y Servidores", "ing_maria": "Hardware y Impresoras",
                           "ing_jorge": "Software y Bases de Datos"}
    for username, user in users.items():
        password = re.search(rf"^\s+{username}\s+.*\s(\S+)$", out, re.M).group(1)
        assert password != f"{username}123" and len(password) >= 12
        assert user.check_password(password)

    assert registrar_ingenieros.main([]) == 0  # second run: nothing changes, nothing printed
    again = capsys.readouterr().out
    assert "nothing changed" in again
    assert not any(re.search(rf"^\s+{u}\s", again, re.M) for u in users)
    assert {u: a.password_hash for u, a in accounts().items()} == {u: a.password_hash for u, a in users.items()}


def test_passwords_from_arguments(seed_env, capsys):
    registrar_ingenieros.main(["--admin-password", "Adm1n-largo", "--ingeniero-password", "Ing-largo-1"])
    users = accounts()
    assert users["admin"].check_password("Adm1n-largo")
    assert users["ing_maria"].check_password("Ing-largo-1")


def test_demo_mode_uses_documented_logins_and_adds_tickets(seed_env, capsys):
    assert registrar_ingenieros.main(["--demo", "--if-empty"]) == 0
    users = accounts()
    for username, password in (("admin", "admin123"), ("ing_carlos", "ing_carlos123"), ("ing_maria", "ing_maria123"),
                               ("ing_jorge", "ing_jorge123"), ("usuario", "usuario123")):
        assert users[username].check_password(password), username
    states = dict(db.session.execute(select(Ticket.estado, func.count()).group_by(Ticket.estado)).all())
    assert set(states) == {"abierto", "en_progreso", "en_espera", "resuelto", "cerrado"}
    assert db.session.execute(select(func.count(Ticket.id)).where(Ticket.ingeniero_id.is_(None))).scalar_one() > 0
    total = sum(states.values())
    # demo addresses are not mailboxes: seeding queues no email
    assert db.session.execute(select(func.count(Envio.id))).scalar_one() == 0
    assert registrar_ingenieros.main(["--demo", "--if-empty"]) == 0
    assert db.session.execute(select(func.count(Ticket.id))).scalar_one() == total


def test_demo_refused_in_production(seed_env, monkeypatch, capsys):
    monkeypatch.setenv("APP_ENV", "production")
    assert registrar_ingenieros.main(["--demo"]) == 2
    assert "Refusing" in capsys.readouterr().err
    assert accounts() == {}


def test_demo_history_is_in_the_past_and_consistent(seed_env, capsys):
    from datetime import datetime

    registrar_ingenieros.main(["--demo"])
    now = datetime.now(UTC)
    for ticket in db.session.execute(select(Ticket)).scalars():
        fechas = [e.fecha for e in ticket.eventos]
        assert fechas == sorted(fechas) and fechas[0] == ticket.fecha_creacion < now
        assert ticket.fecha_actualizacion == fechas[-1]
        for campo in ("fecha_primera_respuesta", "fecha_resolucion", "fecha_cierre"):
            value = getattr(ticket, campo)
            assert value is None or ticket.fecha_creacion <= value <= ticket.fecha_actualizacion
        if ticket.fecha_cierre and ticket.fecha_resolucion:
            assert ticket.fecha_resolucion <= ticket.fecha_cierre
        for mensaje in ticket.mensajes:
            assert ticket.fecha_creacion <= mensaje.fecha <= ticket.fecha_actualizacion
    finished = [t for t in db.session.execute(select(Ticket)).scalars() if t.estado in ("resuelto", "cerrado")]
    assert finished and all((now - t.fecha_creacion).days >= 3 for t in finished)


def test_demo_seeding_works_with_automatic_assignment_on_and_leaves_it_on(seed_env):
    """A fresh install has automatic assignment on (migration 0009): the demo still follows its
    own plan (a few tickets stay unassigned) and the switch is left as it was."""
    import sla
    from models import ConfiguracionSLA

    db.session.add(ConfiguracionSLA(id=1, horario=dict(sla.HORARIO_24X7), feriados=[], umbral_aviso_pct=80,
                                    minutos_critico_sin_asignar=15, asignacion_automatica=True))
    db.session.commit()
    assert registrar_ingenieros.main(["--demo", "--if-empty"]) == 0
    db.session.expire_all()
    assert db.session.execute(select(func.count(Ticket.id)).where(Ticket.ingeniero_id.is_(None))).scalar_one() > 0
    assert db.session.get(ConfiguracionSLA, 1).asignacion_automatica is True
