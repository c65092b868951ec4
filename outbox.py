"""One outbox for every channel: queue, claim, deliver, back off, fail visibly, retry.

Domain code writes an ``Envio`` row (``encolar``) in the same transaction as the change that
caused it; nothing talks to SMTP or to the Graph API inside a request. Senders deliver:

* ``reclamar`` takes due rows with one conditional UPDATE (plus ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL), so any number of senders may run at once and each message leaves once;
* each channel plugs in an adapter (``registrar_canal``): a factory called once per batch that
  returns an object with ``enviar(envio) -> id_externo | None`` and optionally ``cerrar()``
  (the email adapter reuses one SMTP connection for its batch). Nothing else about delivery
  is channel-specific;
* a failure is retried with exponential backoff; after ``OUTBOX_MAX_INTENTOS`` tries (or at
  once on ``ErrorPermanente``) the row is ``fallido`` with the error, listed in
  ``/admin/correos`` (every channel) until an admin presses "reintentar".

Senders: a thread of the dev server under ``make run`` (OUTBOX_THREAD=1) and
``flask send-outbox [--loop]`` (alias ``flask send-emails``) in production.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Optional, Protocol

import click
from flask import Flask, current_app
from sqlalchemy import func, select, update

import trabajadores
from errors import Conflict, NotFound
from models import CANALES_SALIDA, ESTADOS_SALIDA, Envio, Ticket, db, enlazar, utcnow

log = logging.getLogger(__name__)


class Adaptador(Protocol):
    def enviar(self, envio: Envio) -> Optional[str]: ...


class ErrorPermanente(Exception):
    """The channel refused the message for good (e.g. an invalid number): no more tries."""


_CANALES: dict[str, Callable[[], Adaptador]] = {}


def registrar_canal(canal: str, fabrica: Callable[[], Adaptador]) -> None:
    """Plug in the delivery of ``canal``: ``fabrica()`` is called once per batch of its rows."""
    if canal not in CANALES_SALIDA:
        raise ValueError(f"unknown channel {canal!r}; add it to models.CANALES_SALIDA")
    _CANALES[canal] = fabrica


def encolar(canal: str, tipo: str, destinatarios: str, *, ticket: Optional[Ticket] = None,
            cuerpo_texto: str = "", asunto: Optional[str] = None, cuerpo_html: Optional[str] = None,
            adjuntos: Optional[list] = None, datos: Optional[dict] = None,
            id_externo: Optional[str] = None) -> Envio:
    """Queue one outgoing message in the current transaction (it commits with the change)."""
    envio = Envio(canal=canal, tipo=tipo, destinatarios=destinatarios, asunto=asunto,
                  cuerpo_html=cuerpo_html, cuerpo_texto=cuerpo_texto, adjuntos=adjuntos or [], datos=datos,
                  id_externo=id_externo, estado="pendiente", intentos=0, proximo_intento=utcnow())
    enlazar(envio, "ticket", ticket)
    db.session.add(envio)
    return envio


# --- delivery -------------------------------------------------------------------------------------

def _espera(intentos: int) -> timedelta:
    base = float(current_app.config["OUTBOX_BACKOFF_SECONDS"])
    tope = float(current_app.config["OUTBOX_BACKOFF_MAX_SECONDS"])
    return timedelta(seconds=min(base * (2 ** max(intentos - 1, 0)), tope))


def _registrar_fallo(envio: Envio, error: BaseException, ahora) -> str:
    envio.ultimo_error = f"{type(error).__name__}: {error}"[:2000]
    envio.reclamado_por = None
    if isinstance(error, ErrorPermanente) or envio.intentos >= int(current_app.config["OUTBOX_MAX_INTENTOS"]):
        envio.estado = "fallido"
        log.error("Outbox %s %s failed for good after %s tries: %s", envio.canal, envio.id, envio.intentos,
                  envio.ultimo_error)
    else:
        envio.estado = "pendiente"
        envio.proximo_intento = ahora + _espera(envio.intentos)
    return envio.estado


def nombre_trabajador() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:60]


def liberar_atascados(ahora=None) -> int:
    """Rows left 'enviando' by a sender that died go back to the queue."""
    ahora = ahora or utcnow()
    limite = ahora - timedelta(seconds=int(current_app.config["OUTBOX_CLAIM_TIMEOUT_SECONDS"]))
    result = db.session.execute(
        update(Envio).where(Envio.estado == "enviando", Envio.reclamado_en < limite)
        .values(estado="pendiente", reclamado_por=None).execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount or 0


def reclamar(limite: int, trabajador: str, ahora=None, canales: Optional[tuple[str, ...]] = None) -> list[Envio]:
    """Atomically take up to ``limite`` due rows for ``trabajador``.

    The UPDATE only touches rows still 'pendiente', so of two senders racing for a row exactly
    one gets it (PostgreSQL re-checks the WHERE after the row lock; SQLite serializes writers).
    On PostgreSQL, SKIP LOCKED lets parallel senders take different rows instead of waiting.
    Only channels with an adapter are claimed (a row of an unplugged channel waits)."""
    ahora = ahora or utcnow()
    canales = canales or tuple(_CANALES)
    token = f"{trabajador}:{uuid.uuid4().hex[:12]}"
    candidatos = (select(Envio.id)
                  .where(Envio.estado == "pendiente", Envio.proximo_intento <= ahora, Envio.canal.in_(canales))
                  .order_by(Envio.proximo_intento, Envio.id).limit(limite))
    filtro = trabajadores.filtro_reclamables(Envio.id, candidatos)
    db.session.execute(
        update(Envio)
        .where(filtro, Envio.estado == "pendiente")
        .values(estado="enviando", reclamado_por=token, reclamado_en=ahora, intentos=Envio.intentos + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return list(db.session.execute(
        select(Envio).where(Envio.reclamado_por == token, Envio.estado == "enviando")
        .order_by(Envio.id)).scalars())


def enviar_pendientes(limite: int = 50, trabajador: Optional[str] = None, ahora=None,
                      canales: Optional[tuple[str, ...]] = None) -> dict[str, int]:
    """Deliver the due rows once. Commits after every row, so a crash never resends one that
    already left. Returns counts by outcome. ``ahora`` fixes the clock (tests, replays)."""
    reloj = (lambda: ahora) if ahora is not None else utcnow
    ahora = reloj()
    liberar_atascados(ahora)
    lote = reclamar(limite, trabajador or nombre_trabajador(), ahora, canales)
    cuenta = {"enviado": 0, "pendiente": 0, "fallido": 0}
    adaptadores: dict[str, Adaptador] = {}
    try:
        for envio in lote:
            try:
                if envio.canal not in adaptadores:
                    adaptadores[envio.canal] = _CANALES[envio.canal]()
                # What the adapter writes on the row (an email's bodies, rendered now) waits for
                # the commit below: a flush here would take SQLite's write lock for the whole send.
                with db.session.no_autoflush:
                    id_externo = adaptadores[envio.canal].enviar(envio)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row and retried
                log.warning("Outbox %s %s not sent (try %s): %s", envio.canal, envio.id, envio.intentos, exc)
                cuenta[_registrar_fallo(envio, exc, reloj())] += 1
                _cerrar(adaptadores.pop(envio.canal, None))  # e.g. a broken SMTP connection: reopen
            else:
                envio.estado, envio.fecha_envio = "enviado", utcnow()
                envio.ultimo_error, envio.reclamado_por = None, None
                if id_externo:
                    envio.id_externo = id_externo
                cuenta["enviado"] += 1
            db.session.commit()
    finally:
        for adaptador in adaptadores.values():
            _cerrar(adaptador)
    return cuenta


def _cerrar(adaptador) -> None:
    cerrar = getattr(adaptador, "cerrar", None)
    if cerrar is not None:
        try:
            cerrar()
        except Exception:  # noqa: BLE001 - the server may already be gone
            log.debug("closing the %s adapter failed", type(adaptador).__name__, exc_info=True)


# --- the outbox for the admin ------------------------------------------------------------------

def consulta(estado: Optional[str] = None, canal: Optional[str] = None):
    """The outbox rows, newest first, optionally of one estado and one channel."""
    stmt = select(Envio).order_by(Envio.id.desc())
    if estado:
        stmt = stmt.where(Envio.estado == estado)
    if canal:
        stmt = stmt.where(Envio.canal == canal)
    return stmt


def contadores(canal: Optional[str] = None) -> dict[str, int]:
    stmt = select(Envio.estado, func.count()).group_by(Envio.estado)
    if canal:
        stmt = stmt.where(Envio.canal == canal)
    cuenta = dict.fromkeys(ESTADOS_SALIDA, 0)
    cuenta.update({estado: n for estado, n in db.session.execute(stmt)})
    return cuenta


def reintentar(envio_id: int) -> Envio:
    """Put a failed message back in the queue, due now, with a fresh set of tries."""
    envio = db.session.get(Envio, envio_id)
    if envio is None:
        raise NotFound("Message not found.")
    if envio.estado != "fallido":
        raise Conflict("Only failed messages can be retried.", code="not_failed",
                       fields={"estado": envio.estado})
    envio.estado, envio.intentos, envio.proximo_intento = "pendiente", 0, utcnow()
    envio.reclamado_por = None
    db.session.flush()
    return envio


# --- senders: background thread and CLI ------------------------------------------------------

def bucle(app: Flask, intervalo: float, parar: Optional[threading.Event] = None, limite: int = 50) -> None:
    """Send, sleep, repeat (a full batch means more are waiting: go on at once)."""
    trabajadores.bucle(app, lambda: enviar_pendientes(limite)["enviado"] >= limite, intervalo, parar, "outbox")


def iniciar_hilo(app: Flask) -> Optional[threading.Thread]:
    """The dev server's sender."""
    return trabajadores.iniciar_hilo(app, "outbox-sender", lambda: enviar_pendientes(50)["enviado"] >= 50,
                                     float(app.config["OUTBOX_POLL_SECONDS"]))


