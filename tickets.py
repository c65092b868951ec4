"""Ticket lifecycle: numbering, who may see and change what, the state machine, history.

Plain functions that take models and data, raise a ``DomainError``, ``flush()`` and never
commit: the request commits once. Each change writes one ``Evento`` and sends a blinker
signal, so notifications (email outbox, live updates) hook in without touching the rules.

Access rule (also in README): a usuario sees the tickets they requested; an ingeniero
sees the tickets assigned to them (the unassigned queue is the admin's to dispatch, so
two engineers never pick up the same ticket); an admin sees all. A ticket outside the
caller's scope does not exist for them (404).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from typing import NamedTuple, Optional

from blinker import Namespace
from sqlalchemy import Select, String, and_, bindparam, case, exists, false, func, inspect, literal_column, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import ARRAY

import acumulados
import busqueda
import generacion
from errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from models import (
    PRIORIDAD_RANK,
    Categoria,
    Cliente,
    Etiqueta,
    Evento,
    Ingeniero,
    Mensaje,
    NotaInterna,
    Ticket,
    Usuario,
    db,
    enlazar,
    leer,
    persistente,
    sqlite_tomar_escritura,
    ticket_etiquetas,
    utcnow,
)
from schemas import TicketCreate, TicketFilters, TicketUpdate

signals = Namespace()
# Before a new ticket's INSERT: receivers that only set the ticket's own columns (SLA due times)
# go into that INSERT instead of an UPDATE right after it. ``ticket_creado`` follows the INSERT.
ticket_por_crear = signals.signal("ticket-por-crear")
ticket_creado = signals.signal("ticket-creado")
ticket_asignado = signals.signal("ticket-asignado")
# A ticket left an engineer (reassigned, unassigned, redistributed): their list must lose it.
ticket_desasignado = signals.signal("ticket-desasignado")
# Before a state change's UPDATE, likewise: the SLA clock, due times and outcome go into it (one
# UPDATE, the version +1). ``estado_cambiado`` follows it.
estado_por_cambiar = signals.signal("estado-por-cambiar")
estado_cambiado = signals.signal("estado-cambiado")
mensaje_publicado = signals.signal("mensaje-publicado")
prioridad_cambiada = signals.signal("prioridad-cambiada")
categoria_cambiada = signals.signal("categoria-cambiada")

# Staff moves. The requester may only reopen or accept a resolved ticket (see REQUESTER_MOVES).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "abierto": ("en_progreso",),
    "en_progreso": ("en_espera", "resuelto"),
    "en_espera": ("en_progreso", "resuelto"),
    "resuelto": ("cerrado", "abierto"),
    "cerrado": ("abierto",),
}
REQUESTER_MOVES = {("resuelto", "abierto"), ("resuelto", "cerrado")}
# Seed 001: staff close straight from the work states; the implied ``resuelto`` step is still
# recorded in the history (and dated), so resolution metrics stay right.
CIERRE_DIRECTO = ("en_progreso", "en_espera")
NUMERO_FORMAT = "TKT-{:06d}"


# --- access ----------------------------------------------------------------------

def _ambito(viewer: Usuario) -> tuple[str, Optional[int]]:
    """Whose tickets ``viewer`` sees: every one ("admin", None), those assigned to their engineer
    row ("ingeniero", its id, -1 without one), or those they requested ("usuario", their id)."""
    if viewer.rol == "admin":
        return "admin", None
    if viewer.rol == "ingeniero":
        return "ingeniero", viewer.ingeniero.id if viewer.ingeniero else -1
    return "usuario", viewer.id


# The column ``_ambito``'s id is compared with, by scope.
_COLUMNA_AMBITO = {"ingeniero": Ticket.ingeniero_id, "usuario": Ticket.usuario_id}


def scope_clause(viewer: Usuario):
    """WHERE clause restricting tickets to what ``viewer`` may see."""
    ambito, valor = _ambito(viewer)
    return true() if ambito == "admin" else _COLUMNA_AMBITO[ambito] == valor


def is_assigned_engineer(ticket: Ticket, user: Usuario) -> bool:
    return ticket.ingeniero_usuario_id == user.id


def is_requester(ticket: Ticket, user: Usuario) -> bool:
    return ticket.usuario_id == user.id


def can_manage(ticket: Ticket, user: Usuario) -> bool:
    """Staff with a say on this ticket: admin, or its assigned engineer."""
    return user.rol == "admin" or is_assigned_engineer(ticket, user)


# One ticket and everything its JSON/page shows: the ticket and its people in one joined SELECT,
# its tags in a second one (lazy loading took six round trips per GET /api/tickets/<id>: issue
# 13's per-request overhead). The tags are read by a plain SELECT rather than selectinload, whose
# per-call machinery cost more CPU than the query; and not joined into the first SELECT, which
# SQLite answers by materialising every (ticket, tag) link first. The first SELECT also says
# whether the ticket has tags and notes at all (two index probes), so a ticket without (most of
# them) costs no further round trip.
UNO_OPTIONS = (joinedload(Ticket.usuario), joinedload(Ticket.cliente), joinedload(Ticket.categoria),
               joinedload(Ticket.ingeniero).joinedload(Ingeniero.usuario))

# These statements are built once, with the ticket and the viewer as bound parameters: SQLAlchemy
# memoizes a statement's cache key on the statement object, and computing it for a statement built
# per request (walking the joinedload options) cost more CPU than running the query (issue 13).
# Keyed by ``_ambito``: None reads the ticket whoever asks.
_UNO_TODOS = (select(Ticket, exists().where(ticket_etiquetas.c.ticket_id == Ticket.id),
                     exists().where(NotaInterna.ticket_id == Ticket.id))
              .where(Ticket.id == bindparam("ticket_id")).options(*UNO_OPTIONS))
_UNO = {None: _UNO_TODOS, "admin": _UNO_TODOS,
        **{ambito: _UNO_TODOS.where(columna == bindparam("viewer")) for ambito, columna in _COLUMNA_AMBITO.items()}}
_ETIQUETAS_DE = (select(Etiqueta).join(ticket_etiquetas, ticket_etiquetas.c.etiqueta_id == Etiqueta.id)
                 .where(ticket_etiquetas.c.ticket_id == bindparam("ticket_id")).order_by(Etiqueta.nombre))
_NOTAS_DE = (select(NotaInterna).where(NotaInterna.ticket_id == bindparam("ticket_id"))
             .options(joinedload(NotaInterna.autor)).order_by(NotaInterna.id))


def uno(ticket_id: int, viewer: Optional[Usuario] = None, **execution_options) -> Optional[Ticket]:
    """Ticket ``ticket_id`` with what its JSON shows (tags included); with ``viewer``, only if they
    may see it (``scope_clause``), else None. Its notes are loaded only when it has none."""
    ambito, valor = _ambito(viewer) if viewer is not None else (None, None)
    fila = db.session.execute(_UNO[ambito], {"ticket_id": ticket_id, "viewer": valor},
                              execution_options=execution_options).one_or_none()
    if fila is None:
        return None
    ticket, con_etiquetas, con_notas = fila
    etiquetas = db.session.execute(_ETIQUETAS_DE, {"ticket_id": ticket_id}).scalars().all() if con_etiquetas else []
    set_committed_value(ticket, "etiquetas", list(etiquetas))
    if not con_notas:
        set_committed_value(ticket, "notas", [])
    return ticket


def cargar_notas(ticket: Ticket, viewer: Usuario) -> None:
    """Read ``ticket``'s internal notes (and their authors) now if ``viewer`` sees them
    (``ve_notas``) and they are not loaded yet: one prebuilt SELECT instead of the lazy load and
    one more per author."""
    if ve_notas(ticket, viewer) and "notas" in inspect(ticket).unloaded:
        set_committed_value(ticket, "notas", list(db.session.execute(_NOTAS_DE, {"ticket_id": ticket.id}).scalars()))


def get_visible(ticket_id: int, viewer: Usuario) -> Ticket:
    """The ticket if ``viewer`` may see it; otherwise it does not exist for them (404)."""
    ticket = uno(ticket_id, viewer)
    if ticket is None:
        raise NotFound("Ticket not found.")
    return ticket


def fila_visible(ticket_id: int, viewer: Usuario) -> FilaTicket:
    """Ticket ``ticket_id`` as its JSON shows it (``schemas.fila_dict``), read as a list row: no
    ORM objects for a read-only GET (building the ticket and its people was a sixth of its CPU).
    Outside ``viewer``'s scope it does not exist for them (404), as with ``get_visible``."""
    ambito, valor = _ambito(viewer)
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    fila = leer(_UNA_FILA[postgresql][ambito], {"id": ticket_id, "viewer": valor}).one_or_none()
    if fila is None:
        raise NotFound("Ticket not found.")
    if not postgresql:
        return _completar_filas([FilaTicket.de(fila)], viewer)[0]
    valores = list(fila)
    nombres, valores[_CON_ETIQUETAS] = valores[_CON_ETIQUETAS], bool(valores[_CON_ETIQUETAS])
    hecha = FilaTicket.de(valores)
    hecha.etiquetas = nombres
    return _completar_filas([hecha], viewer, etiquetas=False)[0]


