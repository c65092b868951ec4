"""Routes: seed 003's support-chat API (``/admin/api/support/...``) over Mesa's tickets, and
its panel page. Seed 003's Flutter code treats anything but HTTP 200 as a failure, so every
success (creation too) is 200 ``{"success": true, "data": ...}``; errors are the usual domain
errors wrapped as ``{"success": false, "error": {...}}`` (errors.ENVOLTORIOS) with their 4xx.
"""

from __future__ import annotations

from flask import jsonify, redirect, request
from flask_login import current_user

import errors
import openapi
import soporte
import tickets
from auth import role_required
from models import db
from rutas import route
from rutas.adjuntos import archivos_de_la_peticion
from rutas.comun import home_for, json_body
from schemas import parse

errors.ENVOLTORIOS[soporte.PREFIJO] = lambda body: {"success": False, **body}
TAG = "support (seed 003)"
ID = openapi.ID("ticket_id")


def ok(data):
    return jsonify({"success": True, "data": data}), 200


def envelope(schema: dict) -> dict:
    return {"type": "object", "properties": {"success": {"const": True}, "data": schema}}


def lista(ref: str) -> dict:
    return envelope({"type": "array", "items": openapi.REF(ref)})


def cuerpo() -> dict:
    """JSON, or a multipart form (its fields; files are read separately)."""
    if request.mimetype == "multipart/form-data":
        return request.form.to_dict()
    return json_body()


def _tickets(lista_):
    no_leidos = soporte.no_leidos_por_ticket([t.id for t in lista_], current_user)
    return [openapi.dump(soporte.SoporteTicketOut, soporte.ticket_data(t, no_leidos.get(t.id, 0))) for t in lista_]


@route("/admin/api/support/create-ticket", methods=["POST"], doc=openapi.op(
    "Create a support ticket (seed 003). user_id must be the caller's own unless staff. Always 200.", openapi.ANY,
    soporte.SupportTicketCreate, schema=envelope(openapi.REF("SoporteTicket")), tag=TAG))
@role_required()
def soporte_crear_ticket():
    ticket = soporte.crear(current_user, parse(soporte.SupportTicketCreate, json_body()))
    db.session.commit()
    db.session.refresh(ticket)
    return ok(openapi.dump(soporte.SoporteTicketOut, soporte.ticket_data(ticket)))


@route("/admin/api/support/user/<int:user_id>/tickets", doc=openapi.op(
    "A user's tickets (the caller's own unless staff)", openapi.ANY, schema=lista("SoporteTicket"),
    params=[openapi.ID("user_id")], tag=TAG))
@role_required()
def soporte_tickets_usuario(user_id: int):
    return ok(_tickets(soporte.tickets_de_usuario(current_user, user_id)))


@route("/admin/api/support/tickets/<int:ticket_id>/user-message", methods=["POST"], doc=openapi.op(
    "The requester writes on the ticket (JSON, or multipart with `file`)", openapi.ANY,
    soporte.SupportUserMessage, schema=envelope(openapi.REF("SoporteMensaje")), params=[ID], tag=TAG))
@role_required()
def soporte_mensaje_usuario(ticket_id: int):
    data = parse(soporte.SupportUserMessage, cuerpo())
    ticket = tickets.get_visible(ticket_id, current_user)
    mensaje, adjunto = soporte.escribir(ticket, current_user, data.message, user_id=data.user_id or current_user.id,
                                        archivos=archivos_de_la_peticion())
    db.session.commit()
    return ok(openapi.dump(soporte.SoporteMensajeOut, soporte.mensaje_data(mensaje, adjunto)))


@route("/admin/api/support/tickets", doc=openapi.op(
    "Tickets in the caller's scope, newest first", "ingeniero, admin", schema=lista("SoporteTicket"),
    params=[{"name": "status", "in": "query", "schema": {"enum": list(soporte.ESTADO_A_MESA)}}], tag=TAG))
@role_required("ingeniero", "admin")
def soporte_tickets():
    return ok(_tickets(soporte.listar(current_user, status=request.args.get("status") or None)))


