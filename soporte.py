"""Seed 003's support-chat API as a thin adapter over Mesa's tickets and public thread.

One set of tickets, never a second table: a seed 003 "support ticket" is a ``Ticket``, a
"support message" is a ``Mensaje`` (``sender_type`` admin = written by staff), its
``message_type``/``file_url`` come from the message's first attachment (``Adjunto``).
Values map both ways (``ESTADO_*``, ``PRIORIDAD_*``); categories follow the admins' mapping in
``SUPPORT_CATEGORIAS`` (config.py), an unknown one lands in General.

Plain domain functions: they raise ``DomainError``s, flush, never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Optional

import click
from flask import current_app, g, url_for
from pydantic import Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

import tickets
from errors import Forbidden, ValidationFailed
from models import Adjunto, Categoria, Ingeniero, Mensaje, SoporteCategoria, Ticket, Usuario, db
from schemas import Body, DbId, Salida, Texto, TicketCreate, Titulo, parse

PREFIJO = "/admin/api/support/"

ESTADO_A_MESA = {"open": "abierto", "in_progress": "en_progreso", "resolved": "resuelto", "closed": "cerrado"}
ESTADO_DE_MESA = {"abierto": "open", "en_progreso": "in_progress", "en_espera": "in_progress",
                  "resuelto": "resolved", "cerrado": "closed"}
PRIORIDAD_A_MESA = {"low": "baja", "medium": "media", "high": "alta", "urgent": "critica"}
PRIORIDAD_DE_MESA = {v: k for k, v in PRIORIDAD_A_MESA.items()}
CATEGORIAS_SEED = ("general", "technical", "billing", "flight", "order")
CATEGORIA_POR_DEFECTO = "General"

Status = Literal["open", "in_progress", "resolved", "closed"]
Priority = Literal["low", "medium", "high", "urgent"]
MessageType = Literal["text", "image", "file"]


# --- request bodies (seed 003's field names) ---------------------------------------------------

class SupportTicketCreate(Body):
    user_id: Optional[DbId] = None
    subject: Titulo
    description: Texto
    priority: Priority = "medium"
    category: str = Field(default="general", max_length=80)


class SupportUserMessage(Body):
    user_id: Optional[DbId] = None
    message: Texto
    message_type: MessageType = "text"


class SupportAdminMessage(Body):
    message: Texto
    message_type: MessageType = "text"


class SupportStatus(Body):
    status: Status
    assigned_to: Optional[DbId] = None


# --- output shapes ---------------------------------------------------------------------------------

class SoporteMensajeOut(Salida):
    id: int
    ticket_id: int
    sender_id: Optional[int]
    sender_type: Literal["user", "admin"]
    message: str
    message_type: MessageType
    file_url: Optional[str]
    is_read: bool
    created_at: datetime


class SoporteTicketOut(Salida):
    id: int
    ticket_number: str
    user_id: Optional[int]
    user_name: Optional[str]
    subject: str
    description: str
    priority: Priority
    status: Status
    category: str
    assigned_to: Optional[int]
    assigned_name: Optional[str]
    created_at: datetime
    updated_at: datetime
    resolved_at: Optional[datetime]
    unread_count: int = 0
    messages: Optional[list[SoporteMensajeOut]] = None


class SoporteEstadisticasOut(Salida):
    total_tickets: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    unread_messages: int


# --- mapping ----------------------------------------------------------------------------------------

def mapa_categorias() -> dict[str, str]:
    """seed 003 category → Mesa category name: the admins' rows (``SoporteCategoria``) over
    SUPPORT_CATEGORIAS in config (``technical=Software,...``). Read once per request."""
    if "soporte_mapa" in g:
        return g.soporte_mapa
    mapa = {}
    for par in (current_app.config.get("SUPPORT_CATEGORIAS") or "").split(","):
        if "=" in par:
            clave, nombre = par.split("=", 1)
            if clave.strip() and nombre.strip():
                mapa[clave.strip().lower()] = nombre.strip()
    for fila in db.session.execute(select(SoporteCategoria).options(selectinload(SoporteCategoria.categoria))
                                   ).scalars():
        mapa[fila.clave] = fila.categoria.nombre
    g.soporte_mapa = mapa
    return mapa


def categoria_mesa(category: str) -> str:
    """The Mesa category for a seed 003 value; unknown (or retired) ones go to General."""
    nombre = mapa_categorias().get((category or "").strip().lower(), CATEGORIA_POR_DEFECTO)
    existe = db.session.execute(select(Categoria.id).where(func.lower(Categoria.nombre) == nombre.lower(),
                                                           Categoria.activa.is_(True))).first()
    return nombre if existe else CATEGORIA_POR_DEFECTO


def categoria_seed(nombre: str) -> str:
    for clave, destino in mapa_categorias().items():
        if destino.lower() == nombre.lower():
            return clave
    return "general"


def mapeo(clave: str, categoria: str) -> SoporteCategoria:
    """An admin maps seed 003's ``clave`` to the Mesa category named ``categoria`` (422 if unknown)."""
    clave = clave.strip().lower()
    destino = tickets.categoria_por_nombre(categoria)
    fila = db.session.execute(select(SoporteCategoria).where(SoporteCategoria.clave == clave)).scalar_one_or_none()
    if fila is None:
        fila = SoporteCategoria(clave=clave, categoria=destino)
        db.session.add(fila)
    fila.categoria = destino
    db.session.flush()
    g.pop("soporte_mapa", None)
    return fila


