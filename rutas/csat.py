"""Routes: CSAT (issue 12): the signed rating link of the closing email (no login needed), the
requester's rating from the app/API, and the results per engineer and categoría."""

from __future__ import annotations

from typing import Optional

from flask import jsonify, render_template, request
from flask_login import current_user
from pydantic import BaseModel, Field

import csat
import openapi
import tickets
from auth import role_required
from errors import ValidationFailed
from models import db
from rutas import route
from rutas.comun import json_body, rango_fechas
from schemas import parse


class ValoracionIn(BaseModel):
    puntuacion: int = Field(ge=1, le=5)
    comentario: Optional[str] = Field(None, max_length=2000)


@route("/valorar/<firma>", methods=["GET", "POST"])
def valorar_enlace(firma: str):
    """The one-click rating page of the closing email (signed, expiring, once per ticket)."""
    ticket = csat.ticket_de(firma)
    if request.method == "POST":
        try:
            puntuacion = int(request.form.get("puntuacion", ""))
        except ValueError as exc:
            raise ValidationFailed("Some fields are not valid.", fields={"puntuacion": "1 to 5."}) from exc
        csat.valorar(ticket, puntuacion, request.form.get("comentario"))
        db.session.commit()
    try:
        preseleccion = int(request.args.get("p", "0"))
    except ValueError:
        preseleccion = 0
    return render_template("valorar.html", ticket=ticket, valoracion=csat.valoracion(ticket),
                           preseleccion=preseleccion)


@route("/api/tickets/<int:ticket_id>/valoracion", methods=["POST"], doc=openapi.op(
    "The requester rates their resolved or closed ticket (1–5, once)", "usuario (requester)", ValoracionIn,
    201, {"type": "object"}, params=[openapi.ID("ticket_id")], tag="csat"))
@role_required("usuario", "ingeniero", "admin")
def api_valorar(ticket_id: int):
    """Rate a ticket from the app."""
    ticket = tickets.get_visible(ticket_id, current_user)
    data = parse(ValoracionIn, json_body())
    fila = csat.valorar(ticket, data.puntuacion, data.comentario, actor=current_user)
    db.session.commit()
    return jsonify({"ticket_id": ticket.id, "puntuacion": fila.puntuacion, "comentario": fila.comentario}), 201


@route("/api/csat", doc=openapi.op(
    "CSAT results: count and average overall, per engineer and per categoría (optional ?desde=&hasta=)",
    "admin", schema={"type": "object"}, tag="csat", params=[
        {"name": "desde", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "hasta", "in": "query", "schema": {"type": "string", "format": "date-time"}}]))
@role_required("admin")
def api_csat():
    """CSAT results for the dashboard."""
    return jsonify(csat.resultados(*rango_fechas()))


@route("/tickets/<numero>/valorar", methods=["POST"])
@role_required("usuario", "ingeniero", "admin")
def ticket_valorar(numero: str):
    """The rating form on the ticket page (the requester, once)."""
    from flask import redirect, url_for

    ticket = tickets.get_visible_by_numero(numero, current_user)
    try:
        puntuacion = int(request.form.get("puntuacion", ""))
    except ValueError as exc:
        raise ValidationFailed("Some fields are not valid.", fields={"puntuacion": "1 to 5."}) from exc
    csat.valorar(ticket, puntuacion, request.form.get("comentario"), actor=current_user)
    db.session.commit()
    return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket))