@route("/admin/api/support/tickets/<int:ticket_id>", doc=openapi.op(
    "A ticket with all its messages; marks the other side's messages read", openapi.ANY,
    schema=envelope(openapi.REF("SoporteTicket")), params=[ID], tag=TAG))
@role_required()
def soporte_ticket(ticket_id: int):
    ticket = tickets.get_visible(ticket_id, current_user)
    data = soporte.detalle(ticket, current_user)
    db.session.commit()
    return ok(openapi.dump(soporte.SoporteTicketOut, data))


@route("/admin/api/support/tickets/<int:ticket_id>/status", methods=["PUT"], doc=openapi.op(
    "Change status (open/in_progress/resolved/closed) and optionally assign (assigned_to: the engineer's user id)",
    openapi.ANY, soporte.SupportStatus, schema=envelope(openapi.REF("SoporteTicket")), params=[ID], tag=TAG))
@role_required()
def soporte_estado(ticket_id: int):
    data = parse(soporte.SupportStatus, json_body())
    ticket = tickets.get_visible(ticket_id, current_user)
    soporte.cambiar_estado(ticket, current_user, data)
    db.session.commit()
    db.session.refresh(ticket)
    return ok(openapi.dump(soporte.SoporteTicketOut, soporte.ticket_data(ticket)))


@route("/admin/api/support/tickets/<int:ticket_id>/messages", methods=["POST"], doc=openapi.op(
    "Staff reply on the ticket (JSON, or multipart with `file`)", "assigned ingeniero, admin",
    soporte.SupportAdminMessage, schema=envelope(openapi.REF("SoporteMensaje")), params=[ID], tag=TAG))
@role_required("ingeniero", "admin")
def soporte_mensaje_admin(ticket_id: int):
    data = parse(soporte.SupportAdminMessage, cuerpo())
    ticket = tickets.get_visible(ticket_id, current_user)
    mensaje, adjunto = soporte.escribir(ticket, current_user, data.message, archivos=archivos_de_la_peticion())
    db.session.commit()
    return ok(openapi.dump(soporte.SoporteMensajeOut, soporte.mensaje_data(mensaje, adjunto)))


@route("/admin/api/support/statistics", doc=openapi.op(
    "Totals, by status, by priority and unread messages (caller's scope)", "ingeniero, admin",
    schema=envelope(openapi.REF("SoporteEstadisticas")), tag=TAG))
@role_required("ingeniero", "admin")
def soporte_estadisticas():
    return ok(openapi.dump(soporte.SoporteEstadisticasOut, soporte.estadisticas(current_user)))


@route("/admin/support")
@role_required()
def soporte_panel():
    """Seed 003's admin page is Mesa's own panel."""
    return redirect(home_for(current_user))


MAPEO = {"type": "object", "properties": {"clave": {"type": "string"}, "categoria": {"type": "string"}}}


@route("/api/soporte/categorias", doc=openapi.op(
    "Seed 003's categories and the Mesa category each maps to (unknown → General)", "admin",
    schema={"type": "object", "properties": {"items": {"type": "array", "items": MAPEO}}}, tag=TAG))
@role_required("admin")
def api_soporte_categorias():
    return jsonify({"items": soporte.mapeos()})


@route("/api/soporte/categorias/<clave>", methods=["PUT"], doc=openapi.op(
    "Map a seed 003 category (general, technical, billing, flight, order, ...) to a Mesa category", "admin",
    soporte.MapeoCategoria, schema=MAPEO, params=[{"name": "clave", "in": "path", "required": True,
                                                  "schema": {"type": "string", "maxLength": 40}}], tag=TAG))
@role_required("admin")
def api_soporte_mapear_categoria(clave: str):
    fila = soporte.mapeo(clave[:40], parse(soporte.MapeoCategoria, json_body()).categoria)
    db.session.commit()
    return jsonify({"clave": fila.clave, "categoria": fila.categoria.nombre})