def get_visible_by_numero(numero: str, viewer: Usuario) -> Ticket:
    ticket = db.session.execute(
        select(Ticket).where(Ticket.numero_ticket == numero.upper(), scope_clause(viewer))
    ).scalar_one_or_none()
    if ticket is None:
        raise NotFound("Ticket not found.")
    return ticket


def ve_notas(ticket: Ticket, viewer: Usuario) -> bool:
    """THE rule for internal notes and internal events, in every payload (JSON, HTML, Excel,
    PDF, email): staff who manage the ticket (admin, or its assigned engineer). Being the
    requester never shows them, whatever the viewer's role."""
    return viewer.es_staff and can_manage(ticket, viewer)


def notas_visibles(ticket: Ticket, viewer: Usuario) -> list[NotaInterna]:
    return list(ticket.notas) if ve_notas(ticket, viewer) else []


def notas_clause(viewer: Usuario):
    """``ve_notas`` as a WHERE clause on tickets (exports read notes in bulk)."""
    return scope_clause(viewer) if viewer.es_staff else false()


def guardar(ticket: Ticket) -> None:
    """Flush a read-modify-write of ``ticket``: the concurrency design of the whole app.

    Optimistic locking on both databases: ``Ticket.version`` is SQLAlchemy's version_id_col,
    so every UPDATE of a ticket is ``... SET version = version + 1 WHERE id = ? AND version = ?``.
    Of N requests that read the same version and change it (estado, assignment, edit, reply),
    exactly one matches the row; on PostgreSQL the others wait for its row lock, then match
    nothing; on SQLite writers are serialised and match nothing. They get a 409 naming the
    current estado, before any history row or outbox message of theirs exists. Appends
    (replies, notes) call ``bloquear`` first, so they queue behind each other instead."""
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()  # the request's transaction is lost anyway; read the winner's row
        actual = db.session.get(Ticket, ticket.id) if ticket.id is not None else None
        estado = actual.estado if actual is not None else "?"
        fields = {"estado": estado, **({"version": str(actual.version)} if actual is not None else {})}
        raise Conflict("The ticket was changed by someone else meanwhile; it is now '%(estado)s'.",
                       code="stale_ticket", fields=fields, estado=estado) from None


def es_version_actual(ticket: Ticket, aceptadas: Iterable) -> bool:
    """Whether ``ticket`` is still at one of the versions ``aceptadas`` (ints or their strings)."""
    return str(ticket.version) in {str(v).strip() for v in aceptadas}


def exigir_version(ticket: Ticket, aceptadas: Iterable, *, status: int = 409) -> None:
    """Refuse a write based on a stale read: the client read the ticket at one of ``aceptadas``
    (its If-Match entity tags, or the ``version`` it sent) and the ticket is now at another.

    Called before the change, on the row this request read; ``guardar`` then writes only if the
    row is still at that version, so a write landing in between is the usual 409 stale_ticket.
    412 ``precondition_failed`` for If-Match (RFC 9110), 409 ``stale_version`` for a body field."""
    if es_version_actual(ticket, aceptadas):
        return
    raise Conflict("The ticket has changed since you read it: it is now at version %(version)s. Nothing was "
                   "saved; read it again and retry.", status=status,
                   code="precondition_failed" if status == 412 else "stale_version",
                   fields={"version": str(ticket.version)}, version=ticket.version)


def bloquear(ticket: Ticket) -> None:
    """For appends (replies, notes), which must not fail because someone else wrote first:
    take the ticket's row for this transaction (a no-op UPDATE: a row lock on PostgreSQL, the
    write lock on SQLite), then reread it. Later checks (closed?) see the latest row and the
    version check in ``guardar`` cannot fail, so concurrent replies all land."""
    if ticket.id is None:
        return
    db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(version=Ticket.version)
                       .execution_options(synchronize_session=False))
    db.session.refresh(ticket)


def _require_manage(ticket: Ticket, actor: Usuario) -> None:
    if not can_manage(ticket, actor):
        raise Forbidden("Only the assigned engineer or an admin may do this.")


# --- history ---------------------------------------------------------------------

def _fmt(value) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or None
    return str(value)


def record(ticket: Ticket, actor: Optional[Usuario], tipo: str, campo: Optional[str] = None,
           antes=None, despues=None, interno: bool = False, fecha=None) -> Evento:
    evento = Evento(tipo=tipo, campo=campo, antes=_fmt(antes), despues=_fmt(despues), interno=interno,
                    fecha=fecha or utcnow())
    if "eventos" in inspect(ticket).dict:
        evento.ticket = ticket  # its history is in memory: the backref adds this one to it
    else:
        enlazar(evento, "ticket", ticket)
    enlazar(evento, "actor", actor)
    db.session.add(evento)
    ticket.fecha_actualizacion = evento.fecha
    return evento


def history(ticket: Ticket, viewer: Usuario) -> list[Evento]:
    eventos = db.session.execute(
        select(Evento).where(Evento.ticket_id == ticket.id).options(selectinload(Evento.actor))
        .order_by(Evento.id)
    ).scalars().all()
    if ve_notas(ticket, viewer):
        return list(eventos)
    return [e for e in eventos if not e.interno]


# --- classification -----------------------------------------------------------------

def categoria_por_nombre(nombre: str) -> Categoria:
    """The active category ``nombre`` (any case), as the session's object; 422 when there is none.
    Every creation asks: its row is kept under the settings' generation (``generacion``)."""
    clave = nombre.strip().lower()
    fila = generacion.memo(("categoria", clave), lambda: _categoria_activa(clave))
    if fila is None:
        raise ValidationFailed("Unknown category.", fields={"categoria": f"Unknown category: {nombre}"})
    return persistente(Categoria, _ATRIBUTOS_CATEGORIA, fila)


