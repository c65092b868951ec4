"""Email in (issue 10): a message forwarded as an attachment (a ``message/rfc822`` part) is
unpacked: the outer text stays the ticket's or reply's text, the forwarded message's text follows
it under a line naming its sender and subject, its attachments are stored with the ticket, and the
.eml itself is kept too. A malformed forwarded part never loses the outer message."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from test_correo_entrante import escena, ingest  # noqa: F401 - escena is a fixture

from models import Adjunto, Comunicacion, Mensaje, Ticket, db

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 20


def reenvio(de: str, asunto: str, texto: str, interno: bytes, *, nombre: str = "Factura vencida.eml",
            extra: bytes = b"") -> bytes:
    """What Thunderbird's "Forward as Attachment" sends: the outer text, then the whole original."""
    return b"\r\n".join([
        f"From: {de}".encode(), b"To: soporte@mesa.test", f"Subject: {asunto}".encode(),
        b"Message-ID: <reenvio-" + asunto.encode().hex().encode()[:24] + b"@cliente.test>",
        b"Date: Mon, 23 Nov 2026 10:00:00 +0100", b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="EXTERIOR"', b"",
        b"--EXTERIOR", b"Content-Type: text/plain; charset=UTF-8", b"Content-Transfer-Encoding: 8bit", b"",
        texto.encode(), b"",
        b"--EXTERIOR", b"Content-Type: message/rfc822; name=\"" + nombre.encode() + b"\"",
        b"Content-Disposition: attachment; filename=\"" + nombre.encode() + b"\"", b"",
        interno, extra,
        b"--EXTERIOR--", b""])


def original(asunto: bytes = b"Factura vencida", texto: bytes = b"La factura 2026-118 vence el viernes.") -> bytes:
    """The forwarded message: Latin-1 text, an encoded-word sender, a PDF and a PNG attached."""
    return b"\r\n".join([
        b"From: =?ISO-8859-1?Q?Pedro_Mu=F1oz?= <pedro@proveedor.test>", b"To: ana@cliente.test",
        b"Subject: " + asunto, b"Message-ID: <original-1@proveedor.test>", b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="INTERIOR"', b"",
        b"--INTERIOR", b"Content-Type: text/plain; charset=ISO-8859-1", b"Content-Transfer-Encoding: 8bit", b"",
        texto + b" Gracias, se\xf1ora.", b"",
        b"--INTERIOR", b"Content-Type: application/pdf", b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="factura-118.pdf"', b"",
        __import__("base64").encodebytes(PDF).strip(), b"",
        b"--INTERIOR", b"Content-Type: image/png", b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="sello.png"', b"",
        __import__("base64").encodebytes(PNG).strip(), b"",
        b"--INTERIOR--", b""])


@pytest.fixture(autouse=True)
def _adjuntos_en_tmp(app, tmp_path):
    app.config["UPLOAD_DIR"] = str(tmp_path)


def _adjuntos(ticket_id: int) -> dict[str, Adjunto]:
    return {a.nombre: a for a in db.session.execute(select(Adjunto).where(Adjunto.ticket_id == ticket_id)).scalars()}


def test_a_forwarded_email_becomes_one_ticket_with_the_inner_text_and_attachments(app, make_user):
    make_user("usuario", email="ana@cliente.test")
    r = ingest(reenvio("Ana <ana@cliente.test>", "Fwd: Factura vencida", "¿Pueden revisar esta factura?", original()))
    assert r.estado == "creado"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    ticket = db.session.get(Ticket, r.ticket.id)
    assert ticket.titulo == "Factura vencida"
    texto = ticket.descripcion
    assert texto.startswith("¿Pueden revisar esta factura?")
    assert "Mensaje reenviado de Pedro Muñoz <pedro@proveedor.test>, asunto: Factura vencida" in texto
    assert "La factura 2026-118 vence el viernes. Gracias, señora." in texto
    assert texto.index("¿Pueden revisar") < texto.index("Mensaje reenviado") < texto.index("La factura 2026-118")

    adjuntos = _adjuntos(ticket.id)
    assert set(adjuntos) == {"Factura vencida.eml", "factura-118.pdf", "sello.png"}
    assert adjuntos["factura-118.pdf"].tipo_mime == "application/pdf" and adjuntos["sello.png"].tipo_mime == "image/png"
    assert adjuntos["factura-118.pdf"].tamano == len(PDF)
    eml = adjuntos["Factura vencida.eml"]
    assert eml.tamano > len(PDF) and eml.comunicacion_id == r.comunicacion.id
    com = db.session.get(Comunicacion, r.comunicacion.id)
    assert com.datos["reenviados"] == [{"de": "Pedro Muñoz <pedro@proveedor.test>", "asunto": "Factura vencida"}]
    assert len(com.datos["adjuntos"]) == 3 and com.datos["adjuntos_rechazados"] == []