def init_app(app: Flask) -> None:
    """The CLI and, under ``make run``, the dev sender thread (settings come from config.py)."""
    app.cli.add_command(send_outbox_command)
    app.cli.add_command(send_outbox_command, name="send-emails")  # the first wave's name
    if app.config["OUTBOX_THREAD"] and not app.testing:
        iniciar_hilo(app)


@click.command("send-outbox")
@click.option("--loop", "en_bucle", is_flag=True, help="Keep sending until stopped (a production worker).")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds with --loop.")
@click.option("--limit", "limite", default=50, show_default=True, help="Messages claimed per round.")
def send_outbox_command(en_bucle: bool, interval: float, limite: int) -> None:
    """Deliver the queued messages of every channel (once, or with --loop). Several may run at once."""
    app = current_app._get_current_object()
    if en_bucle:
        click.echo(f"Sending queued messages every {interval:g}s as {nombre_trabajador()} (Ctrl+C stops)")
        try:
            bucle(app, interval, limite=limite)
        except KeyboardInterrupt:
            pass
        return
    total = {"enviado": 0, "pendiente": 0, "fallido": 0}
    while True:
        cuenta = enviar_pendientes(limite)
        for k, v in cuenta.items():
            total[k] += v
        if sum(cuenta.values()) < limite:
            break
    click.echo(f"sent: {total['enviado']}, to retry: {total['pendiente']}, failed: {total['fallido']}")
