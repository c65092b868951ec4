"""Background workers: the polling loop every ``--loop`` command runs, and the dev server's threads.

A worker is one function, ``ronda() -> bool``, run in an app context: True means it did a full
batch and more may be waiting (the loop goes on at once), False that it can sleep. A failing
round is logged and rolled back; it never stops the loop. Under ``make run`` (OUTBOX_THREAD=1)
the dev server runs the outbox, the SLA tick and the export jobs as threads of its own process
(``iniciar_hilo``); production runs their CLI commands with ``--loop`` instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Optional

from flask import Flask

from models import db

log = logging.getLogger(__name__)

Ronda = Callable[[], bool]


def bucle(app: Flask, ronda: Ronda, intervalo: float, parar: Optional[threading.Event] = None,
          nombre: str = "worker") -> None:
    """Run ``ronda``, sleep ``intervalo`` seconds unless it asked to go on, repeat until ``parar``."""
    parar = parar or threading.Event()
    while not parar.is_set():
        seguir = False
        with app.app_context():
            try:
                seguir = bool(ronda())
            except Exception:  # noqa: BLE001 - e.g. the database restarting; try again next round
                log.exception("%s: round failed", nombre)
                db.session.rollback()
            finally:
                db.session.remove()
        if not seguir:
            parar.wait(intervalo)


_hilos: dict[str, threading.Thread] = {}
_hilos_lock = threading.Lock()


def iniciar_hilo(app: Flask, nombre: str, ronda: Ronda, intervalo: float) -> Optional[threading.Thread]:
    """Start (once per process) the dev server's thread ``nombre``. Under the reloader only the
    serving child starts it."""
    if app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        return None  # the reloader's watcher process: it serves nothing
    with _hilos_lock:
        hilo = _hilos.get(nombre)
        if hilo is None or not hilo.is_alive():
            hilo = threading.Thread(target=bucle, args=(app, ronda, intervalo), kwargs={"nombre": nombre},
                                    name=nombre, daemon=True)
            hilo.start()
            _hilos[nombre] = hilo
        return hilo


def filtro_reclamables(columna_id, candidatos):
    """THE claim discipline of every queue (outbox, export jobs): the WHERE clause that selects the
    rows of ``candidatos`` (a SELECT of ids, LIMIT included) for one atomic claiming UPDATE.
    PostgreSQL: lock the candidates first with SKIP LOCKED (a parallel worker takes others; inside
    "UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" PostgreSQL may re-run the
    subquery per row and claim far more than n). SQLite serializes writers: one UPDATE with the
    subquery is atomic. The UPDATE must still re-check the state it claims from."""
    if db.session.get_bind().dialect.name == "postgresql":
        return columna_id.in_(db.session.execute(candidatos.with_for_update(skip_locked=True)).scalars().all())
    return columna_id.in_(candidatos.scalar_subquery())
