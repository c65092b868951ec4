"""What the HTML panels show: counters, overdue tickets, engineer load, pagination, labels.

Read-only queries (SQL aggregates, never a Python loop over tickets) and the translated
labels of the domain's values. The rules that change tickets stay in ``tickets.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Optional

from babel import dates as babel_dates
from flask import current_app
from flask_babel import get_locale, get_timezone, get_translations
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Integer, and_, bindparam, func, or_, select

import acumulados
import sla
import tickets
from errors import DomainError
from models import ESTADOS, ESTADOS_ABIERTOS, Ticket, Usuario, db, leer

ESTADO_LABELS = {
    "abierto": _l("Open"),
    "en_progreso": _l("In progress"),
    "en_espera": _l("On hold"),
    "resuelto": _l("Resolved"),
    "cerrado": _l("Closed"),
}
PRIORIDAD_LABELS = {
    "baja": _l("Low"),
    "media": _l("Medium"),
    "alta": _l("High"),
    "critica": _l("Critical"),
}
ROL_LABELS = {"usuario": _l("User"), "ingeniero": _l("Engineer"), "admin": _l("Administrator")}
CANAL_LABELS = {"web": _l("Web"), "api": _l("API"), "whatsapp": _l("WhatsApp"), "email": _l("Email")}
CAMPO_LABELS = {
    "titulo": _l("Title"), "descripcion": _l("Description"), "prioridad": _l("Priority"),
    "categoria": _l("Category"), "etiquetas": _l("Tags"), "estado": _l("Status"),
    "ingeniero": _l("Engineer"), "conversacion_whatsapp_id": _l("WhatsApp conversation"),
    "comunicacion_email_id": _l("Email communication"),
}
# The estado and prioridad of a ticket, one dict (emails, PDF and Excel show values by key).
VALOR_LABELS = {**ESTADO_LABELS, **PRIORIDAD_LABELS}
EVENTO_LABELS = {"creado": _l("Ticket created"), "estado": _l("Status"), "campo": _l("Change"),
                 "asignacion": _l("Assignment"), "asignacion_automatica": _l("Automatic assignment"),
                 "mensaje": _l("Public message"), "nota": _l("Internal note")}
IDIOMA_LABELS = {"es": "Español", "en": "English"}  # each language in its own name, never translated

assert set(ESTADO_LABELS) == set(ESTADOS)


def fecha(d: Optional[datetime], formato: str = "short") -> str:
    """``d`` as Flask-Babel's ``format_datetime`` writes it (the viewer's language, the app's
    time zone; the templates' ``|fecha``), remembered: a list shows the same dates on every
    view and live refresh, and formatting two per row was a tenth of a panel's CPU (issue 13)."""
    if not d:
        return ""
    return _fecha(d, formato, get_locale(), get_timezone())


def traducir(texto: str) -> str:
    """The templates' ``_()`` (Jinja's gettext): Flask-Babel's translation of ``texto`` into the
    current language, remembered by language. Flask-Babel finds the request's domain, catalog
    and language through ``g`` again for each of the ~80 strings of a panel page (issue 13).
    Follows ``force_locale`` (emails), as the key is the current language."""
    return _traduccion(get_locale(), texto)


@lru_cache(maxsize=8192)
def _traduccion(idioma, texto: str) -> str:
    return get_translations().ugettext(texto)  # called while ``idioma`` is the current language


@lru_cache(maxsize=4096)
def _fecha(d: datetime, formato: str, idioma, zona) -> str:
    # What flask_babel.format_datetime calls (the app sets no BABEL date_formats of its own).
    return babel_dates.format_datetime(d, formato, tzinfo=zona, locale=idioma)