def mapeos() -> list[dict]:
    mapa = mapa_categorias()
    claves = list(CATEGORIAS_SEED) + sorted(k for k in mapa if k not in CATEGORIAS_SEED)
    return [{"clave": c, "categoria": categoria_mesa(c)} for c in claves]


class MapeoCategoria(Body):
    categoria: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


def _autorizar_usuario(actor: Usuario, user_id: Optional[int]) -> Usuario:
    """``user_id`` must be the caller unless the caller is staff (then it names a usuario)."""
    if user_id is None or user_id == actor.id:
        return actor
    if not actor.es_staff:
        raise Forbidden("user_id must be your own.", code="forbidden_user")
    usuario = db.session.get(Usuario, user_id)
    if usuario is None or not usuario.activo:
        raise ValidationFailed("Unknown user.", fields={"user_id": "No active user with this id."})
    return usuario


# --- serialization -----------------------------------------------------------------------------------

def tipo_mensaje(adjunto: Optional[Adjunto]) -> str:
    if adjunto is None:
        return "text"
    import adjuntos

    return "image" if adjunto.tipo_mime in adjuntos.INLINE else "file"


def mensaje_data(mensaje: Mensaje, adjunto: Optional[Adjunto] = None) -> dict:
    return {
        "id": mensaje.id, "ticket_id": mensaje.ticket_id, "sender_id": mensaje.autor_id,
        "sender_type": "admin" if mensaje.es_staff else "user", "message": mensaje.cuerpo,
        "message_type": tipo_mensaje(adjunto),
        "file_url": url_for("descargar_adjunto", adjunto_id=adjunto.id) if adjunto is not None else None,
        "is_read": mensaje.leido, "created_at": mensaje.fecha,
    }


def ticket_data(ticket: Ticket, no_leidos: int = 0, mensajes: Optional[list[dict]] = None) -> dict:
    return {
        "id": ticket.id, "ticket_number": ticket.numero_ticket, "user_id": ticket.usuario_id,
        "user_name": ticket.usuario.nombre if ticket.usuario else (ticket.cliente.nombre if ticket.cliente else None),
        "subject": ticket.titulo, "description": ticket.descripcion,
        "priority": PRIORIDAD_DE_MESA[ticket.prioridad], "status": ESTADO_DE_MESA[ticket.estado],
        "category": categoria_seed(ticket.categoria.nombre),
        "assigned_to": ticket.ingeniero.usuario_id if ticket.ingeniero else None,
        "assigned_name": ticket.ingeniero.usuario.nombre if ticket.ingeniero else None,
        "created_at": ticket.fecha_creacion, "updated_at": ticket.fecha_actualizacion,
        "resolved_at": ticket.fecha_resolucion, "unread_count": no_leidos, "messages": mensajes,
    }


def _no_leidos_clause(lector: Usuario):
    """Unread messages from the other side of ``lector``."""
    return (Mensaje.leido.is_(False), Mensaje.es_staff.is_(not lector.es_staff))


def no_leidos_por_ticket(ids: list[int], lector: Usuario) -> dict[int, int]:
    if not ids:
        return {}
    rows = db.session.execute(select(Mensaje.ticket_id, func.count()).where(
        Mensaje.ticket_id.in_(ids), *_no_leidos_clause(lector)).group_by(Mensaje.ticket_id))
    return {r[0]: r[1] for r in rows}


def adjuntos_de(mensajes: list[Mensaje]) -> dict[int, Adjunto]:
    """The first attachment of each message (one query)."""
    ids = [m.id for m in mensajes]
    if not ids:
        return {}
    primero: dict[int, Adjunto] = {}
    for a in db.session.execute(select(Adjunto).where(Adjunto.mensaje_id.in_(ids)).order_by(Adjunto.id)).scalars():
        primero.setdefault(a.mensaje_id, a)
    return primero


# --- operations -----------------------------------------------------------------------------------------

def crear(actor: Usuario, data: SupportTicketCreate) -> Ticket:
    solicitante = _autorizar_usuario(actor, data.user_id)
    datos = parse(TicketCreate, {"titulo": data.subject, "descripcion": data.description,
                                 "prioridad": PRIORIDAD_A_MESA[data.priority],
                                 "categoria": categoria_mesa(data.category)})
    return tickets.crear_ticket(datos, usuario=solicitante, canal="api")


def listar(viewer: Usuario, *, status: Optional[str] = None, usuario_id: Optional[int] = None) -> list[Ticket]:
    stmt = select(Ticket).where(tickets.scope_clause(viewer))
    if usuario_id is not None:
        stmt = stmt.where(Ticket.usuario_id == usuario_id)
    if status:
        if status not in ESTADO_A_MESA:
            raise ValidationFailed("Unknown status.", fields={"status": "One of open, in_progress, resolved, closed."})
        estados = [e for e, s in ESTADO_DE_MESA.items() if s == status]
        stmt = stmt.where(Ticket.estado.in_(estados))
    return tickets.completar(list(db.session.execute(stmt.order_by(Ticket.fecha_creacion.desc(), Ticket.id.desc())
                                                     .limit(500)).scalars()))


