"""make bench (email in): messages per second through the MTA pipe, ``flask ingest-email``.

    .venv/bin/python bench/bench_email.py [--messages 60] [--database-url URL]

Builds a fresh database (SQLite in a temp dir by default), one requester with one open ticket,
then pipes N messages one process each, as Postfix would: half replies to the ticket
([TKT-…] in the subject), half new tickets from unknown senders, plus every message piped a
second time (duplicates). Prints the throughput and appends it to bench/results/latest-email.md."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def preparar(url: str) -> str:
    from flask_migrate import upgrade

    import tickets
    from app import create_app
    from models import Usuario, db
    from schemas import TicketCreate

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        u = Usuario(username="bench", nombre="Bench", email="bench@cliente.test", rol="usuario")
        u.set_password("bench-password-1")
        db.session.add(u)
        t = tickets.crear_ticket(TicketCreate(titulo="Bench", descripcion="x", categoria="General"), usuario=u)
        db.session.commit()
        return t.numero_ticket


def mensaje(i: int, numero: str) -> bytes:
    m = EmailMessage()
    if i % 2:
        m["From"] = "bench@cliente.test"
        m["Subject"] = f"Re: [{numero}] respuesta {i}"
    else:
        m["From"] = f"Nuevo {i} <nuevo{i}@externo.test>"
        m["Subject"] = f"Consulta {i}"
    m["To"] = "soporte@mesa.test"
    m["Message-ID"] = make_msgid(domain="bench.test")
    m.set_content(f"Mensaje {i}\n\nEl lun, alguien escribió:\n> cita\n")
    return m.as_bytes()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=60)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mesa-bench-email-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    numero = preparar(url)
    env = {**os.environ, "FLASK_APP": "app", "DATABASE_URL": url, "SECRET_KEY": "bench", "OUTBOX_THREAD": "0",
           "UPLOAD_DIR": f"{tmp}/adjuntos"}
    raws = [mensaje(i, numero) for i in range(args.messages)]
    codigos = []
    inicio = time.perf_counter()
    for raw in raws + raws:  # every message twice: the second copy is a duplicate
        r = subprocess.run([sys.executable, "-m", "flask", "ingest-email"], input=raw, cwd=ROOT, env=env,
                           capture_output=True)
        codigos.append(r.returncode)
    segundos = time.perf_counter() - inicio
    total = len(raws) * 2
    linea = (f"ingest-email (pipe, one process per message, {url.split(':')[0]}): {total} messages in "
             f"{segundos:.1f} s = {total / segundos:.1f} messages/s; exit codes {sorted(set(codigos))}")
    print(linea)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest-email.md").write_text(linea + "\n")
    return 0 if set(codigos) == {0} else 1


if __name__ == "__main__":
    sys.exit(main())