def _categoria_activa(clave: str) -> Optional[tuple]:
    fila = leer(_CATEGORIA_ACTIVA, {"nombre": clave}).one_or_none()
    return tuple(fila) if fila is not None else None


_ATRIBUTOS_CATEGORIA = tuple(inspect(Categoria).column_attrs)
_CATEGORIA_ACTIVA = select(*(a.columns[0] for a in _ATRIBUTOS_CATEGORIA)).where(  # built once
    func.lower(Categoria.nombre) == bindparam("nombre"), Categoria.activa.is_(True))


def crear_categoria(nombre: str, descripcion: Optional[str] = None) -> Categoria:
    exists = db.session.execute(
        select(Categoria.id).where(func.lower(Categoria.nombre) == nombre.lower())
    ).first()
    if exists:
        raise Conflict("A category with that name already exists.", fields={"nombre": N_("Already exists.")})
    categoria = Categoria(nombre=nombre, descripcion=descripcion)
    db.session.add(categoria)
    try:
        db.session.flush()
    except IntegrityError:  # created by a concurrent request between the check and the INSERT
        db.session.rollback()
        raise Conflict("A category with that name already exists.",
                       fields={"nombre": "Already exists."}) from None
    return categoria


def cambiar_categoria_activa(categoria: Categoria, activa: bool) -> Categoria:
    """Retire a category from new tickets (existing tickets keep it) or bring it back."""
    categoria.activa = activa
    db.session.flush()
    return categoria


def etiquetas_por_nombre(nombres: Iterable[str]) -> list[Etiqueta]:
    """Get-or-create, safe under concurrency: INSERT ... ON CONFLICT DO NOTHING, then SELECT."""
    wanted = sorted({n.strip().lower() for n in nombres if n.strip()})
    if not wanted:
        return []
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(insert(Etiqueta).values([{"nombre": n} for n in wanted])
                       .on_conflict_do_nothing(index_elements=["nombre"]))
    found = {e.nombre: e for e in db.session.execute(
        select(Etiqueta).where(Etiqueta.nombre.in_(wanted))).scalars()}
    return [found[n] for n in wanted]


# --- creation ------------------------------------------------------------------------

def asignar_numero(ticket: Ticket) -> None:
    """Number from the primary key: unique by construction, even under concurrent inserts.

    Both are known before the INSERT, so the creation's receivers (history, emails, alerts) add
    their rows to the same single flush. PostgreSQL: the id is drawn from the sequence. SQLite:
    the transaction takes the write lock (BEGIN IMMEDIATE, waiting its turn) and the id is
    max(id) + 1, which is how SQLite itself numbers a table without AUTOINCREMENT; writers are
    serialised, so nobody else can take that id before this one commits."""
    if db.engine.dialect.name == "postgresql":
        ticket.id = db.session.execute(_SIGUIENTE_PG).scalar_one()
    else:
        sqlite_tomar_escritura(db.session.connection())
        ticket.id = db.session.execute(_SIGUIENTE_SQLITE).scalar_one()
    ticket.numero_ticket = NUMERO_FORMAT.format(ticket.id)


_SIGUIENTE_PG = select(func.nextval("tickets_id_seq"))
_SIGUIENTE_SQLITE = select(func.coalesce(func.max(Ticket.id), 0) + 1)


def validar_enlaces(conversacion_whatsapp_id: Optional[int], comunicacion_email_id: Optional[int]) -> None:
    """Seed 000's links must name an existing WhatsApp conversation / email communication (422)."""
    from models import Comunicacion, Conversacion

    errores = {}
    if conversacion_whatsapp_id is not None:
        conversacion = db.session.get(Conversacion, conversacion_whatsapp_id)
        if conversacion is None or conversacion.canal != "whatsapp":
            errores["conversacion_whatsapp_id"] = "No WhatsApp conversation has this id."
    if comunicacion_email_id is not None:
        comunicacion = db.session.get(Comunicacion, comunicacion_email_id)
        if comunicacion is None or comunicacion.canal != "email":
            errores["comunicacion_email_id"] = "No email communication has this id."
    if errores:
        raise ValidationFailed("A linked conversation or communication does not exist.", fields=errores)


def crear_ticket(data: TicketCreate, *, usuario: Optional[Usuario] = None,
                 cliente: Optional[Cliente] = None, canal: str = "web") -> Ticket:
    if usuario is None and cliente is None:
        raise ValidationFailed("A ticket needs a requester.")
    with generacion.una_lectura():  # the settings its reads need: one statement while none changes
        return _crear_ticket(data, usuario, cliente, canal)


def _crear_ticket(data: TicketCreate, usuario: Optional[Usuario], cliente: Optional[Cliente], canal: str) -> Ticket:
    categoria = categoria_por_nombre(data.categoria)
    validar_enlaces(data.conversacion_whatsapp_id, data.comunicacion_email_id)
    now = utcnow()
    ticket = Ticket(
        titulo=data.titulo, descripcion=data.descripcion, prioridad=data.prioridad,
        estado="abierto", canal=canal, conversacion_whatsapp_id=data.conversacion_whatsapp_id,
        comunicacion_email_id=data.comunicacion_email_id,
        fecha_creacion=now, fecha_actualizacion=now,
    )
    enlazar(ticket, "categoria", categoria)
    enlazar(ticket, "usuario", usuario)
    enlazar(ticket, "cliente", cliente)
    etiquetas = etiquetas_por_nombre(data.etiquetas)
    if etiquetas:
        ticket.etiquetas = etiquetas
    else:  # none: nothing for the flush to link
        set_committed_value(ticket, "etiquetas", [])
    set_committed_value(ticket, "notas", [])  # none yet: known without a lazy SELECT when its JSON is built
    with db.session.no_autoflush:
        # The reads first (SLA policy, automatic assignment, the emails' recipients), outside
        # SQLite's write lock; then the number, which on SQLite takes it; then the rows.
        ticket_por_crear.send(ticket, actor=usuario)
        asignar_numero(ticket)
        db.session.add(ticket)
        record(ticket, usuario, "creado", despues=ticket.numero_ticket, fecha=now)
        ticket_creado.send(ticket, actor=usuario)
    db.session.flush()  # one flush: the ticket with its due times, its history, its emails
    return ticket


# --- changes ---------------------------------------------------------------------------

def marcar_primera_respuesta(ticket: Ticket) -> None:
    """The staff's first answer to the requester (a public message, on any channel, or taking
    the ticket out of 'abierto'); later answers keep the first date."""
    if ticket.fecha_primera_respuesta is None:
        ticket.fecha_primera_respuesta = utcnow()


def allowed_moves(ticket: Ticket, actor: Usuario) -> list[str]:
    """The estados ``actor`` may move ``ticket`` to right now (drives the panels' buttons)."""
    if can_manage(ticket, actor):
        return list(TRANSITIONS[ticket.estado]) + (["cerrado"] if ticket.estado in CIERRE_DIRECTO else [])
    if is_requester(ticket, actor):
        return [b for (a, b) in REQUESTER_MOVES if a == ticket.estado]
    return []


