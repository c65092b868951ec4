"""SLA part of the bench (issue 12): ``flask sla-tick`` at 100,000 open tickets.

Standalone (``.venv/bin/python bench/bench_sla.py [DATABASE_URL]``, default a fresh SQLite file):
seeds 100,000 open tickets with stored due times (1 % already past due), then times one tick
(which finds the due ones through the indexed due-time columns and claims/sends their alerts)
and a second tick (nothing left to send: the pure query cost)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N = 100_000


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/bench_sla.db"
    os.environ["DATABASE_URL"] = url
    from flask_migrate import upgrade

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
        filas = []
        for i in range(N):
            vencido = i % 100 == 0
            vence = ahora - timedelta(hours=1) if vencido else ahora + timedelta(days=30)
            filas.append({"titulo": f"t{i}", "descripcion": "d", "prioridad": "media", "estado": "en_progreso",
                          "canal": "web", "categoria_id": cat.id, "usuario_id": admin.id,
                          "fecha_creacion": ahora - timedelta(days=1), "fecha_actualizacion": ahora,
                          "fecha_primera_respuesta": ahora, "sla_primera_respuesta_vence": vence,
                          "sla_primera_respuesta_aviso": vence, "sla_resolucion_vence": vence,
                          "sla_resolucion_aviso": vence - timedelta(minutes=1), "sla_pausado_segundos": 0})
        inicio = time.perf_counter()
        db.session.execute(Ticket.__table__.insert(), filas)
        db.session.commit()
        print(f"seeded {N} open tickets in {time.perf_counter() - inicio:.1f}s ({url.split(':')[0]})")
        for ronda in (1, 2):
            inicio = time.perf_counter()
            enviados = alertas.tick()
            db.session.commit()
            print(f"sla-tick round {ronda}: {sum(enviados.values())} alerts in {time.perf_counter() - inicio:.3f}s")


if __name__ == "__main__":
    main()
