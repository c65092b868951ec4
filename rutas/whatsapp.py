"""Routes: the WhatsApp webhook, the conversation inbox and chat view, clients, the API."""

from __future__ import annotations

import json
import logging

from flask import Response, request

import whatsapp
from auth import csrf_exempt
from models import db
from rutas import route

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
        nuevos = whatsapp.recibir(payload)
        db.session.commit()
    except Exception:  # noqa: BLE001 - Meta must get a 200, never a 500 it retries for a day
        db.session.rollback()
        log.exception("WhatsApp webhook: payload could not be stored")
        return Response("OK", mimetype="text/plain")
    if nuevos:
        try:
            whatsapp.procesar(nuevos)
            db.session.commit()
        except Exception:  # noqa: BLE001 - stored already; the message stays 'recibido' for a retry
            db.session.rollback()
            log.exception("WhatsApp webhook: processing failed for %s", nuevos)
    return Response("OK", mimetype="text/plain")
