"""make bench: 100,000 tickets, a production WSGI server, real HTTP, p50/p95 per endpoint.

    .venv/bin/python bench/bench.py [--tickets 100000] [--workers 4] [--database-url URL] [--only-search]
                                    [--reuse|--skip-seed] [--app-dir DIR] [--only-lists]

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

from bench.servidor import carga, carga_wrk, gunicorn  # noqa: E402

PASSWORD = "bench-password-1"
WORDS = ["impresora", "correo", "vpn", "servidor", "erp", "monitor", "wifi", "cuenta", "factura", "teclado",
         "licencia", "backup", "portátil", "teléfono", "red", "disco"]


def seed(database_url: str, n_tickets: int) -> float:
    """Migrate and bulk-load ``n_tickets`` through SQLAlchemy Core. Returns seconds taken."""
    from flask_migrate import upgrade

    from app import create_app
    from models import Categoria, Etiqueta, Ingeniero, Usuario, db

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
        db.session.commit()  # no transaction left open beside the load's: its DDL waits for every reader

        rng = random.Random(42)
        _cargar(rng, n_tickets, categorias, user_ids, eng_ids, tag_ids)
        import acumulados

        acumulados.reconstruir()  # the driver-level inserts bypass the statistics rollup's listener
        acumulados.reconstruir_conteos()
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does to a live database: the visibility map (index-only scans and
            # counts read no heap) and the GIN index's pending list merged; not in a transaction.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
        db.engine.dispose()
    return time.perf_counter() - started


# Bulk tables: loaded through the driver (executemany of tuples on SQLite, COPY on PostgreSQL)
# with their B-tree indexes dropped and rebuilt at the end (one sort each instead of a million
# random inserts). The full-text index of busqueda.py is written by the database's own rules
# whatever they become: PostgreSQL's statement triggers stay on (one pass per COPY batch);
# SQLite's row trigger runs as one statement after the load (_diferir_triggers). Checked after
# the seed: one document per ticket, and a ticket found by its number.
TABLAS_MASIVAS = ("tickets", "eventos", "ticket_etiquetas")
# PostgreSQL, at 1,000,000 tickets: the table those triggers fill loses its GIN index for the
# load too (built once from a million documents instead of updated per batch), and every bulk
# table its foreign keys (one checking join each when they come back, instead of a lookup per
# row and key). Together they were two thirds of the COPY phase.
TABLAS_DERIVADAS = ("busqueda_tickets",)
MEMORIA_INDICES = "512MB"  # maintenance_work_mem of the seed's session: sorts and the GIN build in memory


def _cargar(rng: random.Random, n_tickets: int, categorias, user_ids, eng_ids, tag_ids) -> None:
    from models import Evento, Ticket, db, ticket_etiquetas

    postgresql = db.engine.dialect.name == "postgresql"
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=123456)
    prioridades = ["baja", "media", "alta", "critica"]
    canales = ["web", "api", "email", "whatsapp"]
    objetivos = _objetivos()
    # estado by weight (20/15/5/20/40 %), as one lookup of a uniform draw
    pesos = {"abierto": 20, "en_progreso": 15, "en_espera": 5, "resuelto": 20, "cerrado": 40}
    por_peso = [e for e, w in pesos.items() for _ in range(w)]
    # 4,096 descriptions of 20 words drawn from WORDS: each word still in ~72 % of the tickets
    descripciones = [" ".join(rng.choices(WORDS, k=20)) for _ in range(4096)]
    # every timestamp is ``now`` minus whole minutes: each distinct one is built (and, for SQLite,
    # written as SQLAlchemy stores it: microseconds always present) once
    fechas: dict[int, object] = {}

    def fecha(minutos: int):
        v = fechas.get(minutos)
        if v is None:
            d = now - timedelta(minutes=minutos)
            v = fechas[minutos] = d if postgresql else d.isoformat(" ")
        return v

    columnas = ["id", "numero_ticket", "titulo", "descripcion", "prioridad", "estado", "canal", "categoria_id",
                "usuario_id", "ingeniero_id", "fecha_creacion", "fecha_actualizacion", "fecha_primera_respuesta",
                "fecha_resolucion", "fecha_cierre", "sla_primera_respuesta_vence", "sla_resolucion_vence",
                "sla_primera_respuesta_aviso", "sla_resolucion_aviso", "sla_pausa_desde",
                "sla_primera_respuesta_segundos", "sla_primera_respuesta_cumplida", "sla_resolucion_segundos",
                "sla_resolucion_cumplida"]
    resto = _defaults(Ticket.__table__, columnas)
    columnas_evento = ["ticket_id", "tipo", "despues", "interno", "fecha"]
    resto_evento = _defaults(Evento.__table__, columnas_evento)

    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        indices = _quitar_indices(cur, postgresql)
        if postgresql:
            cur.execute(f"SET maintenance_work_mem = '{MEMORIA_INDICES}'")
            indices += _quitar_claves_ajenas(cur)
        diferidos = [] if postgresql else _diferir_triggers(cur)
        raw.commit()
        batch = 50_000
        azar = rng.random
        nw, nc, nu, ne, nt = len(WORDS), len(categorias), len(user_ids), len(eng_ids), len(tag_ids)
        for start in range(1, n_tickets + 1, batch):
            rows, events, links = [], [], []
            for tid in range(start, min(start + batch, n_tickets + 1)):
                m = int(azar() * 525_601)  # up to a year ago
                estado = por_peso[int(azar() * 100)]
                prioridad = prioridades[int(azar() * 4)]
                assigned = estado != "abierto" or azar() < 0.5
                respondido, resuelto = estado != "abierto", estado in ("resuelto", "cerrado")
                primera, resolucion = objetivos[prioridad]
                numero = f"TKT-{tid:06d}"
                rows.append((
                    tid, numero, f"{WORDS[int(azar() * nw)].title()} {WORDS[int(azar() * nw)]} #{tid}",
                    descripciones[int(azar() * 4096)], prioridad, estado, canales[int(azar() * 4)],
                    categorias[int(azar() * nc)], user_ids[int(azar() * nu)],
                    eng_ids[int(azar() * ne)] if assigned else None,
                    fecha(m), fecha(m), fecha(m - 60) if respondido else None, fecha(m - 480) if resuelto else None,
                    fecha(m - 1800) if estado == "cerrado" else None,
                    fecha(m - primera), fecha(m - resolucion), fecha(m - int(primera * 0.8)),
                    fecha(m - int(resolucion * 0.8)), fecha(m - 480) if resuelto else None,
                    3600 if respondido else None, 60 <= primera if respondido else None,
                    8 * 3600 if resuelto else None, 480 <= resolucion if resuelto else None,
                    *resto.values()))
                events.append((tid, "creado", numero, False, fecha(m), *resto_evento.values()))
                if azar() < 0.3:
                    links.append((tid, tag_ids[int(azar() * nt)], fecha(m)))  # the link carries its ticket's date
            _insertar(cur, postgresql, "tickets", columnas + list(resto), rows)
            _insertar(cur, postgresql, Evento.__tablename__, columnas_evento + list(resto_evento), events)
            _insertar(cur, postgresql, ticket_etiquetas.name, ["ticket_id", "etiqueta_id", "fecha_creacion"], links)
            raw.commit()
        for ddl in indices:
            cur.execute(ddl)
        for masivo, ddl in diferidos:  # the full-text documents of every ticket, then the trigger again
            cur.execute(masivo)
            cur.execute(ddl)
        if postgresql:
            cur.execute("SELECT setval('tickets_id_seq', (SELECT max(id) FROM tickets))")
        raw.commit()
    finally:
        raw.close()


def _objetivos() -> dict[str, tuple[int, int]]:
    from sla import OBJETIVOS_POR_DEFECTO

    return {p: (int(a), int(b)) for p, (a, b) in OBJETIVOS_POR_DEFECTO.items()}


def _defaults(tabla, dadas: list[str]) -> dict:
    """The Python-side scalar or callable defaults of ``tabla``'s other columns (a raw INSERT does
    not apply them), evaluated once."""
    out = {}
    for col in tabla.columns:
        if col.name in dadas or col.primary_key or col.default is None:
            continue
        out[col.name] = col.default.arg if col.default.is_scalar else col.default.arg(None)
    return out


def _quitar_indices(cur, postgresql: bool) -> list[str]:
    """Drop the secondary indexes of the bulk tables (on PostgreSQL, and of the derived ones: the
    full-text GIN too); returns the DDL that recreates them."""
    if postgresql:
        cur.execute("""SELECT i.indexname, i.indexdef FROM pg_indexes i
                       WHERE i.tablename = ANY(%s)
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
                    (list(TABLAS_MASIVAS + TABLAS_DERIVADAS),))
    else:
        cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
                    f"({', '.join('?' * len(TABLAS_MASIVAS))})", TABLAS_MASIVAS)
    indices = cur.fetchall()
    for nombre, _ddl in indices:
        cur.execute(f'DROP INDEX "{nombre}"')
    return [ddl for _nombre, ddl in indices]


