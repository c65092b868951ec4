"""WhatsApp Cloud API channel (issue 9): webhook, conversations, bot, escalation, delivery.

* ``firma_valida`` / ``desafio``: the webhook's signature and handshake (contract in
  shared/contracts/whatsapp-cloud-api.md).
* ``recibir(payload)`` stores every message (idempotent on its ``id``, the wamid) and applies
  ``statuses``; it returns the new inbound rows. ``procesar(ids)`` then does the slower work:
  the bot's answer, escalation to a ticket, appending to the escalated ticket's thread, media.
* ``enviar_texto`` stores an OUTBOUND Comunicacion and queues it in the outbox; the adapter
  ``AdaptadorGraph`` (``outbox.registrar_canal("whatsapp", ...)``) POSTs it to
  ``{graph_base}/{phone_number_id}/messages`` with the Bearer token.
* A staff public reply on a WhatsApp ticket goes out on WhatsApp (``mensaje_publicado`` signal).

Plain functions: they flush, never commit (the route or the sender commits)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

import outbox
import sla
import tickets
import whatsapp_bot
from errors import Conflict, NotFound, ValidationFailed
from models import (
    ESTADOS_ABIERTOS,
    Categoria,
    Cliente,
    Comunicacion,
    ConfiguracionWhatsapp,
    Conversacion,
    Envio,
    Mensaje,
    Ticket,
    Usuario,
    db,
    normalizar_telefono,
    utcnow,
)
from schemas import TicketCreate

log = logging.getLogger(__name__)

CANAL = "whatsapp"
VENTANA = timedelta(hours=24)
TIPOS_MEDIA = ("image", "audio", "video", "document", "sticker")
# Outbound states only move forward; "fallido" wins from anywhere.
ORDEN_ESTADO = {"pendiente": 0, "enviado": 1, "entregado": 2, "leido": 3}
ESTADO_META = {"sent": "enviado", "delivered": "entregado", "read": "leido", "failed": "fallido"}


# --- settings ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ajustes:
    verify_token: str
    app_secret: str
    access_token: str
    phone_number_id: str
    graph_base: str
    plantilla: str
    saludo: str
    fuera_de_horario: str
    horario: str
    palabras_escalado: list[str]
    fallos_para_escalar: int

    @property
    def activo(self) -> bool:
        return bool(self.access_token and self.phone_number_id)


def fila() -> Optional[ConfiguracionWhatsapp]:
    return db.session.get(ConfiguracionWhatsapp, 1)


def ajustes() -> Ajustes:
    """The effective settings: Configuración > WhatsApp's row over the WHATSAPP_* of config.py."""
    c = current_app.config
    f = fila()

    def valor(campo: str, clave: str, defecto=""):
        v = getattr(f, campo, None) if f is not None else None
        return v if v not in (None, "") else c.get(clave, defecto)

    fallos = f.fallos_para_escalar if f is not None and f.fallos_para_escalar else None
    return Ajustes(
        verify_token=valor("verify_token", "WHATSAPP_VERIFY_TOKEN") or "",
        app_secret=valor("app_secret", "WHATSAPP_APP_SECRET") or "",
        access_token=valor("access_token", "WHATSAPP_ACCESS_TOKEN") or "",
        phone_number_id=valor("phone_number_id", "WHATSAPP_PHONE_NUMBER_ID") or "",
        graph_base=(valor("graph_base", "WHATSAPP_GRAPH_BASE") or "").rstrip("/"),
        plantilla=valor("plantilla", "WHATSAPP_TEMPLATE") or "",
        saludo=(f.saludo if f is not None and f.saludo else ""),
        fuera_de_horario=(f.fuera_de_horario if f is not None and f.fuera_de_horario else ""),
        horario=valor("horario", "WHATSAPP_OFFICE_HOURS") or "",
        palabras_escalado=whatsapp_bot.palabras(valor("palabras_escalado", "WHATSAPP_ESCALATION_KEYWORDS") or ""),
        fallos_para_escalar=int(fallos or c.get("WHATSAPP_FAILURES_BEFORE_ESCALATION", 2)),
    )


# --- webhook: handshake and signature ------------------------------------------------------------

def desafio(args) -> Optional[str]:
    """The challenge to echo for a valid subscription handshake, else None (403)."""
    token = ajustes().verify_token
    dado = args.get("hub.verify_token", "")
    if (args.get("hub.mode") == "subscribe" and token
            and hmac.compare_digest(dado.encode(), token.encode()) and args.get("hub.challenge") is not None):
        return args.get("hub.challenge")
    return None


def firma_valida(cuerpo: bytes, cabecera: Optional[str]) -> bool:
    """``X-Hub-Signature-256: sha256=<hex>`` = HMAC-SHA256(raw body, app secret), constant time."""
    secreto = ajustes().app_secret
    if not secreto or not cabecera or not cabecera.startswith("sha256="):
        return False
    esperado = hmac.new(secreto.encode(), cuerpo, hashlib.sha256).hexdigest()
    return hmac.compare_digest(esperado.encode(), cabecera[7:].strip().lower().encode())


# --- inbound -------------------------------------------------------------------------------------

def telefono(wa_id: str) -> str:
    """A WhatsApp id (digits with the country code) as E.164; kept as "+digits" if unparsable."""
    raw = str(wa_id or "").strip()
    try:
        return normalizar_telefono(raw if raw.startswith("+") else "+" + raw)
    except ValueError:
        return "+" + "".join(ch for ch in raw if ch.isdigit())[:20]


