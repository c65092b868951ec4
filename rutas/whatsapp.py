"""Routes: the WhatsApp webhook, the conversation inbox and chat view, clients, the API."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Optional
from urllib.parse import quote

from flask import Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import openapi
import tickets
import whatsapp
from auth import csrf_exempt, role_required
from errors import DomainError, NotFound
from models import ESTADOS_CONVERSACION, Cliente, Ticket, db
from rutas import route
from rutas.comun import al_fallar_volver_a, guardar_ajustes, paginar
from schemas import Salida, page_dict, parse_query

log = logging.getLogger(__name__)


# --- the webhook: Meta only (authenticated by its signature) ------------------------------------

@route("/webhooks/whatsapp", methods=["GET"])
def whatsapp_webhook_verificar():
    """Meta's subscription handshake: the challenge echoed as text/plain, anything else 403."""
    reto = whatsapp.desafio(request.args)
    if reto is None:
        return Response("Forbidden", status=403, mimetype="text/plain")
    return Response(reto, status=200, mimetype="text/plain")


@route("/webhooks/whatsapp", methods=["POST"])
@csrf_exempt
def whatsapp_webhook():
    """Signed POSTs: store first (idempotent on the wamid), answer 200; then the bot's work.
    A malformed payload is logged and answered 200 so Meta does not retry it forever."""
    cuerpo = request.get_data(cache=False)
    if not whatsapp.firma_valida(cuerpo, request.headers.get("X-Hub-Signature-256")):
        return Response("Forbidden", status=403, mimetype="text/plain")
    try:
        payload = json.loads(cuerpo)
    except ValueError:
        log.warning("WhatsApp webhook: body is not JSON")
        return Response("OK", mimetype="text/plain")
    try:
        nuevos = _con_reintentos(lambda: whatsapp.recibir(payload))
    except OperationalError:  # the database is down or busy: not stored, so let Meta retry later
        log.exception("WhatsApp webhook: database unavailable")
        return Response("Try again later", status=503, mimetype="text/plain")
    except Exception:  # noqa: BLE001 - a payload we cannot read: 200, or Meta retries it for a day
        db.session.rollback()
        log.exception("WhatsApp webhook: payload could not be stored")
        return Response("OK", mimetype="text/plain")
    if nuevos:
        try:
            _con_reintentos(lambda: whatsapp.procesar(nuevos))
        except Exception:  # noqa: BLE001 - stored already; the messages stay 'recibido' (flask whatsapp-procesar)
            db.session.rollback()
            log.exception("WhatsApp webhook: processing failed for %s", nuevos)
    return Response("OK", mimetype="text/plain")


def _con_reintentos(trabajo, intentos: int = 5):
    """Run ``trabajo`` and commit; a busy database (SQLite's lock upgrade, a PostgreSQL
    serialization failure) is retried with the whole transaction."""
    for intento in range(intentos):
        try:
            resultado = trabajo()
            db.session.commit()
            return resultado
        except OperationalError:
            db.session.rollback()
            if intento == intentos - 1:
                raise
            time.sleep(0.05 * (intento + 1))


# --- output shapes (OpenAPI components) ---------------------------------------------------------

class MensajeWhatsappOut(Salida):
    """One WhatsApp message of a conversation (INBOUND = entrante, OUTBOUND = saliente)."""

    id: int
    direccion: str
    tipo: str
    cuerpo: str
    estado: str
    error: Optional[str]
    es_bot: bool
    id_externo: Optional[str]
    cliente_id: Optional[int]
    ticket_id: Optional[int]
    autor_id: Optional[int]
    datos: Optional[dict]
    fecha: datetime


class ConversacionWhatsappOut(Salida):
    """A WhatsApp conversation: one number, its client (if known), its ticket (if escalated)."""

    id: int
    numero: str = Field(validation_alias="contacto")
    nombre_contacto: Optional[str]
    cliente_id: Optional[int]
    ticket_id: Optional[int]
    estado: str
    no_leidos: int
    ultimo_mensaje_en: Optional[datetime]
    ultimo_entrante_en: Optional[datetime]
    fecha_creacion: datetime


class ConversacionWhatsappDetalleOut(ConversacionWhatsappOut):
    """A conversation with its whole thread, oldest first."""

    mensajes: list[MensajeWhatsappOut]


