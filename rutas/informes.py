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

import reports
from auth import (
    role_required,
)
from rutas import route
from schemas import (
    parse_query,
)

# --- reports: excel, pdf, statistics ---------------------------------------------------

@route("/api/tickets/descargar/excel")
@role_required()
def api_descargar_excel():
    """Excel of mis|ingeniero|todos tickets with the list filters (403 when the role may not)."""
    f = parse_query(reports.ExcelQuery, request.args)
    archivo = reports.exportar_excel(current_user, f)
    return send_file(archivo, mimetype=reports.XLSX_MIMETYPE, as_attachment=True,
                     download_name=reports.excel_filename(f.tipo), max_age=0)


@route("/api/tickets/<int:ticket_id>/pdf")
@role_required()
def api_ticket_pdf(ticket_id: int):
    """PDF report of one ticket (a usuario's copy has no internal notes)."""
    contenido, nombre = reports.ticket_pdf(ticket_id, current_user)
    return send_file(io.BytesIO(contenido), mimetype="application/pdf", as_attachment=True,
                     download_name=nombre, max_age=0)


@route("/api/estadisticas")
@role_required()
def api_estadisticas():
    """Statistics of the tickets the caller may see."""
    return jsonify(reports.estadisticas(current_user, parse_query(reports.Periodo, request.args)))


@route("/estadisticas")
@role_required()
def pagina_estadisticas():
    """Statistics dashboard for the caller's role."""
    periodo = parse_query(reports.Periodo, request.args)
    return render_template("estadisticas.html", stats=reports.estadisticas(current_user, periodo), periodo=periodo,
                           numero=format_decimal)
