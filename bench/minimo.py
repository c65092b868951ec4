"""The least a creation can cost on SQLite, on this machine: the ceiling of any design.

    .venv/bin/python bench/minimo.py --database PATH [--creaciones 1000] [--lotes 5]

Works on a copy of a SQLite database seeded by ``bench.py`` (its indexes, its full-text
triggers, WAL and ``synchronous=NORMAL`` as Mesa opens it). Each creation is what issue 13 says
every creation must keep: one transaction holding the write lock (BEGIN IMMEDIATE) with the
ticket's number from its id, the ticket's row, one history row and one outbox row, then COMMIT.
There is no assignment, SLA, rollup, token or HTTP, and no Python but the ``sqlite3`` module's.
It prints the wall time and the CPU of one creation, best and median of ``--lotes`` batches.

SQLite lets one writer at a time hold the lock, so ``1 / wall`` is a ceiling on creations per
second that no number of workers or clients can pass. The CPU time, added to what the server
needs to answer a bare POST, is the least a creation costs the server's two cores.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional


def _insert(conn: sqlite3.Connection, tabla: str) -> tuple[list[str], str]:
    columnas = [fila[1] for fila in conn.execute(f"PRAGMA table_info({tabla})") if fila[1] != "id" or tabla == "tickets"]
    return columnas, f"INSERT INTO {tabla} ({', '.join(columnas)}) VALUES ({', '.join('?' * len(columnas))})"


def medir(database: Path, creaciones: int = 1000, lotes: int = 5, copia: Optional[Path] = None) -> dict:
    """Create ``lotes`` batches of ``creaciones`` tickets in a copy of ``database`` (left as it was),
    made at ``copia`` and kept there when given, else in a temporary directory. Returns ms per
    creation (wall and CPU: best and median of the batches) and the ids of the timed tickets."""
    with tempfile.TemporaryDirectory(prefix="mesa-minimo-") as tmp:
        copia = copia or Path(tmp) / "minimo.db"
        shutil.copyfile(database, copia)
        conn = sqlite3.connect(copia, isolation_level=None)  # BEGIN and COMMIT as written below
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        # The newest ticket and outbox row are the model of every new one (their text, their dates).
        columnas_t, insert_t = _insert(conn, "tickets")
        modelo = dict(zip(columnas_t, conn.execute(
            f"SELECT {', '.join(columnas_t)} FROM tickets ORDER BY id DESC LIMIT 1").fetchone(), strict=True))
        columnas_e, insert_e = _insert(conn, "eventos")
        columnas_o, insert_o = _insert(conn, "envios")
        envio = conn.execute(f"SELECT {', '.join(columnas_o)} FROM envios ORDER BY id DESC LIMIT 1").fetchone()
        if envio is None:  # a database with no email yet: a plain one, queued
            envio = tuple({"canal": "email", "tipo": "ticket_recibido", "destinatarios": "bench@bench.local",
                           "asunto": "Tu ticket fue recibido", "cuerpo_texto": "", "adjuntos": "[]", "datos": "{}",
                           "estado": "pendiente", "intentos": 0, "proximo_intento": modelo["fecha_creacion"],
                           "fecha_creacion": modelo["fecha_creacion"]}.get(c) for c in columnas_o)
        i_ticket = columnas_o.index("ticket_id")

        def crear() -> int:
            conn.execute("BEGIN IMMEDIATE")
            nuevo = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM tickets").fetchone()[0]
            conn.execute(insert_t, [nuevo if c == "id" else f"TKT-{nuevo:06d}" if c == "numero_ticket" else modelo[c]
                                    for c in columnas_t])
            conn.execute(insert_e, [{"ticket_id": nuevo, "actor_id": modelo["usuario_id"], "tipo": "creado",
                                     "despues": f"TKT-{nuevo:06d}", "interno": 0,
                                     "fecha": modelo["fecha_creacion"]}.get(c) for c in columnas_e])
            conn.execute(insert_o, [nuevo if i == i_ticket else v for i, v in enumerate(envio)])
            conn.execute("COMMIT")
            return nuevo

        for _ in range(min(50, creaciones)):  # warm the page cache and the statement cache
            crear()
        paredes, cpus, ids = [], [], []
        for _ in range(lotes):
            t0, c0 = time.perf_counter(), time.process_time()
            ids += [crear() for _ in range(creaciones)]
            paredes.append((time.perf_counter() - t0) * 1000 / creaciones)
            cpus.append((time.process_time() - c0) * 1000 / creaciones)
        conn.close()
    return {"pared_min": min(paredes), "pared_mediana": statistics.median(paredes),
            "cpu_min": min(cpus), "cpu_mediana": statistics.median(cpus), "ids": ids}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", type=Path, required=True, help="a SQLite file seeded by bench.py")
    parser.add_argument("--creaciones", type=int, default=1000)
    parser.add_argument("--lotes", type=int, default=5)
    args = parser.parse_args()
    r = medir(args.database, args.creaciones, args.lotes)
    print(f"The least creation on SQLite ({args.lotes} batches of {args.creaciones}): wall {r['pared_min']:.2f} ms "
          f"best, {r['pared_mediana']:.2f} median; CPU {r['cpu_min']:.2f} best, {r['cpu_mediana']:.2f} median. "
          f"One writer at a time: at most {1000 / r['pared_min']:.0f} creations/s on this machine.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
