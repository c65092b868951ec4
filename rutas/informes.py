"""Routes: reports (Excel, PDF per ticket, statistics API and dashboard)."""

from __future__ import annotations

import io

from flask import (
    jsonify,
    render_template,
    request,
    send_file,
)
from flask_babel import format_decimal
from flask_login import current_user

import openapi
import reports
from auth import (
    role_required,
)
from rutas import route
from schemas import (
    EstadisticasOut,
    parse_query,
)

# --- reports: excel, pdf, statistics ---------------------------------------------------

@route("/api/tickets/descargar/excel", doc=openapi.op(
    "Excel (.xlsx) of a ticket list, with the list filters; tipo=mis (own requests), ingeniero (assigned, "
    "engineers only), todos (admin only). Internal notes column for staff only. Headers and values in the "
    "caller's language.", openapi.ANY,
    schema={"type": "string", "format": "binary"}, content_type=reports.XLSX_MIMETYPE,
    params=[{"name": "tipo", "in": "query", "required": True, "schema": {"enum": list(reports.TIPOS)}}]
    + [p for p in openapi.LIST_PARAMS if p["name"] not in ("page", "per_page")], tag="reports"))
@role_required()
def api_descargar_excel():
    """Excel of mis|ingeniero|todos tickets with the list filters (403 when the role may not)."""
    f = parse_query(reports.ExcelQuery, request.args)
    archivo = reports.exportar_excel(current_user, f)
    return send_file(archivo, mimetype=reports.XLSX_MIMETYPE, as_attachment=True,
                     download_name=reports.excel_filename(f.tipo), max_age=0)


@route("/api/tickets/<int:ticket_id>/pdf", doc=openapi.op(
    "PDF report of one ticket (404 outside the caller's scope; no internal notes for usuario)", openapi.ANY,
    schema={"type": "string", "format": "binary"}, content_type="application/pdf",
    params=[openapi.ID("ticket_id")], tag="reports"))
@role_required()
def api_ticket_pdf(ticket_id: int):
    """PDF report of one ticket (a usuario's copy has no internal notes)."""
    contenido, nombre = reports.ticket_pdf(ticket_id, current_user)
    return send_file(io.BytesIO(contenido), mimetype="application/pdf", as_attachment=True,
                     download_name=nombre, max_age=0)


PERIODO_PARAMS = [
    {"name": "desde", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "Tickets created (ratings given) from this day"},
    {"name": "hasta", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "… until this day, included"}]


@route("/api/estadisticas", doc=openapi.op(
    "Statistics scoped to the caller (admin all, ingeniero assigned, usuario own): counts by estado, "
    "prioridad, categoria, ingeniero; created/closed per day (30 days); mean and median seconds to first "
    "response and resolution; open backlog by age; unread messages; for staff the SLA metrics in business "
    "time (compliance, median, p90, breaches per engineer, prioridad, categoría and period) and CSAT",
    openapi.ANY, schema=openapi.REF("Estadisticas"), tag="reports", params=PERIODO_PARAMS + [
        {"name": "agrupacion", "in": "query", "schema": {"enum": ["dia", "semana", "mes"]},
         "description": "Period of the SLA and CSAT series (office time zone); by default from the span"}]))
@role_required()
def api_estadisticas():
    """Statistics of the tickets the caller may see."""
    stats = reports.estadisticas(current_user, parse_query(reports.Periodo, request.args))
    return jsonify(openapi.dump(EstadisticasOut, stats))


@route("/api/estadisticas/incumplimientos/excel", doc=openapi.op(
    "Excel (.xlsx) of the SLA breaches of the tickets created in the window: missed first-response or "
    "resolution target, or past due and open; due and actual times, business minutes over. Headers in the "
    "caller's language.", "admin", schema={"type": "string", "format": "binary"},
    content_type=reports.XLSX_MIMETYPE, params=PERIODO_PARAMS, tag="reports"))
@role_required("admin")
def api_incumplimientos_excel():
    """Excel of the SLA breaches (admin)."""
    archivo = reports.exportar_incumplimientos(current_user, parse_query(reports.Periodo, request.args))
    return send_file(archivo, mimetype=reports.XLSX_MIMETYPE, as_attachment=True,
                     download_name=reports.incumplimientos_filename(), max_age=0)


@route("/estadisticas")
@role_required()
def pagina_estadisticas():
    """Statistics dashboard for the caller's role."""
    periodo = parse_query(reports.Periodo, request.args)
    return render_template("estadisticas.html", stats=reports.estadisticas(current_user, periodo), periodo=periodo,
                           numero=format_decimal)
