"""Rollup of the statistics of every ticket (issue 13): ``estadisticas_marginales``.

For each value of each dimension (estado, prioridad, categoría, ingeniero, local day of creation)
the number of tickets, open tickets, stored SLA outcomes reached and met, and missed targets; the
tickets answered and resolved with the sum of their wall-clock durations (microseconds, so the
mean is exact on both databases); and the "pending" tickets, whose clock runs towards a due time
with no target missed yet: past due now are these minus the few whose due time is still ahead
(``sla._conteos_resumen``). The admin's statistics over every ticket read these few hundred rows
(``reports._conteos_resumen``, ``reports._tiempos_resumen``, ``sla._conteos_resumen``) instead of
scanning 100,000 tickets; percentiles and medians are ORDER BY/OFFSET probes of partial indexes
(migrations 0016 and 0020) and the backlog by age is asked of the tickets. The admin panel's
counters and each engineer's open load (``paneles.contadores``, ``tickets.carga_abierta``)
read them too; ``ConteoTickets`` (below) keeps the lists' joint counts.

It is kept in the same transaction as the change, in one place: a session listener. Before a
flush it reads the stored rows of the tickets about to change (their old contribution), after it
the new rows, and adds the difference to the transaction's ``Delta``, written with one upsert
just before the commit (or before the transaction reads the rollup). Reading both from the
database (not from attribute history) keeps it exact whatever code path changed the ticket, as
long as it went through the ORM: a Core UPDATE/INSERT of tickets (the benchmark's bulk seed, a
migration) must be followed by ``flask estadisticas-reconstruir``. A creation costs one SELECT
and two upserts (this table and ``ConteoTickets``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Optional
from zoneinfo import ZoneInfo

import click
from flask import current_app, has_app_context
from sqlalchemy import delete, event, func, insert, inspect, literal_column, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import find_tables

from models import ESTADOS_ABIERTOS, ConteoTickets, EstadisticaMarginal, Ticket, db, leer
from sla import ESTADOS_EN_MARCHA

TABLA = EstadisticaMarginal.__table__
VALORES = ("tickets", "abiertos", "primera_n", "primera_ok", "resolucion_n", "resolucion_ok", "fallidos",
           "pendientes", "respondidos", "respuesta_us", "resueltos", "resolucion_us")
# A random tag of each row, replaced whenever the set of stored SLA seconds or of wall-clock response
# and resolution times of its tickets changes (and on a rebuild): the SLA percentiles of every ticket
# are cached under their rows' tags (sla._agregados), so only a group or a period whose times changed
# is probed again, and the medians of every ticket under the estado rows' (reports._tiempos_resumen).
ETIQUETA = "etiqueta_sla"
# The ticket columns a contribution depends on: a flush that changes none of them is ignored.
CAMPOS = ("estado", "prioridad", "categoria_id", "ingeniero_id", "fecha_creacion", "sla_primera_respuesta_segundos",
          "sla_primera_respuesta_cumplida", "sla_resolucion_segundos", "sla_resolucion_cumplida",
          "fecha_primera_respuesta", "sla_primera_respuesta_vence", "sla_resolucion_vence", "fecha_resolucion")
_ANTERIORES = "estadisticas_anteriores"  # session.info key: old rows read before the flush
_PENDIENTE = "estadisticas_pendientes"  # session.info key: the transaction's Delta, not yet written


def duracion(fin, inicio, dialecto: str):
    """Wall-clock seconds from ``inicio`` to ``fin`` (NULL when ``fin`` is NULL), in SQL: the
    statistics' response and resolution times. PostgreSQL's are exact (numeric, microseconds);
    SQLite stores ISO text and julianday is its fastest parser (rounded to whole seconds). The
    constant is literal, not a parameter: SQLite uses an index on an expression only for the very
    same expression (the median's probe, migration 0020)."""
    if dialecto == "postgresql":
        return func.extract("epoch", fin - inicio)
    return func.round((func.julianday(fin) - func.julianday(inicio)) * literal_column("86400"))


def _columnas(dialecto: str) -> tuple:
    return (Ticket.id, *(getattr(Ticket, c) for c in CAMPOS),
            duracion(Ticket.fecha_primera_respuesta, Ticket.fecha_creacion, dialecto),
            duracion(Ticket.fecha_resolucion, Ticket.fecha_creacion, dialecto))


def pendiente(estado, c1, c2, fecha_primera_respuesta, vence1, vence2) -> bool:
    """Whether a ticket counts in ``pendientes``: its clock runs, no target is missed yet and a due
    time lies ahead or behind (``sla.pendiente_clause`` says the same in SQL)."""
    return (estado in ESTADOS_EN_MARCHA and c1 is not False and c2 is not False
            and (vence2 is not None or (fecha_primera_respuesta is None and vence1 is not None)))


def _microsegundos(segundos) -> int:
    return 0 if segundos is None else int(Decimal(segundos) * 1_000_000)


def zona() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("APP_TIMEZONE", "UTC") if has_app_context() else "UTC")