def can_edit(ticket: Ticket, actor: Usuario) -> bool:
    """Whether ``actualizar_ticket`` would let ``actor`` edit fields now (drives the edit form)."""
    if can_manage(ticket, actor):
        return ticket.estado != "cerrado"
    return is_requester(ticket, actor) and ticket.estado == "abierto"


def can_write(ticket: Ticket, actor: Usuario) -> bool:
    """Whether ``agregar_mensaje`` would accept a public message from ``actor`` now."""
    return (can_manage(ticket, actor) or is_requester(ticket, actor)) and ticket.estado != "cerrado"


def por_cambiar(ticket: Ticket, actor: Optional[Usuario], antes: str, despues: str) -> None:
    """``estado_por_cambiar``'s receivers set the ticket's own columns; what they read (settings,
    policies) must not flush the change half-made, or it would be two UPDATEs."""
    with db.session.no_autoflush:
        estado_por_cambiar.send(ticket, actor=actor, antes=antes, despues=despues)


def cambiar_estado(ticket: Ticket, actor: Usuario, nuevo: str) -> Ticket:
    anterior = ticket.estado
    if nuevo == anterior:
        raise Conflict("That status change is not possible from the current status. The ticket is already "
                       "'%(estado)s'.", code="invalid_transition", estado=nuevo)
    staff = can_manage(ticket, actor)
    if not staff and not is_requester(ticket, actor):
        raise Forbidden("You may not change this ticket.")
    directo = staff and nuevo == "cerrado" and anterior in CIERRE_DIRECTO  # seed 001: close from en_progreso
    if nuevo not in TRANSITIONS[anterior] and not directo:
        raise Conflict("That status change is not possible from the current status. From '%(antes)s' a "
                       "ticket may go to %(permitidos)s, not to '%(despues)s'.",
                       code="invalid_transition", antes=anterior, despues=nuevo,
                       permitidos=", ".join(TRANSITIONS[anterior]))
    if not staff and (anterior, nuevo) not in REQUESTER_MOVES:
        raise Forbidden("Requesters may only reopen or close a resolved ticket.")

    now = utcnow()
    ticket.estado = nuevo
    if anterior == "abierto" and staff:
        marcar_primera_respuesta(ticket)
    if directo:  # the implied resuelto step, in the history and dated
        ticket.fecha_resolucion = now
        record(ticket, actor, "estado", "estado", anterior, "resuelto")
        anterior = "resuelto"
    if nuevo == "resuelto":
        ticket.fecha_resolucion = now
    elif nuevo == "cerrado":
        ticket.fecha_cierre = now
    elif nuevo == "abierto":  # reopened: it is no longer resolved nor closed
        ticket.fecha_resolucion = None
        ticket.fecha_cierre = None
    record(ticket, actor, "estado", "estado", anterior, nuevo)
    por_cambiar(ticket, actor, anterior, nuevo)
    guardar(ticket)
    estado_cambiado.send(ticket, actor=actor, antes=anterior, despues=nuevo)
    return ticket


def cerrar_resueltos(dias: int) -> list[Ticket]:
    """Close every ``resuelto`` ticket resolved more than ``dias`` days ago whose requester has
    not written since (seed 003: "puede cerrarse automáticamente"). The system is the actor
    (``None`` in the history); the usual closing email goes out through the signal."""

    limite = utcnow() - timedelta(days=dias)
    respondio = select(Mensaje.id).where(Mensaje.ticket_id == Ticket.id, Mensaje.es_staff.is_(False),
                                         Mensaje.fecha > Ticket.fecha_resolucion).exists()
    candidatos = db.session.execute(
        select(Ticket).where(Ticket.estado == "resuelto", Ticket.fecha_resolucion <= limite, ~respondio)
        .order_by(Ticket.id)
    ).scalars().all()
    for ticket in candidatos:
        ticket.estado = "cerrado"
        ticket.fecha_cierre = utcnow()
        record(ticket, None, "estado", "estado", "resuelto", "cerrado")
        por_cambiar(ticket, None, "resuelto", "cerrado")
        db.session.flush()
        estado_cambiado.send(ticket, actor=None, antes="resuelto", despues="cerrado")
    return list(candidatos)


def actualizar_ticket(ticket: Ticket, actor: Usuario, data: TicketUpdate) -> Ticket:
    """Edit fields. Staff may edit any time before closure; the requester only while abierto."""
    changes = data.model_dump(exclude_unset=True, exclude={"version"})  # version: exigir_version's
    if not changes:
        raise ValidationFailed("Nothing to change.", code="empty_update")
    if can_manage(ticket, actor):
        if ticket.estado == "cerrado":
            raise Conflict("A closed ticket cannot be edited; reopen it first.")
    elif is_requester(ticket, actor):
        if ticket.estado != "abierto":
            raise Conflict("You can only edit your ticket while it is 'abierto'.")
    else:
        raise Forbidden("You may not edit this ticket.")

    validar_enlaces(changes.get("conversacion_whatsapp_id"), changes.get("comunicacion_email_id"))
    for campo in ("titulo", "descripcion", "prioridad", "conversacion_whatsapp_id", "comunicacion_email_id"):
        if campo in changes and changes[campo] is not None and changes[campo] != getattr(ticket, campo):
            antes = getattr(ticket, campo)
            setattr(ticket, campo, changes[campo])
            record(ticket, actor, "campo", campo, antes, changes[campo])
            if campo == "prioridad":
                prioridad_cambiada.send(ticket, actor=actor, antes=antes, despues=changes[campo])
    if changes.get("categoria") is not None:
        categoria = categoria_por_nombre(changes["categoria"])
        if categoria.id != ticket.categoria_id:
            record(ticket, actor, "campo", "categoria", ticket.categoria.nombre, categoria.nombre)
            ticket.categoria = categoria
            db.session.flush()
            categoria_cambiada.send(ticket, actor=actor)
    if changes.get("etiquetas") is not None:
        antes = [e.nombre for e in ticket.etiquetas]
        nuevas = etiquetas_por_nombre(changes["etiquetas"])
        if [e.nombre for e in nuevas] != antes:
            ticket.etiquetas = nuevas
            record(ticket, actor, "campo", "etiquetas", antes, [e.nombre for e in nuevas])
    guardar(ticket)
    return ticket


def agregar_nota(ticket: Ticket, actor: Usuario, texto: str) -> NotaInterna:
    bloquear(ticket)
    _require_manage(ticket, actor)
    nota = NotaInterna(ticket=ticket, autor=actor, texto=texto, fecha=utcnow())
    db.session.add(nota)
    record(ticket, actor, "nota", interno=True)
    guardar(ticket)
    return nota


def agregar_mensaje(ticket: Ticket, actor: Usuario, cuerpo: str) -> Mensaje:
    bloquear(ticket)
    staff = can_manage(ticket, actor)
    if not staff and not is_requester(ticket, actor):
        raise Forbidden("You may not write on this ticket.")
    if ticket.estado == "cerrado":
        raise Conflict("The ticket is closed; reopen it to continue the conversation.")
    mensaje = Mensaje(ticket=ticket, autor=actor, es_staff=staff, cuerpo=cuerpo, fecha=utcnow())
    db.session.add(mensaje)
    if staff:
        marcar_primera_respuesta(ticket)
    record(ticket, actor, "mensaje")
    guardar(ticket)
    mensaje_publicado.send(ticket, actor=actor, mensaje=mensaje)
    return mensaje


