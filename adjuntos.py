"""The one attachment store: ticket uploads, email attachments and WhatsApp media.

Files live under ``UPLOAD_DIR`` (outside the web root), named by the SHA-256 of their content
(``ab/cd/abcd…``), never by the user's file name; the same bytes are stored once. The type is
sniffed from the content (``filetype``'s magic numbers; a header block with From: is an email,
message/rfc822, e.g. a forwarded message kept by email in; UTF-8 text without NULs is text/plain),
and must be one of ``TIPOS_PERMITIDOS``; the size is limited by ``UPLOAD_MAX_BYTES``. An
``Adjunto`` row carries the display name and what it belongs to; downloads go through an
access-checked route only.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Optional

import filetype
from flask import current_app

from errors import ValidationFailed
from models import Adjunto, db

TIPOS_PERMITIDOS = {
    "image/jpeg", "image/png", "image/gif", "image/webp",
    "application/pdf", "text/plain", "text/csv",
    "audio/ogg", "audio/mpeg", "audio/mp4", "audio/amr", "video/mp4", "video/3gpp",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/msword", "application/vnd.ms-excel",
    "message/rfc822",
}
INLINE = {"image/jpeg", "image/png", "image/gif", "image/webp"}  # shown inline; everything else downloads


def directorio() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def ruta(sha256: str) -> Path:
    return directorio() / sha256[:2] / sha256[2:4] / sha256


CAMPO_RE = re.compile(rb"^[!-9;-~]+:")  # an RFC 5322 header field: printable name, colon


def es_correo(datos: bytes) -> bool:
    """An RFC 822 message: a block of header fields (From: and a Date, Subject, To or Message-ID)
    before the first empty line. Its bytes need not be UTF-8 (8-bit Latin-1 bodies are common)."""
    cabecera = re.split(rb"\r?\n\r?\n", datos[:65536], maxsplit=1)[0]
    nombres = set()
    for linea in cabecera.splitlines():
        if linea[:1] in (b" ", b"\t"):
            continue  # a folded header's continuation
        if not CAMPO_RE.match(linea):
            return False
        nombres.add(linea.split(b":", 1)[0].lower())
    return b"from" in nombres and bool(nombres & {b"date", b"subject", b"to", b"message-id"})


def detectar_tipo(datos: bytes) -> Optional[str]:
    """The MIME type by content, or None when it is not one we recognise."""
    kind = filetype.guess(datos)
    if kind is not None:
        return kind.mime
    if b"\x00" not in datos[:8192] and es_correo(datos):
        return "message/rfc822"
    if b"\x00" not in datos[:8192]:
        try:
            datos[:65536].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text/plain"
    return None


def nombre_seguro(nombre: Optional[str]) -> str:
    """The user's file name for display and Content-Disposition: no path, no control characters."""
    base = (nombre or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C").strip(" .")
    return base[:200] or "archivo"


def guardar(datos: bytes, nombre: Optional[str], **pertenece) -> Adjunto:
    """Check and store ``datos``; return the (flushed) ``Adjunto`` row. ``pertenece`` sets
    ticket/mensaje/nota/comunicacion/subido_por. 422 when too large or of a refused type."""
    limite = int(current_app.config["UPLOAD_MAX_BYTES"])
    nombre = nombre_seguro(nombre)
    if len(datos) > limite:
        raise ValidationFailed("The file is too large.", code="file_too_large",
                               fields={"archivo": f"{nombre}: larger than {limite // (1024 * 1024)} MB"})
    if not datos:
        raise ValidationFailed("The file is empty.", code="empty_file", fields={"archivo": f"{nombre}: empty"})
    tipo = detectar_tipo(datos)
    if tipo not in TIPOS_PERMITIDOS:
        raise ValidationFailed("This type of file is not accepted.", code="file_type_refused",
                               fields={"archivo": f"{nombre}: {tipo or 'unknown type'}"})
    sha = hashlib.sha256(datos).hexdigest()
    destino = ruta(sha)
    if not destino.exists():
        destino.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=destino.parent, prefix=".subiendo-")
        with os.fdopen(fd, "wb") as f:
            f.write(datos)
        os.replace(tmp, destino)
    adjunto = Adjunto(sha256=sha, nombre=nombre, tipo_mime=tipo, tamano=len(datos), **pertenece)
    db.session.add(adjunto)
    db.session.flush()
    return adjunto


