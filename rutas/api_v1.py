"""Routes: seed 000's CRM paths, ``GET/POST/PUT /api/v1/tickets[/<id>]``, as aliases of the
ticket API (same views, so the same auth, validation and answers)."""

from __future__ import annotations

from flask import request

import openapi
import schemas
from auth import role_required
from rutas import api_tickets, route
from rutas.comun import ticket_page

TAG = "tickets (seed 000 /api/v1)"
ID = openapi.ID("ticket_id")


@route("/api/v1/tickets", doc=openapi.op("Tickets in the caller's scope (paginated, filtered)", openapi.ANY,
                                         schema=openapi.page_of("Ticket", cursor=True), params=openapi.LIST_PARAMS, tag=TAG))
@role_required()
def api_v1_tickets():
    return ticket_page(schemas.parse_query(schemas.TicketFilters, request.args))


route("/api/v1/tickets", methods=["POST"], endpoint="api_v1_crear_ticket", doc=openapi.op(
    "Alias of POST /api/tickets (TicketCreate, with conversacion_whatsapp_id / comunicacion_email_id)", openapi.ANY,
    schemas.TicketCreate, 201, openapi.REF("Ticket"), tag=TAG, etag=True))(api_tickets.api_crear_ticket)
route("/api/v1/tickets/<int:ticket_id>", endpoint="api_v1_ticket", doc=openapi.op(
    "Alias of GET /api/tickets/{ticket_id}", openapi.ANY, schema=openapi.REF("Ticket"), params=[ID], tag=TAG,
    etag=True)
)(api_tickets.api_ticket)
route("/api/v1/tickets/<int:ticket_id>", methods=["PUT"], endpoint="api_v1_actualizar_ticket", doc=openapi.op(
    "Alias of PUT /api/tickets/{ticket_id} (TicketUpdate)", openapi.ANY, schemas.TicketUpdate,
    schema=openapi.REF("Ticket"), params=[ID], tag=TAG, if_match=True))(api_tickets.api_actualizar_ticket)
