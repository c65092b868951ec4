"""Email in: one RFC 822 message → a ``Comunicacion`` and, when it belongs, a ticket reply or a new ticket.

One ingest path (``ingerir``) for the MTA pipe (``flask ingest-email``) and the IMAP poller
(``flask fetch-email``):

1. size limit (Configuración > Email, over INBOUND_MAX_BYTES) and parsing with the stdlib ``email`` package
   (``policy.default``); a message that cannot be read is stored as ``fallido`` with the reason;
2. dedupe by ``Message-ID`` (fallback: ``sha256:`` of the raw bytes): a message is stored once,
   however many times it is piped or fetched;
3. loop protection: auto-replies, bulk/list mail, bounces and DSNs are stored as ``ignorado``:
   they never create tickets nor trigger emails;
4. threading: ``[TKT-000123]`` in the subject, or ``In-Reply-To``/``References`` naming a
   Message-ID Mesa sent (looked up in the database, never parsed: a forged id opens nothing);
5. authorization: only the requester (user or client) or staff who may see the ticket may
   reply; anyone else's reply is stored as ``rechazado`` and changes nothing;
6. replies become public messages (a reply to a ``resuelto`` ticket reopens it); a new message
   from a known user is a ticket as that user, from an unknown address a client + ticket or
   nothing (Configuración > Email, over INBOUND_UNKNOWN_SENDER = crear | ignorar).

Functions flush, never commit; the CLI commits once per message.
"""

from __future__ import annotations

import hashlib
import html
import imaplib
import logging
import re
import sys
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Optional

import click
from flask import Flask, current_app
from flask_babel import force_locale
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

import adjuntos
import ajustes_email
import tickets
from errors import DomainError, ValidationFailed, traducir
from models import Cliente, Comunicacion, Conversacion, Envio, Mensaje, Ticket, Usuario, db, utcnow
from schemas import TicketCreate

log = logging.getLogger(__name__)

EX_TEMPFAIL = 75
NUMERO_RE = re.compile(r"\[(TKT-\d{6,})\]", re.IGNORECASE)
MSGID_RE = re.compile(r"<[^<>\s]+>")


@dataclass
class Resultado:
    estado: str  # creado | respuesta | duplicado | ignorado | rechazado | fallido
    comunicacion: Optional[Comunicacion] = None
    ticket: Optional[Ticket] = None
    motivo: Optional[str] = None


# --- decoding --------------------------------------------------------------------------------

_LATIN1 = {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "iso8859-1"}


def _decodificar(datos: bytes, charset: Optional[str]) -> str:
    charset = (charset or "utf-8").strip().lower()
    if charset in _LATIN1:
        # Mail labelled Latin-1 is very often Windows-1252 (curly quotes, €): cp1252 is a superset
        # for everything printable in Latin-1.
        return datos.decode("cp1252", errors="replace")
    try:
        return datos.decode(charset, errors="replace")
    except LookupError:
        return datos.decode("utf-8", errors="replace")


def texto_de_parte(parte: EmailMessage) -> str:
    datos = parte.get_payload(decode=True) or b""
    return _decodificar(datos, parte.get_content_charset())


class _HtmlATexto(HTMLParser):
    BLOQUES = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "pre"}
    OCULTOS = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.partes: list[str] = []
        self.oculto = 0
        self.cita = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.OCULTOS:
            self.oculto += 1
        elif tag == "blockquote":
            self.cita += 1
            self.partes.append("\n")
        elif tag in self.BLOQUES:
            self.partes.append("\n")

    def handle_endtag(self, tag):
        if tag in self.OCULTOS:
            self.oculto = max(0, self.oculto - 1)
        elif tag == "blockquote":
            self.cita = max(0, self.cita - 1)
            self.partes.append("\n")
        elif tag in self.BLOQUES:
            self.partes.append("\n")

    def handle_data(self, data):
        if self.oculto:
            return
        if self.cita:  # quoted text in HTML: mark it as a plain-text quote so trimming sees it
            data = "\n".join("> " + linea for linea in data.split("\n"))
        self.partes.append(data)


def html_a_texto(fuente: str) -> str:
    """Plain text of an HTML body: tags dropped, scripts/styles skipped, entities decoded."""
    parser = _HtmlATexto()
    try:
        parser.feed(fuente)
        parser.close()
    except Exception:  # noqa: BLE001 - broken HTML: fall back to stripping tags
        return html.unescape(re.sub(r"<[^>]*>", " ", fuente))
    texto = "".join(parser.partes).replace("\xa0", " ")
    lineas = [" ".join(linea.split()) if not linea.startswith(">") else linea.rstrip() for linea in texto.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lineas)).strip()


