"""Settings that every creation reads, kept per process until the database says one changed (issue 13).

A ticket's creation read five settings before it wrote anything: its category by name, the
admins to email, the notification contacts, the SLA settings and the SLA policy. Those rows
change a few times a year, and creations happen many times a minute. Migration 0026 keeps one
number, ``generacion_ajustes.valor``. The database's own triggers draw it anew whenever a row
those reads depend on changes: a change from another process counts, and so do a raw UPDATE in
psql and a restored backup. ``memo`` keeps what this process read under that number, so a
creation reads the number (one statement) instead of the five settings.

Each ``memo`` reads the number, as each read of a setting did: a long transaction sees a change
committed meanwhile. Inside ``una_lectura()`` (a creation's reads) the number is read once, so the
reads of one operation cost one statement; a write through the session in between (a flush, or
an INSERT/UPDATE/DELETE run through the session) makes the next ``memo`` read it again, so an
operation that changes a setting sees its own change. What is kept is plain data (tuples, frozen
dataclasses), never another session's ORM objects. Each app keeps its own memos, since tests run
several apps on one process.

What it costs: a change to a watched row also updates the one ``generacion_ajustes`` row, so two
transactions that change settings take turns on it until the first commits (settings change a
few times a year). On PostgreSQL this can deadlock where one transaction used to wait for the
other: T1 changes user 5 (and takes the row), T2 changes user 6 and waits for the row, T1 then
changes user 6; PostgreSQL aborts one of them. A counter outside the transaction (a sequence)
would not lock, but a reader could then see the new number before the change it announces is
committed, and keep the old values under it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Optional, TypeVar

from flask import current_app
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from models import TABLA_GENERACION, db, leer

T = TypeVar("T")

_NUMERO = text(f"SELECT valor FROM {TABLA_GENERACION} WHERE id = 1")
_LEIDO = "generacion.leida"  # session.info: (the transaction it was read in, the number)
_EN_CURSO = "generacion.en_curso"  # session.info: inside una_lectura()


def actual() -> Optional[int]:
    """The settings' generation now (None: no such row, nothing is kept)."""
    session = db.session()
    if not session.info.get(_EN_CURSO):
        return leer(_NUMERO).scalar()  # after the autoflush, as every read
    if session.autoflush:
        session.flush()  # as a query would: a pending change to a setting counts (no SQL when none)
    transaccion = session.get_transaction()
    leido = session.info.get(_LEIDO)
    if leido is not None and transaccion is not None and leido[0] is transaccion:
        return leido[1]
    numero = leer(_NUMERO).scalar()
    session.info[_LEIDO] = (session.get_transaction(), numero)
    return numero


@contextmanager
def una_lectura() -> Iterator[None]:
    """One operation's reads of the settings: the number is read once for all of them."""
    session = db.session()
    fuera = _EN_CURSO not in session.info
    session.info[_EN_CURSO] = True
    try:
        yield
    finally:
        if fuera:
            session.info.pop(_EN_CURSO, None)
            _olvidar(session)


def memo(clave: Hashable, leer_valor: Callable[[], T]) -> T:
    """``leer_valor()``, read again only when the settings' generation moved since this process
    last read it under ``clave``. Callers must not mutate what it returns."""
    numero = actual()
    if numero is None:
        return leer_valor()
    guardados = current_app.extensions.setdefault("generacion", {})
    guardado = guardados.get(clave)
    if guardado is not None and guardado[0] == numero:
        return guardado[1]
    valor = leer_valor()
    guardados[clave] = (numero, valor)
    return valor


def _olvidar(session: Session) -> None:
    session.info.pop(_LEIDO, None)


@event.listens_for(Session, "after_flush")
def _tras_escribir(session, _flush_context) -> None:
    _olvidar(session)


@event.listens_for(Session, "after_transaction_end")
def _tras_transaccion(session, _transaccion) -> None:
    _olvidar(session)


@event.listens_for(Session, "do_orm_execute")
def _antes_de_ejecutar(estado) -> None:
    # An UPDATE/DELETE/INSERT (ORM-enabled or raw text) through the session may change a setting.
    if not estado.is_select:
        _olvidar(estado.session)
