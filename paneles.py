"""What the HTML panels show: counters, overdue tickets, engineer load, pagination, labels.

Read-only queries (SQL aggregates, never a Python loop over tickets) and the translated
labels of the domain's values. The rules that change tickets stay in ``tickets.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, select

import sla
import tickets
from models import ESTADOS, ESTADOS_ABIERTOS, Ticket, Usuario, db

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
                 "asignacion": _l("Assignment"), "mensaje": _l("Public message"), "nota": _l("Internal note")}
IDIOMA_LABELS = {"es": "Español", "en": "English"}  # each language in its own name, never translated

assert set(ESTADO_LABELS) == set(ESTADOS)


def contadores(viewer: Usuario, base_scope=None) -> dict:
    """Tickets per estado, overdue and unassigned, within what ``viewer`` may see."""
    scope = tickets.scope_clause(viewer) if base_scope is None else base_scope
    por_estado = dict.fromkeys(ESTADOS, 0)
    for estado, n in db.session.execute(
            select(Ticket.estado, func.count()).where(scope).group_by(Ticket.estado)):
        por_estado[estado] = n
    vencidos, sin_asignar = db.session.execute(select(
        func.count().filter(sla.vencido_clause()),
        func.count().filter(and_(Ticket.ingeniero_id.is_(None), Ticket.estado.in_(ESTADOS_ABIERTOS))),
    ).where(scope)).one()
    return {"por_estado": por_estado, "total": sum(por_estado.values()),
            "abiertos": sum(por_estado[e] for e in ESTADOS_ABIERTOS),
            "vencidos": vencidos or 0, "sin_asignar": sin_asignar or 0}


def ingenieros_con_carga() -> list[dict]:
    """Each engineer with specialty, availability and open load (for the assign dialog)."""
    import usuarios

    lista = usuarios.ingenieros()
    carga = tickets.carga_abierta()
    return [{"ingeniero": i, "carga": carga.get(i.id, 0)} for i in lista]


@dataclass
class Pagina:
    """One page of a list: enough for the pagination macro."""

    items: list
    total: int
    page: int
    per_page: int
    exacto: bool = True  # False: more than ``total`` match (a search counts up to busqueda.TOPE_TOTAL)

    @property
    def pages(self) -> int:
        return max(1, math.ceil((self.total + (0 if self.exacto else 1)) / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def window(self, radius: int = 2) -> list[int]:
        lo, hi = max(1, self.page - radius), min(self.pages, self.page + radius)
        return list(range(lo, hi + 1))


def paginar(stmt, page: int, per_page: int) -> Pagina:
    """THE pagination of every list (panels, API, channel pages): ``db.paginate`` (items and a
    COUNT over the same statement), as a ``Pagina`` that ``m.pagination`` renders."""
    pagina = db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=True)
    return Pagina(list(pagina.items), pagina.total or 0, page, per_page)