def mensajes(ticket: Ticket) -> list[Mensaje]:
    """The public thread, oldest first (reads only)."""
    return list(db.session.execute(
        select(Mensaje).where(Mensaje.ticket_id == ticket.id)
        .options(selectinload(Mensaje.autor), selectinload(Mensaje.cliente)).order_by(Mensaje.id)
    ).scalars().all())


def marcar_leidos(ticket: Ticket, lector: Usuario) -> list[Mensaje]:
    """Read receipts: ``lector`` has been shown the thread, so the other side's messages
    become read. The one write a GET of the thread makes (the page, its live refresh and
    GET /api/tickets/<id>/mensajes call it by this name and commit); returns the thread."""
    lista = mensajes(ticket)
    reader_is_staff = can_manage(ticket, lector)
    now = utcnow()
    for m in lista:
        other_side = (not m.es_staff) if reader_is_staff else m.es_staff
        if other_side and not m.leido:
            m.leido = True
            m.fecha_lectura = now
    db.session.flush()
    return lista


def asignar(ticket: Ticket, actor: Usuario, ingeniero_id: Optional[int]) -> Ticket:
    if actor.rol != "admin":
        raise Forbidden("Only an admin assigns tickets.")
    if ticket.estado == "cerrado":
        raise Conflict("A closed ticket cannot be reassigned.")
    anterior = ticket.ingeniero
    nuevo = None
    if ingeniero_id is not None:
        nuevo = db.session.get(Ingeniero, ingeniero_id)
        if nuevo is None or not nuevo.usuario.activo:
            raise ValidationFailed("Unknown engineer.", fields={"ingeniero_id": N_("No active engineer with that id.")})
        if not nuevo.disponible:
            raise Conflict("That engineer is not available. %(nombre)s is marked as away.", code="engineer_unavailable",
                           nombre=nuevo.usuario.nombre)
    if (anterior.id if anterior else None) == ingeniero_id:
        raise Conflict("The ticket is already assigned to that engineer.", code="no_change")
    ticket.ingeniero = nuevo
    record(ticket, actor, "asignacion", "ingeniero",
           anterior.usuario.nombre if anterior else None, nuevo.usuario.nombre if nuevo else None)
    guardar(ticket)
    if anterior is not None:
        ticket_desasignado.send(ticket, actor=actor, ingeniero=anterior)
    if nuevo is not None:
        ticket_asignado.send(ticket, actor=actor, ingeniero=nuevo)
    return ticket


# --- lists -------------------------------------------------------------------------------

def _por_telefono(q: str) -> list:
    """A q that looks like a phone number finds the tickets of the client with that number
    (WhatsApp tickets), however it is spaced: E.164 is stored, so compare the digits."""
    digitos = "".join(ch for ch in q if ch.isdigit())
    if len(digitos) < 6 or len(digitos) < len(q.replace(" ", "").replace("+", "").replace("-", "")):
        return []
    # The clients first (a few, from a small table): no client with those digits, no branch; a
    # subquery in the search's OR kept PostgreSQL from combining the branches' indexes (it tested
    # every ticket: 89 ms for a 6-digit q at a million, most of them no phone at all).
    clientes = db.session.execute(select(Cliente.id).where(Cliente.telefono.like(f"%{digitos}%"))).scalars().all()
    if not clientes:
        return []
    if db.session.get_bind().dialect.name == "sqlite":
        # As ids of the client's tickets (their index): every branch of the search's OR then
        # reads an index, where a test of each ticket's client scanned them all (150 ms at a
        # million). PostgreSQL plans that form worse (0.6 s instead of 0.15 s).
        suyos = aliased(Ticket)
        return [Ticket.id.in_(select(suyos.id).where(suyos.cliente_id.in_(clientes)))]
    return [Ticket.cliente_id.in_(clientes)]


# A tag on more tickets than this is "broad": its lists walk their own order (see _con_etiqueta).
LIMITE_ETIQUETA = 2000


def _etiqueta_id(etiqueta: str):
    """The id of tag ``etiqueta`` as a scalar subquery, not a join: probing a ticket along the
    list's order is then one lookup in the links' index (PostgreSQL joined each probe to
    etiquetas, twice the cost)."""
    return select(Etiqueta.id).where(Etiqueta.nombre == etiqueta.strip().lower()).scalar_subquery()


def _enlaces(etiqueta: str):
    """The ticket ids tagged ``etiqueta`` (read from the (etiqueta_id, fecha_creacion, ticket_id)
    index alone)."""
    return select(ticket_etiquetas.c.ticket_id).where(ticket_etiquetas.c.etiqueta_id == _etiqueta_id(etiqueta))


def _por_fecha_de_etiqueta(f: TicketFilters) -> bool:
    """A list filtered by a tag and ordered by creation date: read along the tag's links, which
    carry their ticket's date (ix_ticket_etiquetas_etiqueta_fecha), so a deep page is one range
    of that index instead of a walk of every ticket's date probing its links (page 50 of a tag at
    a million: 20,000 probes). The join, its order and its keyset go together (filtered_select,
    claves_orden)."""
    return bool(f.etiqueta) and f.orden.lstrip("-") == "fecha_creacion"


def _con_etiqueta(etiqueta: str):
    """WHERE clause: the tickets tagged ``etiqueta``. On SQLite a broad tag (one bounded count)
    is probed along the list's own order, "+ 0" keeping the primary key from driving the plan:
    looking up each of 50,000 tagged tickets and sorting them all made a deep page of a million
    tickets cost 100 ms. A rarer tag starts from its links (walking the order would read the
    whole index to find a handful). PostgreSQL's planner weighs the two itself."""
    ids = _enlaces(etiqueta)
    if db.session.get_bind().dialect.name == "sqlite":
        n = db.session.execute(select(func.count()).select_from(ids.limit(LIMITE_ETIQUETA + 1).subquery())).scalar_one()
        if n > LIMITE_ETIQUETA:
            return (Ticket.id + 0).in_(ids)
    return Ticket.id.in_(ids)


def en(columna, valores):
    """``columna IN (...)`` with a bound parameter per value: an expanding parameter (what
    ``in_`` makes of a list) has SQLAlchemy rewrite the statement's text at every execution,
    which the lists' prebuilt statements (``forma_de_lista``) would otherwise pay each time."""
    return columna.in_([bindparam(None, v, type_=columna.type) for v in valores])


