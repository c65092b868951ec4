"""Routes: the health check a process supervisor or load balancer polls (no auth, no data)."""

from __future__ import annotations

from flask import jsonify

import operaciones
from rutas import route


@route("/healthz")
def healthz():
    """200 when the database answers and its migrations are current, 503 otherwise."""
    informe, ok = operaciones.salud()
    respuesta = jsonify(informe)
    respuesta.headers["Cache-Control"] = "no-store"
    return respuesta, 200 if ok else 503