def cuerpo_de(msg: EmailMessage) -> str:
    """The body as text: text/plain preferred, HTML converted safely to text."""
    parte = msg.get_body(preferencelist=("plain", "html"))
    if parte is None:
        return ""
    texto = texto_de_parte(parte)
    if parte.get_content_subtype() == "html":
        texto = html_a_texto(texto)
    return texto.replace("\r\n", "\n").strip()


_CORTES = (
    re.compile(r"^\s*(On|El|Le|Am)\b.{0,200}(wrote|escribió|a écrit|schrieb)\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*(Original Message|Mensaje original|Forwarded message|Mensaje reenviado)\s*-{2,}", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),
    re.compile(r"^\s*(From|De):\s.+$"),
    re.compile(r"^-- ?$"),  # the signature delimiter
    re.compile(r"^\s*(Sent from my|Enviado desde mi)\b", re.IGNORECASE),
)


def recortar(texto: str) -> str:
    """What is shown of a reply: the new text, without the quoted previous message and signature."""
    salida = []
    for linea in texto.split("\n"):
        if any(p.match(linea) for p in _CORTES):
            break
        if linea.lstrip().startswith(">"):
            continue
        salida.append(linea)
    recortado = "\n".join(salida).strip()
    return recortado or texto.strip()


def _cabecera(msg: EmailMessage, nombre: str) -> str:
    try:
        valor = msg.get(nombre)
    except Exception:  # noqa: BLE001 - a header policy.default cannot parse
        valor = msg.get_all(nombre, failobj=[None])[0] if hasattr(msg, "get_all") else None
    return " ".join(str(valor).split()) if valor is not None else ""


# --- forwarded messages (message/rfc822 parts) ---------------------------------------------

MAX_ANIDADOS = 3  # a forward of a forward of a forward: deeper ones stay inside their .eml


@dataclass
class Reenviado:
    """A message forwarded as an attachment: its .eml is kept, its text is appended to what the
    ticket shows, its own attachments are stored with the outer message's."""

    nombre: str  # file name of the stored .eml
    crudo: bytes
    de: str
    asunto: str
    texto: str
    adjuntos: list[EmailMessage]


def _nombre_eml(parte: EmailMessage, asunto: str) -> str:
    try:
        nombre = parte.get_filename()
    except Exception:  # noqa: BLE001 - a broken Content-Disposition
        nombre = None
    nombre = nombre or (asunto or "mensaje")[:80]
    return nombre if nombre.lower().endswith(".eml") else nombre + ".eml"


def _reenviado(parte: EmailMessage, nivel: int) -> list[Reenviado]:
    interno = parte.get_payload(0) if isinstance(parte.get_payload(), list) and parte.get_payload() else None
    if not isinstance(interno, EmailMessage):
        return [Reenviado(_nombre_eml(parte, ""), b"", "", "", "", [])]
    de, asunto = _cabecera(interno, "From"), _cabecera(interno, "Subject")
    try:
        crudo = interno.as_bytes()
    except Exception:  # noqa: BLE001 - headers policy.default cannot fold again: keep them as they came
        crudo = interno.as_string(policy=policy.compat32).encode("utf-8", "replace")
    try:
        texto = cuerpo_de(interno)
    except Exception:  # noqa: BLE001
        texto = ""
    adjuntos_internos, anidados = [], []
    for sub in interno.iter_attachments():
        if sub.get_content_type() == "message/rfc822":
            anidados.extend(reenviados(sub, nivel + 1, sola=True))
        elif sub.get_content_maintype() != "multipart":
            adjuntos_internos.append(sub)
    return [Reenviado(_nombre_eml(parte, asunto), crudo, de, asunto, texto, adjuntos_internos), *anidados]


