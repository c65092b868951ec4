"""The Comunicaciones page's query: every message of every channel, within the viewer's scope.

An admin sees all; an engineer sees the communications of the tickets they may see; the
requesters (usuarios) do not see this page (they read their ticket's thread)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload

import tickets
from errors import Forbidden
from models import Comunicacion, Conversacion, Ticket, Usuario, db


class FiltroComunicaciones(BaseModel):
    """Query of ``/comunicaciones``."""

    model_config = ConfigDict(extra="ignore")
    canal: Optional[Literal["email", "whatsapp"]] = None
    direccion: Optional[Literal["entrante", "saliente"]] = None
    cliente_id: Optional[int] = Field(default=None, ge=1, le=2**31 - 1)
    ticket: Optional[str] = Field(default=None, max_length=20)
    conversacion_id: Optional[int] = Field(default=None, ge=1, le=2**31 - 1)
    desde: Optional[date] = None
    hasta: Optional[date] = None

    @field_validator("*", mode="before")
    @classmethod
    def _vacio(cls, value):
        return None if value == "" else value


def consulta(viewer: Usuario, f: FiltroComunicaciones):
    """SELECT of the communications ``viewer`` may see, narrowed by ``f`` (newest first; a
    conversation's thread oldest first)."""
    if viewer.rol not in ("admin", "ingeniero"):
        raise Forbidden("Your role may not do this.")
    stmt = select(Comunicacion).options(selectinload(Comunicacion.ticket), selectinload(Comunicacion.cliente))
    if viewer.rol != "admin":
        stmt = stmt.where(Comunicacion.ticket_id.in_(select(Ticket.id).where(tickets.scope_clause(viewer))))
    if f.canal:
        stmt = stmt.where(Comunicacion.canal == f.canal)
    if f.direccion:
        stmt = stmt.where(Comunicacion.direccion == f.direccion)
    if f.cliente_id:
        stmt = stmt.where(Comunicacion.cliente_id == f.cliente_id)
    if f.ticket:
        valor = f.ticket.strip().upper()
        sub = select(Ticket.id).where(Ticket.numero_ticket == valor) if not valor.isdigit() \
            else select(Ticket.id).where(Ticket.id == int(valor))
        stmt = stmt.where(Comunicacion.ticket_id.in_(sub))
    if f.desde:
        stmt = stmt.where(Comunicacion.fecha >= datetime.combine(f.desde, time.min))
    if f.hasta:
        stmt = stmt.where(Comunicacion.fecha < datetime.combine(f.hasta + timedelta(days=1), time.min))
    if f.conversacion_id:
        return stmt.where(Comunicacion.conversacion_id == f.conversacion_id).order_by(Comunicacion.fecha,
                                                                                   Comunicacion.id)
    return stmt.order_by(Comunicacion.fecha.desc(), Comunicacion.id.desc())


def conversacion(viewer: Usuario, conversacion_id: Optional[int]) -> Optional[Conversacion]:
    if conversacion_id is None:
        return None
    conv = db.session.get(Conversacion, conversacion_id)
    if conv is None or (viewer.rol != "admin" and (conv.ticket is None or not _ve(viewer, conv.ticket))):
        return None
    return conv


def _ve(viewer: Usuario, ticket: Ticket) -> bool:
    return db.session.execute(select(Ticket.id).where(Ticket.id == ticket.id, tickets.scope_clause(viewer))).first() \
        is not None
