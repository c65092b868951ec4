"""Reports part of ``make bench``: the Excel export at full size and /api/estadisticas.

``run(base_url, token, server_pid, env)`` is called by bench/bench.py against the gunicorn it
started (admin Bearer token, 100,000 seeded tickets) and returns (label, figure) rows.

The same full export also runs as a background job (issue 13): ``flask export-worker --loop`` is
started with the server's environment, the job is created with POST …/excel/jobs and its JSON
polled every 100 ms: time to the first progress (rows written > 0), total time, and the worker's
resident set before and at its peak (sampled from /proc every 20 ms).

Memory is read from /proc: the request is served by one of gunicorn's workers (children
of ``server_pid``), so every process of the server is sampled every 20 ms while the
download runs; the figure is the serving worker's peak resident set and its growth over
the resident set it had just before. A small export (a filtered few thousand rows) runs
first, so the two growths side by side show that memory does not grow with the rows.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import requests

EXCEL = "/api/tickets/descargar/excel"
JOBS = EXCEL + "/jobs"
ROOT = Path(__file__).resolve().parent.parent
SMALL_FILTER = "estado=abierto&prioridad=alta"


def _server_pids(server_pid: int) -> list[int]:
    """The server process and its direct children (gunicorn's workers)."""
    pids = [server_pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server_pid:
            pids.append(int(stat.parent.name))
    return pids


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Sampler:
    """Peak resident set of each server process while a request runs."""

    def __init__(self, pids: list[int], every: float = 0.02):
        self.pids, self.every = pids, every
        self.before = {pid: _rss_kib(pid) for pid in pids}
        self.peak = dict(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], _rss_kib(pid))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def serving(self) -> tuple[int, int]:
        """(peak KiB, growth KiB) of the process whose memory grew most: the one that served."""
        pid = max(self.pids, key=lambda p: self.peak[p] - self.before[p])
        return self.peak[pid], self.peak[pid] - self.before[pid]


def _download(session: requests.Session, url: str) -> tuple[float, float, int, bytes]:
    """(seconds to the first byte, seconds in all, bytes, first bytes) of a streamed GET."""
    t0 = time.perf_counter()
    first = None
    size = 0
    head = b""
    with session.get(url, stream=True, timeout=600) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_content(64 * 1024):
            if first is None:
                first = time.perf_counter() - t0
                head = chunk[:4]
            size += len(chunk)
    return first or 0.0, time.perf_counter() - t0, size, head


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def _excel_jobs(s: requests.Session, base_url: str, env: dict) -> list[tuple[str, str]]:
    """The small filtered export, then every ticket, as jobs written by one ``flask export-worker
    --loop`` of its own (the first job also warms it up, as a long-running worker is)."""
    export_dir = tempfile.mkdtemp(prefix="mesa-bench-export-")
    worker = subprocess.Popen([str(ROOT / ".venv/bin/flask"), "export-worker", "--loop"], cwd=ROOT,
                              env={**env, "FLASK_APP": "app", "EXPORT_DIR": export_dir}, stdout=subprocess.DEVNULL)
    rows = []
    try:
        time.sleep(3)  # imported and polling
        for label, query in (("small filtered", SMALL_FILTER), ("every ticket", "")):
            with _Sampler([worker.pid]) as sampler:
                t0 = time.perf_counter()
                resp = s.post(f"{base_url}{JOBS}?tipo=todos&{query}", timeout=60)
                resp.raise_for_status()
                url = base_url + resp.json()["url"]
                first: Optional[float] = None
                while True:
                    job = s.get(url, timeout=60).json()
                    if first is None and job["filas_escritas"] > 0:
                        first = time.perf_counter() - t0
                    if job["estado"] in ("listo", "fallido"):
                        break
                    time.sleep(0.1)
                total = time.perf_counter() - t0
            assert job["estado"] == "listo", job
            size = len(s.get(base_url + job["archivo_url"], timeout=600).content)
            peak, growth = sampler.serving()
            rows.append((f"Excel job tipo=todos, {label} ({job['filas_total']:,} rows)",
                         f"{total:.1f} s to listo ({size / 1e6:.1f} MB, first progress {first or total:.2f} s) · "
                         f"worker peak RSS {peak / 1024:.0f} MiB (+{growth / 1024:.1f} MiB during the job)"))
            print(f"  {rows[-1][0]}: {rows[-1][1]}", flush=True)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Started from a background job (`make bench &`), the worker inherits SIGINT ignored
            # (POSIX, for asynchronous commands): Python then never turns it into Ctrl+C.
            worker.terminate()
            worker.wait(timeout=30)
        for name in os.listdir(export_dir):
            os.remove(os.path.join(export_dir, name))
        os.rmdir(export_dir)
    return rows


def run(base_url: str, token: str, server_pid: int, env: Optional[dict] = None,
        stats_requests: int = 60) -> list[tuple[str, str]]:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    rows: list[tuple[str, str]] = []
    pids = _server_pids(server_pid)

    def count(query: str) -> int:
        return s.get(f"{base_url}/api/todos-tickets?per_page=1&{query}", timeout=60).json()["total"]

    def excel(label: str, query: str) -> None:
        n = count(query)
        with _Sampler(pids) as sampler:
            ttfb, seconds, size, head = _download(s, f"{base_url}{EXCEL}?tipo=todos&{query}")
        assert head == b"PK\x03\x04", "the export is not an xlsx (zip) file"
        peak, growth = sampler.serving()
        rows.append((f"Excel tipo=todos, {label} ({n:,} rows)",
                     f"{seconds:.1f} s ({size / 1e6:.1f} MB, first byte {ttfb:.1f} s) · serving worker peak RSS "
                     f"{peak / 1024:.0f} MiB (+{growth / 1024:.1f} MiB during the request)"))
        print(f"  {rows[-1][0]}: {rows[-1][1]}", flush=True)

    excel("small filtered", SMALL_FILTER)
    excel("every ticket", "")
    if env is not None:
        rows.extend(_excel_jobs(s, base_url, env))

    path = f"{base_url}/api/estadisticas"
    s.get(path, timeout=60).raise_for_status()  # warm
    ms = []
    for _ in range(stats_requests):
        t0 = time.perf_counter()
        s.get(path, timeout=60).raise_for_status()
        ms.append((time.perf_counter() - t0) * 1000)
    rows.append(("GET /api/estadisticas (admin, every ticket)",
                 f"p50 {statistics.median(ms):.1f} ms · p95 {_pct(ms, 95):.1f} ms (n={len(ms)})"))
    print(f"  {rows[-1][0]}: {rows[-1][1]}", flush=True)
    return rows

