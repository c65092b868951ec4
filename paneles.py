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
from models import ESTADOS, ESTADOS_ABIERTOS, PRIORIDADES, Ticket, Usuario, db

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
IDIOMA_LABELS = {"es": "Español", "en": "English"}  # each language in its own name, never translated

assert set(PRIORIDAD_LABELS) == set(PRIORIDADES) and set(ESTADO_LABELS) == set(ESTADOS)


def vencido_clause(now=None):
    """WHERE clause of the overdue tickets (the "Vencidos" counter and its list): the SLA due
    times stored on the ticket (sla.py), in business time with pauses."""
    return sla.vencido_clause(now)


def es_vencido(ticket: Ticket) -> bool:
    return sla.es_vencido(ticket)


def contadores(viewer: Usuario, base_scope=None) -> dict:
    """Tickets per estado, overdue and unassigned, within what ``viewer`` may see."""
    scope = tickets.scope_clause(viewer) if base_scope is None else base_scope
    por_estado = dict.fromkeys(ESTADOS, 0)
    for estado, n in db.session.execute(
            select(Ticket.estado, func.count()).where(scope).group_by(Ticket.estado)):
        por_estado[estado] = n
    vencidos, sin_asignar = db.session.execute(select(
        func.count().filter(vencido_clause()),
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

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def window(self, radius: int = 2) -> list[int]:
        lo, hi = max(1, self.page - radius), min(self.pages, self.page + radius)
        return list(range(lo, hi + 1))


def usuarios_pagina(page: int, per_page: int = 25) -> Pagina:
    total = db.session.execute(select(func.count(Usuario.id))).scalar_one()
    rows = db.session.execute(select(Usuario).order_by(Usuario.nombre, Usuario.id)
                              .limit(per_page).offset((page - 1) * per_page)).scalars().all()
    return Pagina(list(rows), total, page, per_page)


def N_(message: str) -> str:
    """Mark a string for the catalogs without translating it here (``pybabel -k N_``)."""
    return message


# The domain speaks English (the JSON API returns these as they are); the panels show them
# translated through ``app.ui_message`` and error.html. Listed here so the catalogs have them.
DOMAIN_MESSAGES = (
    N_("Ticket not found."), N_("Only the assigned engineer or an admin may do this."),
    N_("Unknown category."), N_("A category with that name already exists."), N_("Already exists."),
    N_("A ticket needs a requester."), N_("You may not change this ticket."),
    N_("Requesters may only reopen or close a resolved ticket."), N_("Nothing to change."),
    N_("A closed ticket cannot be edited; reopen it first."),
    N_("You can only edit your ticket while it is 'abierto'."), N_("You may not edit this ticket."),
    N_("You may not write on this ticket."),
    N_("The ticket is closed; reopen it to continue the conversation."),
    N_("Only an admin assigns tickets."), N_("A closed ticket cannot be reassigned."),
    N_("Unknown engineer."), N_("No active engineer with that id."),
    N_("The ticket is already assigned to that engineer."), N_("Username or email already in use."),
    N_("Already taken."), N_("Already in use."), N_("Unknown language."),
    N_("You cannot deactivate your own account."), N_("Your role may not do this."),
    N_("Authentication required."), N_("Engineer not found."), N_("Unexpected error; nothing was saved."),
    N_("Some fields are not valid."), N_("The CSRF token is missing."), N_("The CSRF token is invalid."),
    N_("The CSRF session token is missing."), N_("The CSRF tokens do not match."),
    N_("The CSRF token has expired."),
    N_("The requested URL was not found on the server. If you entered the URL manually please check "
       "your spelling and try again."),
    N_("The method is not allowed for the requested URL."),
    N_("You don't have the permission to access the requested resource. It is either read-protected "
       "or not readable by the server."),
)