def reenviados(msg: EmailMessage, nivel: int = 0, *, sola: bool = False) -> list[Reenviado]:
    """The messages forwarded as attachments in ``msg`` (nested ones after their parent). A part
    that cannot be read gives what could be read; this never raises."""
    if nivel >= MAX_ANIDADOS:
        return []
    try:
        partes = [msg] if sola else [p for p in msg.iter_attachments() if p.get_content_type() == "message/rfc822"]
    except Exception:  # noqa: BLE001
        return []
    salida: list[Reenviado] = []
    for parte in partes:
        try:
            salida.extend(_reenviado(parte, nivel))
        except Exception as exc:  # noqa: BLE001 - a malformed inner part: the outer message still counts
            log.warning("Unreadable forwarded message: %s", exc)
            salida.append(Reenviado(_nombre_eml(parte, ""), b"", "", "", "", []))
    return salida


def texto_reenviados(lista: list[Reenviado]) -> str:
    """The forwarded messages' text, each under a line saying whose it is (installation language)."""
    bloques = []
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE") or "es"):
        for r in lista:
            titulo = traducir("Forwarded message from %(de)s, subject: %(asunto)s", de=r.de or "?",
                              asunto=r.asunto or "—")
            texto = r.texto or traducir("(the forwarded message could not be read)")
            bloques.append(f"---------- {titulo} ----------\n{texto}")
    return "\n\n".join(bloques)


# --- loop protection -----------------------------------------------------------------------

def motivo_automatico(msg: EmailMessage, remitente: str) -> Optional[str]:
    """Why this message is automatic (never answered, never a ticket), or None."""
    auto = _cabecera(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedencia = _cabecera(msg, "Precedence").lower()
    if precedencia in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedencia}"
    for cabecera in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id", "List-Unsubscribe"):
        if _cabecera(msg, cabecera):
            if cabecera == "X-Auto-Response-Suppress" and _cabecera(msg, cabecera).lower() not in ("all", "oof", "autoreply"):
                continue
            return f"{cabecera} header"
    if msg.get_content_type() == "multipart/report":
        return "delivery status notification (multipart/report)"
    local = remitente.partition("@")[0].lower()
    if local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "bounce", "bounces") or not remitente:
        return f"automatic sender <{remitente}>"
    propio = parseaddr(_remitente_propio())[1].lower()
    if propio and remitente == propio:
        return "sent by Mesa itself"
    return None


def _remitente_propio() -> str:
    return ajustes_email.ajustes().remitente_email or ""


# --- who and what ----------------------------------------------------------------------------

def _usuario_por_email(direccion: str) -> Optional[Usuario]:
    return db.session.execute(
        select(Usuario).where(func.lower(Usuario.email) == direccion, Usuario.activo.is_(True))
    ).scalars().first()


def _cliente_por_email(direccion: str) -> Optional[Cliente]:
    return db.session.execute(
        select(Cliente).where(func.lower(Cliente.email) == direccion).order_by(Cliente.id)
    ).scalars().first()


def ticket_referido(msg: EmailMessage) -> tuple[Optional[Ticket], str]:
    """The ticket this message answers and how it was found ("cabecera" | "asunto"), or (None, "")."""
    ids = MSGID_RE.findall(_cabecera(msg, "In-Reply-To") + " " + _cabecera(msg, "References"))
    if ids:
        ticket_id = db.session.execute(
            select(Comunicacion.ticket_id).where(Comunicacion.canal == "email", Comunicacion.direccion == "saliente",
                                                 Comunicacion.id_externo.in_(ids), Comunicacion.ticket_id.is_not(None))
        ).scalars().first()
        if ticket_id is None:
            ticket_id = db.session.execute(
                select(Envio.ticket_id).where(Envio.canal == "email", Envio.id_externo.in_(ids),
                                              Envio.ticket_id.is_not(None))).scalars().first()
        if ticket_id is not None:
            return db.session.get(Ticket, ticket_id), "cabecera"
    m = NUMERO_RE.search(_cabecera(msg, "Subject"))
    if m:
        ticket = db.session.execute(select(Ticket).where(Ticket.numero_ticket == m.group(1).upper())).scalar_one_or_none()
        if ticket is not None:
            return ticket, "asunto"
    return None, ""


def puede_responder(ticket: Ticket, usuario: Optional[Usuario], cliente: Optional[Cliente]) -> bool:
    if usuario is not None:
        return tickets.is_requester(ticket, usuario) or tickets.can_manage(ticket, usuario)
    return cliente is not None and ticket.usuario_id is None and ticket.cliente_id == cliente.id


