"""The one way the benchmarks start Mesa: gunicorn on a free loopback port, waited for, stopped.

``with gunicorn(env, workers=4) as (url, pid): ...`` — env is the server's whole environment
(DATABASE_URL, SECRET_KEY, ...); ``worker_class="gthread"`` serves SSE streams as production does.
``app``, ``cwd`` and ``venv`` default to Mesa; ``bench/bench_peer.py`` passes another project's
(a Django WSGI module in its own virtualenv) so that both sides start the same way.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(env: dict, workers: int = 4, worker_class: Optional[str] = None, threads: int = 1,
             probe: str = "/healthz", app: str = "app:create_app()", cwd: Path = ROOT,
             venv: Path = ROOT / ".venv") -> Iterator[tuple[str, int]]:
    port = free_port()
    # --timeout 600: the full Excel GET of 1,000,000 tickets (bench_reports) writes for minutes
    # before its first byte; at 120 s gunicorn killed the worker mid-file (make bench TICKETS=1000000).
    cmd = [str(venv / "bin/gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "600",
           "--graceful-timeout", "3", "--log-level", "warning"]  # open SSE streams are cut on stop
    if worker_class:
        cmd += ["-k", worker_class, "--threads", str(threads)]
    server = subprocess.Popen(cmd + [app], cwd=cwd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                requests.get(url + probe, timeout=5)
                break
            except requests.RequestException:
                if server.poll() is not None:
                    raise RuntimeError("gunicorn exited while starting") from None
                time.sleep(0.2)
        yield url, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def carga(clientes: int, segundos: float, peticion, exito: int) -> tuple[float, list[float], int]:
    """``clientes`` threads, each with its own requests.Session, calling ``peticion(session)`` (which
    returns a response) until ``segundos`` have passed. Returns (requests/s of the ``exito`` status,
    their latencies in ms, the number of other answers)."""
    lock = threading.Lock()
    resultados: list[tuple[float, int]] = []
    fin = time.perf_counter() + segundos

    def cliente() -> None:
        s = requests.Session()
        while time.perf_counter() < fin:
            t0 = time.perf_counter()
            r = peticion(s)
            with lock:
                resultados.append(((time.perf_counter() - t0) * 1000, r.status_code))

    hilos = [threading.Thread(target=cliente) for _ in range(clientes)]
    t0 = time.perf_counter()
    for h in hilos:
        h.start()
    for h in hilos:
        h.join()
    transcurrido = time.perf_counter() - t0
    ok = [ms for ms, codigo in resultados if codigo == exito]
    return len(ok) / transcurrido, ok, len(resultados) - len(ok)