def leer(adjunto: Adjunto) -> bytes:
    return ruta(adjunto.sha256).read_bytes()


def guardar_varios(archivos, **pertenece) -> list[Adjunto]:
    """Store each ``(nombre, bytes)`` of one message/note/ticket, at most UPLOAD_MAX_FILES.
    All or nothing: when one is refused, the files this call wrote are removed again (the
    request rolls back its rows), so a failed upload leaves no orphan on disk."""
    archivos = list(archivos)
    maximo = int(current_app.config["UPLOAD_MAX_FILES"])
    if len(archivos) > maximo:
        raise ValidationFailed(f"At most {maximo} files per message.", code="too_many_files",
                               fields={"archivo": f"At most {maximo} files."})
    nuevos: list[Path] = []
    guardados = []
    try:
        for nombre, datos in archivos:
            destino = ruta(hashlib.sha256(datos).hexdigest())
            existia = destino.exists()
            guardados.append(guardar(datos, nombre, **pertenece))
            if not existia:
                nuevos.append(destino)
    except Exception:
        for destino in nuevos:
            _borrar_si_huerfano(destino)
        raise
    return guardados


def _borrar_si_huerfano(destino: Path) -> None:
    from sqlalchemy import select

    with db.engine.connect() as conn:  # outside the failing transaction: rows other requests committed
        usado = conn.execute(select(Adjunto.id).where(Adjunto.sha256 == destino.name).limit(1)).first()
    if usado is None:
        destino.unlink(missing_ok=True)


def limpiar_huerfanos(min_edad_segundos: int = 3600) -> list[str]:
    """Remove stored files no ``Adjunto`` row names (e.g. a crash between write and commit),
    older than ``min_edad_segundos`` so an upload in flight is never touched."""
    import time

    from sqlalchemy import select

    base = directorio()
    if not base.exists():
        return []
    usados = set(db.session.execute(select(Adjunto.sha256).distinct()).scalars())
    borrados = []
    limite = time.time() - min_edad_segundos
    for f in base.glob("*/*/*"):
        if f.is_file() and f.name not in usados and f.stat().st_mtime < limite:
            f.unlink(missing_ok=True)
            borrados.append(f.name)
    return borrados


def init_app(app) -> None:
    import click

    @app.cli.command("limpiar-adjuntos")
    @click.option("--min-edad", type=int, default=3600, help="Only files older than this many seconds.")
    def limpiar_adjuntos_command(min_edad: int):
        """Remove attachment files on disk that no row names (orphans of failed uploads)."""
        borrados = limpiar_huerfanos(min_edad)
        click.echo(f"{len(borrados)} orphan file(s) removed.")


def visible(adjunto_id: int, viewer) -> Adjunto:
    """The attachment if ``viewer`` may see its ticket (and, for an internal note's, is staff);
    otherwise it does not exist for them (404), like the ticket."""
    import tickets
    from errors import NotFound
    from models import Mensaje, NotaInterna

    adjunto = db.session.get(Adjunto, adjunto_id)
    if adjunto is None:
        raise NotFound("Attachment not found.")
    ticket_id = adjunto.ticket_id
    if ticket_id is None and adjunto.mensaje_id is not None:
        ticket_id = db.session.get(Mensaje, adjunto.mensaje_id).ticket_id
    if ticket_id is None and adjunto.nota_id is not None:
        ticket_id = db.session.get(NotaInterna, adjunto.nota_id).ticket_id
    if ticket_id is None:  # a communication's file not (yet) on a ticket: the admins' inbox
        if viewer.rol != "admin":
            raise NotFound("Attachment not found.")
        return adjunto
    tickets.get_visible(ticket_id, viewer)
    if adjunto.nota_id is not None and not viewer.es_staff:
        raise NotFound("Attachment not found.")
    return adjunto


def del_ticket(ticket, viewer) -> list[Adjunto]:
    """The ticket's attachments ``viewer`` may see (internal notes' only for staff)."""
    from sqlalchemy import select

    stmt = select(Adjunto).where(Adjunto.ticket_id == ticket.id).order_by(Adjunto.id)
    if not viewer.es_staff:
        stmt = stmt.where(Adjunto.nota_id.is_(None))
    return list(db.session.execute(stmt).scalars())
