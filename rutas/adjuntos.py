"""Routes: attachments. Upload through the JSON API (multipart) and the access-checked
download (the only way to a stored file): ``Content-Disposition: attachment`` and
``X-Content-Type-Options: nosniff`` always, inline only for images (``adjuntos.INLINE``)."""

from __future__ import annotations

from typing import Optional

from flask import Response, current_app, jsonify, request, url_for
from flask_login import current_user

import adjuntos
import openapi
import tickets
from auth import role_required
from errors import ValidationFailed
from models import db
from rutas import route
from schemas import Salida

CAMPOS = ("archivo", "archivos", "file", "files")


class AdjuntoOut(Salida):
    id: int
    nombre: str
    tipo_mime: str
    tamano: int
    mensaje_id: Optional[int]
    nota_id: Optional[int]
    url: str


def adjunto_data(a) -> dict:
    return openapi.dump(AdjuntoOut, {"id": a.id, "nombre": a.nombre, "tipo_mime": a.tipo_mime, "tamano": a.tamano,
                                     "mensaje_id": a.mensaje_id, "nota_id": a.nota_id,
                                     "url": url_for("descargar_adjunto", adjunto_id=a.id)})


def archivos_de_la_peticion() -> list[tuple[str, bytes]]:
    """The uploaded files of a multipart request (empty file inputs skipped)."""
    if request.mimetype != "multipart/form-data":
        return []
    limite = int(current_app.config["UPLOAD_MAX_BYTES"])
    archivos = []
    for campo in CAMPOS:
        for f in request.files.getlist(campo):
            if not f or not f.filename:
                continue
            datos = f.stream.read(limite + 1)  # never more than one byte past the limit into memory
            archivos.append((f.filename, datos))
    return archivos


SUBIDA = {"type": "object", "properties": {
    "archivo": {"type": "array", "items": {"type": "string", "format": "binary"}},
    "cuerpo": {"type": "string", "description": "Posts a public message carrying the files"},
    "nota": {"type": "string", "description": "Staff: an internal note carrying the files (hidden from the requester)"}}}


def _doc_subida() -> dict:
    doc = openapi.op("Upload attachments (multipart): on the ticket, on a new public message (`cuerpo`) or on a new "
                     "internal note (`nota`, staff). Type sniffed from the content; UPLOAD_MAX_BYTES each, "
                     "UPLOAD_MAX_FILES per message.", openapi.ANY, ok=201, schema={
                         "type": "object", "properties": {"items": {"type": "array", "items": openapi.REF("Adjunto")}}},
                     params=[openapi.ID("ticket_id")], tag="attachments")
    doc["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": SUBIDA}}}
    return doc


@route("/api/tickets/<int:ticket_id>/adjuntos", methods=["POST"], doc=_doc_subida())
@role_required()
def api_subir_adjuntos(ticket_id: int):
    ticket = tickets.get_visible(ticket_id, current_user)
    archivos = archivos_de_la_peticion()
    if not archivos:
        raise ValidationFailed("Send at least one file (multipart field `archivo`).",
                               fields={"archivo": "Required."})
    cuerpo = (request.form.get("cuerpo") or "").strip()
    nota = (request.form.get("nota") or "").strip()
    pertenece = {"ticket_id": ticket.id, "subido_por_id": current_user.id}
    if nota:
        pertenece["nota_id"] = tickets.agregar_nota(ticket, current_user, nota).id
    elif cuerpo:
        pertenece["mensaje_id"] = tickets.agregar_mensaje(ticket, current_user, cuerpo).id
    elif not tickets.can_write(ticket, current_user):
        raise ValidationFailed("You may not add files to this ticket now.", code="not_writable")
    guardados = adjuntos.guardar_varios(archivos, **pertenece)
    db.session.commit()
    return jsonify({"items": [adjunto_data(a) for a in guardados]}), 201


@route("/api/tickets/<int:ticket_id>/adjuntos", doc=openapi.op(
    "The ticket's attachments the caller may see (internal notes' only for staff)", openapi.ANY,
    schema={"type": "object", "properties": {"items": {"type": "array", "items": openapi.REF("Adjunto")}}},
    params=[openapi.ID("ticket_id")], tag="attachments"))
@role_required()
def api_adjuntos(ticket_id: int):
    ticket = tickets.get_visible(ticket_id, current_user)
    return jsonify({"items": [adjunto_data(a) for a in adjuntos.del_ticket(ticket, current_user)]})


@route("/adjuntos/<int:adjunto_id>")
@role_required()
def descargar_adjunto(adjunto_id: int):
    """Download (images inline unless ?descargar=1): access-checked exactly like the ticket."""
    adjunto = adjuntos.visible(adjunto_id, current_user)
    inline = adjunto.tipo_mime in adjuntos.INLINE and not request.args.get("descargar")
    response = Response(adjuntos.leer(adjunto), mimetype=adjunto.tipo_mime)
    response.headers.set("Content-Disposition", "inline" if inline else "attachment", filename=adjunto.nombre)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
