"""The one way the benchmarks start Mesa: gunicorn on a free loopback port, waited for, stopped.

``with gunicorn(env, workers=4) as (url, pid): ...`` — env is the server's whole environment
(DATABASE_URL, SECRET_KEY, ...); ``worker_class="gthread"`` serves SSE streams as production does.
``app``, ``cwd`` and ``venv`` default to Mesa; ``bench/bench_peer.py`` passes another project's
(a Django WSGI module in its own virtualenv) so that both sides start the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
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


def carga_wrk(clientes: int, segundos: float, url: str, metodo: str = "GET", cabeceras: Optional[dict] = None,
              cuerpo: Optional[dict] = None, ids: Optional[int] = None) -> tuple[float, int, float]:
    """The same load as ``carga`` from wrk (Debian's C load generator), ``clientes`` connections on
    two threads: a client that costs the two CPUs a few tens of µs per request where Python's
    threads cost 1.5-3 ms, so a fast route is measured bound by the server, not by its client.
    ``url`` may hold ``%d``, filled per request with a random id in 1..``ids``. Returns (2xx
    answers per second, other answers, CPU seconds wrk used)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package wrk; make bench installs it)")
    partes = re.match(r"(https?://[^/]+)(/.*)", url)
    lineas = [f"wrk.method = {json.dumps(metodo)}"]
    if cuerpo is not None:
        lineas.append(f"wrk.body = {json.dumps(json.dumps(cuerpo))}")
        lineas.append('wrk.headers["Content-Type"] = "application/json"')
    lineas += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (cabeceras or {}).items()]
    if ids is not None:
        lineas.append(f"request = function() return wrk.format(nil, string.format({json.dumps(partes.group(2))}, "
                      f"math.random(1, {ids}))) end")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as guion:
        guion.write("\n".join(lineas) + "\n")
    antes = os.times()
    try:
        salida = subprocess.run(["wrk", "-t2", f"-c{clientes}", f"-d{max(1, round(segundos))}s", "-s", guion.name,
                                 partes.group(1) + (partes.group(2) if ids is None else "/")],
                                capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(guion.name)
    despues = os.times()
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", salida)
    duracion = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    otras = re.search(r"Non-2xx or 3xx responses: (\d+)", salida)
    otras = int(otras.group(1)) if otras else 0
    usado = (despues.children_user + despues.children_system) - (antes.children_user + antes.children_system)
    return (int(total.group(1)) - otras) / duracion, otras, usado
