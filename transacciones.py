"""How a request uses its database connection (issue 13).

* On PostgreSQL a GET (or HEAD) reads in autocommit and opens a transaction at its first write.
  psycopg 3 forgets every statement it has prepared on a connection (at a statement's fifth use)
  when a transaction ends in ROLLBACK, and every request that did not commit ended that way: the
  lists, panels and one ticket's GET were parsed and planned by the server on each request. In
  autocommit nothing is rolled back, so they stay prepared, and a read pays no BEGIN and no
  ROLLBACK round trip. A GET that writes (a "read" mark, a token's last use) is still one
  transaction from its first write to its commit, and rolled back on error as before: before any
  statement that may write or lock (DML, ``FOR UPDATE``, an advisory lock, a SAVEPOINT, any
  statement that is not a plain SELECT) or that opens a server-side cursor, the connection gets
  its BEGIN. Reads before that first
  write see what a READ COMMITTED transaction would have shown them: each statement its own
  snapshot.
* A cursor's ``description`` is built when something reads it, not when SQLAlchemy asks whether
  there is one. SQLAlchemy asks after every SELECT, and psycopg built one ``Column`` object per
  column to answer: ~40 µs for a ticket's 29 columns, while a statement compiled before (all of
  ours, after the first request) only needs to know the description is not None.
* A pooled connection is pinged before use only when it sat idle in the pool for more than
  ``PING_TRAS_SEGUNDOS``: SQLAlchemy's ``pool_pre_ping`` pinged on every checkout, a round trip
  per request. A connection that sat idle is the one a firewall, an idle timeout or a restart
  may have closed; one handed back a moment ago is not pinged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from functools import lru_cache

from flask import Flask, request
from psycopg import Cursor, ServerCursor
from psycopg.pq import ExecStatus, TransactionStatus
from sqlalchemy import event, exc

from models import db

PING_TRAS_SEGUNDOS = 5.0

# The connection option that marks a GET's connection (its statements read until one writes).
LECTURA = "mesa_lectura"

# A statement that reads and nothing else: SELECT or WITH, without a word that writes or locks.
_ESCRIBE_O_BLOQUEA = re.compile(
    r"\b(?:INSERT|UPDATE|DELETE|MERGE|FOR\s+(?:NO\s+KEY\s+)?UPDATE|FOR\s+(?:KEY\s+)?SHARE"
    r"|PG_(?:TRY_)?ADVISORY\w*|NEXTVAL|SETVAL)\b")


@lru_cache(maxsize=2048)  # the statements of compiled queries are few and the same str each time
def solo_lee(sql: str) -> bool:
    """True when ``sql`` only reads: a transaction around it would change nothing."""
    sql = sql.lstrip(" \n\t(").upper()
    return sql.startswith(("SELECT", "WITH")) and _ESCRIBE_O_BLOQUEA.search(sql) is None


def init_app(app: Flask) -> None:
    """Call right after ``db.init_app``: the GET hook must run before any other touches the session."""
    with app.app_context():
        engine = db.engine
    _ping_si_estuvo_inactiva(engine)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _cursores_perezosos)
        app.before_request(_lectura_en_autocommit)
        event.listen(engine, "before_cursor_execute", _begin_antes_de_escribir)


def _lectura_en_autocommit() -> None:
    if (request.method in ("GET", "HEAD") and request.endpoint not in (None, "static")
            and not db.session().in_transaction()):
        # The session is new and closed at teardown, which gives the connection back to the pool
        # in its usual transactional mode.
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT", LECTURA: True})


def _begin_antes_de_escribir(conn, cursor, statement, parameters, context, executemany) -> None:
    if context is None or not context.execution_options.get(LECTURA):
        return
    # A server-side cursor (yield_per: the Excel export) lives in a transaction block too.
    if solo_lee(statement) and not isinstance(cursor, ServerCursor):
        return
    dbapi = cursor.connection
    if dbapi.info.transaction_status == TransactionStatus.IDLE:
        # psycopg's commit() and rollback() end the transaction the server is in, whatever its
        # autocommit flag says: the session's commit, rollback or close ends this one.
        dbapi.execute("BEGIN", prepare=False)


def _ping_si_estuvo_inactiva(engine) -> None:
    @event.listens_for(engine, "checkin")
    def _devuelta(dbapi_connection, record) -> None:
        record.info["devuelta"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _antes_de_usar(dbapi_connection, record, proxy) -> None:
        devuelta = record.info.get("devuelta")  # None: a new connection
        if devuelta is None or time.monotonic() - devuelta <= PING_TRAS_SEGUNDOS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool drops this connection and checks out another (documented for "checkout").
            raise exc.DisconnectionError() from error


class DescripcionPerezosa(Sequence):
    """A cursor's ``description``, built on first use from the result it was asked about."""

    __slots__ = ("_cursor", "_resultado", "_columnas")

    def __init__(self, cursor: CursorPerezoso, resultado) -> None:
        self._cursor, self._resultado, self._columnas = cursor, resultado, None

    def _hechas(self) -> list:
        if self._columnas is None:
            if self._cursor.pgresult is not self._resultado:
                raise RuntimeError("cursor.description read after the cursor moved to another result")
            self._columnas = Cursor.description.fget(self._cursor)
        return self._columnas

    def __getitem__(self, i):
        return self._hechas()[i]

    def __len__(self) -> int:
        return len(self._hechas())


_CON_FILAS = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK)


class CursorPerezoso(Cursor):
    """psycopg's client cursor, whose ``description`` is a ``DescripcionPerezosa``: None exactly
    when psycopg's would be None, the same columns when read."""

    @property
    def description(self):
        resultado = self.pgresult
        if resultado and (resultado.nfields or resultado.status in _CON_FILAS):
            return DescripcionPerezosa(self, resultado)
        return None


def _cursores_perezosos(dbapi_connection, _record) -> None:
    dbapi_connection.cursor_factory = CursorPerezoso
