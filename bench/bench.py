"""make bench: 100,000 tickets, a production WSGI server, real HTTP, p50/p95 per endpoint.

    .venv/bin/python bench/bench.py [--tickets 100000] [--workers 4] [--database-url URL] [--only-search]
                                    [--reuse] [--app-dir DIR]

Seeds a fresh database (SQLite in a temp dir by default; pass --database-url for an
empty PostgreSQL database) in bulk, serves it with gunicorn, and measures through HTTP
on 127.0.0.1 only. Prints a table and writes it to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servidor import carga, gunicorn  # noqa: E402

PASSWORD = "bench-password-1"
WORDS = ["impresora", "correo", "vpn", "servidor", "erp", "monitor", "wifi", "cuenta", "factura", "teclado",
         "licencia", "backup", "portátil", "teléfono", "red", "disco"]


def seed(database_url: str, n_tickets: int) -> float:
    """Migrate and bulk-load ``n_tickets`` through SQLAlchemy Core. Returns seconds taken."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app import create_app
    from models import Categoria, Etiqueta, Evento, Ingeniero, Ticket, Usuario, db, ticket_etiquetas

    started = time.perf_counter()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        admin = Usuario(username="admin", nombre="Admin", email="admin@bench.local", rol="admin")
        admin.set_password(PASSWORD)
        db.session.add(admin)
        users = []
        for i in range(200):
            u = Usuario(username=f"user{i}", nombre=f"Usuario {random.choice(WORDS).title()} {i}",
                        email=f"user{i}@bench.local", rol="usuario")
            u.set_password(PASSWORD)
            users.append(u)
        db.session.add_all(users)
        engineers = []
        for i, esp in enumerate(["Redes", "Hardware", "Software"]):
            u = Usuario(username=f"ing{i}", nombre=f"Ingeniero {i}", email=f"ing{i}@bench.local", rol="ingeniero")
            u.set_password(PASSWORD)
            engineers.append(Ingeniero(usuario=u, especialidad=esp))
        db.session.add_all(engineers)
        tags = [Etiqueta(nombre=w) for w in WORDS[:6]]
        db.session.add_all(tags)
        db.session.commit()
        categorias = [c.id for c in db.session.query(Categoria).all()]
        user_ids = [u.id for u in users]
        eng_ids = [e.id for e in engineers]
        tag_ids = [t.id for t in tags]

        rng = random.Random(42)
        now = datetime.now(UTC).replace(tzinfo=None)
        estados = ["abierto", "en_progreso", "en_espera", "resuelto", "cerrado"]
        prioridades = ["baja", "media", "alta", "critica"]
        batch = 10_000
        for start in range(1, n_tickets + 1, batch):
            rows, events, links = [], [], []
            for tid in range(start, min(start + batch, n_tickets + 1)):
                created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 365))
                estado = rng.choices(estados, weights=[20, 15, 5, 20, 40])[0]
                assigned = estado != "abierto" or rng.random() < 0.5
                rows.append({
                    "id": tid, "numero_ticket": f"TKT-{tid:06d}",
                    "titulo": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} #{tid}",
                    "descripcion": " ".join(rng.choices(WORDS, k=20)), "prioridad": (prioridad := rng.choice(prioridades)),
                    "estado": estado, "canal": rng.choice(["web", "api", "email", "whatsapp"]),
                    "categoria_id": rng.choice(categorias), "usuario_id": rng.choice(user_ids),
                    "ingeniero_id": rng.choice(eng_ids) if assigned else None,
                    "fecha_creacion": created, "fecha_actualizacion": created,
                    "fecha_primera_respuesta": created + timedelta(hours=1) if estado != "abierto" else None,
                    "fecha_resolucion": created + timedelta(hours=8) if estado in ("resuelto", "cerrado") else None,
                    "fecha_cierre": created + timedelta(hours=30) if estado == "cerrado" else None,
                    **_sla_sembrado(created, prioridad, estado),
                })
                events.append({"ticket_id": tid, "tipo": "creado", "despues": f"TKT-{tid:06d}", "interno": False,
                               "fecha": created})
                if rng.random() < 0.3:
                    links.append({"ticket_id": tid, "etiqueta_id": rng.choice(tag_ids)})
            db.session.execute(insert(Ticket.__table__), rows)
            db.session.execute(insert(Evento.__table__), events)
            if links:
                db.session.execute(insert(ticket_etiquetas), links)
            db.session.commit()
        import acumulados

        acumulados.reconstruir()  # the Core inserts above bypass the statistics rollup's listener
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(db.text("SELECT setval('tickets_id_seq', (SELECT max(id) FROM tickets))"))
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
        else:
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
        db.engine.dispose()
    return time.perf_counter() - started


