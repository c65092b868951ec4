"""The benchmark's WSGI app: Mesa, plus a bare Flask JSON route to compare one ticket's GET with.

    gunicorn "bench.app_bench:create_app()"

``/_bare/ticket`` is a Flask app with nothing but one route that returns a ticket-sized JSON
body: no database, no auth, no hooks. It exists only here (production serves ``app:create_app()``),
mounted under the same gunicorn and worker processes as Mesa so that the ratio in ``make bench``
compares Mesa's per-request work with Flask's floor, not two servers.
"""

from __future__ import annotations

import re
import threading

from flask import Flask, jsonify, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import app as mesa
from models import db

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


class Grabacion:
    """The SQL one of Mesa's creations sends, recorded once per process and replayed on the
    pool's DB-API connection with no Python above the driver: the floor of a creation that sends
    the same statements (``/_bare/crear``). Reads, writes, triggers and COMMIT are the database's
    same work; what Mesa costs above this is its own Python (Flask-Login, the ORM, the signals)."""

    def __init__(self, mesa_app: Flask):
        self.mesa_app = mesa_app
        self.pasos: list = []  # (sql, parameters) or "commit"
        self.lock = threading.Lock()

    def grabar(self, autorizacion: str, cuerpo: dict) -> None:
        cliente = self.mesa_app.test_client()
        cabecera = {"Authorization": autorizacion}
        cliente.post("/api/tickets", json=cuerpo, headers=cabecera)  # compiles and caches everything
        pasos: list = []

        def al_ejecutar(conn, cursor, sql, parametros, context, executemany):
            # insertmanyvalues reports executemany for the batch it sends through execute(): the
            # parameters' shape (a list of rows, or one row) says which the driver got
            varios = isinstance(parametros, list) and bool(parametros) and isinstance(parametros[0], (list, tuple, dict))
            pasos.append((sql, parametros, varios))

        def al_confirmar(conn):
            pasos.append("commit")

        event.listen(Engine, "before_cursor_execute", al_ejecutar)
        event.listen(Engine, "commit", al_confirmar)
        try:
            respuesta = cliente.post("/api/tickets", json=cuerpo, headers=cabecera)
        finally:
            event.remove(Engine, "before_cursor_execute", al_ejecutar)
            event.remove(Engine, "commit", al_confirmar)
        if respuesta.status_code != 201:
            raise RuntimeError(f"the recorded creation answered {respuesta.status_code}")
        self.id = respuesta.get_json()["id"]
        self.numero = respuesta.get_json()["numero_ticket"]
        with self.mesa_app.app_context():
            self.engine = db.engine  # its pool, looked up once: the replay pushes no app context
        self.pasos = pasos

    def reproducir(self) -> int:
        """Send the recorded statements again for a new ticket: the new id is what the numbering
        statement (``nextval``, or SQLite's ``max(id) + 1``) answers; every parameter equal to the
        recorded id, or holding the recorded number, takes the new one."""
        nuevo = numero = None
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for paso in self.pasos:
                if paso == "commit":
                    raw.commit()
                    continue
                sql, parametros, varios = paso
                if nuevo is not None:
                    parametros = self._cambiar(parametros, nuevo, numero)
                if varios:
                    cursor.executemany(sql, parametros)
                else:
                    cursor.execute(sql, parametros)
                if cursor.description is not None:
                    filas = cursor.fetchall()
                    if nuevo is None and _NUMERACION.search(sql):
                        nuevo = filas[0][0]
                        numero = self.numero.replace(f"{self.id:06d}", f"{nuevo:06d}")
            return nuevo
        finally:
            raw.close()

    def _cambiar(self, parametros, nuevo: int, numero: str):
        def uno(v):
            if type(v) is int and v == self.id:
                return nuevo
            if isinstance(v, str) and self.numero in v:
                return v.replace(self.numero, numero)
            return v

        if isinstance(parametros, dict):
            return {k: uno(v) for k, v in parametros.items()}
        if isinstance(parametros, (list, tuple)) and parametros and isinstance(parametros[0], (list, tuple, dict)):
            return [self._cambiar(p, nuevo, numero) for p in parametros]
        return type(parametros)(uno(v) for v in parametros) if parametros is not None else None


_NUMERACION = re.compile(r"nextval\(|max\(tickets\.id\)", re.I)


def bare_app(mesa_app: Flask | None = None) -> Flask:
    bare = Flask("bare")
    grabacion = Grabacion(mesa_app) if mesa_app is not None else None

    @bare.get("/ticket")
    def ticket():
        """The floor: Flask routing and jsonify of a ticket-sized dict."""
        return jsonify(TICKET)

    @bare.post("/ticket")
    def crear():
        """The floor of a creation over HTTP: parse a JSON body, answer 201 with a ticket (bench_peer)."""
        return jsonify({**TICKET, **(request.get_json(silent=True) or {})}), 201

    @bare.post("/crear")
    def piso_de_creacion():
        """The floor of a creation that sends Mesa's own SQL: the statements of one real creation
        (recorded at this process's first call, with this call's token and body), replayed."""
        cuerpo = request.get_json(silent=True) or {}
        if not grabacion.pasos:
            with grabacion.lock:
                if not grabacion.pasos:
                    grabacion.grabar(request.headers.get("Authorization", ""), cuerpo)
        nuevo = grabacion.reproducir()
        return jsonify({**TICKET, **cuerpo, "id": nuevo}), 201

    return bare


def create_app(test_config: dict | None = None):
    mesa_app = mesa.create_app(test_config)
    mesa_app.wsgi_app = DispatcherMiddleware(mesa_app.wsgi_app, {"/_bare": bare_app(mesa_app)})
    return mesa_app
