"""Routes: the JSON API of tickets (seed 001's contract)."""

from __future__ import annotations

from flask import (
    g,
    jsonify,
    request,
)
from flask_login import current_user

import openapi
import schemas
import tickets
from auth import (
    role_required,
)
from models import db
from rutas import route
from rutas.comun import (
    comprobar_version,
    con_version,
    json_body,
    ticket_page,
    ticket_response,
)
from schemas import (
    Asignacion,
    EstadoChange,
    MensajeCreate,
    NotaCreate,
    TicketCreate,
    TicketFilters,
    TicketUpdate,
    evento_dict,
    fila_dict,
    mensaje_dict,
    parse,
    parse_query,
)

# --- API: tickets ------------------------------------------------------------------------

def _escribir(ticket_id: int, modelo, operacion, *, anexo: bool = False):
    """Every ticket write of this API: the ticket in the caller's scope, the body validated, the
    client's version checked (If-Match / ``version``), the operation, one commit, the ticket back."""
    ticket = tickets.get_visible(ticket_id, current_user)
    data = parse(modelo, json_body())
    comprobar_version(ticket, data.version, anexo=anexo)
    operacion(ticket, data)
    db.session.commit()
    return ticket_response(ticket)


@route("/api/tickets", methods=["POST"], doc=openapi.op(
    "Create a ticket (the caller is the requester)", openapi.ANY, schemas.TicketCreate, 201,
    openapi.REF("Ticket"), etag=True))
@role_required()
def api_crear_ticket():
    """Create a ticket as the caller (requester). 201 with the ticket."""
    data = parse(TicketCreate, json_body())
    canal = "api" if g.get("via_token") else "web"
    ticket = tickets.crear_ticket(data, usuario=current_user, canal=canal)
    # Built from what the INSERT just wrote (no reload after the commit); sent only once committed.
    respuesta = ticket_response(ticket, 201, recargar=False)
    db.session.commit()
    return respuesta


@route("/api/mis-tickets", doc=openapi.op(
    "Tickets the caller requested", openapi.ANY, schema=openapi.page_of("Ticket", cursor=True),
    params=openapi.LIST_PARAMS))
@role_required()
def api_mis_tickets():
    """Tickets the caller requested."""
    f = parse_query(TicketFilters, request.args)
    return ticket_page(f, base_scope=tickets.Ticket.usuario_id == current_user.id)


@route("/api/tickets-ingeniero", doc=openapi.op("Tickets assigned to the calling engineer", "ingeniero",
    schema=openapi.page_of("Ticket", cursor=True), params=openapi.LIST_PARAMS))
@role_required("ingeniero")
def api_tickets_ingeniero():
    """Tickets assigned to the calling engineer."""
    return ticket_page(parse_query(TicketFilters, request.args))


@route("/api/todos-tickets", doc=openapi.op(
    "All tickets", "admin", schema=openapi.page_of("Ticket", cursor=True), params=openapi.LIST_PARAMS))
@role_required("admin")
def api_todos_tickets():
    """Every ticket (admin)."""
    return ticket_page(parse_query(TicketFilters, request.args))


@route("/api/tickets/<int:ticket_id>", doc=openapi.op(
    "One ticket (404 outside the caller's scope); its `ETag` is its version", openapi.ANY,
    schema=openapi.REF("Ticket"), params=[openapi.ID("ticket_id")], etag=True))
@role_required()
def api_ticket(ticket_id: int):
    """One ticket the caller may see, with its version as the ETag."""
    viewer = current_user._get_current_object()
    fila = tickets.fila_visible(ticket_id, viewer)
    return con_version(fila_dict(fila, viewer), fila.version)


@route("/api/tickets/<int:ticket_id>", methods=["PUT"], endpoint="api_actualizar_ticket", doc=openapi.op(
    "Edit fields (requester only while abierto)", openapi.ANY, schemas.TicketUpdate,
    schema=openapi.REF("Ticket"), params=[openapi.ID("ticket_id")], if_match=True))