def _sla_sembrado(created: datetime, prioridad: str, estado: str) -> dict:
    """Due times and stored SLA outcome as the app writes them (sla.recalcular/registrar_resultado)
    on the default 24x7 calendar, where business seconds are calendar seconds: the statistics'
    SLA aggregates then read realistic rows."""
    from sla import OBJETIVOS_POR_DEFECTO

    primera, resolucion = OBJETIVOS_POR_DEFECTO[prioridad]
    vence1, vence2 = created + timedelta(minutes=primera), created + timedelta(minutes=resolucion)
    respondido, resuelto = estado != "abierto", estado in ("resuelto", "cerrado")
    return {"sla_primera_respuesta_vence": vence1, "sla_resolucion_vence": vence2,
            "sla_primera_respuesta_aviso": created + timedelta(minutes=primera * 0.8),
            "sla_resolucion_aviso": created + timedelta(minutes=resolucion * 0.8),
            "sla_pausa_desde": created + timedelta(hours=8) if resuelto else None,
            "sla_primera_respuesta_segundos": 3600 if respondido else None,
            "sla_primera_respuesta_cumplida": created + timedelta(hours=1) <= vence1 if respondido else None,
            "sla_resolucion_segundos": 8 * 3600 if resuelto else None,
            "sla_resolucion_cumplida": created + timedelta(hours=8) <= vence2 if resuelto else None}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed_gets(session: requests.Session, url: str, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        t0 = time.perf_counter()
        r = session.get(url + path, timeout=60)
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--only-search", action="store_true",
                        help="seed, then measure only the list and search rows (bench/results/search.md)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database at --database-url as a previous run seeded it (no seeding)")
    parser.add_argument("--app-dir", type=Path, default=ROOT,
                        help="serve this checkout instead (before/after on the same data, with --reuse)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="mesa-bench-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    if args.reuse and not args.database_url:
        parser.error("--reuse needs --database-url")
    seed_seconds = 0.0
    if not args.reuse:
        print(f"Seeding {args.tickets:,} tickets into {database_url.split('@')[-1]} ...", flush=True)
        seed_seconds = seed(database_url, args.tickets)
        print(f"  seeded in {seed_seconds:.1f} s", flush=True)

    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench", "APP_ENV": "production",
           "LOGIN_RATE_LIMIT": "1000 per minute", "OUTBOX_THREAD": "0",
           "WHATSAPP_APP_SECRET": "bench-whatsapp-secret"}
    servidor = ExitStack()
    # The benchmark's app factory adds the bare route beside Mesa (an older checkout has none)
    fabrica = "bench.app_bench:create_app()" if (args.app_dir / "bench/app_bench.py").exists() else "app:create_app()"
    url, server_pid = servidor.enter_context(gunicorn(env, workers=args.workers, cwd=args.app_dir, app=fabrica))
    try:
        s = requests.Session()
        token = s.post(url + "/api/auth/token", json={"username": "admin", "password": PASSWORD}).json()["token"]
        s.headers["Authorization"] = f"Bearer {token}"
        rng = random.Random(7)
        n = args.requests
        timed_gets(s, url, ["/api/todos-tickets"] * 20)  # warm every worker
        rows: list[tuple[str, str]] = []

        def latency(label: str, paths: list[str]) -> None:
            ms = timed_gets(s, url, paths)
            rows.append((label, f"p50 {statistics.median(ms):.1f} ms · p95 {pct(ms, 95):.1f} ms (n={len(ms)})"))
            print(f"  {label}: {rows[-1][1]}", flush=True)

        latency("GET /api/todos-tickets (page 1, no filter)", ["/api/todos-tickets"] * n)
        latency("GET /api/todos-tickets?estado=abierto&prioridad=alta",
                ["/api/todos-tickets?estado=abierto&prioridad=alta"] * n)
        latency("GET /api/todos-tickets?categoria=Redes&desde=…&orden=-prioridad",
                [f"/api/todos-tickets?categoria=Redes&desde={(datetime.now() - timedelta(days=30)).date()}"
                 f"&orden=-prioridad"] * n)
        search_latencies(latency, rng, n, args.tickets)
        if args.only_search:
            return _write(rows, args, database_url, seed_seconds)
        latency("GET /api/todos-tickets?etiqueta=vpn&page=50", ["/api/todos-tickets?etiqueta=vpn&page=50"] * n)
        latency("GET /api/tickets/<id>", [f"/api/tickets/{rng.randint(1, args.tickets)}" for _ in range(n)])
        if fabrica != "app:create_app()":
            rows.append(uno_vs_bare(url, token, args.tickets, args.workers))
            print(f"  {rows[-1][0]}: {rows[-1][1]}", flush=True)

        def crear(ws: requests.Session):
            return ws.post(url + "/api/tickets", json={"titulo": "bench", "descripcion": "bench load",
                                                       "categoria": "General", "prioridad": "media"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=60)

        por_segundo, ok, errores = carga(args.workers, 10, crear, 201)
        rows.append((f"POST /api/tickets ({args.workers} concurrent clients, 10 s)",
                     f"{por_segundo:.0f} tickets/s · p50 {statistics.median(ok):.1f} ms · "
                     f"p95 {pct(ok, 95):.1f} ms · errors {errores}"))
        print(f"  {rows[-1][0]}: {rows[-1][1]}", flush=True)

        try:
            from bench import bench_reports  # the reports issue adds this module
        except ImportError:
            bench_reports = None
        if bench_reports is not None:
            rows.extend(bench_reports.run(url, token, server_pid, env))

        from bench import bench_whatsapp  # issue 9: signed webhook POSTs per second

        rows.extend(bench_whatsapp.run(url, clients=args.workers))

        return _write(rows, args, database_url, seed_seconds)
    finally:
        servidor.close()


def uno_vs_bare(url: str, token: str, n_tickets: int, clients: int, rondas: int = 6,
                segundos: float = 3) -> tuple[str, str]:
    """One ticket's GET against the bare Flask JSON route mounted beside Mesa (bench/app_bench.py),
    same gunicorn, ``clients`` concurrent clients, alternating short rounds; the median of the
    per-round ratios (so load from elsewhere hits both sides alike)."""
    rng = random.Random(11)
    cabecera = {"Authorization": f"Bearer {token}"}

    def uno(s: requests.Session):
        return s.get(f"{url}/api/tickets/{rng.randint(1, n_tickets)}", headers=cabecera, timeout=60)

    def bare(s: requests.Session):
        return s.get(f"{url}/_bare/ticket", timeout=60)

    mesa, pelado, ratios = [], [], []
    for ronda in range(rondas):
        orden = [(uno, mesa), (bare, pelado)] if ronda % 2 == 0 else [(bare, pelado), (uno, mesa)]
        for peticion, destino in orden:
            destino.append(carga(clients, segundos, peticion, 200)[0])
        ratios.append(mesa[-1] / pelado[-1])
    return (f"GET /api/tickets/<id> vs a bare Flask JSON route ({clients} clients, {rondas}x{segundos:g} s "
            f"interleaved)", f"{statistics.median(mesa):.0f}/s vs {statistics.median(pelado):.0f}/s · "
            f"ratio {statistics.median(ratios):.0%}")


def search_latencies(latency, rng: random.Random, n: int, n_tickets: int) -> None:
    """Full-text search (busqueda.py), admin scope, no orden (so ranked when narrow enough).
    Every WORDS word is in ~72 % of the seeded tickets (20 words of 16 per description): the
    first three rows are the broad worst case, answered newest first; the last two match a
    handful / ~500 tickets and are ranked (bm25 / ts_rank)."""
    latency("GET /api/todos-tickets?q=<word> (text search, ~72 % of tickets match)",
            [f"/api/todos-tickets?q={rng.choice(WORDS)}" for _ in range(n)])
    latency("GET /api/todos-tickets?q=<prefix> (5 letters of a word, broad)",
            [f"/api/todos-tickets?q={rng.choice(WORDS)[:5]}" for _ in range(n)])
    latency("GET /api/todos-tickets?q=<word> <word> (both must match, ~50 %)",
            [f"/api/todos-tickets?q={rng.choice(WORDS)}+{rng.choice(WORDS)}" for _ in range(n)])
    latency("GET /api/todos-tickets?q=<number> (exact number + title hits, ranked)",
            [f"/api/todos-tickets?q={rng.randint(1, n_tickets)}" for _ in range(n)])
    latency("GET /api/todos-tickets?q=user1NN (a requester's ~500 tickets, ranked)",
            [f"/api/todos-tickets?q=user{rng.randint(100, 199)}" for _ in range(n)])


def _write(rows, args, database_url: str, seed_seconds: float) -> int:
    table = ["| measurement | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    header = (f"Mesa de Ayuda bench · {args.tickets:,} tickets · {database_url.split(':')[0]} · gunicorn "
              f"{args.workers} workers · {os.cpu_count()} CPUs · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    text = header + f"\n(seed: {seed_seconds:.1f} s)\n\n" + "\n".join(table) + "\n"
    print("\n" + text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / ("search.md" if args.only_search else "latest.md")).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
