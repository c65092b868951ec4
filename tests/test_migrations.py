"""The migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from models import Base, db, incluir_en_migraciones


def test_models_and_migrations_agree(app):
    # The search index (migration 0014) is derived data the migration owns, with no model.
    opts = {"compare_type": True, "include_object": incluir_en_migraciones}
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == []


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