def filtered_select(viewer: Usuario, f: TicketFilters, base_scope=None):
    """SELECT of the tickets ``viewer`` may see, narrowed by ``f`` (lists and exports share it)."""
    stmt = select(Ticket).where(scope_clause(viewer) if base_scope is None else base_scope)
    if f.estado:
        stmt = stmt.where(en(Ticket.estado, f.estado))
    if f.prioridad:
        stmt = stmt.where(en(Ticket.prioridad, f.prioridad))
    if f.categoria:
        stmt = stmt.where(Ticket.categoria_id.in_(
            select(Categoria.id).where(func.lower(Categoria.nombre) == f.categoria.strip().lower())))
    if f.ingeniero_id == "ninguno":
        stmt = stmt.where(Ticket.ingeniero_id.is_(None))
    elif f.ingeniero_id is not None:
        stmt = stmt.where(Ticket.ingeniero_id == f.ingeniero_id)
    if _por_fecha_de_etiqueta(f):  # a link per (ticket, tag): the join adds no row
        stmt = stmt.join(ticket_etiquetas, and_(ticket_etiquetas.c.ticket_id == Ticket.id,
                                                ticket_etiquetas.c.etiqueta_id == _etiqueta_id(f.etiqueta)))
    elif f.etiqueta:
        stmt = stmt.where(_con_etiqueta(f.etiqueta))
    if f.q:  # full text (busqueda.py), exact number, or a client's phone
        stmt = stmt.where(or_(*busqueda.condicion(f.q), *_por_telefono(f.q)))
        if "orden" not in f.model_fields_set:  # no order asked: best match first
            stmt = busqueda.ordenar_por_relevancia(stmt, f.q)
    if f.desde_dt:
        stmt = stmt.where(Ticket.fecha_creacion >= f.desde_dt)
    if f.hasta_dt:
        stmt = stmt.where(Ticket.fecha_creacion <= f.hasta_dt)
    return stmt


def rango_prioridad():
    """The rank of ``Ticket.prioridad`` (critica 4 … baja 1): models.RANGO_PRIORIDAD_SQL, the
    expression of the index that serves orden=prioridad, written with the same literals."""
    return case(*((Ticket.prioridad == literal_column(f"'{p}'"), literal_column(str(n)))
                  for p, n in PRIORIDAD_RANK.items()))


def claves_orden(f: TicketFilters) -> list:
    """The sort key of ``f.orden``: (expression, descending) pairs ending with the id, so that
    every row has its own place (ORDER BY and the keyset of the next page share it)."""
    campo = f.orden.lstrip("-")
    desc = f.orden.startswith("-")
    if campo == "numero_ticket":
        # The number is the id zero-padded to six digits (asignar_numero): as text "TKT-1000000"
        # would sort before "TKT-200000"; the id sorts every number, past a million too.
        return [(Ticket.id, desc)]
    if _por_fecha_de_etiqueta(f):  # the links' copy of the date (filtered_select joins them)
        return [(ticket_etiquetas.c.fecha_creacion, desc), (ticket_etiquetas.c.ticket_id, desc)]
    col = rango_prioridad() if campo == "prioridad" else getattr(Ticket, campo)
    return [(col, desc), (Ticket.id, desc)]


def order_by(f: TicketFilters):
    """ORDER BY of ``f.orden`` with a stable tie-break (lists and exports share it)."""
    return tuple(col.desc() if desc else col.asc() for col, desc in claves_orden(f))


def _por_id(modelo, ids) -> dict:
    ids = {i for i in ids if i is not None}
    return {o.id: o for o in db.session.scalars(select(modelo).where(modelo.id.in_(ids)))} if ids else {}


def completar(lista: list[Ticket], with_notes: bool = False) -> list[Ticket]:
    """Fill what ``ticket_dict`` shows (requester, client, category, engineer and their account,
    tags; with ``with_notes`` the internal notes and their authors) into ``lista``'s tickets, one
    plain SELECT per kind keyed by their ids (the support API's list; the ticket lists read plain
    rows instead: ``filas``). selectinload did the same with per-call machinery that cost more CPU
    than the queries (issue 13); the relationships are set as loaded, so no further SQL follows."""
    if not lista:
        return lista
    ids = [t.id for t in lista]
    ingenieros = _por_id(Ingeniero, (t.ingeniero_id for t in lista))
    usuarios = _por_id(Usuario, [t.usuario_id for t in lista] + [i.usuario_id for i in ingenieros.values()])
    clientes = _por_id(Cliente, (t.cliente_id for t in lista))
    categorias = _por_id(Categoria, (t.categoria_id for t in lista))
    etiquetas = {i: [] for i in ids}
    for ticket_id, etiqueta in db.session.execute(
            select(ticket_etiquetas.c.ticket_id, Etiqueta).join(Etiqueta, Etiqueta.id == ticket_etiquetas.c.etiqueta_id)
            .where(ticket_etiquetas.c.ticket_id.in_(ids)).order_by(Etiqueta.nombre)):
        etiquetas[ticket_id].append(etiqueta)
    for ingeniero in ingenieros.values():
        set_committed_value(ingeniero, "usuario", usuarios.get(ingeniero.usuario_id))
    for t in lista:
        set_committed_value(t, "usuario", usuarios.get(t.usuario_id))
        set_committed_value(t, "cliente", clientes.get(t.cliente_id))
        set_committed_value(t, "categoria", categorias.get(t.categoria_id))
        set_committed_value(t, "ingeniero", ingenieros.get(t.ingeniero_id))
        set_committed_value(t, "etiquetas", etiquetas[t.id])
    if with_notes:
        _completar_notas(lista, ids)
    return lista


def _completar_notas(lista: list[Ticket], ids: list[int]) -> None:
    notas = {i: [] for i in ids}
    filas = db.session.scalars(select(NotaInterna).where(NotaInterna.ticket_id.in_(ids)).order_by(NotaInterna.id)).all()
    autores = _por_id(Usuario, (n.autor_id for n in filas))
    for nota in filas:
        set_committed_value(nota, "autor", autores.get(nota.autor_id))
        notas[nota.ticket_id].append(nota)
    for t in lista:
        set_committed_value(t, "notas", notas[t.id])


# The ticket's own columns, then what ``_FILAS`` joins to them, in its SELECT's order.
_DEL_TICKET = ("id", "numero_ticket", "titulo", "descripcion", "prioridad", "estado", "usuario_id", "cliente_id",
               "ingeniero_id", "canal", "fecha_creacion", "fecha_actualizacion", "fecha_primera_respuesta",
               "fecha_resolucion", "fecha_cierre", "conversacion_whatsapp_id", "comunicacion_email_id", "version",
               "sla_resolucion_vence", "sla_primera_respuesta_vence")
_COLUMNAS_DE_FILA = (*_DEL_TICKET, "categoria_nombre", "usuario_nombre", "cliente_nombre", "ingeniero_usuario_id",
                     "ingeniero_nombre", "con_etiquetas", "con_notas")


class FilaTicket(namedtuple("FilaTicket", _COLUMNAS_DE_FILA)):
    """A ticket as a list row shows it (the JSON of the API lists, the panels' rows): its columns
    and the names of its requester, client, category, engineer and tags, read by ``filas``. Plain
    attributes, no ORM object: building 25 tickets and their relations was most of a list's CPU
    (issue 13). Reads like a ``Ticket`` where the rules need one (``ve_notas``, ``sla.es_vencido``).
    A named tuple of the SELECT's row (``de``), made in one call: setting its 27 attributes one by
    one cost five times as much; ``etiquetas`` and ``notas`` are filled after."""

    DEL_TICKET = _DEL_TICKET
    COLUMNAS = _COLUMNAS_DE_FILA

    @classmethod
    def de(cls, fila) -> FilaTicket:
        hecha = cls._make(fila)
        hecha.etiquetas, hecha.notas = [], []
        return hecha

    @property
    def solicitante_nombre(self) -> str:
        """As ``Ticket.solicitante_nombre``: the requesting account, else the client."""
        if self.usuario_id is not None:
            return self.usuario_nombre
        return self.cliente_nombre if self.cliente_id is not None else ""


