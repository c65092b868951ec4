"""SLA alerts, each sent once (issue 12): near breach and breach of first response and resolution
→ the assigned engineer and the admins; a critical ticket still unassigned after N minutes →
the admins. ``flask sla-tick [--loop]`` evaluates them.

Each alert is claimed by inserting its ``(ticket, tipo)`` row into ``alertas_sla`` with
INSERT … ON CONFLICT DO NOTHING: only the process whose insert took effect queues the email
(outbox) and the in-app notification, in the same transaction. So several ``sla-tick``
processes may run at once. Candidates come from indexed due times, not a scan in Python.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Optional

import click
from flask import Flask, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

import notificaciones
import sla
import trabajadores
from errors import N_
from models import ESTADOS_ABIERTOS, AlertaSLA, Ticket, Usuario, db, utcnow

log = logging.getLogger(__name__)
LOTE = 500


def reclamar(ticket_id: int, tipo: str) -> bool:
    """True when this caller is the one that records alert ``tipo`` for the ticket."""
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(AlertaSLA).values(ticket_id=ticket_id, tipo=tipo, fecha=utcnow()).on_conflict_do_nothing(
        index_elements=["ticket_id", "tipo"]).returning(AlertaSLA.id)
    return db.session.execute(stmt).scalar_one_or_none() is not None


TEXTOS = {  # msgids marked for the catalogs, translated in the reader's language by _texto
    "primera_respuesta_aviso": N_("%(numero)s is close to its first-response deadline: %(titulo)s"),
    "primera_respuesta_vencida": N_("%(numero)s missed its first-response deadline: %(titulo)s"),
    "resolucion_aviso": N_("%(numero)s is close to its resolution deadline: %(titulo)s"),
    "resolucion_vencida": N_("%(numero)s missed its resolution deadline: %(titulo)s"),
    "critico_sin_asignar": N_("Critical ticket %(numero)s is still unassigned: %(titulo)s"),
    "sin_candidato": N_("No engineer could be assigned automatically to %(numero)s: %(titulo)s"),
}


def _texto(tipo: str, ticket: Ticket) -> str:
    return _(TEXTOS[tipo], numero=ticket.numero_ticket, titulo=ticket.titulo)


def _admins() -> list[Usuario]:
    return list(db.session.execute(select(Usuario).where(Usuario.rol == "admin", Usuario.activo.is_(True))
                                   .order_by(Usuario.id)).scalars())


def destinatarios(ticket: Ticket, tipo: str) -> list[Usuario]:
    usuarios = _admins()
    if tipo not in ("critico_sin_asignar", "sin_candidato") and ticket.ingeniero is not None:
        usuarios.insert(0, ticket.ingeniero.usuario)
    vistos, lista = set(), []
    for u in usuarios:
        if u.id not in vistos and u.activo:
            vistos.add(u.id)
            lista.append(u)
    return lista


def notificar(ticket: Ticket, tipo: str) -> int:
    """Queue the email (outbox) and write the in-app notification for every recipient."""
    import email_manager

    n = 0
    usuarios = destinatarios(ticket, tipo)
    clave = notificaciones.CLAVE_DE_TIPO.get(tipo)
    apagados = notificaciones.no_quieren_email([u.id for u in usuarios], clave) if clave else set()
    for usuario in usuarios:
        with force_locale(usuario.idioma or "es"):
            texto = _texto(tipo, ticket)
            notificaciones.crear(usuario, tipo, texto, ticket=ticket)
            if usuario.id not in apagados:
                email_manager.correo_alerta_sla(ticket, usuario, tipo, texto)
        n += 1
    return n


CERROJO_SIN_CANDIDATO = 0x4D455341  # "MESA": the advisory lock key of the claim below


def alertar_sin_candidato(ticket: Ticket) -> bool:
    """Automatic assignment found nobody: tell the admins, at most once per
    ALERTA_SIN_CANDIDATO_MINUTOS (True when this ticket's creation did).

    "Every engineer is at their cap" is one situation, not one per ticket: while it lasts, every
    creation would mail and notify every admin (hundreds an hour at a busy desk), and the alerts
    would bury everything else in the bell. So the first ticket that finds nobody alerts, naming
    itself; those created within the period after it only get their history row and wait in the
    unassigned list of the admin panel; if nobody can take tickets later on, the next one alerts
    again. Critical tickets still get their own alerts (the creation email, critico_sin_asignar).

    The claim is the ``alertas_sla`` row. On SQLite the creation holds the write lock (its ticket
    is flushed), so the check and the insert cannot interleave with another writer; on
    PostgreSQL a transaction-scoped advisory lock, taken only when no recent alert is seen,
    orders the few creations racing at the start of a period."""
    if sin_candidato_alertado():
        return False
    if db.engine.dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(CERROJO_SIN_CANDIDATO)))
        if sin_candidato_alertado():
            return False
    db.session.flush()  # the claim's row refers to the ticket (a creation's is not written yet)
    if not reclamar(ticket.id, "sin_candidato"):
        return False
    notificar(ticket, "sin_candidato")
    return True


def sin_candidato_alertado() -> bool:
    """Whether the admins were told within the last ALERTA_SIN_CANDIDATO_MINUTOS that nobody
    could be assigned. A True stays true until the period ends, so it may be read before the
    creation's write (asignacion does, outside SQLite's write lock); a False is asked again by
    ``alertar_sin_candidato`` under the lock."""
    minutos = float(current_app.config["ALERTA_SIN_CANDIDATO_MINUTOS"])
    return _alertado_desde("sin_candidato", utcnow() - timedelta(minutes=minutos))


def _alertado_desde(tipo: str, desde) -> bool:
    """Whether an alert of ``tipo`` was recorded since ``desde`` (one probe of (tipo, fecha))."""
    return db.session.execute(_ALERTADO_DESDE, {"tipo": tipo, "desde": desde}).first() is not None


# Built once (a creation asks it each time): the parameters are bound, not the statement rebuilt.
_ALERTADO_DESDE = select(AlertaSLA.id).where(AlertaSLA.tipo == bindparam("tipo"),
                                             AlertaSLA.fecha >= bindparam("desde")).limit(1)


def candidatos(tipo: str, ahora, cfg) -> list[Ticket]:
    en_marcha = Ticket.estado.in_(sla.ESTADOS_EN_MARCHA)
    sin_respuesta = Ticket.fecha_primera_respuesta.is_(None)
    condiciones = {
        "primera_respuesta_aviso": and_(en_marcha, sin_respuesta, Ticket.sla_primera_respuesta_aviso <= ahora,
                                        Ticket.sla_primera_respuesta_vence > ahora),
        "primera_respuesta_vencida": and_(en_marcha, sin_respuesta, Ticket.sla_primera_respuesta_vence <= ahora),
        "resolucion_aviso": and_(en_marcha, Ticket.sla_resolucion_aviso <= ahora,
                                 Ticket.sla_resolucion_vence > ahora),
        "resolucion_vencida": and_(en_marcha, Ticket.sla_resolucion_vence <= ahora),
        "critico_sin_asignar": and_(
            Ticket.estado.in_(ESTADOS_ABIERTOS), Ticket.prioridad == "critica", Ticket.ingeniero_id.is_(None),
            Ticket.fecha_creacion <= ahora - timedelta(minutes=cfg.minutos_critico_sin_asignar or 15)),
    }
    ya = exists().where(AlertaSLA.ticket_id == Ticket.id, AlertaSLA.tipo == tipo)
    return list(db.session.execute(select(Ticket).where(condiciones[tipo], ~ya).order_by(Ticket.id).limit(LOTE))
                .scalars())


def tick(ahora=None) -> dict[str, int]:
    """One evaluation: claim and send every due alert. Flushes; the caller commits."""
    ahora = ahora or utcnow()
    cfg = sla.vigentes()
    enviados: dict[str, int] = {}
    for tipo in ("primera_respuesta_aviso", "primera_respuesta_vencida", "resolucion_aviso",
                 "resolucion_vencida", "critico_sin_asignar"):
        for ticket in candidatos(tipo, ahora, cfg):
            if reclamar(ticket.id, tipo):
                notificar(ticket, tipo)
                enviados[tipo] = enviados.get(tipo, 0) + 1
    db.session.flush()
    return enviados


def _ronda() -> bool:
    tick()
    db.session.commit()
    return False


def bucle(app: Flask, intervalo: float, parar: Optional[threading.Event] = None) -> None:
    trabajadores.bucle(app, _ronda, intervalo, parar, "sla-tick")


def iniciar_hilo(app: Flask) -> Optional[threading.Thread]:
    """The dev server's sla-tick (with the outbox thread, under ``make run``)."""
    return trabajadores.iniciar_hilo(app, "sla-tick", _ronda, float(app.config["SLA_TICK_SECONDS"]))


def init_app(app: Flask) -> None:
    if app.config.get("OUTBOX_THREAD") and not app.testing:
        iniciar_hilo(app)

    @app.cli.command("sla-tick")
    @click.option("--loop", "en_bucle", is_flag=True, help="Keep evaluating every --interval seconds.")
    @click.option("--interval", default=None, type=float, help="Seconds between evaluations (SLA_TICK_SECONDS).")
    def sla_tick_command(en_bucle: bool, interval: Optional[float]) -> None:
        """Send due SLA alerts (near breach, breach, critical unassigned), each once."""
        intervalo = interval or float(current_app.config.get("SLA_TICK_SECONDS", 60))
        if en_bucle:
            bucle(current_app._get_current_object(), intervalo)
            return
        inicio = time.perf_counter()
        enviados = tick()
        db.session.commit()
        click.echo(f"sla-tick: {sum(enviados.values())} alerts {enviados} in {time.perf_counter() - inicio:.3f}s")

    @app.cli.command("sla-recalcular")
    def sla_recalcular_command() -> None:
        """Recompute the SLA due times of every open ticket (after an upgrade or a bulk import)."""
        n = sla.recalcular_abiertos()
        db.session.commit()
        click.echo(f"{n} open tickets recomputed")
