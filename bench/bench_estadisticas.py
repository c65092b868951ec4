"""GET /api/estadisticas (admin, every ticket) alone, optionally side by side with another tree.

    .venv/bin/python bench/bench_estadisticas.py DATABASE_URL [--before-tree PATH --before-url URL]
        [--requests 15] [--workers 2]

Serves an already seeded database (``bench/bench.py``'s ``seed``, which also rebuilds the
statistics rollup) with gunicorn on 127.0.0.1 and prints the p50/p95 of the statistics. With
``--before-tree`` (another checkout with its own .venv, e.g. the main branch before issue 13) and
its own copy of the data, both servers run at once and the requests alternate between them, so
that a shared machine's load weighs on both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench import PASSWORD, pct  # noqa: E402
from bench.servidor import gunicorn  # noqa: E402

PATH = "/api/estadisticas"


def _entorno(url: str) -> dict:
    return {"DATABASE_URL": url, "SECRET_KEY": "bench", "APP_ENV": "production", "PATH": "/usr/bin:/bin",
            "LOGIN_RATE_LIMIT": "1000 per minute", "OUTBOX_THREAD": "0", "EXPORT_THREAD": "0",
            "WHATSAPP_APP_SECRET": "bench-whatsapp-secret"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("--before-tree", type=Path)
    parser.add_argument("--before-url")
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    arboles = {"this tree": (ROOT, args.database_url)}
    if args.before_tree:
        arboles = {"before": (args.before_tree, args.before_url or args.database_url), **arboles}
    with ExitStack() as pila:
        sesiones = {}
        for nombre, (arbol, url) in arboles.items():
            base, _pid = pila.enter_context(gunicorn(_entorno(url), workers=args.workers, cwd=arbol,
                                                     venv=arbol / ".venv"))
            s = requests.Session()
            token = s.post(base + "/api/auth/token", json={"username": "admin", "password": PASSWORD},
                           timeout=60).json()["token"]
            s.headers["Authorization"] = f"Bearer {token}"
            for _ in range(args.workers + 1):  # warm every worker
                s.get(base + PATH, timeout=120).raise_for_status()
            sesiones[nombre] = (s, base)
        ms: dict[str, list[float]] = {nombre: [] for nombre in sesiones}
        for i in range(args.requests):
            orden = list(sesiones) if i % 2 == 0 else list(reversed(sesiones))
            for nombre in orden:
                s, base = sesiones[nombre]
                t0 = time.perf_counter()
                s.get(base + PATH, timeout=120).raise_for_status()
                ms[nombre].append((time.perf_counter() - t0) * 1000)
    for nombre, valores in ms.items():
        print(f"GET {PATH} ({nombre}): p50 {statistics.median(valores):.1f} ms · p95 {pct(valores, 95):.1f} ms "
              f"(n={len(valores)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