def _conversacion(direccion: str, ticket: Optional[Ticket], cliente_id: Optional[int], nombre: str) -> Conversacion:
    """The email thread of one contact about one ticket."""
    conv = None
    if ticket is not None:
        conv = db.session.execute(
            select(Conversacion).where(Conversacion.canal == "email", Conversacion.contacto == direccion,
                                       Conversacion.ticket_id == ticket.id)).scalars().first()
    if conv is None:
        conv = Conversacion(canal="email", contacto=direccion, nombre_contacto=(nombre or None) and nombre[:120],
                            cliente_id=cliente_id, ticket_id=ticket.id if ticket is not None else None,
                            estado="escalada" if ticket is not None else "cerrada", no_leidos=0, fallos_bot=0)
        db.session.add(conv)
    ahora = utcnow()
    conv.ultimo_mensaje_en = ahora
    conv.ultimo_entrante_en = ahora
    conv.no_leidos = (conv.no_leidos or 0) + 1
    db.session.flush()
    return conv


def mensaje_de_cliente(ticket: Ticket, cliente: Cliente, cuerpo: str) -> Mensaje:
    """``tickets.agregar_mensaje`` for a client without an account (email requester)."""
    if ticket.estado == "cerrado":
        raise DomainError("The ticket is closed.", status=409, code="conflict")
    if ticket.estado == "resuelto":  # the requester's reply reopens it, as the lifecycle allows
        ticket.estado = "abierto"
        ticket.fecha_resolucion = None
        tickets.record(ticket, None, "estado", "estado", "resuelto", "abierto")
        tickets.por_cambiar(ticket, None, "resuelto", "abierto")
        db.session.flush()
        tickets.estado_cambiado.send(ticket, actor=None, antes="resuelto", despues="abierto")
    mensaje = Mensaje(ticket=ticket, cliente=cliente, es_staff=False, cuerpo=cuerpo, fecha=utcnow())
    db.session.add(mensaje)
    tickets.record(ticket, None, "mensaje")
    db.session.flush()
    tickets.mensaje_publicado.send(ticket, actor=None, mensaje=mensaje)
    return mensaje


def _archivos(msg: EmailMessage, lista: list[Reenviado]):
    """(name, bytes) of every attachment: the message's own, then each forwarded .eml and its own."""
    def de_partes(partes):
        for parte in partes:
            if parte.get_content_maintype() == "multipart" or parte.get_content_type() == "message/rfc822":
                continue
            try:
                yield parte.get_filename() or "adjunto", parte.get_payload(decode=True) or b""
            except Exception:  # noqa: BLE001 - a broken part is skipped, the rest is kept
                log.warning("Unreadable attachment skipped")

    yield from de_partes(msg.iter_attachments())
    for r in lista:
        yield r.nombre, r.crudo
        yield from de_partes(r.adjuntos)


def _guardar_adjuntos(msg: EmailMessage, com: Comunicacion, ticket: Optional[Ticket],
                      mensaje: Optional[Mensaje], usuario: Optional[Usuario], lista: list[Reenviado]) -> None:
    guardados, rechazados = [], []
    limite = int(current_app.config.get("UPLOAD_MAX_FILES", 5))
    for nombre, datos in _archivos(msg, lista):
        if len(guardados) >= limite:
            rechazados.append(f"{nombre}: more than {limite} files")
            continue
        try:
            a = adjuntos.guardar(datos, nombre, ticket_id=ticket.id if ticket else None,
                                 mensaje_id=mensaje.id if mensaje else None, comunicacion_id=com.id,
                                 subido_por_id=usuario.id if usuario else None)
            guardados.append(a.id)
        except ValidationFailed as exc:
            rechazados.append("; ".join((exc.fields or {}).values()) or exc.message)
    if guardados or rechazados:
        com.datos = {**(com.datos or {}), "adjuntos": guardados, "adjuntos_rechazados": rechazados}


# --- the one ingest path -----------------------------------------------------------------------

def _txt(valor: Optional[str]) -> Optional[str]:
    """Text the database takes: PostgreSQL refuses NUL characters."""
    return valor.replace("\x00", "\ufffd") if valor else valor


def _fallido(raw: bytes, motivo: str, id_externo: Optional[str] = None) -> Resultado:
    com = Comunicacion(canal="email", direccion="entrante", id_externo=id_externo or "sha256:" + hashlib.sha256(raw).hexdigest(),
                       cuerpo="", original=_txt(raw[:1_000_000].decode("utf-8", errors="replace")), estado="fallido",
                       error=_txt(motivo[:2000]), fecha=utcnow())
    existente = db.session.execute(select(Comunicacion).where(Comunicacion.canal == "email",
                                                              Comunicacion.id_externo == com.id_externo)).scalar_one_or_none()
    if existente is not None:
        return Resultado("duplicado", existente, None, motivo)
    db.session.add(com)
    db.session.flush()
    return Resultado("fallido", com, None, motivo)