def _quitar_claves_ajenas(cur) -> list[str]:
    """PostgreSQL: drop the foreign keys of the bulk (and derived) tables; returns the DDL that
    adds them back, each validated then by one join over the loaded rows."""
    cur.execute("""SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                   WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)""",
                (list(TABLAS_MASIVAS + TABLAS_DERIVADAS),))
    claves = cur.fetchall()
    for tabla, nombre, _definicion in claves:
        cur.execute(f'ALTER TABLE {tabla} DROP CONSTRAINT "{nombre}"')
    return [f'ALTER TABLE {tabla} ADD CONSTRAINT "{nombre}" {definicion}' for tabla, nombre, definicion in claves]


def _diferir_triggers(cur) -> list[tuple[str, str]]:
    """SQLite: the row triggers that index each inserted ticket (busqueda.py's full text) cost
    four times the insert itself. Each one of the form ``BEGIN INSERT INTO x (…) VALUES (…new.…);
    END`` is dropped for the load and its own statement run once over the whole table afterwards
    (``SELECT … FROM tickets AS new``), so the documents are exactly what the trigger would have
    written. A trigger of any other shape stays on. Returns (bulk statement, trigger DDL) pairs."""
    import re

    forma = re.compile(r"\bBEGIN\s+(INSERT\s+INTO\s+\w+\s*\([^()]*\))\s*VALUES\s*\((.*)\)\s*;\s*END\s*$",
                       re.IGNORECASE | re.DOTALL)
    cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tickets'")
    diferidos = []
    for nombre, ddl in cur.fetchall():
        m = forma.search(ddl)
        if m is None or not re.search(r"\bAFTER\s+INSERT\s+ON\s+tickets\b", ddl, re.IGNORECASE):
            continue
        cur.execute(f'DROP TRIGGER "{nombre}"')
        diferidos.append((f"{m.group(1)} SELECT {m.group(2)} FROM tickets AS new", ddl))
    return diferidos


