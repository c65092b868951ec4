"""SLA alerts (alertas.py, `flask sla-tick`): near breach, breach and critical-unassigned alerts
reach the engineer and the admins by email (outbox) and in-app, each exactly once, even with
two sla-tick processes running at the same time against the same database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

import alertas
import sla
from models import AlertaSLA, Envio, Notificacion, Ticket, db, utcnow

ROOT = Path(__file__).resolve().parent.parent


def _vencer(t: Ticket, horas: float) -> None:
    t.fecha_creacion = utcnow() - timedelta(hours=horas)
    sla.recalcular(t)


def _cuenta(model, **filtros):
    stmt = select(func.count()).select_from(model)
    for campo, valor in filtros.items():
        stmt = stmt.where(getattr(model, campo) == valor)
    return db.session.execute(stmt).scalar_one()


def test_breach_alert_reaches_engineer_and_admins_once(app, make_user, make_ticket):
    admin, ing = make_user("admin"), make_user("ingeniero")
    t = make_ticket(make_user(), ingeniero=ing, prioridad="critica", estado="en_progreso")
    _vencer(t, 9)  # critical: resolution due after 8 h (24x7 default)
    db.session.commit()
    antes = _cuenta(Envio)
    primero = alertas.tick()
    db.session.commit()
    assert primero.get("resolucion_vencida") == 1
    assert alertas.tick() == {}
    db.session.commit()
    envios = db.session.execute(select(Envio).where(Envio.tipo == "sla_resolucion_vencida")).scalars().all()
    assert sorted(e.destinatarios for e in envios) == sorted([admin.email, ing.email])
    assert _cuenta(Envio) - antes == len(primero) * 2
    assert _cuenta(Notificacion, usuario_id=ing.id, tipo="resolucion_vencida") == 1


def test_near_breach_then_breach_each_once(app, make_user, make_ticket):
    make_user("admin")
    t = make_ticket(make_user(), ingeniero=make_user("ingeniero"), prioridad="critica", estado="en_progreso")
    _vencer(t, 7)  # 7 h of 8: past 80 %
    db.session.commit()
    assert alertas.tick().get("resolucion_aviso") == 1
    db.session.commit()
    _vencer(t, 9)
    db.session.commit()
    assert alertas.tick().get("resolucion_vencida") == 1
    db.session.commit()
    assert alertas.tick() == {}


def test_paused_ticket_raises_no_alert(app, make_user, make_ticket):
    make_user("admin")
    t = make_ticket(make_user(), ingeniero=make_user("ingeniero"), prioridad="critica", estado="en_espera")
    _vencer(t, 20)
    db.session.commit()
    assert "resolucion_vencida" not in alertas.tick()


def test_critical_unassigned_after_15_minutes_alerts_admins(app, make_user, make_ticket):
    admin = make_user("admin")
    t = make_ticket(make_user(), prioridad="critica")
    db.session.commit()
    assert "critico_sin_asignar" not in alertas.tick()
    t.fecha_creacion = utcnow() - timedelta(minutes=16)
    db.session.commit()
    assert alertas.tick().get("critico_sin_asignar") == 1
    db.session.commit()
    assert _cuenta(Notificacion, usuario_id=admin.id, tipo="critico_sin_asignar") == 1


def test_two_sla_tick_processes_send_each_alert_once(app, make_user, make_ticket, database_url):
    make_user("admin")
    ing = make_user("ingeniero")
    for _ in range(30):
        _vencer(make_ticket(make_user(), ingeniero=ing, prioridad="critica", estado="en_progreso"), 9)
    db.session.commit()
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_APP": "app.py", "SECRET_KEY": "test-secret"}
    flask = [sys.executable, "-m", "flask", "sla-tick"]
    procesos = [subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
    for p in procesos:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    db.session.expire_all()
    assert _cuenta(AlertaSLA, tipo="resolucion_vencida") == 30
    assert _cuenta(Envio, tipo="sla_resolucion_vencida") == 60  # engineer + admin, once each
    assert _cuenta(Notificacion, tipo="resolucion_vencida") == 60


def test_sla_alert_email_is_delivered_as_html_and_text(app, make_user, make_ticket, smtp_server, deliver):
    """The alert goes through the outbox like every email: SMTP receives both parts."""
    from smtp_fixture import parts

    ing = make_user("ingeniero", idioma="en")
    t = make_ticket(make_user(), ingeniero=ing, prioridad="critica", estado="en_progreso")
    _vencer(t, 9)
    db.session.commit()
    alertas.tick()
    db.session.commit()
    assert deliver()["fallido"] == 0
    [mensaje] = smtp_server.to(ing.email)
    texto, html = parts(mensaje)
    assert t.numero_ticket in mensaje["Subject"] and "missed its resolution deadline" in mensaje["Subject"]
    assert "missed its resolution deadline" in texto and "missed its resolution deadline" in html
    assert f"/tickets/{t.numero_ticket}" in texto