def aportacion(fila, tz: ZoneInfo) -> list[tuple[tuple[str, str], tuple[int, ...]]]:
    """What one ticket row (``_columnas``) adds to each dimension's row."""
    _id, estado, prioridad, categoria_id, ingeniero_id, creado, s1, c1, s2, c2, respondido, vence1, vence2, \
        resuelto, t1, t2 = fila
    valores = (1, int(estado in ESTADOS_ABIERTOS), int(s1 is not None), int(s1 is not None and c1 is True),
               int(s2 is not None), int(s2 is not None and c2 is True), int(c1 is False or c2 is False),
               int(pendiente(estado, c1, c2, respondido, vence1, vence2)),
               int(respondido is not None), _microsegundos(t1), int(resuelto is not None), _microsegundos(t2))
    claves = (("estado", estado), ("prioridad", prioridad), ("categoria", str(categoria_id)),
              ("ingeniero", "" if ingeniero_id is None else str(ingeniero_id)),
              ("dia", creado.astimezone(tz).date().isoformat()))
    return [(clave, valores) for clave in claves]


def _filas(conn, ids) -> list:
    return conn.execute(select(*_columnas(conn.dialect.name)).where(Ticket.id.in_(ids))).all() if ids else []


def _cambia(ticket: Ticket) -> bool:
    estado = inspect(ticket)
    # The relationships too: ``ticket.ingeniero = x`` sets ingeniero_id only during the flush.
    return any(estado.attrs[c].history.has_changes() for c in (*CAMPOS, "ingeniero", "categoria"))


def _antes(session: Session, flush_context, instances) -> None:
    ids = [inspect(t).identity[0] for t in list(session.dirty) + list(session.deleted)
           if isinstance(t, Ticket) and inspect(t).identity and (t in session.deleted or _cambia(t))]
    session.info[_ANTERIORES] = _filas(session.connection(), ids)


def _en_memoria(ticket: Ticket):
    """A ticket just inserted, as ``_columnas`` would read it back: what its INSERT wrote is in
    memory (a column it did not name, with no default, is NULL). None when a value came from the
    database (a SQL expression or a default leaves the attribute unloaded) or a duration has to be
    computed: read it back then."""
    valores = inspect(ticket).dict
    fila = [ticket.id]
    for campo in CAMPOS:
        if campo in valores:
            fila.append(valores[campo])
        elif campo in _SIN_DEFECTO:
            fila.append(None)
        else:
            return None
    if fila[CAMPOS.index("fecha_primera_respuesta") + 1] is not None or \
            fila[CAMPOS.index("fecha_resolucion") + 1] is not None:
        return None
    return (*fila, None, None)


_SIN_DEFECTO = {c for c in CAMPOS if Ticket.__table__.c[c].default is None
                and Ticket.__table__.c[c].server_default is None}


