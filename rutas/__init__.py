"""Every URL of the app. Routes live in the modules of this package, one per area, and are
registered on the one Flask app by ``registrar(app)`` (no blueprints: endpoint names stay the
view names, as the design card asks).

Finding a route: ``flask routes`` lists them all; the module of an area is named in README's
layout table. A new area adds one module here and its name to ``MODULOS``.

A JSON route documents itself next to its code: ``@route(rule, methods=..., doc=openapi.op(...))``
puts the operation into ``/api/openapi.json`` (nothing is registered as a side effect of an
import elsewhere).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

# In the README's order: accounts, panels, ticket API, people API, reports, email.
MODULOS = (
    "rutas.cuentas",
    "rutas.paneles",
    "rutas.api_tickets",
    "rutas.api_personas",
    "rutas.informes",
    "rutas.exportaciones",
    "rutas.correo",
    "rutas.operaciones",
    "rutas.adjuntos",
    "rutas.soporte",
    "rutas.api_v1",
    "rutas.comunicaciones",
    "rutas.whatsapp",
    "rutas.sla",
    "rutas.notificaciones",
    "rutas.csat",
)


@dataclass(frozen=True)
class Ruta:
    rule: str
    view: Callable
    options: dict
    doc: Optional[dict]


RUTAS: list[Ruta] = []


def route(rule: str, *, doc: Optional[dict] = None, **options):
    """Record a view (and, for a JSON route, its OpenAPI operation); ``registrar`` adds it."""

    def decorator(view):
        RUTAS.append(Ruta(rule, view, options, doc))
        return view

    return decorator


def registrar(app) -> None:
    for nombre in MODULOS:
        importlib.import_module(nombre)
    for ruta in RUTAS:
        app.add_url_rule(ruta.rule, view_func=ruta.view, **ruta.options)
