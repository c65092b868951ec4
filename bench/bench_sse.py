"""SSE fan-out (issue 12): live events delivered per second to 50 connected clients, and the
latency from a write to its receipt.

    .venv/bin/python bench/bench_sse.py [--clients 50] [--writes 40] [--rate 2] [--poll 1]
                                        [--workers 2] [--threads 32] [--database-url URL]

Migrates a fresh database (SQLite in a temp dir by default), creates one usuario and
``--clients`` admins (their SLA alert emails turned off, so the bench measures the stream, not
the outbox), serves it with the README's production command (gunicorn ``-k gthread``) on
127.0.0.1 and opens one ``/api/eventos/stream`` per admin (Bearer, a thread each).

The usuario then creates ``--writes`` tickets at ``--rate`` per second through the API. Automatic
assignment is on and there is no engineer, so each creation writes one "nobody could be
assigned" notification for every admin and changes every admin's scope: each write reaches
each client as a ``notificacion`` event (matched to its ticket: the latency is measured from
just before the POST to the event's arrival) and as a ``cambio`` (changes within one poll
interval arrive as one). Bounded: the writes take writes/rate seconds, then at most
``--drain`` seconds for the last events; each stream is read with a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servidor import gunicorn  # noqa: E402


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def preparar(database_url: str, clientes: int) -> tuple[str, list[str]]:
    """Migrate, create the accounts, return (usuario token, admin tokens)."""
    from flask_migrate import upgrade

    import usuarios
    from app import create_app
    from models import Categoria, ConfiguracionSLA, PreferenciaEmail, Usuario, db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        if not db.session.query(Categoria).filter_by(nombre="Redes").count():
            db.session.add(Categoria(nombre="Redes", activa=True))
        cfg = db.session.get(ConfiguracionSLA, 1)
        if cfg is not None:
            cfg.asignacion_automatica = True
        usuario = Usuario(username="bench-usuario", nombre="Bench Usuario", email="u@bench.test", rol="usuario")
        usuario.set_password("x")
        admins = []
        for i in range(clientes):
            admin = Usuario(username=f"bench-admin-{i}", nombre=f"Admin {i}", email=f"a{i}@bench.test", rol="admin")
            admin.set_password("x")
            admins.append(admin)
        db.session.add_all([usuario, *admins])
        db.session.flush()
        db.session.add_all([PreferenciaEmail(usuario_id=a.id, clave=c, email=False)
                            for a in admins for c in ("alertas_sla", "nuevo_ticket")])
        token_usuario = usuarios.emitir_token(usuario)[1]
        tokens = [usuarios.emitir_token(a)[1] for a in admins]
        db.session.commit()
        db.engine.dispose()
    return token_usuario, tokens


class Cliente(threading.Thread):
    """One connected panel: reads its stream and stamps each event on arrival."""

    def __init__(self, url: str, token: str, fin: float):
        super().__init__(daemon=True)
        self.url, self.token, self.fin = url, token, fin
        self.eventos: list[tuple[float, str, dict]] = []
        self.conectado = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            with requests.get(self.url + "/api/eventos/stream", stream=True, timeout=(5, 10),
                              headers={"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}) as r:
                r.raise_for_status()
                evento, datos = None, None
                for linea in r.iter_lines(chunk_size=None, decode_unicode=True):
                    ahora = time.perf_counter()
                    if linea.startswith("event: "):
                        evento = linea[7:]
                    elif linea.startswith("data: "):
                        datos = json.loads(linea[6:])
                    elif linea == "" and evento is not None:
                        self.eventos.append((ahora, evento, datos))
                        if evento == "cambio" and datos.get("inicial"):
                            self.conectado.set()
                        evento, datos = None, None
                    if ahora > self.fin:
                        break
        except requests.RequestException as exc:
            if time.perf_counter() < self.fin:
                self.error = str(exc)
        finally:
            self.conectado.set()


def run(url: str, token_usuario: str, tokens: list[str], writes: int, rate: float, drain: float) -> dict:
    fin = time.perf_counter() + 30 + writes / rate + drain
    clientes = [Cliente(url, t, fin) for t in tokens]
    for c in clientes:
        c.start()
    for c in clientes:
        c.conectado.wait(30)
    conectados = sum(1 for c in clientes if c.eventos)
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token_usuario}"
    escrito: dict[int, float] = {}
    inicio = time.perf_counter()
    for i in range(writes):
        objetivo = inicio + i / rate
        time.sleep(max(0.0, objetivo - time.perf_counter()))
        t0 = time.perf_counter()
        r = s.post(url + "/api/tickets", json={"titulo": f"Bench {i}", "descripcion": "SSE bench",
                                               "categoria": "Redes", "prioridad": "media"}, timeout=30)
        r.raise_for_status()
        escrito[r.json()["id"]] = t0
    fin_escrituras = time.perf_counter()
    # wait (bounded) until every client has every notification
    limite = fin_escrituras + drain
    while time.perf_counter() < limite:
        recibidas = sum(1 for c in clientes for _, e, d in c.eventos
                        if e == "notificacion" and d.get("ticket_id") in escrito)
        if recibidas >= writes * len(clientes):
            break
        time.sleep(0.1)
    ultimo = time.perf_counter()
    latencias, notificaciones, cambios = [], 0, 0
    for c in clientes:
        for t, e, d in c.eventos:
            if e == "notificacion" and d.get("ticket_id") in escrito:
                notificaciones += 1
                latencias.append((t - escrito[d["ticket_id"]]) * 1000)
            elif e == "cambio" and not d.get("inicial") and t >= inicio:
                cambios += 1
    ventana = max(max((t for c in clientes for t, e, _ in c.eventos), default=ultimo), fin_escrituras) - inicio
    return {"clientes": len(clientes), "conectados": conectados, "writes": writes, "segundos": ventana,
            "notificaciones": notificaciones, "esperadas": writes * len(clientes), "cambios": cambios,
            "eventos_s": (notificaciones + cambios) / ventana,
            "p50": statistics.median(latencias) if latencias else float("nan"),
            "p95": _pct(latencias, 95) if latencias else float("nan"),
            "errores": [c.error for c in clientes if c.error]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--writes", type=int, default=40)
    parser.add_argument("--rate", type=float, default=2.0, help="ticket creations per second")
    parser.add_argument("--poll", type=float, default=1.0, help="SSE_POLL_SECONDS of the server")
    parser.add_argument("--drain", type=float, default=10.0, help="max seconds to wait for the last events")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    if args.workers * args.threads < args.clients + 4:
        parser.error("workers x threads must exceed the number of clients (each open stream holds a thread)")

    tmp = tempfile.mkdtemp(prefix="mesa-bench-sse-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    token_usuario, tokens = preparar(database_url, args.clients)
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench", "APP_ENV": "production",
           "OUTBOX_THREAD": "0", "SSE_MAX_SECONDS": "300", "SSE_POLL_SECONDS": str(args.poll),
           "SSE_HEARTBEAT_SECONDS": "2"}
    with gunicorn(env, workers=args.workers, worker_class="gthread", threads=args.threads) as (url, _pid):
        print(f"SSE fan-out bench · {database_url.split(':')[0]} · gunicorn gthread {args.workers}x{args.threads} · "
              f"{os.cpu_count()} CPUs · poll {args.poll:g} s", flush=True)
        r = run(url, token_usuario, tokens, args.writes, args.rate, args.drain)
    print(f"  {r['conectados']}/{r['clientes']} clients connected; {r['writes']} ticket creations at {args.rate:g}/s")
    print(f"  delivered {r['notificaciones']}/{r['esperadas']} notifications + {r['cambios']} cambio events "
          f"in {r['segundos']:.1f} s = {r['eventos_s']:.0f} events/s")
    print(f"  write -> notification received: p50 {r['p50']:.0f} ms · p95 {r['p95']:.0f} ms")
    if r["errores"]:
        print(f"  stream errors: {len(r['errores'])} (first: {r['errores'][0]})")
    return 0 if r["notificaciones"] == r["esperadas"] else 1


if __name__ == "__main__":
    sys.exit(main())