def _insertar(cur, postgresql: bool, tabla: str, columnas: list[str], filas: list[tuple]) -> None:
    if not filas:
        return
    if postgresql:
        with cur.copy(f"COPY {tabla} ({', '.join(columnas)}) FROM STDIN") as copy:
            for fila in filas:
                copy.write_row(fila)
    else:
        cur.executemany(f"INSERT INTO {tabla} ({', '.join(columnas)}) VALUES ({', '.join('?' * len(columnas))})",
                        filas)


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


def medir(rows: list, session: requests.Session, url: str, label: str, paths: list[str]) -> None:
    """GET ``paths`` one after the other; add the p50/p95 row and print it."""
    ms = timed_gets(session, url, paths)
    rows.append((label, f"p50 {statistics.median(ms):.1f} ms · p95 {pct(ms, 95):.1f} ms (n={len(ms)})"))
    print(f"  {label}: {rows[-1][1]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--only-search", action="store_true",
                        help="seed, then measure only the list and search rows (bench/results/search.md)")
    parser.add_argument("--reuse", "--skip-seed", dest="reuse", action="store_true",
                        help="measure the database at --database-url as a previous run seeded it (same --tickets)")
    parser.add_argument("--app-dir", type=Path, default=ROOT,
                        help="serve this checkout instead (before/after on the same data, with --reuse)")
    parser.add_argument("--only-lists", action="store_true",
                        help="measure only the lists, deep pages, one ticket and the panels (bench/results/lists.md)")
    args = parser.parse_args()

    args.carga_inicio = os.getloadavg()[0]  # a loaded machine makes every row slower: say so in the header
    tmp = tempfile.mkdtemp(prefix="mesa-bench-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    if args.reuse and not args.database_url:
        parser.error("--reuse needs --database-url")
    seed_seconds = 0.0
    if not args.reuse:
        print(f"Seeding {args.tickets:,} tickets into {database_url.split('@')[-1]} ...", flush=True)
        seed_seconds = seed(database_url, args.tickets)
        print(f"  seeded in {seed_seconds:.1f} s", flush=True)
    comprobar_indice(database_url)

    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench", "APP_ENV": "production",
           "LOGIN_RATE_LIMIT": "1000 per minute", "OUTBOX_THREAD": "0",
           "WHATSAPP_APP_SECRET": "bench-whatsapp-secret",
           "SESSION_COOKIE_SECURE": "0"}  # the panels' session cookie over plain HTTP on loopback
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
            medir(rows, s, url, label, paths)

        latency("GET /api/todos-tickets (page 1, no filter)", ["/api/todos-tickets"] * n)
        latency("GET /api/todos-tickets?estado=abierto&prioridad=alta",
                ["/api/todos-tickets?estado=abierto&prioridad=alta"] * n)
        latency("GET /api/todos-tickets?categoria=Redes&desde=…&orden=-prioridad",
                [f"/api/todos-tickets?categoria=Redes&desde={(datetime.now() - timedelta(days=30)).date()}"
                 f"&orden=-prioridad"] * n)
        if not args.only_lists:
            search_latencies(latency, rng, n, args.tickets)
        if args.only_search:
            return _write(rows, args, database_url, seed_seconds)
        latency("GET /api/todos-tickets?etiqueta=vpn&page=50", ["/api/todos-tickets?etiqueta=vpn&page=50"] * n)
        deep_pages(latency, s, url, args.tickets, n)
        latency("GET /api/tickets/<id>", [f"/api/tickets/{rng.randint(1, args.tickets)}" for _ in range(n)])
        if fabrica != "app:create_app()":
            rows.append(uno_vs_bare(url, token, args.tickets, args.workers))
            rows.append(uno_vs_bare(url, token, args.tickets, args.workers, cliente="wrk"))
            print(f"  {rows[-1][0]}: {rows[-1][1]}", flush=True)
        panels(rows, url, rng, args.tickets, n)
        if args.only_lists:
            return _write(rows, args, database_url, seed_seconds)

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
                segundos: float = 3, cliente: str = "python") -> tuple[str, str]:
    """One ticket's GET against the bare Flask JSON route mounted beside Mesa (bench/app_bench.py),
    same gunicorn, ``clients`` concurrent clients, alternating short rounds; the median of the
    per-round ratios (so load from elsewhere hits both sides alike). ``cliente="wrk"``: the load
    from wrk, whose clients hardly use the CPUs the server needs; Python's threads bind the bare
    route (a quarter of the CPUs idle), which flatters the ratio (bench/reparto.py)."""
    rng = random.Random(11)
    cabecera = {"Authorization": f"Bearer {token}"}
    if cliente == "wrk":
        def uno(_s):
            return carga_wrk(clients, segundos, f"{url}/api/tickets/%d", cabeceras=cabecera, ids=n_tickets)[0]

        def bare(_s):
            return carga_wrk(clients, segundos, f"{url}/_bare/ticket")[0]
    else:
        def uno(s: requests.Session):
            return s.get(f"{url}/api/tickets/{rng.randint(1, n_tickets)}", headers=cabecera, timeout=60)

        def bare(s: requests.Session):
            return s.get(f"{url}/_bare/ticket", timeout=60)

    mesa, pelado, ratios = [], [], []
    for ronda in range(rondas):
        orden = [(uno, mesa), (bare, pelado)] if ronda % 2 == 0 else [(bare, pelado), (uno, mesa)]
        for peticion, destino in orden:
            destino.append(peticion(None) if cliente == "wrk" else carga(clients, segundos, peticion, 200)[0])
        ratios.append(mesa[-1] / pelado[-1])
    return (f"GET /api/tickets/<id> vs a bare Flask JSON route ({clients} {cliente} clients, {rondas}x{segundos:g} s "
            f"interleaved)", f"{statistics.median(mesa):.0f}/s vs {statistics.median(pelado):.0f}/s · "
            f"ratio {statistics.median(ratios):.0%}")


