"""Concurrent ticket creation never collides on numbers; SQLite's writers take turns."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

import pytest
from sqlalchemy import select

from models import ConexionSQLite, Ticket, db

THREADS = 8
PER_THREAD = 5


def test_concurrent_creations_get_unique_sequential_numbers(app, api, make_user):
    users = [make_user() for _ in range(THREADS)]
    clients = [api(u) for u in users]
    barrier = threading.Barrier(THREADS)
    results: list[list[int]] = [[] for _ in range(THREADS)]

    def worker(i: int) -> None:
        barrier.wait()
        for n in range(PER_THREAD):
            r = clients[i].post("/api/tickets", json={"titulo": f"t{i}-{n}", "descripcion": "d", "categoria": "General"})
            results[i].append(r.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert all(code == 201 for codes in results for code in codes), results
    db.session.expire_all()
    rows = db.session.execute(select(Ticket.id, Ticket.numero_ticket)).all()
    numbers = [numero for _, numero in rows]
    assert len(rows) == THREADS * PER_THREAD
    assert len(set(numbers)) == len(numbers)
    assert all(numero == f"TKT-{tid:06d}" for tid, numero in rows)


# --- SQLite: writers queue on a lock file, not in the busy handler's sleeps ------------------------

def _turno_libre(ruta: str) -> bool:
    """Whether nobody holds the write turn of the database at ``ruta`` (a non-blocking try)."""
    fd = os.open(ruta + "-turno", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.fixture
def ruta_sqlite(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one write lock")
    return db.engine.url.database


def test_a_creation_waits_for_the_write_turn_and_gives_it_back(app, api, make_user, ruta_sqlite):
    """While another writer holds the turn, a creation waits before its BEGIN IMMEDIATE; it goes on
    when the turn is given back, and gives it back itself when it commits."""
    cliente = api(make_user())
    assert isinstance(db.engine.raw_connection().driver_connection, ConexionSQLite)
    fd = os.open(ruta_sqlite + "-turno", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    respuestas = []
    hilo = threading.Thread(target=lambda: respuestas.append(
        cliente.post("/api/tickets", json={"titulo": "en cola", "descripcion": "d", "categoria": "General"})))
    try:
        hilo.start()
        hilo.join(timeout=1.5)
        assert hilo.is_alive() and respuestas == []  # waiting for the turn, nothing written
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    hilo.join(timeout=30)
    assert [r.status_code for r in respuestas] == [201]
    assert _turno_libre(ruta_sqlite)


def test_the_turn_passes_on_commit_rollback_and_close(ruta_sqlite):
    """The next writer gets the turn the moment the holder's transaction ends, however it ends
    (a driver connection of the engine's own class, two of them on one file)."""
    for fin in ("commit", "rollback", "close"):
        a = sqlite3.connect(ruta_sqlite, factory=ConexionSQLite, isolation_level=None)
        b = sqlite3.connect(ruta_sqlite, factory=ConexionSQLite, isolation_level=None)
        a.esperar_turno()
        a.execute("BEGIN IMMEDIATE")
        tomado = threading.Event()

        def esperar(b=b, tomado=tomado):
            b.esperar_turno()
            tomado.set()

        hilo = threading.Thread(target=esperar)
        hilo.start()
        assert not tomado.wait(0.5) and not _turno_libre(ruta_sqlite), fin
        getattr(a, fin)()
        assert tomado.wait(10), fin  # b holds it now
        b.execute("BEGIN IMMEDIATE")  # and SQLite's own lock is free for it
        b.rollback()
        hilo.join()
        assert _turno_libre(ruta_sqlite), fin
        for conexion in (a, b):
            conexion.close()