_ingeniero_usuario = aliased(Usuario)
# Prebuilt. One SELECT for the rows with their people and category joined by primary key,
# whether they have tags and notes (index probes: a page without any costs no further
# statement), then one for the page's tags and, for staff, one for its notes. The page's ids are
# bound one parameter each, in a statement kept per number of ids (``_de_ids``): an expanding
# parameter had SQLAlchemy rewrite the statement's text at every execution, 80 µs of a page.
def _select_de_filas(etiquetas):
    """The SELECT of list rows, ``etiquetas`` in the column that says whether a row has tags."""
    return (select(*(getattr(Ticket, c) for c in FilaTicket.DEL_TICKET), Categoria.nombre,
                   Usuario.nombre, Cliente.nombre, Ingeniero.usuario_id, _ingeniero_usuario.nombre,
                   etiquetas, exists().where(NotaInterna.ticket_id == Ticket.id))
            .join(Categoria, Categoria.id == Ticket.categoria_id)
            .outerjoin(Usuario, Usuario.id == Ticket.usuario_id)
            .outerjoin(Cliente, Cliente.id == Ticket.cliente_id)
            .outerjoin(Ingeniero, Ingeniero.id == Ticket.ingeniero_id)
            .outerjoin(_ingeniero_usuario, _ingeniero_usuario.id == Ingeniero.usuario_id))


_CON_ETIQUETAS = FilaTicket.COLUMNAS.index("con_etiquetas")
_TIENE_ETIQUETAS = exists().where(ticket_etiquetas.c.ticket_id == Ticket.id)
_FILAS = _select_de_filas(_TIENE_ETIQUETAS)
_ETIQUETAS_DE_FILAS = (select(ticket_etiquetas.c.ticket_id, Etiqueta.nombre)
                       .join(Etiqueta, Etiqueta.id == ticket_etiquetas.c.etiqueta_id).order_by(Etiqueta.nombre))
_NOTAS_DE_FILAS = (select(NotaInterna.ticket_id, NotaInterna.id, NotaInterna.autor_id, Usuario.nombre,
                          NotaInterna.texto, NotaInterna.fecha)
                   .outerjoin(Usuario, Usuario.id == NotaInterna.autor_id).order_by(NotaInterna.id))


_DE_IDS = {"filas": (Ticket.id, _FILAS), "etiquetas": (ticket_etiquetas.c.ticket_id, _ETIQUETAS_DE_FILAS),
           "notas": (NotaInterna.ticket_id, _NOTAS_DE_FILAS)}


@lru_cache(maxsize=512)
def _de_ids(que: str, n: int) -> Select:
    """Statement ``que`` ("filas", "etiquetas", "notas") for ``n`` ids."""
    columna, base = _DE_IDS[que]
    return base.where(columna.in_([bindparam(f"id_{i}") for i in range(n)]))


def _ids(ids: list[int]) -> dict:
    return {f"id_{i}": v for i, v in enumerate(ids)}


# One ticket's GET (``fila_visible``) reads its list row, only if the viewer may see it (see
# _UNO), by ``id = :id``. On PostgreSQL the row brings its tags' names too, in the lists' order
# (an array of a correlated subquery where the lists probe whether there are any): a ticket with
# tags is one round trip, not two. SQLite, whose round trips cross no network, reads them as the
# lists do.
_NOMBRES_DE_ETIQUETAS = func.array(
    select(Etiqueta.nombre).join(ticket_etiquetas, Etiqueta.id == ticket_etiquetas.c.etiqueta_id)
    .where(ticket_etiquetas.c.ticket_id == Ticket.id).order_by(Etiqueta.nombre).scalar_subquery(),
    type_=ARRAY(String))


def _una_fila(etiquetas) -> dict[str, Select]:
    """By ``_ambito``: the SELECT of one list row by id in that scope (``etiquetas`` as in
    ``_select_de_filas``)."""
    stmt = _select_de_filas(etiquetas).where(Ticket.id == bindparam("id"))
    return {"admin": stmt, **{ambito: stmt.where(columna == bindparam("viewer"))
                              for ambito, columna in _COLUMNA_AMBITO.items()}}


_UNA_FILA = {False: _una_fila(_TIENE_ETIQUETAS),  # by "on PostgreSQL"
             True: _una_fila(_NOMBRES_DE_ETIQUETAS)}


def filas(ids: list[int], viewer: Optional[Usuario] = None) -> list[FilaTicket]:
    """The list rows of tickets ``ids``, in that order (one deleted meanwhile is left out), with
    their tags and, with ``viewer``, the internal notes of the rows ``viewer`` sees them on
    (``ve_notas``) as (id, autor id, autor nombre, texto, fecha) rows."""
    if not ids:
        return []
    por_id = {fila.id: fila for fila in map(FilaTicket.de, leer(_de_ids("filas", len(ids)), _ids(ids)))}
    return _completar_filas([por_id[i] for i in ids if i in por_id], viewer)


def _completar_filas(lista: list[FilaTicket], viewer: Optional[Usuario], *, etiquetas: bool = True) -> list[FilaTicket]:
    """``lista``'s rows with their tags (``etiquetas``: not read yet) and the notes ``viewer`` sees."""
    por_id = {fila.id: fila for fila in lista}
    con_etiquetas = [f.id for f in lista if f.con_etiquetas] if etiquetas else []
    if con_etiquetas:
        for ticket_id, nombre in leer(_de_ids("etiquetas", len(con_etiquetas)), _ids(con_etiquetas)):
            por_id[ticket_id].etiquetas.append(nombre)
    con_notas = [f.id for f in lista if f.con_notas and viewer is not None and ve_notas(f, viewer)]
    if con_notas:
        for ticket_id, *nota in leer(_de_ids("notas", len(con_notas)), _ids(con_notas)):
            por_id[ticket_id].notas.append(nota)
    return lista


# The filters ``ConteoTickets`` can answer, and the fields of ``TicketFilters`` that filter nothing.
_FILTROS_CONTADOS = {"estado", "prioridad", "categoria", "ingeniero_id"}
_NO_FILTRAN = {"orden", "page", "per_page", "cursor"}


def _filtros_de_admin(viewer: Usuario, f: TicketFilters, base_scope=None) -> Optional[set[str]]:
    """The fields of ``f`` that filter an admin's list of every ticket (those set); None for any
    other viewer or scope. The rollups and shortcuts below answer only such lists."""
    if viewer.rol != "admin" or base_scope is not None:
        return None
    return {campo for campo in TicketFilters.model_fields if campo not in _NO_FILTRAN and getattr(f, campo)}


def total_acumulado(viewer: Usuario, f: TicketFilters, base_scope=None,
                    forma: Optional[FormaDeLista] = None) -> Optional[int]:
    """The exact number of tickets of an admin's list filtered on estado, prioridad, categoría
    and ingeniero only, summed from ``ConteoTickets`` (a few hundred rows, not a million-row
    COUNT), or on a tag alone (its links); None for any other list (another scope or filter),
    which COUNTs its rows. ``forma``: the list's ``forma_de_lista``, when the caller has it."""
    filtros = _filtros_de_admin(viewer, f, base_scope)
    if filtros is None:
        return None
    otros = filtros - _FILTROS_CONTADOS
    if filtros == {"etiqueta"}:
        # Tag alone: its links, counted in the index (a link always has its ticket: foreign key).
        return db.session.execute(select(func.count()).select_from(_enlaces(f.etiqueta).subquery())).scalar_one()
    if otros:
        return None
    forma = forma or forma_de_lista(viewer, f, base_scope)
    return acumulados.contar_tickets(forma.total if forma else _consulta_de_total(f))


