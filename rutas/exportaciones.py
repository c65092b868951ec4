"""Routes: Excel exports as background jobs (start, follow, download), issue 13."""

from __future__ import annotations

from flask import jsonify, request, send_file, url_for
from flask_login import current_user

import exportaciones
import openapi
import reports
from auth import role_required
from models import Exportacion, db
from rutas import route
from schemas import ExportacionOut, parse_query

JOBS = "/api/tickets/descargar/excel/jobs"


def exportacion_dict(job: Exportacion) -> dict:
    listo = job.estado == "listo" and not exportaciones.caducada(job)
    return openapi.dump(ExportacionOut, {
        "id": job.id, "tipo": job.tipo, "filtros": job.filtros, "estado": job.estado,
        "filas_escritas": job.filas_escritas, "filas_total": job.filas_total,
        "porcentaje": exportaciones.porcentaje(job), "error": job.error,
        "url": url_for("api_exportacion", job_id=job.id),
        "archivo_url": url_for("api_exportacion_archivo", job_id=job.id) if listo else None,
        "fecha_creacion": job.fecha_creacion, "fecha_inicio": job.fecha_inicio, "fecha_fin": job.fecha_fin,
        "expira_en": job.expira_en})


@route(JOBS, methods=["POST"], doc=openapi.op(
    "Start the Excel export of a ticket list as a background job: the same tipo, filters and role rules as "
    "GET /api/tickets/descargar/excel (403 when the role may not). 202 with the job and its Location; poll it "
    "until estado is listo, then download archivo_url (for lists too large to wait for).", openapi.ANY,
    ok=202, schema=openapi.REF("Exportacion"),
    params=[{"name": "tipo", "in": "query", "required": True, "schema": {"enum": list(reports.TIPOS)}}]
    + [p for p in openapi.LIST_PARAMS if p["name"] not in ("page", "per_page")], tag="reports"))
@role_required()
def api_crear_exportacion():
    """Queue an Excel export of mis|ingeniero|todos tickets with the list filters."""
    job = exportaciones.crear(current_user, parse_query(reports.ExcelQuery, request.args))
    db.session.commit()
    return jsonify(exportacion_dict(job)), 202, {"Location": url_for("api_exportacion", job_id=job.id)}


@route(f"{JOBS}/<int:job_id>", doc=openapi.op(
    "One of the caller's export jobs: estado (pendiente, en_curso, listo, fallido, expirado), rows written of "
    "the total, percentage, and archivo_url once listo (404 for anyone else's job)", openapi.ANY,
    schema=openapi.REF("Exportacion"), params=[openapi.ID("job_id")], tag="reports"))
@role_required()
def api_exportacion(job_id: int):
    """Progress of one of my exports."""
    return jsonify(exportacion_dict(exportaciones.de_usuario(job_id, current_user)))


_ARCHIVO_DOC = openapi.op(
    "The finished .xlsx of one of the caller's export jobs (404 for anyone else's, 409 while it is being "
    "written, 410 once it expired: EXPORT_TTL_HOURS after it was finished)", openapi.ANY,
    schema={"type": "string", "format": "binary"}, content_type=reports.XLSX_MIMETYPE,
    params=[openapi.ID("job_id")], tag="reports")
_ARCHIVO_DOC["responses"]["410"] = {"$ref": "#/components/responses/Error"}


@route(f"{JOBS}/<int:job_id>/archivo", doc=_ARCHIVO_DOC)
@role_required()
def api_exportacion_archivo(job_id: int):
    """Download the file of one of my finished exports."""
    job = exportaciones.de_usuario(job_id, current_user)
    return send_file(exportaciones.archivo(job), mimetype=reports.XLSX_MIMETYPE, as_attachment=True,
                     download_name=reports.excel_filename(job.tipo, job.fecha_creacion.date()), max_age=0)
