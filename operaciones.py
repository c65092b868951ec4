"""Operations: backups, restores and the health check an office runs the helpdesk with.

``flask backup DEST`` copies the SQLite database with SQLite's online backup API (a consistent
snapshot while the app keeps serving and writing: WAL lets the copy read while writers commit)
plus the uploads directory into the folder DEST. On PostgreSQL it prints the ``pg_dump``
command to use instead. ``flask restore SRC`` puts such a folder back, into an EMPTY database
only (no accounts, no tickets): it never overwrites a live helpdesk.

``salud()`` is what ``GET /healthz`` answers: database reachable, migrations current (the
database's alembic revision is the code's head), outbox backlog and the age of its oldest
pending message.
"""

from __future__ import annotations

import shutil
import sqlite3
from functools import lru_cache
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select, text

from models import Envio, db, utcnow

ARCHIVO_DB = "mesa_de_ayuda.db"
CARPETA_ADJUNTOS = "adjuntos"


class ErrorOperacion(Exception):
    """A backup or restore that cannot go ahead; the message says why."""


def _ruta_sqlite() -> Path | None:
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise ErrorOperacion("An in-memory SQLite database cannot be backed up.")
    return Path(url.database)


def _url_sin_clave() -> str:
    return db.engine.url.render_as_string(hide_password=True)


def _integridad(ruta: Path) -> str:
    con = sqlite3.connect(ruta)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def respaldar(destino: Path) -> dict:
    """Back up into the folder ``destino`` (created; must not hold a backup already)."""
    origen = _ruta_sqlite()
    if origen is None:
        raise ErrorOperacion("PostgreSQL: back up with pg_dump, e.g.\n  pg_dump --format=custom "
                             f"--file={destino / 'mesa_de_ayuda.dump'} '{_url_sin_clave()}'\n"
                             f"and copy {current_app.config['UPLOAD_DIR']} beside it.")
    destino.mkdir(parents=True, exist_ok=True)
    archivo = destino / ARCHIVO_DB
    if archivo.exists():
        raise ErrorOperacion(f"{archivo} already exists; choose an empty folder.")
    fuente = sqlite3.connect(origen, timeout=30)
    copia = sqlite3.connect(archivo)
    try:
        fuente.backup(copia)  # one step: a single consistent snapshot
    finally:
        copia.close()
        fuente.close()
    integridad = _integridad(archivo)
    if integridad != "ok":
        raise ErrorOperacion(f"The copy fails integrity_check: {integridad}")
    adjuntos = Path(current_app.config["UPLOAD_DIR"])
    n_adjuntos = 0
    if adjuntos.is_dir():
        shutil.copytree(adjuntos, destino / CARPETA_ADJUNTOS, dirs_exist_ok=True)
        n_adjuntos = sum(1 for p in (destino / CARPETA_ADJUNTOS).rglob("*") if p.is_file())
    return {"archivo": str(archivo), "bytes": archivo.stat().st_size, "adjuntos": n_adjuntos}


def _vacia(ruta: Path) -> bool:
    if not ruta.exists() or ruta.stat().st_size == 0:
        return True
    con = sqlite3.connect(ruta)
    try:
        tablas = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for tabla in ("usuarios", "tickets"):
            if tabla in tablas and con.execute(f"SELECT 1 FROM {tabla} LIMIT 1").fetchone():
                return False
        return True
    finally:
        con.close()