def _despues(session: Session, flush_context) -> None:
    anteriores = session.info.pop(_ANTERIORES, [])
    nuevas, ids = [], {fila[0] for fila in anteriores}
    for ticket in session.new:  # a creation reads nothing back (the SELECT was inside the write lock)
        if isinstance(ticket, Ticket):
            fila = _en_memoria(ticket)
            if fila is None:
                ids.add(ticket.id)
            else:
                nuevas.append(fila)
    ids -= {inspect(t).identity[0] for t in session.deleted if isinstance(t, Ticket)}
    if not ids and not anteriores and not nuevas:
        return
    conn = session.connection()
    nuevas += _filas(conn, ids)
    if session.in_nested_transaction():  # a SAVEPOINT rolled back must take its share with it
        sumar(conn, nuevas, anteriores)
    else:
        session.info.setdefault(_PENDIENTE, Delta()).sumar(nuevas, anteriores)


def _escribir_pendiente(session: Session) -> None:
    delta = session.info.pop(_PENDIENTE, None)
    if delta is not None:
        delta.escribir(session.connection())


def _antes_de_confirmar(session: Session) -> None:
    session.flush()  # the commit's own flush comes after this event: its share too
    _escribir_pendiente(session)


def _antes_de_leer(estado) -> None:
    """A read of the rollup inside the transaction sees its pending share (written first)."""
    if _PENDIENTE in estado.session.info and estado.is_select and \
            {TABLA.name, CONTEOS.name} & {t.name for t in find_tables(estado.statement, include_aliases=True)}:
        _escribir_pendiente(estado.session)


def _fin_de_transaccion(session: Session, transaccion) -> None:
    if transaccion.parent is None:  # rolled back (a commit wrote it): nothing of it happened
        session.info.pop(_PENDIENTE, None)


class Delta:
    """What a transaction's flushes add to the rollup rows and the joint counts, written in one
    upsert each just before it commits (``_antes_de_confirmar``). On PostgreSQL the upsert locks
    today's estado, prioridad, categoría and day rows, the same ones for every creation: written at
    each flush, every creation waited for the previous one's commit (its history, emails and
    notices) before going on; written last, only the commit itself is in the way."""

    def __init__(self) -> None:
        self.marginal: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(VALORES))
        self.etiquetas: set[tuple[str, str]] = set()
        self.conteos: dict[tuple, int] = defaultdict(int)

    def sumar(self, nuevas, anteriores=()) -> None:
        """Add the contribution of ``nuevas`` rows and take away that of ``anteriores``; the rows
        whose SLA times changed get a new ``ETIQUETA`` when written."""
        tz = zona()
        for filas, signo in ((nuevas, 1), (anteriores, -1)):
            for fila in filas:
                self.conteos[_combinacion(fila)] += signo
                for clave, valores in aportacion(fila, tz):
                    acumulado = self.marginal[clave]
                    for i, v in enumerate(valores):
                        acumulado[i] += signo * v
        self.etiquetas |= _con_tiempos_cambiados(nuevas, anteriores, tz)

    def escribir(self, conn) -> None:
        # Sorted: concurrent transactions lock the rows they share in one order (no deadlock).
        params = [{"dimension": d, "clave": c, **dict(zip(VALORES, v, strict=True)),
                   ETIQUETA: _etiqueta() if (d, c) in self.etiquetas else 0}
                  for (d, c), v in sorted(self.marginal.items()) if any(v) or (d, c) in self.etiquetas]
        if params:
            conn.execute(UPSERT, params)
        conteos = [{"estado": e, "prioridad": p, "categoria_id": c, "ingeniero": i, "tickets": n}
                   for (e, p, c, i), n in sorted(self.conteos.items()) if n]
        if conteos:
            conn.execute(UPSERT_CONTEOS, conteos)


def sumar(conn, nuevas, anteriores=()) -> None:
    """Add the contribution of ``nuevas`` rows and take away that of ``anteriores`` now."""
    delta = Delta()
    delta.sumar(nuevas, anteriores)
    delta.escribir(conn)


def _etiqueta() -> int:
    return random.getrandbits(62) or 1  # 0 says "unchanged" to the upsert


