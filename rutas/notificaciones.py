"""Routes: in-app notifications (the bell) and the live event stream (issue 12).

``/api/eventos/stream`` is Server-Sent Events read from the database (``notificaciones`` rows
of the caller, ids as event ids), so it works across gunicorn workers and processes; it resumes
from ``Last-Event-ID``, sends a heartbeat comment, and ends after SSE_MAX_SECONDS so a sync
worker is never held forever (EventSource reconnects by itself, resuming from the last id).
``/api/eventos`` is the long-poll JSON fallback with the same ids.
"""

from __future__ import annotations

import json
import math
import time
from typing import Optional

from flask import Response, current_app, jsonify, request, stream_with_context
from flask_login import current_user

import notificaciones
import openapi
from auth import role_required
from models import Usuario, db
from rutas import route
from schemas import MAX_ID, Salida

TODOS = ("usuario", "ingeniero", "admin")


class NotificacionOut(Salida):
    id: int
    tipo: str
    texto: str
    ticket_id: Optional[int]
    leida: bool
    fecha: str

    @classmethod
    def de(cls, n) -> dict:
        return {"id": n.id, "tipo": n.tipo, "texto": n.texto, "ticket_id": n.ticket_id, "leida": n.leida,
                "fecha": n.fecha.isoformat(), "url": f"/tickets/{n.ticket.numero_ticket}" if n.ticket is not None else None}


def _desde() -> int:
    """The last event id the client has (unreadable: 0, from the start). Clamped to the ids the
    database can hold: a larger one compared in SQL overflows the integer column."""
    valor = request.headers.get("Last-Event-ID") or request.args.get("desde") or "0"
    try:
        return min(max(int(valor), 0), MAX_ID)
    except ValueError:
        return 0


def _espera() -> float:
    """Seconds to wait for an event: 0 to SSE_MAX_SECONDS (unreadable or not finite: 0, which a
    NaN would otherwise turn into a wait that never ends)."""
    try:
        espera = float(request.args.get("espera", "0"))
    except ValueError:
        return 0.0
    if not math.isfinite(espera):
        return 0.0
    return min(max(espera, 0.0), float(current_app.config["SSE_MAX_SECONDS"]))


@route("/api/notificaciones", doc=openapi.op(
    "The caller's notifications (newest first) and the unread count", openapi.ANY,
    schema={"type": "object"}, tag="notificaciones"))
@role_required(*TODOS)
def api_notificaciones():
    """The bell: unread count and the latest notifications."""
    items = notificaciones.listar(current_user, limite=20)
    return jsonify({"no_leidas": notificaciones.no_leidas(current_user),
                    "items": [NotificacionOut.de(n) for n in items]})


@route("/api/notificaciones/<int:notificacion_id>/leida", methods=["POST"], doc=openapi.op(
    "Mark one of the caller's notifications read (another user's is a 404)", openapi.ANY,
    schema={"type": "object"}, tag="notificaciones", params=[openapi.ID("notificacion_id")]))
@role_required(*TODOS)
def api_notificacion_leida(notificacion_id: int):
    """Mark one read."""
    fila = notificaciones.marcar_leida(current_user, notificacion_id)
    db.session.commit()
    return jsonify({"notificacion": NotificacionOut.de(fila), "no_leidas": notificaciones.no_leidas(current_user)})


@route("/api/notificaciones/leidas", methods=["POST"], doc=openapi.op(
    "Mark all the caller's notifications read", openapi.ANY, schema={"type": "object"}, tag="notificaciones"))
@role_required(*TODOS)
def api_notificaciones_leidas():
    """Mark all read."""
    n = notificaciones.marcar_todas(current_user)
    db.session.commit()
    return jsonify({"marcadas": n, "no_leidas": 0})


def _nuevas(usuario_id: int, desde: int) -> list[dict]:
    usuario = db.session.get(Usuario, usuario_id)
    eventos = [NotificacionOut.de(n) for n in reversed(notificaciones.listar(usuario, limite=100, despues_de=desde))]
    db.session.rollback()  # end the read transaction: never hold a snapshot between polls
    return eventos


@route("/api/eventos", doc=openapi.op(
    "Long-poll fallback of the event stream: events after ?desde= (waits up to ?espera= seconds)",
    openapi.ANY, schema={"type": "object"}, tag="notificaciones", params=[
        {"name": "desde", "in": "query", "schema": {"type": "integer"}},
        {"name": "espera", "in": "query", "schema": {"type": "number"}}]))
@role_required(*TODOS)
def api_eventos():
    """Events after ``desde``; waits (bounded) until one arrives."""
    desde, usuario_id = _desde(), current_user.id
    limite = time.monotonic() + _espera()
    while True:
        eventos = _nuevas(usuario_id, desde)
        if eventos or time.monotonic() >= limite:
            break
        time.sleep(float(current_app.config["SSE_POLL_SECONDS"]))
    return jsonify({"eventos": eventos, "ultimo": eventos[-1]["id"] if eventos else desde})


@route("/api/eventos/stream", doc=openapi.op(
    "Server-Sent Events of the caller's notifications; resumes from Last-Event-ID; bounded duration",
    openapi.ANY, schema={"type": "string"}, tag="notificaciones", content_type="text/event-stream"))
@role_required(*TODOS)
def api_eventos_stream():
    """SSE stream read from the database (works with several workers and processes)."""
    desde, usuario_id = _desde(), current_user.id
    cfg = current_app.config
    duracion, sondeo, latido = (float(cfg["SSE_MAX_SECONDS"]), float(cfg["SSE_POLL_SECONDS"]),
                                float(cfg["SSE_HEARTBEAT_SECONDS"]))

    def generar():
        ultimo, inicio, ultimo_latido = desde, time.monotonic(), time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() - inicio < duracion:
            for evento in _nuevas(usuario_id, ultimo):
                ultimo = evento["id"]
                yield f"id: {ultimo}\nevent: notificacion\ndata: {json.dumps(evento)}\n\n"
            if time.monotonic() - ultimo_latido >= latido:
                ultimo_latido = time.monotonic()
                yield ": latido\n\n"
            time.sleep(sondeo)
        db.session.remove()

    return Response(stream_with_context(generar()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
