"""Concurrent ticket creation never collides on numbers."""

from __future__ import annotations

import threading

from sqlalchemy import select

from models import Ticket, db

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