def ingerir(raw: bytes) -> Resultado:
    """Store one raw message and act on it. Flushes; the caller commits."""
    entrada = ajustes_email.ajustes_entrada()
    limite = entrada.max_bytes
    if not raw.strip():
        return _fallido(raw, "empty message")
    if len(raw) > limite:
        return _fallido(raw[:64 * 1024], f"message too large: {len(raw)} bytes (limit {limite})",
                        "sha256:" + hashlib.sha256(raw).hexdigest())
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        message_id = (MSGID_RE.findall(_cabecera(msg, "Message-ID")) or [None])[0]
        nombre, remitente = parseaddr(_cabecera(msg, "From"))
        remitente = remitente.strip().lower()
        asunto = _txt(_cabecera(msg, "Subject"))
        nombre = _txt(nombre)
        if not _cabecera(msg, "From"):
            defectos = "; ".join(type(d).__name__ for d in msg.defects)
            return _fallido(raw, "malformed message: no From header" + (f" ({defectos})" if defectos else ""))
        if remitente and "@" not in remitente:
            return _fallido(raw, f"malformed From header: {_cabecera(msg, 'From')!r}")
        clave = message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
        existente = db.session.execute(select(Comunicacion).where(Comunicacion.canal == "email",
                                                                  Comunicacion.id_externo == clave)).scalar_one_or_none()
        if existente is not None:
            return Resultado("duplicado", existente, existente.ticket, "already stored")
        texto = cuerpo_de(msg)
        para = ", ".join(d for _, d in getaddresses([_cabecera(msg, "To"), _cabecera(msg, "Cc")]) if d)
    except Exception as exc:  # noqa: BLE001 - a message we cannot read is stored as failed, never lost
        log.warning("Unreadable inbound email: %s", exc)
        return _fallido(raw, f"unreadable message: {type(exc).__name__}: {exc}")

    texto = _txt(texto)
    cuerpo = recortar(texto)
    lista = reenviados(msg)
    if lista:  # the reply's own text is trimmed; what was forwarded is shown whole, after it
        bloque = _txt(texto_reenviados(lista))
        cuerpo, texto = f"{cuerpo}\n\n{bloque}".strip(), f"{texto}\n\n{bloque}".strip()
    datos = {"nombre": nombre} if nombre else {}
    if lista:
        datos["reenviados"] = [{"de": _txt(r.de), "asunto": _txt(r.asunto)} for r in lista]
    com = Comunicacion(canal="email", direccion="entrante", id_externo=_txt(clave), de=_txt(remitente[:320]),
                       para=_txt(para), asunto=_txt(asunto[:400]), tipo="text", cuerpo=cuerpo,
                       original=_txt(raw.decode("utf-8", "replace")),
                       estado="recibido", es_bot=False, fecha=utcnow(), datos=datos or None)
    db.session.add(com)
    db.session.flush()

    motivo = motivo_automatico(msg, remitente)
    if motivo:
        com.estado, com.error = "ignorado", motivo
        db.session.flush()
        return Resultado("ignorado", com, None, motivo)

    usuario = _usuario_por_email(remitente)
    cliente = None if usuario is not None else _cliente_por_email(remitente)
    ticket, via = ticket_referido(msg)

    if ticket is not None and ticket.estado != "cerrado":
        if not puede_responder(ticket, usuario, cliente):
            # A forged reference: nothing opens, nothing is sent, the ticket is not named back.
            com.estado, com.error = "rechazado", f"sender may not reply to this ticket (found by {via})"
            db.session.flush()
            return Resultado("rechazado", com, None, com.error)
        return _responder(msg, com, ticket, usuario, cliente, lista)

    if ticket is not None and not puede_responder(ticket, usuario, cliente):
        com.estado, com.error = "rechazado", f"sender may not reply to this ticket (found by {via})"
        db.session.flush()
        return Resultado("rechazado", com, None, com.error)
    return _nuevo_ticket(msg, com, asunto, texto, nombre, remitente, usuario, cliente, entrada.desconocidos, lista)