class FiltroConversaciones(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cliente_id: Optional[int] = Field(default=None, ge=1, le=2**31 - 1)
    numero: Optional[str] = Field(default=None, max_length=40)
    desde: Optional[date] = None
    hasta: Optional[date] = None
    estado: Optional[Literal[ESTADOS_CONVERSACION]] = None  # type: ignore[valid-type]
    q: Optional[str] = Field(default=None, max_length=200)

    @field_validator("*", mode="before")
    @classmethod
    def _vacio(cls, value):
        return value if value not in ("",) else None

    def consulta(self, viewer):
        hasta = self.hasta + timedelta(days=1) if self.hasta else None
        desde = datetime.combine(self.desde, datetime.min.time(), UTC) if self.desde else None
        hasta = datetime.combine(hasta, datetime.min.time(), UTC) if hasta else None
        return whatsapp.consulta(viewer, cliente_id=self.cliente_id, numero=self.numero, desde=desde, hasta=hasta,
                                 estado=self.estado, q=self.q)


def _detalle(conv) -> dict:
    return openapi.dump(ConversacionWhatsappDetalleOut, {
        **openapi.dump(ConversacionWhatsappOut, conv), "contacto": conv.contacto,
        "mensajes": [openapi.dump(MensajeWhatsappOut, c) for c in whatsapp.mensajes_de(conv)]})


STAFF = ("admin", "ingeniero")
FILTROS = [{"name": n, "in": "query", "schema": s} for n, s in (
    ("cliente_id", {"type": "integer"}), ("numero", {"type": "string"}),
    ("desde", {"type": "string", "format": "date"}), ("hasta", {"type": "string", "format": "date"}),
    ("estado", {"enum": list(ESTADOS_CONVERSACION)}), ("q", {"type": "string"}))]


# --- seed 004's API ------------------------------------------------------------------------------

@route("/api/v1/conversaciones-whatsapp", doc=openapi.op(
    "WhatsApp conversations in the caller's scope (admins all; engineers those of their tickets), newest first",
    "ingeniero, admin", schema=openapi.page_of("ConversacionWhatsapp"), tag="whatsapp",
    params=[*FILTROS, *openapi.PAGE_PARAMS]))
@role_required(*STAFF)
def api_conversaciones_whatsapp():
    """Paginated conversations; filters cliente_id, numero, desde, hasta, estado, q."""
    f = parse_query(FiltroConversaciones, request.args)
    p = paginar(f.consulta(current_user))
    return jsonify(page_dict([openapi.dump(ConversacionWhatsappOut, c) for c in p.items], p.total, p.page, p.per_page))


@route("/api/v1/conversaciones-whatsapp/estadisticas", doc=openapi.op(
    "WhatsApp statistics: messages in/out per day, median first response, bot-resolved vs escalated",
    "ingeniero, admin", schema={"type": "object"}, tag="whatsapp"))
@role_required(*STAFF)
def api_conversaciones_whatsapp_estadisticas():
    return jsonify(whatsapp.estadisticas(current_user))


@route("/api/v1/conversaciones-whatsapp/<int:conversacion_id>", doc=openapi.op(
    "One conversation with its messages (404 outside the caller's scope)", "ingeniero, admin",
    schema=openapi.REF("ConversacionWhatsappDetalle"), tag="whatsapp", params=[openapi.ID("conversacion_id")]))
@role_required(*STAFF)
def api_conversacion_whatsapp(conversacion_id: int):
    return jsonify(_detalle(whatsapp.visible(conversacion_id, current_user)))


@route("/api/v1/conversaciones-whatsapp/cliente/<int:cliente_id>", doc=openapi.op(
    "The conversations of one client, each with its messages", "ingeniero, admin",
    schema={"type": "array", "items": openapi.REF("ConversacionWhatsappDetalle")}, tag="whatsapp",
    params=[openapi.ID("cliente_id")]))
@role_required(*STAFF)
def api_conversaciones_whatsapp_cliente(cliente_id: int):
    convs = db.session.execute(whatsapp.consulta(current_user, cliente_id=cliente_id)).scalars()
    return jsonify([_detalle(c) for c in convs])


@route("/api/v1/conversaciones-whatsapp/numero/<numero>", doc=openapi.op(
    "The conversations of one phone number (any common way of writing it), each with its messages",
    "ingeniero, admin", schema={"type": "array", "items": openapi.REF("ConversacionWhatsappDetalle")},
    tag="whatsapp", params=[{"name": "numero", "in": "path", "required": True, "schema": {"type": "string"}}]))
@role_required(*STAFF)
def api_conversaciones_whatsapp_numero(numero: str):
    convs = db.session.execute(whatsapp.consulta(current_user, numero=numero)).scalars()
    return jsonify([_detalle(c) for c in convs])


# --- views: inbox, chat, clients -----------------------------------------------------------------

@route("/conversaciones")
@role_required(*STAFF)
def conversaciones_inbox():
    """The inbox: one row per conversation, newest activity first, with filters."""
    try:
        f = parse_query(FiltroConversaciones, request.args)
        stmt = f.consulta(current_user)
    except DomainError as exc:
        flash(exc.message, "danger")
        f = FiltroConversaciones()
        stmt = f.consulta(current_user)
    pagina = paginar(stmt, 25)
    plantilla = "_whatsapp_filas.html" if request.args.get("fragmento") == "filas" else "whatsapp_inbox.html"
    return render_template(plantilla, conversaciones=pagina.items, pagina=pagina,
                           ultimos=whatsapp.ultimos_mensajes([c.id for c in pagina.items]),
                           filtros=f, activo=whatsapp.ajustes().activo,
                           estadisticas=whatsapp.estadisticas(current_user) if plantilla != "_whatsapp_filas.html"
                           else None)


@route("/conversaciones/<int:conversacion_id>")
@role_required(*STAFF)
def conversacion_chat(conversacion_id: int):
    """The chat view: bubbles, ticks, media placeholders, reply box with the 24-hour indicator."""
    conv = whatsapp.visible(conversacion_id, current_user)
    whatsapp.marcar_leida(conv)
    db.session.commit()
    contexto = {"conv": conv, "mensajes": whatsapp.mensajes_de(conv), "ventana": whatsapp.ventana_abierta(conv),
                "plantilla": whatsapp.ajustes().plantilla, "activo": whatsapp.ajustes().activo}
    if request.args.get("fragmento") == "mensajes":
        return render_template("_whatsapp_burbujas.html", **contexto)
    return render_template("whatsapp_chat.html", **contexto)


@route("/conversaciones/<int:conversacion_id>/responder", methods=["POST"])
@role_required(*STAFF)
def conversacion_responder(conversacion_id: int):
    conv = whatsapp.visible(conversacion_id, current_user)
    al_fallar_volver_a(url_for("conversacion_chat", conversacion_id=conversacion_id))
    archivo = request.files.get("archivo")
    if archivo is not None and archivo.filename:
        import adjuntos

        limite = int(current_app.config["UPLOAD_MAX_BYTES"])
        adjunto = adjuntos.guardar(archivo.read(limite + 1), archivo.filename, subido_por_id=current_user.id,
                                   ticket_id=conv.ticket_id)
        whatsapp.enviar_medio(conv, adjunto, current_user, request.form.get("texto", ""))
    else:
        whatsapp.responder(conv, current_user, request.form.get("texto", ""))
    db.session.commit()
    flash(_("Reply queued for WhatsApp."), "success")
    return redirect(url_for("conversacion_chat", conversacion_id=conversacion_id))


@route("/conversaciones/<int:conversacion_id>/escalar", methods=["POST"])
@role_required(*STAFF)
def conversacion_escalar(conversacion_id: int):
    conv = whatsapp.visible(conversacion_id, current_user)
    ticket = whatsapp.escalar_a_mano(conv, current_user)
    db.session.commit()
    flash(_("Escalated to ticket %(numero)s.", numero=ticket.numero_ticket), "success")
    return redirect(url_for("conversacion_chat", conversacion_id=conversacion_id))


@route("/conversaciones/<int:conversacion_id>/cliente", methods=["POST"])
@role_required("admin")
def conversacion_vincular(conversacion_id: int):
    """Link an unknown number to an existing client or a new one."""
    conv = whatsapp.visible(conversacion_id, current_user)
    al_fallar_volver_a(url_for("conversacion_chat", conversacion_id=conversacion_id))
    whatsapp.vincular_cliente(conv, request.form.get("cliente_id", type=int), request.form.get("nombre"))
    db.session.commit()
    flash(_("Conversation linked to the client."), "success")
    return redirect(url_for("conversacion_chat", conversacion_id=conversacion_id))


@route("/clientes")
@role_required(*STAFF)
def clientes_lista():
    q = (request.args.get("q") or "").strip()[:200]
    pagina = paginar(whatsapp.clientes(q), 25)
    return render_template("clientes.html", clientes=pagina.items, pagina=pagina, q=q)


@route("/clientes/<int:cliente_id>")
@role_required(*STAFF)
def cliente_detalle(cliente_id: int):
    cliente = db.session.get(Cliente, cliente_id)
    if cliente is None:
        raise NotFound("Client not found.")
    convs = list(db.session.execute(whatsapp.consulta(current_user, cliente_id=cliente_id)).scalars())
    hilos = [(c, whatsapp.mensajes_de(c)) for c in convs]
    ultimos = db.session.execute(select(Ticket).where(Ticket.cliente_id == cliente_id,
                                                      tickets.scope_clause(current_user))
                                 .order_by(Ticket.fecha_creacion.desc()).limit(20)).scalars().all()
    return render_template("clientes_detalle.html", cliente=cliente, hilos=hilos, tickets_cliente=ultimos,
                           pestana=request.args.get("pestana", "whatsapp"))


@route("/conversaciones/<int:conversacion_id>/adjuntos/<int:adjunto_id>")
@role_required(*STAFF)
def conversacion_adjunto(conversacion_id: int, adjunto_id: int):
    """A fetched WhatsApp media file, access-checked like the conversation (404 outside scope)."""
    import adjuntos

    adjunto = whatsapp.adjunto_de(whatsapp.visible(conversacion_id, current_user), adjunto_id)
    en_linea = adjunto.tipo_mime in adjuntos.INLINE or adjunto.tipo_mime.startswith(("audio/", "video/"))
    resp = Response(adjuntos.leer(adjunto), mimetype=adjunto.tipo_mime)
    resp.headers["Content-Disposition"] = ("inline" if en_linea else "attachment") + \
        f"; filename*=UTF-8''{quote(adjunto.nombre)}"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "private, max-age=300"
    return resp


# --- Configuración > WhatsApp and the bot's rules (admins) ---------------------------------------

@route("/admin/configuracion/whatsapp", methods=["GET", "POST"])
@role_required("admin")
def admin_config_whatsapp():
    """Settings (secrets write-only, encrypted at rest) and the bot's keyword rules."""
    errores = {}
    if request.method == "POST":
        hecho, errores = guardar_ajustes(lambda: whatsapp.guardar_configuracion(request.form, current_user),
                                         "admin_config_whatsapp", _("WhatsApp settings saved."))
        if hecho is not None:
            return hecho
    return render_template("whatsapp_config.html", cfg=whatsapp.configuracion_dict(), errores=errores,
                           reglas=whatsapp.reglas()), 422 if errores else 200


@route("/admin/configuracion/whatsapp/reglas", methods=["POST"])
@role_required("admin")
def admin_whatsapp_regla_nueva():
    """Add a bot rule (a refused one is flashed, translated, by the one error handler)."""
    al_fallar_volver_a(url_for("admin_config_whatsapp") + "#reglas")
    whatsapp.guardar_regla(request.form)
    db.session.commit()
    flash(_("Rule saved."), "success")
    return redirect(url_for("admin_config_whatsapp") + "#reglas")


@route("/admin/configuracion/whatsapp/reglas/<int:regla_id>", methods=["POST"])
@role_required("admin")
def admin_whatsapp_regla(regla_id: int):
    """Edit or delete a bot rule."""
    al_fallar_volver_a(url_for("admin_config_whatsapp") + "#reglas")
    if request.form.get("borrar"):
        whatsapp.borrar_regla(regla_id)
    else:
        whatsapp.guardar_regla(request.form, regla_id)
    db.session.commit()
    flash(_("Rule saved."), "success")
    return redirect(url_for("admin_config_whatsapp") + "#reglas")
