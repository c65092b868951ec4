"""The benchmark's WSGI app: Mesa, plus a bare Flask JSON route to compare one ticket's GET with.

    gunicorn "bench.app_bench:create_app()"

``/_bare/ticket`` is a Flask app with nothing but one route that returns a ticket-sized JSON
body: no database, no auth, no hooks. It exists only here (production serves ``app:create_app()``),
mounted under the same gunicorn and worker processes as Mesa so that the ratio in ``make bench``
compares Mesa's per-request work with Flask's floor, not two servers.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import app as mesa

# The shape and size of GET /api/tickets/<id> for a seeded ticket (~1 KB).
TICKET = {
    "id": 4242, "numero_ticket": "TKT-004242", "titulo": "Impresora vpn #4242",
    "descripcion": " ".join(["impresora", "correo", "vpn", "servidor", "erp"] * 4),
    "prioridad": "media", "estado": "en_progreso", "canal": "api", "categoria": "Redes",
    "usuario": {"id": 17, "username": "user17", "nombre": "Usuario Correo 17"}, "cliente": None,
    "ingeniero": {"id": 2, "nombre": "Ingeniero 1"}, "etiquetas": ["vpn"], "version": 3,
    "fecha_creacion": "2026-11-29T10:00:00Z", "fecha_actualizacion": "2026-11-29T10:00:00Z",
    "fecha_primera_respuesta": "2026-11-29T11:00:00Z", "fecha_resolucion": None, "fecha_cierre": None,
    "sla": {"primera_respuesta_vence": "2026-11-29T14:00:00Z", "resolucion_vence": "2026-11-30T10:00:00Z",
            "estado": "en_plazo"}, "notas_internas": [],
}


def bare_app() -> Flask:
    bare = Flask("bare")

    @bare.get("/ticket")
    def ticket():
        """The floor: Flask routing and jsonify of a ticket-sized dict."""
        return jsonify(TICKET)

    @bare.post("/ticket")
    def crear():
        """The floor of a creation over HTTP: parse a JSON body, answer 201 with a ticket (bench_peer)."""
        return jsonify({**TICKET, **(request.get_json(silent=True) or {})}), 201

    return bare


def create_app(test_config: dict | None = None):
    mesa_app = mesa.create_app(test_config)
    mesa_app.wsgi_app = DispatcherMiddleware(mesa_app.wsgi_app, {"/_bare": bare_app()})
    return mesa_app
