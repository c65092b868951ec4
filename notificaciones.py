"""In-app notifications (issue 12): the header bell's rows, unread count, mark read.

Rows are written in the same transaction as what caused them (``alertas.notificar``); the API
(rutas/notificaciones.py) lists them, counts the unread ones and marks them read. A user only
ever sees and changes their own rows (another user's id is a 404).
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import func, select, update

from errors import NotFound
from models import Notificacion, Ticket, Usuario, db, utcnow


def crear(usuario: Usuario, tipo: str, texto: str, ticket: Optional[Ticket] = None) -> Notificacion:
    fila = Notificacion(usuario_id=usuario.id, ticket=ticket, tipo=tipo, texto=texto[:400], leida=False,
                        fecha=utcnow())
    db.session.add(fila)
    return fila


def quiere_email(usuario: Usuario, tipo: str) -> bool:
    """Per-user email preferences are not stored yet: every alert is also emailed."""
    return True


def no_leidas(usuario: Usuario) -> int:
    return db.session.execute(select(func.count()).select_from(Notificacion).where(
        Notificacion.usuario_id == usuario.id, Notificacion.leida.is_(False))).scalar_one()


def listar(usuario: Usuario, limite: int = 20, despues_de: Optional[int] = None) -> list[Notificacion]:
    stmt = select(Notificacion).where(Notificacion.usuario_id == usuario.id)
    if despues_de is not None:
        stmt = stmt.where(Notificacion.id > despues_de)
    return list(db.session.execute(stmt.order_by(Notificacion.id.desc()).limit(limite)).scalars())


def marcar_leida(usuario: Usuario, notificacion_id: int) -> Notificacion:
    fila = db.session.get(Notificacion, notificacion_id)
    if fila is None or fila.usuario_id != usuario.id:
        raise NotFound("Notification not found.")
    fila.leida = True
    db.session.flush()
    return fila


def marcar_todas(usuario: Usuario) -> int:
    res = db.session.execute(update(Notificacion).where(
        Notificacion.usuario_id == usuario.id, Notificacion.leida.is_(False)).values(leida=True))
    db.session.flush()
    return res.rowcount


# --- signal receivers ---------------------------------------------------------------------------

def _on_asignado(ticket, actor=None, ingeniero=None, **_):
    from flask_babel import force_locale
    from flask_babel import gettext as _

    if ingeniero is None or (actor is not None and actor.id == ingeniero.usuario_id):
        return
    usuario = ingeniero.usuario
    with force_locale(usuario.idioma or "es"):
        crear(usuario, "asignado", _("%(numero)s was assigned to you: %(titulo)s",
                                     numero=ticket.numero_ticket, titulo=ticket.titulo), ticket=ticket)


def _avisar(usuario, ticket, tipo: str, plantilla: str, **valores) -> None:
    from flask_babel import force_locale
    from flask_babel import gettext as _

    if usuario is None or not usuario.activo:
        return
    with force_locale(usuario.idioma or "es"):
        crear(usuario, tipo, _(plantilla, numero=ticket.numero_ticket, titulo=ticket.titulo, **valores),
              ticket=ticket)


def _on_mensaje(ticket, actor=None, mensaje=None, **_):
    """A public message → the other side (the requester, or the assigned engineer)."""
    if mensaje is None:
        return
    if mensaje.es_staff:
        destino = ticket.usuario
    else:
        destino = ticket.ingeniero.usuario if ticket.ingeniero is not None else None
    if destino is not None and (actor is None or destino.id != actor.id):
        _avisar(destino, ticket, "mensaje", N_("New message on %(numero)s: %(titulo)s"))


def _on_estado(ticket, actor=None, despues=None, **_):
    """A status change → the requester (unless they made it)."""
    if ticket.usuario is not None and (actor is None or ticket.usuario_id != actor.id):
        _avisar(ticket.usuario, ticket, "estado", N_("%(numero)s changed status: %(titulo)s"))


def N_(message: str) -> str:  # marked for the catalogs, translated when rendered
    return message


def conectar_senales() -> None:
    import tickets

    tickets.ticket_asignado.connect(_on_asignado)
    tickets.mensaje_publicado.connect(_on_mensaje)
    tickets.estado_cambiado.connect(_on_estado)
