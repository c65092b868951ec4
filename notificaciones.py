"""In-app notifications (issue 12): the header bell's rows, unread count, mark read; which of
them a user also wants by email; and what changed in the tickets a user may see (live panels).

Rows are written in the same transaction as what caused them (``alertas.notificar``); the API
(rutas/notificaciones.py) lists them, counts the unread ones and marks them read. A user only
ever sees and changes their own rows (another user's id is a 404).

Email preferences (``PREFERENCIAS``): one key per kind of notification email; no stored row
means on. ``quiere_email`` is asked by email_manager and alertas before queueing; emails with
no key (the creation receipt, account emails) are always sent.

``Vigia`` answers "did anything change in my tickets since I last looked?" from the database
alone (so any number of workers and processes serve the live stream): the newest
``fecha_actualizacion`` in the caller's scope plus the (id, fecha) pairs of the last minute, both
read through (scope column, fecha_actualizacion) indexes.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Optional

from sqlalchemy import func, select, update

from errors import N_, NotFound, ValidationFailed
from models import Notificacion, PreferenciaEmail, Ticket, Usuario, db, utcnow

TODOS = ("usuario", "ingeniero", "admin")
STAFF = ("ingeniero", "admin")
# key -> (label msgid, roles that receive that kind of email)
PREFERENCIAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "asignado": (N_("A ticket is assigned to me"), ("ingeniero",)),
    "mensaje": (N_("A new message on my tickets"), TODOS),
    "estado": (N_("A status change of my tickets (including closing)"), TODOS),
    "nuevo_ticket": (N_("A new ticket is created"), ("admin",)),
    "prioridad_critica": (N_("A ticket is or becomes critical"), STAFF),
    "alertas_sla": (N_("SLA alerts: deadline close or missed, nobody to assign"), STAFF),
}
# The kind of an email (email_manager) or of an in-app notification → its preference key.
CLAVE_DE_TIPO = {
    "ticket_asignado": "asignado", "asignado": "asignado",
    "mensaje_nuevo": "mensaje", "mensaje": "mensaje",
    "estado_cambiado": "estado", "ticket_cerrado": "estado", "estado": "estado",
    "nuevo_ticket": "nuevo_ticket",
    "prioridad_critica": "prioridad_critica",
    **{tipo: "alertas_sla" for tipo in (
        "primera_respuesta_aviso", "primera_respuesta_vencida", "resolucion_aviso", "resolucion_vencida",
        "critico_sin_asignar", "sin_candidato")},
}


def crear(usuario: Usuario, tipo: str, texto: str, ticket: Optional[Ticket] = None) -> Notificacion:
    fila = Notificacion(usuario_id=usuario.id, ticket=ticket, tipo=tipo, texto=texto[:400], leida=False,
                        fecha=utcnow())
    db.session.add(fila)
    return fila


def claves(usuario: Usuario) -> list[str]:
    """The preference keys that apply to ``usuario``'s role."""
    return [clave for clave, (_, roles) in PREFERENCIAS.items() if usuario.rol in roles]


def preferencias(usuario: Usuario) -> dict[str, bool]:
    """Every key of the user's role with its value (on unless they turned it off)."""
    guardadas = dict(db.session.execute(select(PreferenciaEmail.clave, PreferenciaEmail.email).where(
        PreferenciaEmail.usuario_id == usuario.id)).all())
    return {clave: bool(guardadas.get(clave, True)) for clave in claves(usuario)}


def guardar_preferencias(usuario: Usuario, cambios: dict[str, bool]) -> dict[str, bool]:
    """Set some of the user's own keys; an unknown key (or one of another role) is a 422."""
    validas = claves(usuario)
    desconocidas = sorted(k for k in cambios if k not in validas)
    if desconocidas:
        raise ValidationFailed("Unknown notification preference.", code="unknown_preference",
                               fields={k: "Use one of: " + ", ".join(validas) for k in desconocidas})
    filas = {f.clave: f for f in db.session.execute(select(PreferenciaEmail).where(
        PreferenciaEmail.usuario_id == usuario.id)).scalars()}
    for clave, valor in cambios.items():
        fila = filas.get(clave)
        if fila is None:
            db.session.add(PreferenciaEmail(usuario_id=usuario.id, clave=clave, email=bool(valor)))
        else:
            fila.email = bool(valor)
    db.session.flush()
    return preferencias(usuario)