def contadores(viewer: Usuario, base_scope=None) -> dict:
    """Tickets per estado, overdue and unassigned, within what ``viewer`` may see.

    An admin's panel counts every ticket: per estado and unassigned-open come from the statistics
    rollup (``acumulados``: exact, a few rows instead of a scan of a million tickets); a scoped
    viewer's (an engineer's assigned tickets, a requester's own) from their scope's index.
    Overdue depends on the clock: the running tickets minus those still on time
    (``sla.contar_a_tiempo``), a few, however many are overdue."""
    scope = tickets.scope_clause(viewer) if base_scope is None else base_scope
    if base_scope is None and viewer.rol == "admin":
        por_estado, sin_asignar = _por_estado_de_todos()
    else:
        por_estado, sin_asignar = _por_estado_en(scope)
    vencidos = sum(por_estado[e] for e in sla.ESTADOS_EN_MARCHA) - sla.contar_a_tiempo(scope)
    return {"por_estado": por_estado, "total": sum(por_estado.values()),
            "abiertos": sum(por_estado[e] for e in ESTADOS_ABIERTOS),
            "vencidos": vencidos, "sin_asignar": sin_asignar}


def _por_estado_de_todos() -> tuple[dict[str, int], int]:
    """Every ticket per estado, and the open ones without an engineer, from the rollup."""
    marginales = acumulados.marginales("estado", "ingeniero")
    por_estado = dict.fromkeys(ESTADOS, 0)
    for estado, cifras in marginales["estado"].items():
        por_estado[estado] = cifras["tickets"]
    return por_estado, marginales["ingeniero"].get("", {}).get("abiertos", 0)


def _por_estado_en(scope) -> tuple[dict[str, int], int]:
    """The tickets of ``scope`` per estado, and its open ones without an engineer (one query)."""
    por_estado, sin_asignar = dict.fromkeys(ESTADOS, 0), 0
    for estado, n, libres in db.session.execute(
            select(Ticket.estado, func.count(), func.count().filter(Ticket.ingeniero_id.is_(None)))
            .where(scope).group_by(Ticket.estado)):
        por_estado[estado] = n
        sin_asignar += libres if estado in ESTADOS_ABIERTOS else 0
    return por_estado, sin_asignar


def ingenieros_con_carga() -> list[dict]:
    """Each engineer with specialty, availability and open load (for the assign dialog)."""
    import usuarios

    lista = usuarios.ingenieros()
    carga = tickets.carga_abierta()
    return [{"ingeniero": i, "carga": carga.get(i.id, 0)} for i in lista]


@dataclass
class Pagina:
    """One page of a list: enough for the pagination macro.

    Keyset lists (``paginar_por_clave``) also carry ``siguiente``, the cursor of the next page
    (None at the end), and ``cursor``, the one that produced this page; their ``total`` may be
    a floor (``total_exacto`` False: more than ``TOPE_CUENTA`` rows, not counted further)."""

    items: list
    total: int
    page: int
    per_page: int
    total_exacto: bool = True  # False: ``total`` is a floor (a search's or a panel's capped count)
    siguiente: Optional[str] = None
    cursor: Optional[str] = None
    keyset: bool = False

    @property
    def pages(self) -> int:
        paginas = max(1, math.ceil((self.total + (0 if self.total_exacto else 1)) / self.per_page))
        if self.keyset and self.siguiente is not None:
            paginas = max(paginas, self.page + 1)
        return paginas

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        if self.keyset:
            return self.siguiente is not None
        return self.page < self.pages

    def window(self, radius: int = 2) -> list[int]:
        lo, hi = max(1, self.page - radius), min(self.pages, self.page + radius)
        return list(range(lo, hi + 1))


def paginar(stmt, page: int, per_page: int) -> Pagina:
    """THE pagination of every list (panels, API, channel pages): ``db.paginate`` (items and a
    COUNT over the same statement), as a ``Pagina`` that ``m.pagination`` renders."""
    pagina = db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=True)
    return Pagina(list(pagina.items), pagina.total or 0, page, per_page)