def comprobar_indice(database_url: str) -> None:
    """The seed kept the full-text index whole: one search document per ticket."""
    from sqlalchemy import create_engine, text

    tabla = "busqueda_tickets"
    engine = create_engine(database_url)
    with engine.connect() as conn:
        tickets_n = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
        docs = conn.execute(text(f"SELECT count(*) FROM {tabla}")).scalar_one()
        medio = tickets_n // 2 + 1
        if engine.dialect.name == "sqlite":  # the document of a ticket in the middle, by its number
            encontrado = conn.execute(text(f"SELECT rowid FROM {tabla} WHERE {tabla} MATCH :q"),
                                      {"q": f'numero:"TKT-{medio:06d}"'}).scalars().all()
        else:
            encontrado = conn.execute(text(f"SELECT ticket_id FROM {tabla} WHERE documento @@ "
                                           "plainto_tsquery('mesa_busqueda', :q)"), {"q": f"TKT-{medio:06d}"}).scalars().all()
    engine.dispose()
    if docs != tickets_n or medio not in encontrado:
        raise SystemExit(f"full-text index incomplete: {docs} documents for {tickets_n} tickets, "
                         f"TKT-{medio:06d} found as {encontrado}")
    print(f"  full-text index: {docs:,} documents for {tickets_n:,} tickets", flush=True)