def quiere_email(usuario: Optional[Usuario], tipo: str) -> bool:
    """Whether ``usuario`` wants the email of kind ``tipo`` (an email kind or a notification tipo).
    Kinds with no preference key (receipts, account emails) and non-users (clients) always get it."""
    clave = CLAVE_DE_TIPO.get(tipo)
    if usuario is None or clave is None:
        return True
    return quiere_email_id(usuario.id, clave)


def quiere_email_id(usuario_id: int, clave: str) -> bool:
    return usuario_id not in no_quieren_email([usuario_id], clave)


def no_quieren_email(usuario_ids, clave: str) -> set[int]:
    """Of ``usuario_ids``, those who turned the emails of ``clave`` off: one query for every
    recipient of an email (none when there is nobody to ask about)."""
    ids = {i for i in usuario_ids if i is not None}
    if not ids:
        return set()
    return set(db.session.execute(select(PreferenciaEmail.usuario_id).where(
        PreferenciaEmail.usuario_id.in_(ids), PreferenciaEmail.clave == clave,
        PreferenciaEmail.email.is_(False))).scalars())


# --- live panels: what changed in the tickets a user may see -------------------------------------

VENTANA = timedelta(seconds=60)  # a change committed up to this late is still noticed


def _en_alcance(stmt, usuario: Usuario):
    import tickets

    # No WHERE for an admin: "max(x) FROM tickets" is one index probe on both databases.
    return stmt if usuario.rol == "admin" else stmt.where(tickets.scope_clause(usuario))


def version_alcance(usuario: Usuario) -> str:
    """The newest change in ``usuario``'s scope, as an opaque URL-safe token ("" when it is empty)."""
    maximo = db.session.execute(_en_alcance(select(func.max(Ticket.fecha_actualizacion)), usuario)).scalar()
    if maximo is None:
        return ""
    maximo = maximo if maximo.tzinfo is not None else maximo.replace(tzinfo=UTC)
    return str(int(maximo.timestamp()) * 1_000_000 + maximo.microsecond)


def cambios_recientes(usuario: Usuario) -> set[tuple[int, str]]:
    """(id, fecha_actualizacion) of the tickets in scope changed within VENTANA: a transaction
    that commits after a later one (older timestamp, so the max does not move) still shows here."""
    stmt = _en_alcance(select(Ticket.id, Ticket.fecha_actualizacion), usuario).where(
        Ticket.fecha_actualizacion >= utcnow() - VENTANA)
    return {(i, f.isoformat()) for i, f in db.session.execute(stmt)}


class Vigia:
    """Watches one user's scope across polls of the live stream (only the last look is kept)."""

    def __init__(self, usuario_id: int):
        self.usuario_id = usuario_id
        self.version: Optional[str] = None
        self._recientes: set[tuple[int, str]] = set()

    def mirar(self) -> bool:
        """Look again; True when something in scope changed since the previous look."""
        usuario = db.session.get(Usuario, self.usuario_id)
        if usuario is None:
            return False
        version, recientes = version_alcance(usuario), cambios_recientes(usuario)
        cambio = self.version is not None and (version != self.version or bool(recientes - self._recientes))
        self.version, self._recientes = version, recientes
        return cambio


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


def _on_desasignado(ticket, actor=None, ingeniero=None, **_):
    """The engineer a ticket left hears it: the ticket also disappears from their live list."""
    if ingeniero is None or (actor is not None and actor.id == ingeniero.usuario_id):
        return
    _avisar(ingeniero.usuario, ticket, "desasignado", N_("%(numero)s is no longer assigned to you: %(titulo)s"))


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


def conectar_senales() -> None:
    import tickets

    tickets.ticket_asignado.connect(_on_asignado)
    tickets.ticket_desasignado.connect(_on_desasignado)
    tickets.mensaje_publicado.connect(_on_mensaje)
    tickets.estado_cambiado.connect(_on_estado)