# --- keyset pagination ------------------------------------------------------------------------
#
# "Next page" continues after the last row's sort key instead of skipping OFFSET rows, so page
# 50,000 costs what page 2 does. The key travels in a cursor: signed JSON (itsdangerous, the app's
# SECRET_KEY), bound to the list it came from (``contexto``: viewer, path, filters and order), so
# an edited or borrowed cursor is a 400, never another position or another scope. A list without
# a usable key (a search ranked by relevance) gets cursors that carry the position instead.

TOPE_CUENTA = 10_000  # counting stops here when the caller accepts a floor (the panels)
_SAL = "mesa-cursor-v1"


def cursor_invalido() -> DomainError:
    """The 400 of a cursor that was not issued for this list (or was altered)."""
    return DomainError("The cursor is not valid for this list: start again from the first page.",
                       status=400, code="invalid_cursor")


def _serializador() -> URLSafeSerializer:
    return _serializador_de(current_app.secret_key)


@lru_cache(maxsize=4)
def _serializador_de(clave) -> URLSafeSerializer:
    # One per key, not one per cursor: building it was a third of signing a list's cursor.
    return URLSafeSerializer(clave, salt=_SAL)


def _valor_json(v):
    return {"d": v.isoformat()} if isinstance(v, datetime) else v


def _valor_python(v):
    if isinstance(v, dict):
        return datetime.fromisoformat(v["d"])
    if v is None or isinstance(v, (str, int, float)):
        return v
    raise ValueError(v)


def firmar_cursor(contexto: str, page: int, total: int, total_exacto: bool, *,
                  clave: Optional[list] = None, posicion: Optional[int] = None) -> str:
    """The cursor of page ``page``: after the row whose sort key is ``clave`` (keyset), or after
    ``posicion`` rows (lists without a key). The total counted on the first page travels with it,
    so later pages count nothing."""
    datos = {"c": contexto, "p": page, "t": total, "e": total_exacto}
    if clave is not None:
        datos["k"] = [_valor_json(v) for v in clave]
    else:
        datos["o"] = posicion
    return _serializador().dumps(datos)


def leer_cursor(cursor: str, contexto: str) -> dict:
    """The cursor's content, or ``cursor_invalido()`` (400) when it was not signed by us for this
    very list (same viewer, path, filters and order)."""
    try:
        datos = _serializador().loads(cursor)
        if not isinstance(datos, dict) or datos.get("c") != contexto:
            raise ValueError("another list")
        page, total = int(datos["p"]), int(datos["t"])
        if page < 2 or total < 0:
            raise ValueError("out of range")
        if "k" in datos:
            datos["k"] = [_valor_python(v) for v in datos["k"]]
        elif not isinstance(datos.get("o"), int) or datos["o"] < 0:
            raise ValueError("no position")
    except (BadSignature, ValueError, KeyError, TypeError) as exc:
        raise cursor_invalido() from exc
    return datos


def despues_de(claves: list, valores: list):
    """WHERE clause: rows strictly after ``valores`` in the order of ``claves`` ((expression,
    descending) pairs, the last one unique: the id). Written as ``a <= v AND (a < v OR …)`` so
    that the database can seek an index on ``a`` instead of filtering from the top."""
    (expr, desc), *resto = claves
    valor = valores[0]
    if not resto:
        return expr < valor if desc else expr > valor
    estricto = expr < valor if desc else expr > valor
    return and_(expr <= valor if desc else expr >= valor,
                or_(estricto, despues_de(resto, valores[1:])))


def contar(stmt, tope: Optional[int] = None) -> tuple[int, bool]:
    """Rows of ``stmt``: exact, or up to ``tope`` (then the floor ``tope`` and False)."""
    base = stmt.order_by(None).options()
    if tope is None:
        return db.session.execute(select(func.count()).select_from(base.subquery())).scalar_one(), True
    n = db.session.execute(select(func.count()).select_from(
        base.with_only_columns(Ticket.id).limit(tope + 1).subquery())).scalar_one()
    return (tope, False) if n > tope else (n, True)


