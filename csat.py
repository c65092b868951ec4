"""CSAT (issue 12): the closing email (email_manager.correo_ticket_cerrado) carries a signed,
expiring one-click rating link (itsdangerous, salt "csat"); a rating 1–5 with an optional comment is recorded once
per ticket (the unique ``valoraciones.ticket_id`` settles races). Results per engineer and
categoría for the statistics API."""

from __future__ import annotations

from typing import Optional

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, literal_column, select, union_all
from sqlalchemy.exc import IntegrityError

from errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from models import Categoria, Ingeniero, Ticket, Usuario, Valoracion, db, utcnow

SALT = "mesa-de-ayuda/csat"


def _firmante() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def token(ticket: Ticket) -> str:
    return _firmante().dumps({"t": ticket.id})


def ticket_de(firma: str) -> Ticket:
    """The ticket a link names; tampered → 404, expired → 410."""
    max_age = int(current_app.config.get("CSAT_MAX_DIAS", 30)) * 86400
    try:
        datos = _firmante().loads(firma, max_age=max_age)
    except SignatureExpired as exc:
        raise DomainError("This rating link has expired.", status=410, code="expired") from exc
    except BadSignature as exc:
        raise NotFound("Ticket not found.") from exc
    ticket = db.session.get(Ticket, datos.get("t") if isinstance(datos, dict) else None)
    if ticket is None:
        raise NotFound("Ticket not found.")
    return ticket


def valoracion(ticket: Ticket) -> Optional[Valoracion]:
    return db.session.execute(select(Valoracion).where(Valoracion.ticket_id == ticket.id)).scalar_one_or_none()


def valorar(ticket: Ticket, puntuacion: int, comentario: Optional[str] = None,
            actor: Optional[Usuario] = None) -> Valoracion:
    """Record the rating (once). ``actor`` is the logged-in requester (the link needs none)."""
    if actor is not None and ticket.usuario_id != actor.id:
        raise Forbidden("Only the requester rates a ticket.")
    if ticket.estado not in ("resuelto", "cerrado"):
        raise Conflict("Only a resolved or closed ticket can be rated.", code="not_closed")
    if not isinstance(puntuacion, int) or not 1 <= puntuacion <= 5:
        raise ValidationFailed("Some fields are not valid.", fields={"puntuacion": "1 to 5."})
    if valoracion(ticket) is not None:
        raise Conflict("This ticket was already rated.", code="already_rated")
    fila = Valoracion(ticket_id=ticket.id, puntuacion=puntuacion, comentario=(comentario or "").strip()[:2000] or None,
                      ingeniero_id=ticket.ingeniero_id, categoria_id=ticket.categoria_id, fecha=utcnow())
    db.session.add(fila)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise Conflict("This ticket was already rated.", code="already_rated") from exc
    return fila


def resultados(desde=None, hasta=None, *, filtro=(), agrupacion: Optional[str] = None) -> dict:
    """Count and average overall, per engineer and per categoría (SQL aggregates) of the ratings
    given in [desde, hasta] that match ``filtro`` (e.g. one engineer's); with ``agrupacion``
    (dia|semana|mes) also per local period of the rating date (``sla.expresion_periodo``)."""
    filtro = list(filtro)
    if desde is not None:
        filtro.append(Valoracion.fecha >= desde)
    if hasta is not None:
        filtro.append(Valoracion.fecha <= hasta)
    # Two statements for the three figures and the dates' range (the statistics ask on every request).
    total, media, lo, hi = db.session.execute(select(
        func.count(), func.avg(Valoracion.puntuacion), func.min(Valoracion.fecha), func.max(Valoracion.fecha))
        .where(*filtro)).one()
    tipo = literal_column("0").label("tipo")
    por_ing = select(tipo, Usuario.nombre.label("nombre"), func.count(), func.avg(Valoracion.puntuacion)) \
        .join(Ingeniero, Ingeniero.id == Valoracion.ingeniero_id).join(Usuario, Usuario.id == Ingeniero.usuario_id) \
        .where(*filtro).group_by(Usuario.nombre)
    por_cat = select(literal_column("1"), Categoria.nombre, func.count(), func.avg(Valoracion.puntuacion)) \
        .join(Categoria, Categoria.id == Valoracion.categoria_id).where(*filtro).group_by(Categoria.nombre)
    grupos: tuple[list, list] = ([], [])
    if total:
        union = union_all(por_ing, por_cat).subquery()
        for t, nombre, n, m in db.session.execute(select(union).order_by(union.c.tipo, union.c.nombre)):
            grupos[t].append((nombre, n, m))

    def fila(nombre, n, m):
        return {"nombre": nombre, "valoraciones": n, "media": round(float(m), 2) if m is not None else None}

    salida = {"valoraciones": total, "media": round(float(media), 2) if media is not None else None,
              "por_ingeniero": [fila(*r) for r in grupos[0]], "por_categoria": [fila(*r) for r in grupos[1]]}
    if agrupacion is not None:
        import sla

        salida["por_periodo"] = []
        if lo is not None:
            periodo = sla.expresion_periodo(Valoracion.fecha, agrupacion, lo, hi).label("periodo")
            filas = db.session.execute(select(periodo, func.count(), func.avg(Valoracion.puntuacion))
                                       .where(*filtro).group_by(periodo).order_by(periodo)).all()
            salida["por_periodo"] = [fila(str(k)[:10], n, m) for k, n, m in filas]
    return salida