def _consulta_de_total(f: TicketFilters):
    """The SELECT of ``total_acumulado`` for filters on estado, prioridad, categoría and ingeniero."""
    c = acumulados.CONTEOS.c
    condiciones = []
    if f.estado:
        condiciones.append(en(c.estado, f.estado))
    if f.prioridad:
        condiciones.append(en(c.prioridad, f.prioridad))
    if f.categoria:
        condiciones.append(c.categoria_id.in_(
            select(Categoria.id).where(func.lower(Categoria.nombre) == f.categoria.strip().lower())))
    if f.ingeniero_id is not None:
        condiciones.append(c.ingeniero == (0 if f.ingeniero_id == "ninguno" else f.ingeniero_id))
    return acumulados.consulta_de_conteo(condiciones)


class FormaDeLista(NamedTuple):
    """The statements of one list shape, built once (``forma_de_lista``)."""

    orden: Select  # filtered_select ordered by claves_orden
    claves: list
    ids: Select  # paneles.consulta_de_ids of ``orden``
    total: Optional[Select]  # _consulta_de_total, for an admin's list of every ticket


def forma_de_lista(viewer: Usuario, f: TicketFilters, base_scope=None) -> Optional[FormaDeLista]:
    """The statements of a list filtered on estado, prioridad, categoría, ingeniero and orden
    only, in the viewer's own scope, the same objects for the same shape: their cache keys (a
    walk of the whole statement by SQLAlchemy at each execution of a statement built anew) are
    then computed once per process, and building and walking them was a third of the CPU of an
    admin's open-ticket list (issue 13). None for any other list (a tag, q, dates, another scope)."""
    if base_scope is not None or f.etiqueta or f.q or f.desde or f.hasta:
        return None
    return _forma(_ambito(viewer), tuple(f.estado), tuple(f.prioridad),
                  f.categoria.strip().lower() if f.categoria else None, f.ingeniero_id, f.orden)


@lru_cache(maxsize=512)
def _forma(ambito: tuple, estado: tuple, prioridad: tuple, categoria: Optional[str], ingeniero_id, orden: str):
    from paneles import consulta_de_ids  # paneles imports this module

    f = TicketFilters(estado=list(estado), prioridad=list(prioridad), categoria=categoria,
                      ingeniero_id=ingeniero_id, orden=orden)
    tipo, valor = ambito
    scope = true() if tipo == "admin" else _COLUMNA_AMBITO[tipo] == valor
    claves = claves_orden(f)
    orden_stmt = filtered_select(None, f, scope).order_by(*order_by(f))
    return FormaDeLista(orden_stmt, claves, consulta_de_ids(orden_stmt, claves),
                        _consulta_de_total(f) if tipo == "admin" else None)


# Below this many rows a page's OFFSET costs less than reading the tickets per day to skip them.
OFFSET_DIRECTO = 10_000


def _borde_de_pagina(viewer: Usuario, f: TicketFilters, base_scope=None):
    """For a deep page of every ticket (an admin's list, no filter) in creation order: the
    clause that starts the list at the page's day and the tickets it leaves out, counted by day
    in the statistics rollup (``acumulados.borde_de_posicion``, exact like the list's total), so
    that OFFSET skips a day's tickets at most (paneles.paginar_por_clave's ``borde``). None for
    any other list or a shallow page."""
    posicion = (f.page - 1) * f.per_page
    if (posicion < OFFSET_DIRECTO or f.orden.lstrip("-") != "fecha_creacion"
            or _filtros_de_admin(viewer, f, base_scope) != set()):
        return None
    desc = f.orden.startswith("-")
    borde = acumulados.borde_de_posicion(posicion, desc)
    if borde is None:
        return None
    instante, antes = borde
    return (Ticket.fecha_creacion < instante if desc else Ticket.fecha_creacion >= instante), antes


def listar(viewer: Usuario, f: TicketFilters, base_scope=None, with_notes: bool = False, *,
           contexto: str = "", tope: Optional[int] = None):
    """One ``paneles.Pagina`` of ticket rows (``FilaTicket``; with ``with_notes``, the internal
    notes of the rows the viewer sees them on), honouring the filters and the viewer's scope, by
    ``f.page`` or by the keyset cursor ``f.cursor``, with the cursor of the next page.
    ``contexto`` names the list (path, filters) that cursors are bound to, with the viewer;
    ``tope`` caps the count (None: exact). A search counts its matches only up to
    ``busqueda.TOPE_TOTAL``, and its first visit of a page takes the search's own plan (the
    page's ids and that count from one statement); a search ranked by relevance (``q`` without
    ``orden``) has no key to seek: its cursors carry the position."""
    from paneles import firmar_cursor, paginar_por_clave  # the one pagination (paneles imports this module)

    contexto = f"{viewer.id}|{contexto}"
    forma = forma_de_lista(viewer, f, base_scope)
    if forma is not None:
        pagina = paginar_por_clave(forma.orden, forma.claves, contexto, f.page, f.per_page, f.cursor, tope,
                                   None if f.cursor else total_acumulado(viewer, f, base_scope, forma),
                                   borde=None if f.cursor else _borde_de_pagina(viewer, f, base_scope), ids=forma.ids)
        pagina.items = filas(pagina.items, viewer if with_notes else None)
        return pagina
    por_relevancia = bool(f.q) and "orden" not in f.model_fields_set
    stmt = filtered_select(viewer, f, base_scope).order_by(*order_by(f))
    if f.q and not f.cursor:
        # what q's words find, counted apart on the other filters (not when q is also a phone)
        filtros = None if _por_telefono(f.q) else filtered_select(viewer, f.model_copy(update={"q": None}), base_scope)
        solo_q = _filtros_de_admin(viewer, f, base_scope) == {"q"}
        pagina = busqueda.paginar(stmt, f.page, f.per_page, f.q, filtros, solo_q)
        pagina.items = filas(pagina.items, viewer if with_notes else None)
        pagina.keyset = True
        if not pagina.total_exacto or f.page * f.per_page < pagina.total:
            pagina.siguiente = firmar_cursor(contexto, f.page + 1, pagina.total, pagina.total_exacto,
                                             posicion=f.page * f.per_page)
        return pagina
    total = None if f.cursor else total_acumulado(viewer, f, base_scope)
    pagina = paginar_por_clave(stmt, None if por_relevancia else claves_orden(f), contexto,
                               f.page, f.per_page, f.cursor, tope, total,
                               borde=None if f.cursor else _borde_de_pagina(viewer, f, base_scope))
    pagina.items = filas(pagina.items, viewer if with_notes else None)
    return pagina


def carga_abierta(ingeniero_ids: Optional[list[int]] = None) -> dict[int, int]:
    """Open tickets per engineer, from the statistics rollup (``acumulados``: exact, kept in every
    ticket's transaction): a few rows instead of counting every open ticket (the engineers' page,
    the assign dialog, ``/api/ingenieros``)."""
    filas = acumulados.marginales("ingeniero")["ingeniero"]
    carga = {int(clave): cifras["abiertos"] for clave, cifras in filas.items() if clave and cifras["abiertos"]}
    return carga if ingeniero_ids is None else {i: carga[i] for i in ingeniero_ids if i in carga}