def restaurar(origen: Path) -> dict:
    """Restore the backup folder ``origen`` into this app's database, which must be empty."""
    archivo = origen / ARCHIVO_DB
    if not archivo.is_file():
        raise ErrorOperacion(f"{archivo} does not exist.")
    if _integridad(archivo) != "ok":
        raise ErrorOperacion(f"{archivo} fails integrity_check; not restored.")
    destino = _ruta_sqlite()
    if destino is None:
        raise ErrorOperacion("PostgreSQL: restore with pg_restore into an empty database, e.g.\n"
                             f"  pg_restore --no-owner --dbname='{_url_sin_clave()}' {origen / 'mesa_de_ayuda.dump'}")
    if not _vacia(destino):
        raise ErrorOperacion("The database is not empty (it has accounts or tickets); restore only into "
                             "an empty one.")
    db.session.remove()
    db.engine.dispose()
    destino.parent.mkdir(parents=True, exist_ok=True)
    fuente = sqlite3.connect(archivo)
    copia = sqlite3.connect(destino, timeout=30)
    try:
        fuente.backup(copia)
    finally:
        copia.close()
        fuente.close()
    adjuntos = origen / CARPETA_ADJUNTOS
    if adjuntos.is_dir():
        shutil.copytree(adjuntos, current_app.config["UPLOAD_DIR"], dirs_exist_ok=True)
    return {"archivo": str(destino), "integridad": _integridad(destino)}


# --- health ------------------------------------------------------------------------------------

def _revision_head() -> frozenset[str]:
    """The code's alembic heads: fixed for the life of the process (the code does not change
    under it), read once. Reading them parses every migration file, ~10 ms of CPU that
    /healthz, polled by monitoring, paid on every call."""
    return _heads(current_app.extensions["migrate"].directory)


@lru_cache(maxsize=4)
def _heads(directorio: str) -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(directorio).get_heads())


# The outbox backlog: count and oldest of the messages not yet sent (aggregates straight over
# the table: a subquery of whole Envio rows cost more CPU to build than the query took).
_OUTBOX_PENDIENTE = select(func.count(), func.min(Envio.fecha_creacion)).where(Envio.estado.in_(("pendiente", "enviando")))


def salud() -> tuple[dict, bool]:
    """The health report and whether the app is healthy (database up, migrations current)."""
    from alembic.runtime.migration import MigrationContext

    informe: dict = {"database": "error", "migrations": "unknown"}
    try:
        db.session.execute(text("SELECT 1"))
        informe["database"] = "ok"
        actual = MigrationContext.configure(db.session.connection()).get_current_revision()
        heads = _revision_head()
        informe["migrations"] = "current" if actual in heads else "pending"
        informe["revision"] = actual
        cuantos, mas_antiguo = db.session.execute(_OUTBOX_PENDIENTE).one()
        if mas_antiguo is not None and mas_antiguo.tzinfo is None:
            from datetime import UTC

            mas_antiguo = mas_antiguo.replace(tzinfo=UTC)
        informe["outbox"] = {
            "pending": cuantos,
            "oldest_pending_seconds": (int((utcnow() - mas_antiguo).total_seconds()) if mas_antiguo else None),
        }
    except Exception as exc:  # noqa: BLE001 - any failure here is an unhealthy answer, not a 500
        db.session.rollback()
        informe["error"] = type(exc).__name__
    ok = informe["database"] == "ok" and informe["migrations"] == "current"
    informe["status"] = "ok" if ok else "error"
    return informe, ok


# --- CLI -----------------------------------------------------------------------------------------

def _ejecutar(operacion, *args) -> dict:
    """Run a backup/restore operation; its refusal becomes a clean CLI error, not a traceback."""
    try:
        return operacion(*args)
    except ErrorOperacion as exc:
        raise click.ClickException(str(exc)) from None


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_command(dest: Path) -> None:
    """Back up the database (SQLite online backup) and the uploads into the folder DEST."""
    r = _ejecutar(respaldar, dest)
    click.echo(f"Backed up to {r['archivo']} ({r['bytes']} bytes, {r['adjuntos']} attachment files).")


@click.command("restore")
@click.argument("src", type=click.Path(file_okay=False, exists=True, path_type=Path))
@with_appcontext
def restore_command(src: Path) -> None:
    """Restore a backup folder made by `flask backup` into an EMPTY database."""
    r = _ejecutar(restaurar, src)
    click.echo(f"Restored into {r['archivo']} (integrity_check: {r['integridad']}).")


def init_app(app: Flask) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