def _con_tiempos_cambiados(nuevas, anteriores, tz) -> set[tuple[str, str]]:
    """The rows whose set of times changed: stored SLA seconds (first response, resolution) or
    wall-clock durations (``_columnas``' last two): a ticket with one got, lost or changed a time,
    or moved to another engineer, prioridad or categoría (its group's percentiles may differ) or was
    deleted."""
    def marcas(fila) -> set:
        tiempos = (fila[6], fila[8], *fila[-2:])
        if tiempos == (None, None, None, None):
            return set()
        return {(clave, tiempos) for clave, _valores in aportacion(fila, tz)}

    antes = {fila[0]: marcas(fila) for fila in anteriores}
    cambiadas: set = set()
    for fila in nuevas:
        cambiadas |= antes.pop(fila[0], set()) ^ marcas(fila)
    for borradas in antes.values():
        cambiadas |= borradas
    return {clave for clave, _tiempos in cambiadas}


def _upsert(tabla, conflicto: tuple[str, ...], columnas: tuple[str, ...], set_: dict[str, str]):
    """``INSERT … ON CONFLICT (conflicto) DO UPDATE SET`` as text, the same SQL on SQLite and
    PostgreSQL. Not the dialects' ``on_conflict_do_update``: SQLAlchemy has no cache key for it,
    so each creation compiled both upserts again (~1 ms, inside SQLite's write lock)."""
    nombre = tabla.name
    return text(f"INSERT INTO {nombre} ({', '.join(columnas)}) VALUES ({', '.join(':' + c for c in columnas)}) "
                f"ON CONFLICT ({', '.join(conflicto)}) DO UPDATE SET "
                + ", ".join(f"{c} = {e.format(t=nombre, x='excluded')}" for c, e in set_.items()))


UPSERT = _upsert(TABLA, ("dimension", "clave"), ("dimension", "clave", *VALORES, ETIQUETA), {
    **{v: f"{{t}}.{v} + {{x}}.{v}" for v in VALORES},
    ETIQUETA: f"COALESCE(NULLIF({{x}}.{ETIQUETA}, 0), {{t}}.{ETIQUETA})"})


def reconstruir(conn=None, lote: int = 5000) -> int:
    """Rebuild the rollup from the tickets (flushes nothing, commits nothing). Returns tickets read."""
    conn = conn or db.session.connection()
    conn.execute(delete(TABLA))
    tz = zona()
    total: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(VALORES))
    n = 0
    # Per statement: Connection.execution_options would turn the caller's connection (a
    # migration's) into a server-side cursor for every later statement on PostgreSQL.
    for fila in conn.execute(select(*_columnas(conn.dialect.name)).execution_options(yield_per=lote)):
        n += 1
        for clave, valores in aportacion(fila, tz):
            acumulado = total[clave]
            for i, v in enumerate(valores):
                acumulado[i] += v
    filas = [{"dimension": d, "clave": c, **dict(zip(VALORES, v, strict=True)), ETIQUETA: _etiqueta()}
             for (d, c), v in total.items()]
    if filas:
        conn.execute(insert(TABLA), filas)
    return n


def marginales(*dimensiones: str) -> dict[str, dict[str, dict[str, int]]]:
    """``{dimension: {clave: {valor: n}}}`` of the rows with at least one ticket (of
    ``dimensiones``, or of all of them): VALORES and ETIQUETA."""
    columnas = _COLUMNAS_MARGINALES
    stmt = _LEER_MARGINALES
    if dimensiones:
        stmt = stmt.where(TABLA.c.dimension.in_(dimensiones))
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    # Plain tuples fetched at once: the day rows are hundreds per call, and row mappings fetched
    # one by one cost ~1 ms of the statistics' CPU at 10,000 tickets (issue 13). Integer columns:
    # both drivers give ints.
    for dimension, clave, *valores in db.session.execute(stmt).all():
        out[dimension][clave] = dict(zip(columnas, valores, strict=True))
    return out


