"""Routes: in-app notifications (the bell), email preferences and the live event stream (issue 12).

``/api/eventos/stream`` is Server-Sent Events read from the database, so it works across
gunicorn workers and processes. Two kinds of event:

* ``notificacion``: the caller's ``notificaciones`` rows, their ids as event ids; it resumes
  from ``Last-Event-ID``.
* ``cambio`` (no id, so it never disturbs the resume point): something changed in the tickets
  the caller may see (admin: all; engineer: assigned to them; usuario: their own), with the
  scope's ``version``. One is sent when the stream opens (``inicial``), so a page that saw
  another version reloads its live regions after a reconnect gap.

It sends a heartbeat comment and ends after SSE_MAX_SECONDS so a worker is never held forever
(EventSource reconnects by itself). ``/api/eventos`` is the long-poll JSON fallback.
"""

from __future__ import annotations

import json
import math
import time
from typing import Optional

from flask import Response, current_app, flash, jsonify, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import BaseModel, ConfigDict

import notificaciones
import openapi
from auth import role_required
from models import Usuario, db
from rutas import route
from rutas.comun import json_body
from schemas import MAX_ID, Salida, parse

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
    return eventos


def _version(usuario_id: int) -> str:
    return notificaciones.version_alcance(db.session.get(Usuario, usuario_id))


@route("/api/eventos", doc=openapi.op(
    "Long-poll fallback of the event stream: notifications after ?desde=, and whether the caller's "
    "tickets changed since ?version= (waits up to ?espera= seconds for either)",
    openapi.ANY, schema={"type": "object"}, tag="notificaciones", params=[
        {"name": "desde", "in": "query", "schema": {"type": "integer"}},
        {"name": "version", "in": "query", "schema": {"type": "string"}},
        {"name": "espera", "in": "query", "schema": {"type": "number"}}]))
@role_required(*TODOS)
def api_eventos():
    """Events after ``desde`` and ``cambio`` when the scope's version differs from ``version``;
    waits (bounded) until one of them."""
    desde, usuario_id = _desde(), current_user.id
    conocida = request.args.get("version")
    limite = time.monotonic() + _espera()
    while True:
        eventos, version = _nuevas(usuario_id, desde), _version(usuario_id)
        db.session.rollback()  # end the read transaction: never hold a snapshot between polls
        cambio = conocida is not None and version != conocida
        if eventos or cambio or time.monotonic() >= limite:
            break
        time.sleep(float(current_app.config["SSE_POLL_SECONDS"]))
    return jsonify({"eventos": eventos, "ultimo": eventos[-1]["id"] if eventos else desde,
                    "version": version, "cambio": cambio})


@route("/api/eventos/stream", doc=openapi.op(
    "Server-Sent Events: the caller's notifications (event `notificacion`, resumes from Last-Event-ID) and "
    "`cambio` when a ticket the caller may see changes (admin: all; engineer: assigned; usuario: own); "
    "bounded duration",
    openapi.ANY, schema={"type": "string"}, tag="notificaciones", content_type="text/event-stream"))
@role_required(*TODOS)
def api_eventos_stream():
    """SSE stream read from the database (works with several workers and processes)."""
    desde, usuario_id = _desde(), current_user.id
    cfg = current_app.config
    duracion, sondeo, latido = (float(cfg["SSE_MAX_SECONDS"]), float(cfg["SSE_POLL_SECONDS"]),
                                float(cfg["SSE_HEARTBEAT_SECONDS"]))

    def cambio(version: str, inicial: bool = False) -> str:
        return f"event: cambio\ndata: {json.dumps({'version': version, 'inicial': inicial})}\n\n"

    def generar():
        ultimo, inicio, ultimo_latido = desde, time.monotonic(), time.monotonic()
        vigia = notificaciones.Vigia(usuario_id)
        vigia.mirar()
        db.session.rollback()
        yield "retry: 2000\n\n"
        yield cambio(vigia.version or "", inicial=True)
        while time.monotonic() - inicio < duracion:
            for evento in _nuevas(usuario_id, ultimo):
                ultimo = evento["id"]
                yield f"id: {ultimo}\nevent: notificacion\ndata: {json.dumps(evento)}\n\n"
            if vigia.mirar():
                yield cambio(vigia.version or "")
            db.session.rollback()  # end the read transaction: never hold a snapshot between polls
            if time.monotonic() - ultimo_latido >= latido:
                ultimo_latido = time.monotonic()
                yield ": latido\n\n"
            time.sleep(sondeo)
        db.session.remove()

    return Response(stream_with_context(generar()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# --- email preferences ------------------------------------------------------------------------

class PreferenciasIn(BaseModel):
    """Some of the caller's keys (``GET`` lists those of their role) → on/off."""

    model_config = ConfigDict(extra="forbid")
    email: dict[str, bool]


class PreferenciasOut(Salida):
    email: dict[str, bool]
    etiquetas: dict[str, str]

    @classmethod
    def de(cls, usuario) -> dict:
        valores = notificaciones.preferencias(usuario)
        return openapi.dump(cls, {"email": valores, "etiquetas": {
            k: _(notificaciones.PREFERENCIAS[k][0]) for k in valores}})


@route("/api/me/preferencias", doc=openapi.op(
    "The caller's email preferences: which notifications they also get by email (default: all on). "
    "Creation receipts and account emails are always sent", openapi.ANY,
    schema=openapi.REF("Preferencias"), tag="notificaciones"))
@role_required(*TODOS)
def api_preferencias():
    """My email preferences."""
    return jsonify(PreferenciasOut.de(current_user))


@route("/api/me/preferencias", methods=["PUT"], endpoint="api_preferencias_put", doc=openapi.op(
    "Change some of the caller's email preferences; an unknown key (or one of another role) is a 422",
    openapi.ANY, PreferenciasIn, schema=openapi.REF("Preferencias"), tag="notificaciones"))
@role_required(*TODOS)
def api_preferencias_put():
    """Turn some notification emails on or off (only the caller's own)."""
    data = parse(PreferenciasIn, json_body())
    notificaciones.guardar_preferencias(current_user, data.email)
    db.session.commit()
    return jsonify(PreferenciasOut.de(current_user))


@route("/cuenta/preferencias", methods=["GET", "POST"])
@role_required(*TODOS)
def preferencias():
    """My account: which notifications I also get by email."""
    if request.method == "POST":
        notificaciones.guardar_preferencias(current_user, {
            clave: request.form.get(clave) == "1" for clave in notificaciones.claves(current_user)})
        db.session.commit()
        flash(_("Preferences saved."), "success")
        return redirect(url_for("preferencias"))
    valores = notificaciones.preferencias(current_user)
    opciones = [(clave, _(notificaciones.PREFERENCIAS[clave][0]), valor) for clave, valor in valores.items()]
    return render_template("preferencias.html", opciones=opciones)