def deep_pages(latency, s: requests.Session, url: str, n_tickets: int, n: int) -> None:
    """Pages in the middle of the list: by OFFSET (``page``) and by keyset (``cursor``, taken
    from the ``next_cursor`` of that same deep page), unfiltered and with a filter pair."""
    per_page = 20
    for filtro, filas in (("", n_tickets), ("estado=abierto&prioridad=alta&", n_tickets // 20)):
        page = max(2, filas // 2 // per_page)
        path = f"/api/todos-tickets?{filtro}per_page={per_page}"
        cursor = s.get(f"{url}{path}&page={page - 1}", timeout=120).json()["next_cursor"]
        if cursor is None:  # a small --tickets: the filtered list ends before that page
            continue
        latency(f"GET /api/todos-tickets?{filtro}page={page:,} (OFFSET {(page - 1) * per_page:,})",
                [f"{path}&page={page}"] * max(10, n // 10))
        latency(f"GET /api/todos-tickets?{filtro}cursor=… (keyset, the same page)",
                [f"{path}&cursor={cursor}"] * n)


def panels(rows: list, url: str, rng: random.Random, n_tickets: int, n: int) -> None:
    """The HTML the browser gets: the admin panel (default list with counters), its keyset "Next"
    page deep in the list, and a ticket page; a session login, as a person uses them."""
    import re

    web = requests.Session()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', web.get(url + "/login").text).group(1)
    r = web.post(url + "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token},
                 allow_redirects=False, timeout=60)
    assert r.status_code == 302, r.status_code

    def html(label: str, paths: list[str]) -> None:
        medir(rows, web, url, label, paths)

    html("GET /tickets/admin (admin panel HTML, page 1)", ["/tickets/admin"] * n)
    html("GET /tickets/admin?estado=abierto&prioridad=alta (panel HTML, filtered)",
         ["/tickets/admin?estado=abierto&prioridad=alta"] * n)
    deep = web.get(f"{url}/tickets/admin?page={max(2, n_tickets // 2 // 50)}", timeout=120).text
    siguiente = re.search(r'<a class="page-link" href="([^"]+)" rel="next">', deep).group(1).replace("&amp;", "&")
    html("GET /tickets/admin?page=…&cursor=… (panel \"Next\" at mid-list, keyset)", [siguiente] * n)
    html("GET /tickets/<número> (ticket page HTML)",
         [f"/tickets/TKT-{rng.randint(1, n_tickets):06d}" for _ in range(n)])


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
    from bench.objetivos import veredicto

    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    if seed_seconds:
        rows = [(f"Seed ({args.tickets:,} tickets: migrations, bulk load, indexes, rollup)", f"{seed_seconds:.1f} s"),
                *rows]
    table = ["| measurement | result | issue 13 target |", "|---|---|---|"] + [
        f"| {a} | {b} | {veredicto(a, b, args.tickets, backend)} |" for a, b in rows]
    header = (f"Mesa de Ayuda bench · {args.tickets:,} tickets · {database_url.split(':')[0]} · gunicorn "
              f"{args.workers} workers · {os.cpu_count()} CPUs · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · "
              f"load average {args.carga_inicio:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    text = header + f"\n(seed: {seed_seconds:.1f} s)\n\n" + "\n".join(table) + "\n"
    print("\n" + text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    nombre = "search.md" if args.only_search else "lists.md" if args.only_lists else "latest.md"
    (out / nombre).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