def tickets_de_usuario(actor: Usuario, user_id: int) -> list[Ticket]:
    _autorizar_usuario(actor, user_id)
    return listar(actor, usuario_id=user_id)


def detalle(ticket: Ticket, lector: Usuario) -> dict:
    """The ticket with its whole thread; reading marks the other side's messages read."""
    lista = tickets.marcar_leidos(ticket, lector)  # seed 003: reading the detail marks them read
    adj = adjuntos_de(lista)
    return ticket_data(ticket, 0, [mensaje_data(m, adj.get(m.id)) for m in lista])


def escribir(ticket: Ticket, actor: Usuario, texto: str, *, user_id: Optional[int] = None,
             archivos=()) -> tuple[Mensaje, Optional[Adjunto]]:
    if user_id is not None:
        _autorizar_usuario(actor, user_id)
    mensaje = tickets.agregar_mensaje(ticket, actor, texto)
    import adjuntos

    guardados = adjuntos.guardar_varios(archivos, ticket_id=ticket.id, mensaje_id=mensaje.id, subido_por_id=actor.id)
    return mensaje, (guardados[0] if guardados else None)


def cambiar_estado(ticket: Ticket, actor: Usuario, data: SupportStatus) -> Ticket:
    """Assign (``assigned_to`` is the engineer's user id) then move to ``status``; a move
    seed 003 makes in one step that Mesa makes in two goes through ``en_progreso``."""
    if data.assigned_to is not None:
        actual = ticket.ingeniero.usuario_id if ticket.ingeniero else None
        if actual != data.assigned_to:
            ingeniero = db.session.execute(select(Ingeniero).where(Ingeniero.usuario_id == data.assigned_to)
                                           ).scalar_one_or_none()
            if ingeniero is None:
                raise ValidationFailed("Unknown engineer.", fields={"assigned_to": "No engineer with this user id."})
            tickets.asignar(ticket, actor, ingeniero.id)
    destino = ESTADO_A_MESA[data.status]
    if ESTADO_DE_MESA[ticket.estado] == data.status:
        return ticket
    pasos = _camino(ticket.estado, destino) if tickets.can_manage(ticket, actor) else [destino]
    for paso in pasos or [destino]:  # no path: the one move, refused with Mesa's 409
        tickets.cambiar_estado(ticket, actor, paso)
    return ticket


def _camino(desde: str, hasta: str) -> list[str]:
    """Shortest sequence of staff moves from ``desde`` to ``hasta`` (breadth-first)."""
    def siguientes(estado):
        return list(tickets.TRANSITIONS[estado]) + (["cerrado"] if estado in tickets.CIERRE_DIRECTO else [])

    frente, previo = [desde], {desde: None}
    while frente:
        estado = frente.pop(0)
        if estado == hasta:
            camino = []
            while previo[estado] is not None:
                camino.insert(0, estado)
                estado = previo[estado]
            return camino
        for s in siguientes(estado):
            if s not in previo:
                previo[s] = estado
                frente.append(s)
    return []


def estadisticas(viewer: Usuario) -> dict:
    scope = tickets.scope_clause(viewer)
    por_estado = {s: 0 for s in ESTADO_A_MESA}
    for estado, n in db.session.execute(select(Ticket.estado, func.count()).where(scope).group_by(Ticket.estado)):
        por_estado[ESTADO_DE_MESA[estado]] += n
    por_prioridad = {p: 0 for p in PRIORIDAD_A_MESA}
    for prioridad, n in db.session.execute(select(Ticket.prioridad, func.count()).where(scope)
                                           .group_by(Ticket.prioridad)):
        por_prioridad[PRIORIDAD_DE_MESA[prioridad]] += n
    no_leidos = db.session.execute(select(func.count()).select_from(Mensaje).join(Ticket).where(
        scope, *_no_leidos_clause(viewer))).scalar_one()
    return {"total_tickets": sum(por_estado.values()), "by_status": por_estado, "by_priority": por_prioridad,
            "unread_messages": no_leidos}


# --- auto-close (seed 003: "puede cerrarse automáticamente") -----------------------------------------

def init_app(app) -> None:
    @app.cli.command("cerrar-resueltos")
    @click.option("--dias", type=int, default=None, help="Days without a requester reply (AUTO_CLOSE_DAYS).")
    def cerrar_resueltos_command(dias: Optional[int]):
        """Close resuelto tickets with no reply from the requester for AUTO_CLOSE_DAYS days."""
        cerrados = tickets.cerrar_resueltos(dias if dias is not None else int(app.config["AUTO_CLOSE_DAYS"]))
        db.session.commit()
        click.echo(f"{len(cerrados)} ticket(s) closed: {', '.join(t.numero_ticket for t in cerrados) or '-'}")