def consulta_de_ids(stmt, claves: Optional[list]):
    """The ids and sort keys of ``stmt``'s rows (the caller reads the rows: ``tickets.filas``),
    ``:filas`` of them from position ``:posicion``: bound parameters, so that a statement built
    once per list shape (``tickets.forma_de_lista``) is compiled once and its cache key computed
    once. On PostgreSQL a deep page used to read every skipped row in full (it fetches a row to
    count it past the OFFSET: page 25,000 of a million tickets took 2 s); the ids alone come
    from an index (ix_tickets_fecha_id for the default order)."""
    exprs = [expr for expr, _desc in (claves or [])]
    return (stmt.with_only_columns(Ticket.id, *exprs)
            .offset(bindparam("posicion", type_=Integer)).limit(bindparam("filas", type_=Integer)))


def paginar_por_clave(stmt, claves: Optional[list], contexto: str, page: int, per_page: int,
                      cursor: Optional[str] = None, tope: Optional[int] = None,
                      total: Optional[int] = None, borde=None, ids=None) -> Pagina:
    """One page of ticket ``stmt`` (already ordered by ``claves``): its ticket ids, by ``page`` (OFFSET, as
    ``paginar``) or by ``cursor`` (keyset), always with the cursor of the next page. ``claves``
    None: the order has no key to seek (relevance), cursors carry the position. ``tope``: count
    at most that many rows (a floor beyond it); None counts exactly. ``total``: the exact count
    when the caller has it without counting (``tickets.total_acumulado``), ``tope`` still applies.
    ``borde``: (WHERE clause, n) when the rows of ``stmt`` that the clause leaves out are exactly its
    first n (``tickets._borde_de_pagina``): a ``page`` then skips only the rest by OFFSET.
    ``ids``: ``consulta_de_ids(stmt, claves)`` when the caller keeps it, used for a ``page``
    without ``borde``."""
    if cursor:
        datos = leer_cursor(cursor, contexto)
        page, total, exacto = datos["p"], datos["t"], datos["e"]
        if "k" in datos:
            if claves is None or len(datos["k"]) != len(claves):
                raise cursor_invalido()
            consulta, posicion = stmt.where(despues_de(claves, datos["k"])), None
        else:
            consulta, posicion = stmt, datos["o"]
        ids, desde = consulta_de_ids(consulta, claves), posicion or 0
    else:
        if total is None:
            total, exacto = contar(stmt, tope)
        else:
            total, exacto = (tope, False) if tope is not None and total > tope else (total, True)
        posicion = desde = (page - 1) * per_page
        if borde is not None:
            ids, desde = consulta_de_ids(stmt.where(borde[0]), claves), posicion - borde[1]
        elif ids is None:
            ids = consulta_de_ids(stmt, claves)
    filas = leer(ids, {"posicion": desde, "filas": per_page + 1}).all()
    hay_mas = len(filas) > per_page
    filas = filas[:per_page]
    siguiente = None
    if hay_mas:
        clave = list(filas[-1][1:]) if claves else None
        if clave is not None and None in clave:
            # A NULL key (a número not yet assigned) has no portable "after": go on by position
            # (this page's, counted from the page number when it came from a keyset).
            clave, posicion = None, (page - 1) * per_page if posicion is None else posicion
        siguiente = firmar_cursor(contexto, page + 1, total, exacto, clave=clave,
                                  posicion=None if clave is not None else posicion + per_page)
    items = [fila[0] for fila in filas]
    if not exacto and not hay_mas:  # the last page: now the total is known
        total, exacto = (page - 1) * per_page + len(items), True
    return Pagina(items, total, page, per_page, total_exacto=exacto, siguiente=siguiente,
                  cursor=cursor, keyset=True)
