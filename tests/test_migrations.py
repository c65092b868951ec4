"""The migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from models import Base, db, incluir_en_migraciones


def test_models_and_migrations_agree(app):
    # The search index (migration 0014) is derived data the migration owns, with no model.
    opts = {"compare_type": True, "include_object": incluir_en_migraciones}
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == []


def test_the_overdue_index_exists_on_the_effective_due_time(app):
    """An index on an expression, which autogenerate cannot compare (models.INDICES_DE_EXPRESION):
    the migration creates it on estado and the due time the model declares (models.VENCE_EFECTIVO)."""
    consulta = ("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n" if db.engine.dialect.name == "sqlite"
                else "SELECT indexdef FROM pg_indexes WHERE indexname = :n")
    with db.engine.connect() as conn:
        definicion = " ".join(conn.execute(text(consulta), {"n": "ix_tickets_estado_vence"}).scalar_one().split())
    assert "(estado, " in definicion
    for parte in ("fecha_primera_respuesta IS NULL", "sla_resolucion_vence IS NULL",
                  "THEN sla_primera_respuesta_vence ELSE sla_resolucion_vence END"):
        assert parte in definicion, parte


def test_list_filters_are_indexed(app):
    indexed = {tuple(ix["column_names"]) for ix in inspect(db.engine).get_indexes("tickets")}
    indexed |= {tuple(u["column_names"]) for u in inspect(db.engine).get_unique_constraints("tickets")}
    for column in ("estado", "prioridad", "categoria_id", "ingeniero_id", "usuario_id", "cliente_id", "canal",
                   "fecha_creacion", "fecha_actualizacion", "titulo", "numero_ticket"):
        assert any(cols[0] == column for cols in indexed), column


def test_sqlite_runs_in_wal_mode(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite-only pragma")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