def test_a_forwarded_email_in_a_reply_goes_on_the_thread_after_the_trimmed_reply(app, escena):  # noqa: F811
    ticket = escena["ticket"]
    r = ingest(reenvio("ana@cliente.test", f"Re: [{ticket.numero_ticket}] Tu ticket cambió",
                       "Os reenvío lo que me mandaron.\n\n-- \nAna Pérez\nTel 600", original()))
    assert r.estado == "respuesta"
    mensaje, = db.session.execute(select(Mensaje).where(Mensaje.ticket_id == ticket.id)).scalars()
    assert mensaje.cuerpo.startswith("Os reenvío lo que me mandaron.\n\n---------- Mensaje reenviado de Pedro Muñoz")
    assert "Tel 600" not in mensaje.cuerpo and "vence el viernes" in mensaje.cuerpo
    nombres = {a.nombre for a in db.session.execute(select(Adjunto).where(Adjunto.mensaje_id == mensaje.id)).scalars()}
    assert nombres == {"Factura vencida.eml", "factura-118.pdf", "sello.png"}


def test_a_forward_of_a_forward_shows_both_messages(app, make_user):
    make_user("usuario", email="ana@cliente.test")
    medio = b"\r\n".join([
        b"From: Luis <luis@proveedor.test>", b"Subject: Fwd: Factura vencida", b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="MEDIO"', b"",
        b"--MEDIO", b"Content-Type: text/plain; charset=UTF-8", b"", b"Mira lo que dice Pedro.", b"",
        b"--MEDIO", b"Content-Type: message/rfc822", b"", original(), b"--MEDIO--", b""])
    r = ingest(reenvio("ana@cliente.test", "Fwd: Fwd: Factura vencida", "Para vosotros", medio, nombre="luis.eml"))
    texto = db.session.get(Ticket, r.ticket.id).descripcion
    assert "Mensaje reenviado de Luis <luis@proveedor.test>" in texto and "Mira lo que dice Pedro." in texto
    assert "Mensaje reenviado de Pedro Muñoz" in texto and "vence el viernes" in texto
    assert {"luis.eml", "Factura vencida.eml", "factura-118.pdf", "sello.png"} <= set(_adjuntos(r.ticket.id))


@pytest.mark.parametrize("interno, extra", [
    (b"", b""),  # an empty message/rfc822 part
    (b"\x00\xff\xfe garbage without headers \x80\x81", b""),
    (b"From: roto\r\nContent-Type: multipart/mixed; boundary=\"NUNCA\"\r\n\r\n--NUNCA\r\nContent-Type: text/plain;"
     b" charset=no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n", b""),
])
def test_a_malformed_forwarded_part_never_loses_the_outer_message(app, make_user, interno, extra):
    make_user("usuario", email="ana@cliente.test")
    r = ingest(reenvio("ana@cliente.test", "Fwd: algo roto", "El texto de fuera se conserva.", interno, extra=extra))
    assert r.estado == "creado", r.motivo
    ticket = db.session.get(Ticket, r.ticket.id)
    assert ticket.descripcion.startswith("El texto de fuera se conserva.")
    assert "Mensaje reenviado de" in ticket.descripcion
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
