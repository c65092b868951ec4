"""WhatsApp webhook throughput (issue 9): signed POSTs per second and their latency.

Each POST carries one new text message from one of 200 numbers, signed with the app secret,
from N concurrent clients for 10 s: the webhook stores it, the bot answers (queued in the
outbox; nothing is sent here). ``run(url, secret)`` is called by bench.py; standalone,
``python bench/bench_whatsapp.py`` migrates a fresh SQLite database and serves it with gunicorn."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servidor import carga, gunicorn  # noqa: E402

SECRET = "bench-whatsapp-secret"


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run(url: str, secret: str = SECRET, clients: int = 4, seconds: float = 10) -> list[tuple[str, str]]:
    seq = itertools.count(1)

    def peticion(s: requests.Session):
        n = next(seq)
        numero = f"3460{n % 200:07d}"
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
                "contacts": [{"profile": {"name": f"Bench {n % 200}"}, "wa_id": numero}],
                "messages": [{"from": numero, "id": f"wamid.bench.{os.getpid()}.{n}",
                              "timestamp": str(int(time.time())), "type": "text",
                              "text": {"body": "hola, ¿qué horario tenéis?"}}]}}]}]}).encode()
        firma = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return s.post(url + "/webhooks/whatsapp", data=body, timeout=60,
                      headers={"Content-Type": "application/json", "X-Hub-Signature-256": firma})

    por_segundo, ok, errores = carga(clients, seconds, peticion, 200)
    row = (f"POST /webhooks/whatsapp signed ({clients} concurrent clients, {seconds:g} s)",
           f"{por_segundo:.0f} POSTs/s · p50 {statistics.median(ok):.1f} ms · p95 {_pct(ok, 95):.1f} ms · "
           f"errors {errores}")
    print(f"  {row[0]}: {row[1]}", flush=True)
    return [row]


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="mesa-bench-wa-")
    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.db",
           "SECRET_KEY": "bench", "APP_ENV": "production", "OUTBOX_THREAD": "0", "WHATSAPP_APP_SECRET": SECRET}
    subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "app:create_app()", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    workers = int(os.environ.get("BENCH_WORKERS", "4"))
    with gunicorn(env, workers=workers) as (url, _pid):
        print(f"WhatsApp webhook bench · {env['DATABASE_URL'].split(':')[0]} · gunicorn {workers} workers · "
              f"{os.cpu_count()} CPUs")
        run(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