def _fecha(ts) -> datetime:
    try:
        return datetime.fromtimestamp(int(ts), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return utcnow()


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _lista(v) -> list:
    return v if isinstance(v, list) else []


def texto_de(m: dict) -> tuple[str, dict]:
    """What to show for a message of any type, and its channel details (media id, location, ...)."""
    tipo = str(m.get("type") or "unknown")
    parte = _dict(m.get(tipo))
    if tipo == "text":
        return str(parte.get("body") or ""), {}
    if tipo in TIPOS_MEDIA:
        datos = {"media_id": parte.get("id"), "mime_type": parte.get("mime_type"),
                 "filename": parte.get("filename"), "caption": parte.get("caption")}
        return str(parte.get("caption") or ""), {k: v for k, v in datos.items() if v}
    if tipo == "location":
        partes = [str(parte.get(k)) for k in ("name", "address") if parte.get(k)]
        partes.append(f"({parte.get('latitude')}, {parte.get('longitude')})")
        return " ".join(partes), {"latitude": parte.get("latitude"), "longitude": parte.get("longitude")}
    if tipo == "interactive":
        respuesta = _dict(parte.get("button_reply")) or _dict(parte.get("list_reply"))
        return str(respuesta.get("title") or ""), {"reply_id": respuesta.get("id")}
    if tipo == "button":
        return str(parte.get("text") or ""), {"payload": parte.get("payload")}
    if tipo == "reaction":
        return str(parte.get("emoji") or ""), {"message_id": parte.get("message_id")}
    if tipo == "contacts":
        nombres = [str(_dict(c.get("name")).get("formatted_name") or "") for c in _lista(m.get("contacts"))
                   if isinstance(c, dict)]
        return ", ".join(n for n in nombres if n), {}
    errores = [e for e in _lista(m.get("errors")) if isinstance(e, dict)]
    detalle = "; ".join(f"{e.get('code')}: {e.get('title')}" for e in errores)
    return detalle, {"errors": errores} if errores else {}


def conversacion_de(contacto: str, nombre: Optional[str]) -> Conversacion:
    """The open conversation of this number (a new one after a closed one), linked to its client.

    One open conversation per number, also when Meta delivers two first messages at once: on
    PostgreSQL the lookup waits on a transaction lock of the number, so the second delivery
    sees the conversation the first one created (SQLite serialises writers already)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"conversacion:{CANAL}:{contacto}"))))
    conv = db.session.execute(
        select(Conversacion).where(Conversacion.canal == CANAL, Conversacion.contacto == contacto,
                                   Conversacion.estado != "cerrada")
        .order_by(Conversacion.id.desc()).limit(1)).scalar_one_or_none()
    if conv is None:
        cliente = db.session.execute(select(Cliente).where(Cliente.telefono == contacto)).scalar_one_or_none()
        conv = Conversacion(canal=CANAL, contacto=contacto, nombre_contacto=nombre, cliente=cliente,
                            estado="bot", no_leidos=0, fallos_bot=0, fecha_creacion=utcnow())
        db.session.add(conv)
        db.session.flush()
    elif nombre and not conv.nombre_contacto:
        conv.nombre_contacto = nombre
    if conv.cliente_id is None:
        cliente = db.session.execute(select(Cliente).where(Cliente.telefono == contacto)).scalar_one_or_none()
        if cliente is not None:
            conv.cliente = cliente
    return conv


def _guardar_entrante(m: dict, nombres: dict) -> Optional[Comunicacion]:
    wamid = m.get("id")
    if not isinstance(wamid, str) or not wamid or len(wamid) > 255 or not m.get("from"):
        log.warning("WhatsApp message without id/from ignored: %r", m)
        return None
    if db.session.execute(select(Comunicacion.id).where(
            Comunicacion.canal == CANAL, Comunicacion.id_externo == wamid)).first():
        return None  # Meta's retry or duplicate: stored once, answered once
    contacto = telefono(m["from"])
    cuerpo, datos = texto_de(m)
    fecha = _fecha(m.get("timestamp"))
    try:
        with db.session.begin_nested():
            nombre = nombres.get(str(m["from"]))
            conv = conversacion_de(contacto, str(nombre)[:120] if nombre else None)
            com = Comunicacion(canal=CANAL, direccion="entrante", id_externo=wamid, de=contacto,
                               tipo=str(m.get("type") or "unknown")[:20], cuerpo=cuerpo,
                               original=json.dumps(m, ensure_ascii=False), datos=datos or None,
                               estado="recibido", es_bot=False, conversacion=conv, cliente_id=conv.cliente_id,
                               ticket_id=conv.ticket_id, fecha=fecha)
            db.session.add(com)
            conv.no_leidos = (conv.no_leidos or 0) + 1
            conv.ultimo_mensaje_en = max(conv.ultimo_mensaje_en or fecha, fecha)
            conv.ultimo_entrante_en = max(conv.ultimo_entrante_en or fecha, fecha)
            db.session.flush()
    except IntegrityError:  # a parallel delivery of the same wamid won the race
        return None
    return com


def _aplicar_estado(s: dict) -> None:
    wamid, estado = s.get("id"), ESTADO_META.get(str(s.get("status")))
    if isinstance(wamid, str) and len(wamid) > 255:
        wamid = None
    if not isinstance(wamid, str) or estado is None:
        log.warning("WhatsApp status ignored: %r", s)
        return
    com = db.session.execute(select(Comunicacion).where(
        Comunicacion.canal == CANAL, Comunicacion.id_externo == wamid)).scalar_one_or_none()
    if com is None:
        log.info("WhatsApp status for an unknown message %s", wamid)
        return
    if estado == "fallido":
        errores = [e for e in _lista(s.get("errors")) if isinstance(e, dict)]
        com.estado = "fallido"
        com.error = "; ".join(f"{e.get('code')}: {e.get('title')}" for e in errores) or "failed"
        com.datos = {**(com.datos or {}), "errors": errores}
    elif com.estado != "fallido" and ORDEN_ESTADO[estado] > ORDEN_ESTADO.get(com.estado, 0):
        com.estado = estado


def recibir(payload) -> list[int]:
    """Store what one webhook POST carries. Returns the ids of the NEW inbound messages."""
    nuevos: list[int] = []
    if not isinstance(payload, dict):
        log.warning("WhatsApp webhook: not a JSON object")
        return nuevos
    for entry in _lista(payload.get("entry")):
        for change in _lista(_dict(entry).get("changes")):
            value = _dict(_dict(change).get("value"))
            nombres = {str(_dict(c).get("wa_id")): _dict(_dict(c).get("profile")).get("name")
                       for c in _lista(value.get("contacts"))}
            for m in _lista(value.get("messages")):
                if isinstance(m, dict):
                    com = _guardar_entrante(m, nombres)
                    if com is not None:
                        nuevos.append(com.id)
            for s in _lista(value.get("statuses")):
                if isinstance(s, dict):
                    _aplicar_estado(s)
    db.session.flush()
    return nuevos


def _ahora_local(ahora: datetime) -> datetime:
    try:
        return ahora.astimezone(ZoneInfo(current_app.config.get("APP_TIMEZONE") or "UTC"))
    except Exception:  # noqa: BLE001 - an unknown zone name: office hours in UTC
        return ahora


def procesar(ids: list[int]) -> None:
    """The work after storing: thread of the escalated ticket, or the bot (and escalation)."""
    cfg = ajustes()
    for com_id in ids:
        com = db.session.get(Comunicacion, com_id)
        if com is None or com.estado != "recibido":
            continue
        conv = com.conversacion
        if com.tipo in TIPOS_MEDIA and com.datos and com.datos.get("media_id"):
            _pedir_medio(com)
        ticket = conv.ticket
        if ticket is not None:
            tickets.bloquear(ticket)  # an append: parallel messages queue instead of a stale write
        if ticket is not None and ticket.estado in ESTADOS_ABIERTOS:
            _al_hilo(ticket, conv, com)
        else:
            if ticket is not None:  # the ticket was closed: the bot takes the conversation again
                conv.estado, conv.ticket_id, conv.fallos_bot = "bot", None, 0
            anteriores = db.session.execute(select(func.count()).select_from(Comunicacion).where(
                Comunicacion.conversacion_id == conv.id, Comunicacion.id != com.id)).scalar_one()
            decision = whatsapp_bot.decidir(com.cuerpo, primero=anteriores == 0, fallos_previos=conv.fallos_bot or 0,
                                            ajustes=cfg, ahora=_ahora_local(utcnow()))
            conv.fallos_bot = 0 if decision.entendido else (conv.fallos_bot or 0) + 1
            for texto in decision.respuestas:
                enviar_texto(conv, texto, es_bot=True)
            if decision.escalar:
                escalar(conv, decision.escalar, actor=None)
        com.estado = "procesado"
    db.session.flush()


def _al_hilo(ticket: Ticket, conv: Conversacion, com: Comunicacion) -> None:
    """An inbound message of an escalated conversation is a public message on its ticket."""
    com.ticket_id = ticket.id
    cuerpo = com.cuerpo or f"[{com.tipo}]"
    db.session.add(Mensaje(ticket=ticket, cliente_id=ticket.cliente_id or conv.cliente_id, es_staff=False,
                           cuerpo=cuerpo, fecha=com.fecha))
    tickets.record(ticket, None, "mensaje_whatsapp")


def _pedir_medio(com: Comunicacion) -> None:
    """Fetch the media promptly (Meta's URL lives minutes) through the outbox's job discipline:
    claimed once, retried with backoff, failed visibly ("not available")."""
    com.datos = {**com.datos, "media_estado": "pendiente"}
    envio = outbox.encolar(CANAL, "whatsapp_media", com.de or "", datos={
        "comunicacion_id": com.id, "media_id": com.datos["media_id"]})
    db.session.flush()
    com.envio_id = envio.id


def _descargar_medio(cfg: Ajustes, envio: Envio, com: Optional[Comunicacion]) -> None:
    import adjuntos

    if com is None:
        return
    media_id = str((envio.datos or {}).get("media_id") or "")
    try:
        cuerpo, _ = _graph(cfg, f"{cfg.graph_base}/{media_id}")
        url = json.loads(cuerpo)["url"]
        if not str(url).startswith(("http://", "https://")):
            raise outbox.ErrorPermanente("media URL is not http(s)")
        datos, _ = _graph(cfg, url)
        nombre = (com.datos or {}).get("filename") or f"whatsapp-{com.tipo}-{media_id}"
        try:
            adjunto = adjuntos.guardar(datos, nombre, comunicacion_id=com.id, ticket_id=com.ticket_id)
        except ValidationFailed as exc:
            raise outbox.ErrorPermanente(f"{exc.message} {exc.fields or ''}") from exc
    except Exception as exc:
        permanente = isinstance(exc, (outbox.ErrorPermanente, KeyError, ValueError, TypeError))
        if permanente or envio.intentos >= int(current_app.config["OUTBOX_MAX_INTENTOS"]):
            com.datos = {**(com.datos or {}), "media_estado": "fallido", "media_error": str(exc)[:500]}
            if not isinstance(exc, outbox.ErrorPermanente):
                raise outbox.ErrorPermanente(str(exc)) from exc
        raise
    com.datos = {**(com.datos or {}), "media_estado": "ok", "adjunto_id": adjunto.id,
                 "mime_sniffed": adjunto.tipo_mime}


def adjunto_de(conv: Conversacion, adjunto_id: int):
    """An attachment of a message of this (visible) conversation, or 404."""
    from models import Adjunto

    adjunto = db.session.execute(select(Adjunto).join(Comunicacion, Adjunto.comunicacion_id == Comunicacion.id)
                                 .where(Adjunto.id == adjunto_id, Comunicacion.conversacion_id == conv.id)
                                 ).scalar_one_or_none()
    if adjunto is None:
        raise NotFound("Attachment not found.")
    return adjunto


# --- escalation ----------------------------------------------------------------------------------

def _categoria() -> str:
    nombre = current_app.config.get("WHATSAPP_TICKET_CATEGORY")
    if nombre:
        return nombre
    primera = db.session.execute(select(Categoria.nombre).where(Categoria.activa.is_(True))
                                 .order_by(Categoria.id).limit(1)).scalar_one_or_none()
    if primera is None:
        raise ValidationFailed("No active category for WhatsApp tickets.")
    return primera


def transcripcion(conv: Conversacion) -> str:
    filas = db.session.execute(select(Comunicacion).where(Comunicacion.conversacion_id == conv.id)
                               .order_by(Comunicacion.fecha, Comunicacion.id)).scalars()
    lineas = []
    for c in filas:
        quien = ("Bot" if c.es_bot else "Agente") if c.direccion == "saliente" else (conv.nombre_contacto or conv.contacto)
        lineas.append(f"[{c.fecha:%Y-%m-%d %H:%M}] {quien}: {c.cuerpo or '[' + c.tipo + ']'}")
    return "\n".join(lineas)


MOTIVOS = {"palabra_clave": "the customer asked for a person", "no_entendido": "the bot did not understand",
           "agente": "an agent escalated it"}


def escalar(conv: Conversacion, motivo: str, actor: Optional[Usuario]) -> Ticket:
    """Open (or reuse) the conversation's ticket; the customer gets its number on WhatsApp."""
    ticket = conv.ticket
    if ticket is not None and ticket.estado in ESTADOS_ABIERTOS:
        tickets.record(ticket, actor, "escalado", despues=MOTIVOS.get(motivo, motivo))
        conv.estado = "escalada"
        db.session.flush()
        return ticket
    cliente = conv.cliente
    if cliente is None:  # a ticket needs a requester: the number becomes a client (editable later)
        cliente = db.session.execute(select(Cliente).where(Cliente.telefono == conv.contacto)).scalar_one_or_none()
        if cliente is None:
            try:
                tel: Optional[str] = normalizar_telefono(conv.contacto)
            except ValueError:  # a WhatsApp id that is not a dialable number: keep it in the name
                tel = None
            cliente = Cliente(nombre=(conv.nombre_contacto or conv.contacto)[:120], telefono=tel,
                              fecha_creacion=utcnow())
            db.session.add(cliente)
            db.session.flush()
        conv.cliente = cliente
    ultimo = db.session.execute(select(Comunicacion.cuerpo).where(
        Comunicacion.conversacion_id == conv.id, Comunicacion.direccion == "entrante", Comunicacion.cuerpo != "")
        .order_by(Comunicacion.fecha.desc(), Comunicacion.id.desc()).limit(1)).scalar_one_or_none()
    titulo = f"WhatsApp: {(ultimo or conv.contacto).strip()}"[:120]
    descripcion = transcripcion(conv) or titulo
    data = TicketCreate(titulo=titulo, descripcion=descripcion[:20000], categoria=_categoria(),
                        conversacion_whatsapp_id=conv.id)
    ticket = tickets.crear_ticket(data, cliente=cliente, canal=CANAL)
    tickets.record(ticket, actor, "escalado", despues=MOTIVOS.get(motivo, motivo))
    conv.ticket, conv.estado = ticket, "escalada"
    db.session.execute(Comunicacion.__table__.update().where(Comunicacion.conversacion_id == conv.id)
                       .values(ticket_id=ticket.id, cliente_id=cliente.id))
    db.session.flush()
    enviar_texto(conv, f"Hemos abierto el ticket {ticket.numero_ticket}. Una persona de nuestro equipo "
                       f"te responderá por aquí.", es_bot=True, ticket=ticket)
    return ticket


# --- outbound ------------------------------------------------------------------------------------

def ventana_abierta(conv: Conversacion, ahora: Optional[datetime] = None) -> bool:
    """Meta's customer-service window: free text only within 24 h of the customer's last message."""
    ahora = ahora or utcnow()
    return conv.ultimo_entrante_en is not None and ahora - conv.ultimo_entrante_en < VENTANA


def enviar_texto(conv: Conversacion, texto: str, *, es_bot: bool = False, autor: Optional[Usuario] = None,
                 ticket: Optional[Ticket] = None, plantilla: bool = False) -> Comunicacion:
    """Store the OUTBOUND message and queue it (free text, or the approved template outside 24 h)."""
    texto = (texto or "").strip()
    if not texto:
        raise ValidationFailed("The message is empty.", fields={"texto": "Required."})
    if len(texto) > 4096:
        raise ValidationFailed("WhatsApp messages are at most 4096 characters.", fields={"texto": "Too long."})
    para = conv.contacto.lstrip("+")
    if plantilla or not ventana_abierta(conv):
        nombre = ajustes().plantilla
        if not nombre:
            raise Conflict("The 24-hour window is closed and no approved template is configured.",
                           code="whatsapp_window_closed")
        cuerpo_meta = {"type": "template", "template": {"name": nombre, "language": {"code": "es"}}}
        tipo = "template"
    else:
        cuerpo_meta = {"type": "text", "text": {"preview_url": False, "body": texto}}
        tipo = "text"
    ahora = utcnow()
    com = Comunicacion(canal=CANAL, direccion="saliente", para=conv.contacto, tipo=tipo, cuerpo=texto,
                       estado="pendiente", es_bot=es_bot, conversacion=conv, cliente_id=conv.cliente_id,
                       ticket_id=(ticket.id if ticket is not None else conv.ticket_id),
                       autor_id=autor.id if autor is not None else None, fecha=ahora)
    db.session.add(com)
    db.session.flush()
    payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": para, **cuerpo_meta}
    envio = outbox.encolar(CANAL, "whatsapp_bot" if es_bot else "whatsapp_agente", conv.contacto,
                           ticket=ticket or conv.ticket, cuerpo_texto=texto,
                           datos={"comunicacion_id": com.id, "payload": payload})
    db.session.flush()
    com.envio_id = envio.id
    conv.ultimo_mensaje_en = ahora
    if autor is not None:
        conv.no_leidos = 0
    db.session.flush()
    return com


def enviar_medio(conv: Conversacion, adjunto, autor: Usuario, caption: str = "") -> Comunicacion:
    """An agent sends a stored attachment (image or document): uploaded to the Graph API at send
    time, then ``POST …/messages`` with its media id. Only within the 24-hour window."""
    if not ventana_abierta(conv):
        raise Conflict("The 24-hour window is closed: only an approved template may be sent.",
                       code="whatsapp_window_closed")
    tipo = "image" if adjunto.tipo_mime in ("image/jpeg", "image/png") else "document"
    caption = (caption or "").strip()[:1024]
    ahora = utcnow()
    com = Comunicacion(canal=CANAL, direccion="saliente", para=conv.contacto, tipo=tipo, cuerpo=caption,
                       estado="pendiente", es_bot=False, conversacion=conv, cliente_id=conv.cliente_id,
                       ticket_id=conv.ticket_id, autor_id=autor.id, fecha=ahora,
                       datos={"filename": adjunto.nombre, "mime_sniffed": adjunto.tipo_mime, "adjunto_id": adjunto.id,
                              "media_estado": "ok"})
    db.session.add(com)
    db.session.flush()
    adjunto.comunicacion_id = com.id
    medio: dict = {"caption": caption} if caption else {}
    if tipo == "document":
        medio["filename"] = adjunto.nombre
    payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": conv.contacto.lstrip("+"),
               "type": tipo, tipo: medio}
    envio = outbox.encolar(CANAL, "whatsapp_agente", conv.contacto, ticket=conv.ticket, cuerpo_texto=caption,
                           datos={"comunicacion_id": com.id, "payload": payload, "adjunto_id": adjunto.id})
    db.session.flush()
    com.envio_id = envio.id
    conv.ultimo_mensaje_en, conv.no_leidos = ahora, 0
    db.session.flush()
    return com


def _subir_medio(cfg: Ajustes, adjunto_id: int) -> str:
    """``POST {graph}/{phone_number_id}/media`` (multipart) → the media id to send."""
    import uuid

    import adjuntos
    from models import Adjunto

    adjunto = db.session.get(Adjunto, adjunto_id)
    if adjunto is None:
        raise outbox.ErrorPermanente("the attachment no longer exists")
    limite = uuid.uuid4().hex
    partes = []
    for nombre, valor in (("messaging_product", "whatsapp"), ("type", adjunto.tipo_mime)):
        partes.append(f'--{limite}\r\nContent-Disposition: form-data; name="{nombre}"\r\n\r\n{valor}\r\n'.encode())
    nombre_archivo = adjunto.nombre.replace('"', "")
    partes.append(f'--{limite}\r\nContent-Disposition: form-data; name="file"; filename="{nombre_archivo}"\r\n'
                  f"Content-Type: {adjunto.tipo_mime}\r\n\r\n".encode())
    partes.append(adjuntos.leer(adjunto) + b"\r\n")
    partes.append(f"--{limite}--\r\n".encode())
    cuerpo, _ = _graph(cfg, f"{cfg.graph_base}/{cfg.phone_number_id}/media", raw=b"".join(partes),
                       content_type=f"multipart/form-data; boundary={limite}")
    try:
        return str(json.loads(cuerpo)["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ErrorGraph("the media upload answered without an id") from exc


class ErrorGraph(Exception):
    pass


def _graph(cfg: Ajustes, url: str, cuerpo: Optional[dict] = None, raw: Optional[bytes] = None,
           content_type: str = "application/json") -> tuple[bytes, str]:
    datos = raw if raw is not None else (json.dumps(cuerpo).encode() if cuerpo is not None else None)
    req = urllib.request.Request(url, data=datos, method="POST" if datos is not None else "GET",
                                 headers={"Authorization": f"Bearer {cfg.access_token}",
                                          **({"Content-Type": content_type} if datos else {})})
    timeout = float(current_app.config.get("WHATSAPP_TIMEOUT", 15))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured Graph URL
            return resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        texto = exc.read()[:2000].decode("utf-8", "replace")
        try:
            err = _dict(json.loads(texto).get("error"))
            texto = f"{err.get('code')}: {err.get('message')}"
        except (ValueError, AttributeError):
            pass
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise outbox.ErrorPermanente(f"HTTP {exc.code} {texto}") from exc
        raise ErrorGraph(f"HTTP {exc.code} {texto}") from exc


class AdaptadorGraph:
    """The outbox adapter: one Graph API call per message; the wamid is the external id."""

    def __init__(self):
        self.cfg = ajustes()

    def enviar(self, envio: Envio) -> Optional[str]:
        if not self.cfg.activo:
            raise ErrorGraph("WhatsApp is not configured (no access token / phone number id).")
        datos = envio.datos or {}
        com = db.session.get(Comunicacion, datos.get("comunicacion_id")) if datos.get("comunicacion_id") else None
        if envio.tipo == "whatsapp_media":
            _descargar_medio(self.cfg, envio, com)
            return None
        url = f"{self.cfg.graph_base}/{self.cfg.phone_number_id}/messages"
        payload = dict(datos.get("payload") or {})
        try:
            if datos.get("adjunto_id"):
                tipo = payload.get("type")
                payload[tipo] = {**payload.get(tipo, {}), "id": _subir_medio(self.cfg, datos["adjunto_id"])}
            cuerpo, _ = _graph(self.cfg, url, payload)
        except outbox.ErrorPermanente as exc:
            if com is not None:
                com.estado, com.error = "fallido", str(exc)[:2000]
            raise
        try:
            wamid = str(json.loads(cuerpo)["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            wamid = None
        if com is not None:
            com.estado = "enviado" if com.estado == "pendiente" else com.estado
            if wamid:
                com.id_externo = wamid
        return wamid


# --- ticket replies go out on WhatsApp -----------------------------------------------------------

def _on_mensaje(ticket, actor=None, mensaje=None, **_):
    if mensaje is None or not mensaje.es_staff or ticket.canal != CANAL or not ticket.conversacion_whatsapp_id:
        return
    conv = db.session.get(Conversacion, ticket.conversacion_whatsapp_id)
    if conv is None:
        return
    try:
        enviar_texto(conv, mensaje.cuerpo[:4096], autor=actor, ticket=ticket)
    except Conflict:  # window closed, no template: visible on the conversation as failed
        db.session.add(Comunicacion(canal=CANAL, direccion="saliente", para=conv.contacto, tipo="text",
                                    cuerpo=mensaje.cuerpo, estado="fallido", conversacion=conv,
                                    error="24-hour window closed and no template configured",
                                    cliente_id=conv.cliente_id, ticket_id=ticket.id,
                                    autor_id=actor.id if actor else None, fecha=utcnow()))
        db.session.flush()


def _on_estado(ticket, actor=None, antes=None, despues=None, **_):
    """Closing a WhatsApp ticket closes its conversation: the customer's next message opens a new
    one with the bot; reopening the ticket reopens the conversation."""
    if ticket.canal != CANAL or not ticket.conversacion_whatsapp_id:
        return
    conv = db.session.get(Conversacion, ticket.conversacion_whatsapp_id)
    if conv is None:
        return
    if despues == "cerrado":
        conv.estado = "cerrada"
    elif antes == "cerrado" and conv.estado == "cerrada":
        otra = db.session.execute(select(Conversacion.id).where(
            Conversacion.canal == CANAL, Conversacion.contacto == conv.contacto, Conversacion.estado != "cerrada",
            Conversacion.id != conv.id)).first()
        if otra is None:
            conv.estado, conv.ticket_id = "escalada", ticket.id
    db.session.flush()


# --- reading: scope, lists, statistics -----------------------------------------------------------

def scope(viewer: Usuario):
    """Admins see every conversation; engineers those of tickets assigned to them; others none."""
    if viewer.rol == "admin":
        return Conversacion.canal == CANAL
    if viewer.rol == "ingeniero" and viewer.ingeniero is not None:
        return (Conversacion.canal == CANAL) & Conversacion.ticket_id.in_(
            select(Ticket.id).where(Ticket.ingeniero_id == viewer.ingeniero.id))
    return Conversacion.id == -1


def visible(conv_id: int, viewer: Usuario) -> Conversacion:
    conv = db.session.execute(select(Conversacion).where(Conversacion.id == conv_id, scope(viewer))
                              ).scalar_one_or_none()
    if conv is None:
        raise NotFound("Conversation not found.")
    return conv


def numero_normalizado(numero: str) -> str:
    try:
        return normalizar_telefono(numero)
    except ValueError:
        try:
            return normalizar_telefono("+" + numero.lstrip("+0 "))
        except ValueError as exc:
            raise ValidationFailed("Not a phone number.", fields={"numero": "Not a phone number."}) from exc


def consulta(viewer: Usuario, *, cliente_id=None, numero=None, desde=None, hasta=None, estado=None, q=None):
    stmt = select(Conversacion).where(scope(viewer))
    if cliente_id:
        stmt = stmt.where(Conversacion.cliente_id == cliente_id)
    if numero:
        stmt = stmt.where(Conversacion.contacto == numero_normalizado(numero))
    if desde:
        stmt = stmt.where(Conversacion.ultimo_mensaje_en >= desde)
    if hasta:
        stmt = stmt.where(Conversacion.ultimo_mensaje_en < hasta)
    if estado:
        stmt = stmt.where(Conversacion.estado == estado)
    if q:
        patron = f"%{q.strip().lower()}%"
        stmt = stmt.where(or_(
            func.lower(Conversacion.nombre_contacto).like(patron), Conversacion.contacto.like(patron),
            Conversacion.cliente_id.in_(select(Cliente.id).where(func.lower(Cliente.nombre).like(patron))),
            Conversacion.id.in_(select(Comunicacion.conversacion_id).where(
                Comunicacion.canal == CANAL, func.lower(Comunicacion.cuerpo).like(patron)))))
    return stmt.order_by(Conversacion.ultimo_mensaje_en.desc().nulls_last(), Conversacion.id.desc())


def mensajes_de(conv: Conversacion) -> list[Comunicacion]:
    return list(db.session.execute(select(Comunicacion).where(Comunicacion.conversacion_id == conv.id)
                                   .order_by(Comunicacion.fecha, Comunicacion.id)).scalars())


def ultimos_mensajes(conv_ids: list[int]) -> dict[int, Comunicacion]:
    """The last message of each conversation (the inbox's preview), in one query."""
    if not conv_ids:
        return {}
    ultimo = (select(func.max(Comunicacion.id)).where(Comunicacion.conversacion_id.in_(conv_ids))
              .group_by(Comunicacion.conversacion_id))
    filas = db.session.execute(select(Comunicacion).where(Comunicacion.id.in_(ultimo))).scalars()
    return {c.conversacion_id: c for c in filas}


def estadisticas(viewer: Usuario) -> dict:
    convs = select(Conversacion.id).where(scope(viewer))
    por_dia: dict[str, dict[str, int]] = {}
    dia = func.date(Comunicacion.fecha)
    for d, direccion, n in db.session.execute(
            select(dia, Comunicacion.direccion, func.count()).where(Comunicacion.conversacion_id.in_(convs))
            .group_by(dia, Comunicacion.direccion).order_by(dia)):
        por_dia.setdefault(str(d), {"entrantes": 0, "salientes": 0})[
            "entrantes" if direccion == "entrante" else "salientes"] += n
    estados = dict(db.session.execute(select(Conversacion.estado, func.count()).where(scope(viewer))
                                      .group_by(Conversacion.estado)).all())
    escaladas = db.session.execute(select(func.count()).select_from(Conversacion)
                                   .where(scope(viewer), Conversacion.ticket_id.is_not(None))).scalar_one()
    total = sum(estados.values())
    # First response: first outbound after the first inbound, per conversation (median, seconds).
    primeras = []
    for conv_id, in db.session.execute(convs):
        filas = db.session.execute(select(Comunicacion.direccion, Comunicacion.fecha).where(
            Comunicacion.conversacion_id == conv_id).order_by(Comunicacion.fecha, Comunicacion.id).limit(50)).all()
        entrada = next((f for d, f in filas if d == "entrante"), None)
        salida = next((f for d, f in filas if d == "saliente" and entrada is not None and f >= entrada), None)
        if entrada is not None and salida is not None:
            primeras.append((salida - entrada).total_seconds())
    primeras.sort()
    mediana = primeras[len(primeras) // 2] if primeras else None
    return {"total_conversaciones": total, "por_estado": estados, "escaladas": escaladas,
            "resueltas_por_bot": total - escaladas, "mensajes_por_dia": por_dia,
            "mediana_primera_respuesta_segundos": mediana}


def init_app(app: Flask) -> None:
    """Ticket replies go out on WhatsApp; the outbox's whatsapp channel; ``flask whatsapp-procesar``."""
    import click

    tickets.mensaje_publicado.connect(_on_mensaje)
    tickets.estado_cambiado.connect(_on_estado)
    outbox.registrar_canal(CANAL, AdaptadorGraph)

    @app.cli.command("whatsapp-procesar")
    def whatsapp_procesar_command() -> None:
        """Run the bot's step for inbound WhatsApp messages left 'recibido' (e.g. a database hiccup)."""
        total = 0
        while ids := pendientes_de_procesar():
            procesar(ids)
            db.session.commit()
            total += len(ids)
        click.echo(f"processed: {total}")


# --- what agents do from the app -----------------------------------------------------------------

def responder(conv: Conversacion, actor: Usuario, texto: str) -> Comunicacion:
    """An agent's reply from the chat view; on an escalated conversation it is also a public
    message on the ticket and, if it is the first, the ticket's first response (SLA outcome
    stored with it). The ticket's message signal is not sent: it would send the text twice."""
    com = enviar_texto(conv, texto, autor=actor)
    ticket = conv.ticket
    if ticket is not None:
        tickets.bloquear(ticket)
    if ticket is not None and ticket.estado in ESTADOS_ABIERTOS:
        com.ticket_id = ticket.id
        db.session.add(Mensaje(ticket=ticket, autor=actor, es_staff=True, cuerpo=com.cuerpo, fecha=com.fecha))
        tickets.record(ticket, actor, "mensaje_whatsapp")
        if ticket.fecha_primera_respuesta is None:
            tickets.marcar_primera_respuesta(ticket)
            sla.registrar_resultado(ticket)
    db.session.flush()
    return com


def escalar_a_mano(conv: Conversacion, actor: Usuario) -> Ticket:
    return escalar(conv, "agente", actor=actor)


def marcar_leida(conv: Conversacion) -> None:
    if conv.no_leidos:
        conv.no_leidos = 0
        db.session.flush()


def vincular_cliente(conv: Conversacion, cliente_id: Optional[int] = None, nombre: Optional[str] = None) -> Cliente:
    """Link the number to an existing client, or to a new one named ``nombre`` (seed 004)."""
    if cliente_id:
        cliente = db.session.get(Cliente, cliente_id)
        if cliente is None:
            raise ValidationFailed("No client has this id.", fields={"cliente_id": "Unknown client."})
    else:
        nombre = (nombre or "").strip()
        if not nombre:
            raise ValidationFailed("Choose a client or give the new client's name.", fields={"nombre": "Required."})
        existente = db.session.execute(select(Cliente).where(Cliente.telefono == conv.contacto)).scalar_one_or_none()
        if existente is not None:
            raise Conflict("A client already has this number.", fields={"cliente_id": str(existente.id)})
        cliente = Cliente(nombre=nombre[:120], telefono=conv.contacto, fecha_creacion=utcnow())
        db.session.add(cliente)
        db.session.flush()
    conv.cliente = cliente
    db.session.execute(Comunicacion.__table__.update().where(Comunicacion.conversacion_id == conv.id)
                       .values(cliente_id=cliente.id))
    db.session.flush()
    return cliente


def clientes(q: Optional[str] = None):
    stmt = select(Cliente).order_by(Cliente.nombre, Cliente.id)
    if q:
        patron = f"%{q.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(Cliente.nombre).like(patron), func.lower(Cliente.email).like(patron),
                              Cliente.telefono.like(patron), func.lower(Cliente.empresa).like(patron)))
    return stmt


# --- Configuración > WhatsApp and the bot's rules ------------------------------------------------

SECRETOS = ("verify_token", "app_secret", "access_token")
CAMPOS_TEXTO = {"phone_number_id": 40, "graph_base": 255, "plantilla": 120, "saludo": 4096,
                "fuera_de_horario": 4096, "horario": 20, "palabras_escalado": 2000}


def configuracion_dict() -> dict:
    """The effective settings for the page/API: secrets never returned, only whether they are set."""
    cfg, f = ajustes(), fila()
    return {"activo": cfg.activo, "phone_number_id": cfg.phone_number_id, "graph_base": cfg.graph_base,
            "plantilla": cfg.plantilla, "saludo": cfg.saludo or whatsapp_bot.SALUDO,
            "fuera_de_horario": cfg.fuera_de_horario or whatsapp_bot.FUERA_DE_HORARIO, "horario": cfg.horario,
            "palabras_escalado": ", ".join(cfg.palabras_escalado), "fallos_para_escalar": cfg.fallos_para_escalar,
            **{f"{s}_configurado": bool(getattr(cfg, s)) for s in SECRETOS},
            "fecha_actualizacion": f.fecha_actualizacion if f is not None else None}


def guardar_configuracion(form: dict, actor: Usuario) -> list[str]:
    """Save the page's form: an empty secret keeps the stored one (``borrar_<secreto>`` clears it).
    Audited (field names, never secret values). Returns the changed fields."""
    from models import CambioConfiguracion

    f = fila()
    if f is None:
        f = ConfiguracionWhatsapp(id=1)
        db.session.add(f)
    errores, cambios = {}, []
    nuevos: dict = {}
    for campo, largo in CAMPOS_TEXTO.items():
        if campo not in form:
            continue
        valor = (form.get(campo) or "").strip() or None
        if valor is not None and len(valor) > largo:
            errores[campo] = f"At most {largo} characters."
        nuevos[campo] = valor
    if nuevos.get("graph_base") and not nuevos["graph_base"].startswith(("http://", "https://")):
        errores["graph_base"] = "Must start with https:// (or http:// for a local test server)."
    if nuevos.get("horario") and not whatsapp_bot.re.fullmatch(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", nuevos["horario"]):
        errores["horario"] = "Use HH:MM-HH:MM, e.g. 09:00-18:00."
    if "fallos_para_escalar" in form:
        raw = (form.get("fallos_para_escalar") or "").strip()
        if raw and (not raw.isdigit() or not 1 <= int(raw) <= 20):
            errores["fallos_para_escalar"] = "A number from 1 to 20."
        nuevos["fallos_para_escalar"] = int(raw) if raw.isdigit() else None
    for secreto in SECRETOS:
        valor = (form.get(secreto) or "").strip()
        if len(valor) > 1000:
            errores[secreto] = "Too long."
        if valor:
            nuevos[secreto] = valor
        elif form.get(f"borrar_{secreto}"):
            nuevos[secreto] = None
    if errores:
        raise ValidationFailed("Some settings are not valid.", fields=errores)
    for campo, valor in nuevos.items():
        if getattr(f, campo) != valor:
            setattr(f, campo, valor)
            cambios.append(campo)
    if cambios:
        f.fecha_actualizacion, f.actualizado_por_id = utcnow(), actor.id
        db.session.add(CambioConfiguracion(seccion="whatsapp", usuario_id=actor.id, campos=cambios,
                                           detalle={}, fecha=utcnow()))
    db.session.flush()
    return cambios


def reglas() -> list:
    from models import ReglaBot

    return list(db.session.execute(select(ReglaBot).order_by(ReglaBot.orden, ReglaBot.id)).scalars())


def guardar_regla(form: dict, regla_id: Optional[int] = None):
    """Create or change a keyword rule (palabras clave, respuesta, idioma, activa, orden)."""
    from models import ReglaBot

    regla = None
    if regla_id is not None:
        regla = db.session.get(ReglaBot, regla_id)
        if regla is None:
            raise NotFound("Rule not found.")
    palabras = ", ".join(whatsapp_bot.palabras(form.get("palabras_clave") or ""))
    respuesta = (form.get("respuesta") or "").strip()
    idioma = (form.get("idioma") or "es").strip()
    orden = (form.get("orden") or "0").strip()
    errores = {}
    if not palabras or len(palabras) > 500:
        errores["palabras_clave"] = "One or more comma-separated keywords (500 characters at most)."
    if not respuesta or len(respuesta) > 4096:
        errores["respuesta"] = "Required, 4096 characters at most."
    if idioma not in ("es", "en"):
        errores["idioma"] = "es or en."
    if not orden.lstrip("-").isdigit() or abs(int(orden)) > 10000:
        errores["orden"] = "A whole number."
    if errores:
        raise ValidationFailed("The rule is not valid.", fields=errores)
    if regla is None:
        regla = ReglaBot()
        db.session.add(regla)
    regla.palabras_clave, regla.respuesta, regla.idioma = palabras, respuesta, idioma
    regla.orden, regla.activa = int(orden), bool(form.get("activa"))
    db.session.flush()
    return regla


def borrar_regla(regla_id: int) -> None:
    from models import ReglaBot

    regla = db.session.get(ReglaBot, regla_id)
    if regla is None:
        raise NotFound("Rule not found.")
    db.session.delete(regla)
    db.session.flush()


def pendientes_de_procesar(limite: int = 200) -> list[int]:
    """Inbound messages stored but not processed (the bot's step failed after the 200)."""
    return list(db.session.execute(select(Comunicacion.id).where(
        Comunicacion.canal == CANAL, Comunicacion.direccion == "entrante", Comunicacion.estado == "recibido")
        .order_by(Comunicacion.id).limit(limite)).scalars())