def _responder(msg, com, ticket, usuario, cliente, lista: list[Reenviado]) -> Resultado:
    cuerpo = com.cuerpo or "(empty message)"
    if usuario is not None:
        if ticket.estado == "resuelto" and tickets.is_requester(ticket, usuario):
            tickets.cambiar_estado(ticket, usuario, "abierto")
        mensaje = tickets.agregar_mensaje(ticket, usuario, cuerpo[:20000])
    else:
        mensaje = mensaje_de_cliente(ticket, cliente, cuerpo[:20000])
    conv = _conversacion(com.de, ticket, ticket.cliente_id, (com.datos or {}).get("nombre", ""))
    com.ticket_id, com.cliente_id, com.conversacion_id = ticket.id, ticket.cliente_id, conv.id
    com.autor_id = usuario.id if usuario is not None and usuario.es_staff else None
    com.estado = "procesado"
    com.datos = {**(com.datos or {}), "mensaje_id": mensaje.id}
    _guardar_adjuntos(msg, com, ticket, mensaje, usuario, lista)
    db.session.flush()
    return Resultado("respuesta", com, ticket)


def _nuevo_ticket(msg, com, asunto, texto, nombre, remitente, usuario, cliente, desconocidos: str,
                  lista: list[Reenviado]) -> Resultado:
    if usuario is None and cliente is None:
        if desconocidos != "crear":
            com.estado, com.error = "ignorado", f"unknown sender (policy: {desconocidos})"
            db.session.flush()
            return Resultado("ignorado", com, None, com.error)
        cliente = Cliente(nombre=(nombre or remitente.partition("@")[0] or remitente)[:120], email=remitente)
        db.session.add(cliente)
        db.session.flush()
    titulo = NUMERO_RE.sub("", asunto).strip() or "(no subject)"
    titulo = re.sub(r"^((re|fw|fwd|rv|reenviar)\s*:\s*)+", "", titulo, flags=re.IGNORECASE).strip() or "(no subject)"
    data = TicketCreate(titulo=titulo[:255], descripcion=(texto.strip() or titulo)[:20000],
                        categoria=current_app.config["INBOUND_CATEGORIA"], prioridad="media")
    ticket = tickets.crear_ticket(data, usuario=usuario, cliente=None if usuario is not None else cliente,
                                  canal="email")
    ticket.comunicacion_email_id = com.id
    conv = _conversacion(remitente, ticket, ticket.cliente_id, nombre)
    com.ticket_id, com.cliente_id, com.conversacion_id = ticket.id, ticket.cliente_id, conv.id
    com.estado = "procesado"
    _guardar_adjuntos(msg, com, ticket, None, usuario, lista)
    db.session.flush()
    return Resultado("creado", com, ticket)


def ingerir_y_confirmar(raw: bytes) -> Resultado:
    """``ingerir`` and commit. A concurrent copy of the same message counts as a duplicate."""
    try:
        resultado = ingerir(raw)
        db.session.commit()
        return resultado
    except IntegrityError:
        db.session.rollback()
        return Resultado("duplicado", None, None, "stored concurrently")
    except (OperationalError, OSError):
        db.session.rollback()
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a rule refused it (unknown category): keep it, failed
        db.session.rollback()
        motivo = f"{exc.code}: {exc.message}" if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        log.exception("Inbound email not processed: %s", motivo)
        resultado = _fallido(raw, motivo)
        db.session.commit()
        return resultado


# --- IMAP ----------------------------------------------------------------------------------------

def _carpeta(nombre: str) -> str:
    """A folder name as an IMAP quoted string (names with spaces are common: "Soporte entrante")."""
    return '"' + nombre.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cerrar(conexion: imaplib.IMAP4) -> None:
    try:
        conexion.logout()
    except Exception:  # noqa: BLE001 - the connection is gone already
        pass


