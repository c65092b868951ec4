"""Where a request's CPU goes, and code trees compared on one database, on a machine whose speed drifts.

    .venv/bin/python bench/reparto.py --database-url URL [--que crear|piso|uno|bare] [--rondas 3]
                                      [--segundos 8] [--clientes 4] [--workers 4] [--tickets N]
                                      [--cliente python|wrk] [--app-dir DIR ...]

Serves each ``--app-dir`` (default: this checkout) in turn with ``bench/servidor.py``'s gunicorn on
one database already seeded by ``bench.py`` (admin ``bench-password-1``), runs ``--clientes``
clients for ``--segundos`` and prints, per tree and round: answers per second, the CPU per request
of the gunicorn workers, of every ``postgres`` process and of the clients (this process), and the
share of the two CPUs left idle, read from ``/proc`` (Linux). Rounds alternate the trees, so a
machine whose speed drifts (by a third within an hour in issue 13's fifth round) hits them alike;
CPU per request says where a change saved, and idle CPU says when the rate is bound by something
else (SQLite's write lock, the client). The clients run the same code whatever the tree, so their
CPU per request gauges the machine's speed at that moment: ``workers / clients`` compares trees
with the drift factored out (in the fifth round the clients' own figure moved 1.7–2.6 ms between
runs minutes apart). ``crear`` adds tickets to the database; ``piso`` too, through the floor
route that replays one real creation's SQL with no Python above the driver; ``uno`` reads
tickets 1..``--tickets``; ``bare`` is the benchmark's bare Flask route (``bench/app_bench.py``).

``--cliente wrk`` sends the load from wrk instead of Python threads. Python's clients cost 1.5–3 ms
of CPU per request on the same two cores: enough to bind the bare route (its CPUs a quarter
idle), which flatters any ratio against it. wrk costs tens of µs, so the server is what is
measured (issue 13's sixth round: one ticket's GET at 63 % of the bare route with Python's
clients, 24–32 % with wrk's).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servidor import carga, carga_wrk, gunicorn  # noqa: E402

PASSWORD = "bench-password-1"
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces), or None."""
    try:
        texto = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return texto[texto.rindex(")") + 2:].split()


def cpu(pids) -> float:
    """Seconds of CPU (user + system) the processes ``pids`` have used so far."""
    total = 0
    for pid in pids:
        campos = _stat(pid)
        if campos is not None:
            total += int(campos[11]) + int(campos[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICK


def _procesos():
    for entrada in Path("/proc").iterdir():
        if entrada.name.isdigit():
            yield int(entrada.name)


def hijos(padre: int) -> list[int]:
    """The processes whose parent is ``padre`` (a gunicorn master's workers)."""
    return [pid for pid in _procesos() if (campos := _stat(pid)) is not None and int(campos[1]) == padre]


def llamados(nombre: str) -> list[int]:
    """The processes whose command name is ``nombre`` (every PostgreSQL backend and helper)."""
    out = []
    for pid in _procesos():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == nombre:
                out.append(pid)
        except OSError:
            pass
    return out


def propio() -> float:
    t = os.times()
    return t.user + t.system


def medir(url: str, que: str, clientes: int, segundos: float, n_tickets: int, server_pid: int,
          cliente: str = "python") -> str:
    s = requests.Session()
    token = s.post(url + "/api/auth/token", json={"username": "admin", "password": PASSWORD}).json()["token"]
    cabecera = {"Authorization": f"Bearer {token}"}
    rng = random.Random(3)
    cuerpo = {"titulo": "bench", "descripcion": "bench load", "categoria": "General", "prioridad": "media"}
    # (method, path, body, headers, ids for a %d in the path, the success status)
    rutas = {"crear": ("POST", "/api/tickets", cuerpo, cabecera, None, 201),
             "piso": ("POST", "/_bare/crear", cuerpo, cabecera, None, 201),
             "uno": ("GET", "/api/tickets/%d", None, cabecera, n_tickets, 200),
             "bare": ("GET", "/_bare/ticket", None, None, None, 200)}
    metodo, ruta, json_, cabeceras, ids, exito = rutas[que]

    def peticion(ws: requests.Session):
        destino = url + (ruta % rng.randint(1, ids) if ids else ruta)
        return ws.request(metodo, destino, json=json_, headers=cabeceras, timeout=60)

    def una_carga(duracion: float) -> tuple[float, int, float]:
        """(answers/s, other answers, the clients' CPU seconds)"""
        if cliente == "wrk":
            return carga_wrk(clientes, duracion, url + ruta, metodo, cabeceras, json_, ids)
        antes = propio()
        por_segundo, _ok, errores = carga(clientes, duracion, peticion, exito)
        return por_segundo, errores, propio() - antes

    una_carga(2)  # warm every worker (and record /_bare/crear's creation in each)
    workers, postgres = hijos(server_pid), llamados("postgres")
    antes = (cpu(workers), cpu(postgres), time.perf_counter())
    por_segundo, errores, clientes_cpu = una_carga(segundos)
    despues = (cpu(workers), cpu(postgres), time.perf_counter())
    n = max(por_segundo * (despues[2] - antes[2]), 1)
    usado = [despues[0] - antes[0], despues[1] - antes[1], clientes_cpu]
    idle = 1 - sum(usado) / ((os.cpu_count() or 1) * (despues[2] - antes[2]))
    return (f"{que} ({cliente}): {por_segundo:.0f}/s, errors {errores} · CPU per request: workers "
            f"{1e3 * usado[0] / n:.2f} ms, postgres {1e3 * usado[1] / n:.2f} ms, clients {1e3 * usado[2] / n:.2f} ms "
            f"(workers / clients {usado[0] / max(usado[2], 1e-9):.2f}) · idle {idle:.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--que", choices=("crear", "piso", "uno", "bare"), default="crear")
    parser.add_argument("--cliente", choices=("python", "wrk"), default="python",
                        help="the load's clients: Python threads, or wrk (cheap: the server is measured, not the client)")
    parser.add_argument("--rondas", type=int, default=3)
    parser.add_argument("--segundos", type=float, default=8)
    parser.add_argument("--clientes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tickets", type=int, default=100_000, help="uno: read ids 1..N")
    parser.add_argument("--app-dir", type=Path, action="append", help="a checkout to serve (repeat to compare)")
    args = parser.parse_args()
    arboles = args.app_dir or [ROOT]
    env = {**os.environ, "DATABASE_URL": args.database_url, "SECRET_KEY": "bench", "APP_ENV": "production",
           "LOGIN_RATE_LIMIT": "1000 per minute", "OUTBOX_THREAD": "0", "WHATSAPP_APP_SECRET": "bench",
           "SESSION_COOKIE_SECURE": "0"}
    for ronda in range(1, args.rondas + 1):
        for arbol in arboles:
            with gunicorn(env, workers=args.workers, cwd=arbol, app="bench.app_bench:create_app()") as (url, pid):
                linea = medir(url, args.que, args.clientes, args.segundos, args.tickets, pid, args.cliente)
            print(f"round {ronda} · {arbol} · {linea}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