@role_required()
def api_actualizar_ticket(ticket_id: int):
    """Edit titulo, descripcion, categoria, prioridad, etiquetas or links."""
    return _escribir(ticket_id, TicketUpdate, lambda ticket, data: tickets.actualizar_ticket(ticket, current_user, data))


@route("/api/tickets/<int:ticket_id>/estado", methods=["PUT"], doc=openapi.op(
    "Change estado: abierto→en_progreso⇄en_espera→resuelto→cerrado; resuelto/cerrado→abierto (staff); "
    "requester may move resuelto→abierto|cerrado. Refused moves are 409.", openapi.ANY, schemas.EstadoChange,
    schema=openapi.REF("Ticket"), params=[openapi.ID("ticket_id")], if_match=True))
@role_required()
def api_cambiar_estado(ticket_id: int):
    """Move the ticket through its lifecycle (refused moves are 409)."""
    return _escribir(ticket_id, EstadoChange, lambda ticket, data: tickets.cambiar_estado(ticket, current_user, data.estado))


@route("/api/tickets/<int:ticket_id>/notas", methods=["PUT"], doc=openapi.op(
    "Append an internal note", "assigned ingeniero, admin",
    schemas.NotaCreate, schema=openapi.REF("Ticket"), params=[openapi.ID("ticket_id")], if_match=True))
@role_required("ingeniero", "admin")
def api_agregar_nota(ticket_id: int):
    """Append an internal note (staff only)."""
    return _escribir(ticket_id, NotaCreate, lambda ticket, data: tickets.agregar_nota(ticket, current_user, data.nota),
                     anexo=True)


@route("/api/tickets/<int:ticket_id>/asignar", methods=["PUT"], doc=openapi.op(
    "Assign an engineer (null unassigns)", "admin", schemas.Asignacion,
    schema=openapi.REF("Ticket"), params=[openapi.ID("ticket_id")], if_match=True))
@role_required("admin")
def api_asignar(ticket_id: int):
    """Assign (or, with null, unassign) an engineer."""
    return _escribir(ticket_id, Asignacion, lambda ticket, data: tickets.asignar(ticket, current_user, data.ingeniero_id))


@route("/api/tickets/<int:ticket_id>/mensajes", doc=openapi.op(
    "Public thread; marks the other side's messages read", openapi.ANY,
    schema={"type": "object", "properties": {
    "items": {"type": "array", "items": openapi.REF("Mensaje")}}},
    params=[openapi.ID("ticket_id")]))
@role_required()
def api_mensajes(ticket_id: int):
    """The public thread; reading marks the other side's messages as read."""
    ticket = tickets.get_visible(ticket_id, current_user)
    lista = tickets.marcar_leidos(ticket, current_user)
    db.session.commit()
    return jsonify({"items": [mensaje_dict(m) for m in lista], "total": len(lista)})


@route("/api/tickets/<int:ticket_id>/mensajes", methods=["POST"], endpoint="api_nuevo_mensaje", doc=openapi.op(
    "Post a public message", openapi.ANY, schemas.MensajeCreate, 201,
    openapi.REF("Mensaje"), params=[openapi.ID("ticket_id")]))
@role_required()
def api_nuevo_mensaje(ticket_id: int):
    """Post a public message on the ticket."""
    ticket = tickets.get_visible(ticket_id, current_user)
    mensaje = tickets.agregar_mensaje(ticket, current_user, parse(MensajeCreate, json_body()).cuerpo)
    db.session.commit()
    return jsonify(mensaje_dict(mensaje)), 201


@route("/api/tickets/<int:ticket_id>/historial", doc=openapi.op(
    "History of every change", openapi.ANY, schema={
    "type": "object", "properties": {"items": {"type": "array", "items": openapi.REF("Evento")}}}, params=[openapi.ID("ticket_id")]))
@role_required()
def api_historial(ticket_id: int):
    """Every change of the ticket (internal-note events only for staff)."""
    ticket = tickets.get_visible(ticket_id, current_user)
    eventos = tickets.history(ticket, current_user)
    return jsonify({"items": [evento_dict(e) for e in eventos], "total": len(eventos)})
