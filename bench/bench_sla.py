"""SLA part of the bench (issue 12): ``flask sla-tick`` at 100,000 open tickets.

Part of ``make bench``; standalone ``.venv/bin/python bench/bench_sla.py [DATABASE_URL]`` (default a
fresh SQLite file; ``BENCH_SLA_TICKETS`` overrides the 100,000 for a quick check):
seeds 100,000 open tickets with stored due times (1 % already past due), then times one tick
(which finds the due ones through the indexed due-time columns and claims/sends their alerts, at
most 500 per kind per tick) until a tick has nothing left to send: that last one is the pure
query cost."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N = int(os.environ.get("BENCH_SLA_TICKETS", "100000"))


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/bench_sla.db"
    os.environ["DATABASE_URL"] = url
    from flask_migrate import upgrade
    from sqlalchemy import func, text

    import alertas
    from app import create_app
    from models import Categoria, Ticket, Usuario, db, utcnow

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        if not db.session.query(Categoria).count():
            db.session.add(Categoria(nombre="General", activa=True))
        admin = Usuario(username="bench-admin", nombre="Bench", email="bench@example.test", rol="admin")
        admin.set_password("x")
        db.session.add(admin)
        db.session.commit()
        cat = db.session.query(Categoria).first()
        ahora = utcnow()
        base = db.session.query(func.max(Ticket.id)).scalar() or 0
        filas = []
        for i in range(N):
            vencido = i % 100 == 0
            vence = ahora - timedelta(hours=1) if vencido else ahora + timedelta(days=30)
            # ids and numbers given: the alert emails link to /tickets/<numero>
            filas.append({"id": base + i + 1, "numero_ticket": f"TKT-{base + i + 1:06d}",
                          "titulo": f"t{i}", "descripcion": "d", "prioridad": "media", "estado": "en_progreso",
                          "canal": "web", "categoria_id": cat.id, "usuario_id": admin.id,
                          "fecha_creacion": ahora - timedelta(days=1), "fecha_actualizacion": ahora,
                          "fecha_primera_respuesta": ahora, "sla_primera_respuesta_vence": vence,
                          "sla_primera_respuesta_aviso": vence, "sla_resolucion_vence": vence,
                          "sla_resolucion_aviso": vence - timedelta(minutes=1), "sla_pausado_segundos": 0})
        inicio = time.perf_counter()
        db.session.execute(Ticket.__table__.insert(), filas)
        if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequence past them
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('tickets', 'id'), (SELECT max(id) FROM tickets))"))
        db.session.commit()
        print(f"seeded {N} open tickets in {time.perf_counter() - inicio:.1f}s ({url.split(':')[0]})")
        for ronda in range(1, 6):  # 1 % of N past due, 500 per tick: bounded
            inicio = time.perf_counter()
            enviados = alertas.tick()
            db.session.commit()
            print(f"sla-tick round {ronda}: {sum(enviados.values())} alerts in {time.perf_counter() - inicio:.3f}s")
            if not enviados:
                break


if __name__ == "__main__":
    main()