def conectar_imap(cfg: ajustes_email.AjustesEntrada, timeout: float) -> tuple[imaplib.IMAP4, int]:
    """Log in and open the folder with the effective settings (Configuración > Email over IMAP_*).
    Returns the connection (the caller logs out) and how many messages the folder holds.
    Raises a DomainError (502 imap_error) with the server's words when it cannot."""
    if not cfg.servidor:
        raise DomainError("No IMAP server is set: fill in Configuración > Email.", status=409, code="imap_not_configured")
    clase = imaplib.IMAP4_SSL if cfg.ssl else imaplib.IMAP4
    try:
        conexion = clase(cfg.servidor, cfg.puerto, timeout=timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise DomainError("The IMAP server cannot be reached: %(error)s", status=502, code="imap_error",
                          error=f"{type(exc).__name__}: {exc}") from exc
    try:
        conexion.login(cfg.usuario or "", cfg.password or "")
        tipo, datos = conexion.select(_carpeta(cfg.carpeta))
    except (OSError, imaplib.IMAP4.error) as exc:
        _cerrar(conexion)
        raise DomainError("The IMAP server refused the login: %(error)s", status=502, code="imap_error",
                          error=f"{type(exc).__name__}: {exc}") from exc
    if tipo != "OK":
        _cerrar(conexion)
        raise DomainError("The IMAP folder %(carpeta)s cannot be opened.", status=502, code="imap_error",
                          carpeta=cfg.carpeta)
    try:
        mensajes = int((datos or [b"0"])[0] or 0)
    except ValueError:
        mensajes = 0
    return conexion, mensajes


def probar_imap() -> dict:
    """Configuración > Email's "test IMAP connection": log in, open the folder, log out."""
    cfg = ajustes_email.ajustes_entrada()
    conexion, mensajes = conectar_imap(cfg, min(float(current_app.config["MAIL_TIMEOUT"]), 15.0))
    _cerrar(conexion)
    return {"servidor": cfg.servidor, "carpeta": cfg.carpeta, "mensajes": mensajes}


def buscar_imap() -> dict[str, int]:
    """One pass over the mailbox's unseen messages: ingest each, mark it \\Seen once stored or
    ignored (a transient error leaves it unseen for the next pass). Returns counts."""
    conexion, _ = conectar_imap(ajustes_email.ajustes_entrada(), float(current_app.config["MAIL_TIMEOUT"]))
    cuenta: dict[str, int] = {}
    try:
        _, datos = conexion.uid("SEARCH", None, "UNSEEN")
        for uid in (datos[0] or b"").split():
            _, partes = conexion.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in partes if isinstance(p, tuple)), None)
            if raw is None:
                continue
            try:
                resultado = ingerir_y_confirmar(raw)
            except (OperationalError, OSError) as exc:
                log.warning("IMAP message %s not stored (will retry): %s", uid, exc)
                cuenta["reintentar"] = cuenta.get("reintentar", 0) + 1
                continue
            conexion.uid("STORE", uid, "+FLAGS", "(\\Seen)")
            cuenta[resultado.estado] = cuenta.get(resultado.estado, 0) + 1
    finally:
        _cerrar(conexion)
    return cuenta


# --- CLI -------------------------------------------------------------------------------------------

@click.command("ingest-email")
def ingest_email_command() -> None:
    """Read one RFC 822 message on stdin (an MTA pipe). Exit 0 stored/ignored, 75 to retry."""
    raw = sys.stdin.buffer.read()
    try:
        resultado = ingerir_y_confirmar(raw)
    except (SQLAlchemyError, OSError) as exc:  # the database (or disk) is away: the MTA keeps it and retries
        click.echo(f"temporary failure: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    com = resultado.comunicacion
    click.echo(f"{resultado.estado}" + (f" comunicacion={com.id}" if com is not None and com.id else "")
               + (f" ticket={resultado.ticket.numero_ticket}" if resultado.ticket is not None else "")
               + (f" ({resultado.motivo})" if resultado.motivo else ""))


@click.command("fetch-email")
@click.option("--loop", "en_bucle", is_flag=True, help="Keep polling until stopped.")
@click.option("--interval", default=60.0, show_default=True, help="Seconds between polls with --loop.")
def fetch_email_command(en_bucle: bool, interval: float) -> None:
    """Poll the IMAP mailbox (Configuración > Email over IMAP_*) once, or with --loop."""
    while True:
        try:
            cuenta = buscar_imap()
            click.echo(", ".join(f"{k}: {v}" for k, v in sorted(cuenta.items())) or "no new messages")
        except (OSError, imaplib.IMAP4.error, DomainError) as exc:
            if not en_bucle:
                raise click.ClickException(f"IMAP error: {exc}") from exc
            log.warning("IMAP poll failed: %s", exc)
        if not en_bucle:
            return
        db.session.remove()  # no transaction held while sleeping; the next poll reads the settings again
        time.sleep(interval)


def init_app(app: Flask) -> None:
    app.cli.add_command(ingest_email_command)
    app.cli.add_command(fetch_email_command)
