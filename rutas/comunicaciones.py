"""Routes: the Comunicaciones page (seed 000): every message of every channel, both directions."""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

import comunicaciones
from auth import role_required
from errors import NotFound
from rutas import route
from rutas.comun import paginar
from schemas import parse_query


@route("/comunicaciones")
@role_required("admin", "ingeniero")
def comunicaciones_lista():
    """Communications with filters (canal, cliente, ticket, fechas, dirección); ``?conversacion_id=N``
    opens that conversation's thread."""
    f = parse_query(comunicaciones.FiltroComunicaciones, request.args)
    conv = comunicaciones.conversacion(current_user, f.conversacion_id)
    if f.conversacion_id is not None and conv is None:
        raise NotFound("Conversation not found.")
    pagina = paginar(comunicaciones.consulta(current_user, f))
    return render_template("comunicaciones.html", items=pagina.items, pagina=pagina, f=f, conversacion=conv)