_COLUMNAS_MARGINALES = (*VALORES, ETIQUETA)
_LEER_MARGINALES = select(TABLA.c.dimension, TABLA.c.clave, *(TABLA.c[v] for v in _COLUMNAS_MARGINALES)).where(
    TABLA.c.tickets > 0)


def borde_de_posicion(posicion: int, desc: bool) -> Optional[tuple[datetime, int]]:
    """Where row ``posicion`` (from 0) of every ticket in creation order (newest first with
    ``desc``) lies, from the tickets per local day of creation: the UTC instant where its day
    begins (``desc``: where the next day begins) and how many tickets come before that instant
    in the list; None past the end. A deep page then skips at most one day's tickets in the date
    index, not ``posicion`` of them (OFFSET 499,980 read half a million index entries)."""
    dias = db.session.execute(select(TABLA.c.clave, TABLA.c.tickets).where(
        TABLA.c.dimension == "dia", TABLA.c.tickets > 0)).all()
    antes = 0
    for dia, n in sorted(dias, reverse=desc):
        if antes + n > posicion:
            inicio = date.fromisoformat(dia) + timedelta(days=1 if desc else 0)
            return datetime.combine(inicio, time.min, tzinfo=zona()).astimezone(UTC), antes
        antes += n
    return None


# --- the joint counts of the lists' filters (``ConteoTickets``) ----------------------------------

CONTEOS = ConteoTickets.__table__


def _combinacion(fila) -> tuple:
    _id, estado, prioridad, categoria_id, ingeniero_id, *_resto = fila
    return estado, prioridad, categoria_id, ingeniero_id or 0


_COMBINACION = ("estado", "prioridad", "categoria_id", "ingeniero")
UPSERT_CONTEOS = _upsert(CONTEOS, _COMBINACION, (*_COMBINACION, "tickets"), {"tickets": "{t}.tickets + {x}.tickets"})


def reconstruir_conteos(conn=None) -> None:
    """Rebuild ``ConteoTickets`` from the tickets: one INSERT … SELECT … GROUP BY."""
    conn = conn or db.session.connection()
    conn.execute(delete(CONTEOS))
    ingeniero = func.coalesce(Ticket.ingeniero_id, 0)
    conn.execute(insert(CONTEOS).from_select(
        ["estado", "prioridad", "categoria_id", "ingeniero", "tickets"],
        select(Ticket.estado, Ticket.prioridad, Ticket.categoria_id, ingeniero, func.count())
        .group_by(Ticket.estado, Ticket.prioridad, Ticket.categoria_id, ingeniero)))


def consulta_de_conteo(condiciones):
    """The SELECT of the tickets in the combinations matching ``condiciones`` (clauses on
    ``CONTEOS``' columns), for ``contar_tickets``."""
    return select(func.coalesce(func.sum(CONTEOS.c.tickets), 0)).where(*condiciones)


def contar_tickets(consulta) -> int:
    """The number ``consulta`` (``consulta_de_conteo``) sums, a transaction's pending share of
    the counts written first (as ``_antes_de_leer`` does for the session's reads); on the
    session's connection (``models.leer``: every admin list asks for it)."""
    session = db.session()
    if session.autoflush:
        session.flush()
    _escribir_pendiente(session)
    return leer(consulta).scalar_one()


def init_app(app) -> None:
    """The listener (once per process) and ``flask estadisticas-reconstruir``."""
    if not event.contains(Session, "before_flush", _antes):
        event.listen(Session, "before_flush", _antes)
        event.listen(Session, "after_flush", _despues)
        event.listen(Session, "before_commit", _antes_de_confirmar)
        event.listen(Session, "do_orm_execute", _antes_de_leer)
        event.listen(Session, "after_transaction_end", _fin_de_transaccion)

    @app.cli.command("estadisticas-reconstruir")
    def reconstruir_command() -> None:
        """Rebuild the statistics rollup from the tickets (after a bulk import or an APP_TIMEZONE change)."""
        n = reconstruir()
        reconstruir_conteos()
        db.session.commit()
        click.echo(f"{n} tickets")
