"""bench/minimo.py, the least a creation can cost on SQLite: what it times is whole creations
(numbered tickets with their history and outbox rows, each committed), on a copy."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest


@pytest.fixture
def base_sembrada(tmp_path, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock: the PostgreSQL suite has no SQLite file to time")
    from bench.bench import seed

    ruta = tmp_path / "sembrada.db"
    seed(f"sqlite:///{ruta}", 40)
    return ruta


def test_the_least_creation_writes_whole_tickets_on_a_copy(base_sembrada, tmp_path):
    from bench import minimo

    antes = hashlib.sha256(base_sembrada.read_bytes()).hexdigest()
    resultado = minimo.medir(base_sembrada, creaciones=10, lotes=2, copia=tmp_path / "copia.db")

    hechos = list(range(41, 41 + 10 + 20))  # 10 warming creations, then 2 timed batches of 10
    assert resultado["ids"] == hechos[10:]
    assert 0 < resultado["pared_min"] <= resultado["pared_mediana"]
    assert 0 < resultado["cpu_min"] <= resultado["cpu_mediana"]
    copia = sqlite3.connect(tmp_path / "copia.db")
    try:
        tickets = copia.execute("SELECT id, numero_ticket FROM tickets WHERE id > 40 ORDER BY id").fetchall()
        assert tickets == [(i, f"TKT-{i:06d}") for i in hechos]  # committed, numbered by their ids
        creados = copia.execute("SELECT ticket_id, despues FROM eventos WHERE tipo = 'creado' AND ticket_id > 40")
        assert sorted(creados) == [(i, f"TKT-{i:06d}") for i in hechos]
        envios = copia.execute("SELECT ticket_id FROM envios WHERE ticket_id > 40").fetchall()
        assert sorted(i for (i,) in envios) == hechos
        # the database's own full-text trigger ran for each one
        assert copia.execute("SELECT count(*) FROM busqueda_tickets").fetchone()[0] == 40 + 30
    finally:
        copia.close()
    assert hashlib.sha256(base_sembrada.read_bytes()).hexdigest() == antes  # the seeded file is left as it was
