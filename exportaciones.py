"""Excel exports as background jobs (issue 13): queue, claim, write with progress, serve, expire.

A request queues an ``Exportacion`` row (``crear``: the same tipo, filters and role rules as
the immediate ``GET …/excel``); a worker writes the file with ``reports.exportar_excel`` (the
one writer of export rows) and nothing else:

* ``reclamar`` takes the oldest 'pendiente' job with one conditional UPDATE (plus ``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL), as the outbox does, so several workers may run at once and each
  job is written once;
* progress (``filas_escritas``, and ``latido``, the worker's heartbeat) is committed every
  EXPORT_PROGRESS_ROWS rows in a short transaction of its own, beside the long read of the rows;
  an update that finds the job no longer ours (reclaimed) stops the writing;
* a job whose worker died (no heartbeat for EXPORT_CLAIM_TIMEOUT_SECONDS) goes back to the
  queue (``liberar_atascados``), and is 'fallido' after EXPORT_MAX_INTENTOS tries, never lost;
* the file is written as ``<id>-<claim>.xlsx.part`` under EXPORT_DIR and renamed when complete;
  it lives EXPORT_TTL_HOURS, then the worker deletes it and marks the job 'expirado'
  (``limpiar_expirados``); its download is a 410 from then on.

Workers: ``flask export-worker [--loop]`` in production, a thread of the dev server under
``make run`` (EXPORT_THREAD, on with OUTBOX_THREAD). Like outbox.py, the worker side commits;
``crear`` only flushes (the request commits).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

import click
from flask import Flask, current_app
from sqlalchemy import select, update

import reports
import trabajadores
from errors import Conflict, Gone, NotFound
from models import Exportacion, Usuario, db, utcnow
from outbox import nombre_trabajador

log = logging.getLogger(__name__)


class Abandonada(Exception):
    """The job is no longer this worker's (reclaimed after a stall): stop writing it."""


def _filtros(f: reports.ExcelQuery) -> dict:
    """The query's filters as JSON (what was given, not the defaults), to rebuild it in the worker."""
    return f.model_dump(mode="json", exclude_defaults=True, exclude={"tipo", "page", "per_page"})


def consulta(job: Exportacion) -> reports.ExcelQuery:
    return reports.ExcelQuery(tipo=job.tipo, **job.filtros)


# --- requests: start, follow, download ------------------------------------------------------

def crear(viewer: Usuario, f: reports.ExcelQuery) -> Exportacion:
    """Queue the export of ``f`` for ``viewer`` (``Forbidden`` when the role may not ask for ``f.tipo``)."""
    reports.export_scope(viewer, f.tipo)
    job = Exportacion(usuario_id=viewer.id, tipo=f.tipo, filtros=_filtros(f), estado="pendiente",
                      filas_escritas=0, intentos=0, fecha_creacion=utcnow())
    db.session.add(job)
    db.session.flush()
    return job


def de_usuario(job_id: int, viewer: Usuario) -> Exportacion:
    """The job, if it is ``viewer``'s: anyone else's is a 404 (its existence is not revealed)."""
    job = db.session.get(Exportacion, job_id)
    if job is None or job.usuario_id != viewer.id:
        raise NotFound("Export not found.")
    return job


def caducada(job: Exportacion, ahora: Optional[datetime] = None) -> bool:
    return job.estado == "expirado" or (job.expira_en is not None and job.expira_en <= (ahora or utcnow()))


def archivo(job: Exportacion, ahora: Optional[datetime] = None) -> str:
    """The path of the finished file: 409 while it is being written, 410 once it expired."""
    if caducada(job, ahora):
        raise Gone("This export has expired: start it again.", code="export_expired")
    if job.estado != "listo" or not job.archivo:
        raise Conflict("The export is not ready.", code="export_not_ready", fields={"estado": job.estado})
    if not os.path.exists(job.archivo):  # removed by hand or another cleanup: as good as expired
        raise Gone("This export has expired: start it again.", code="export_expired")
    return job.archivo


def porcentaje(job: Exportacion) -> int:
    if job.estado == "listo":
        return 100
    if not job.filas_total:
        return 0
    return min(99, job.filas_escritas * 100 // job.filas_total)


# --- the worker ------------------------------------------------------------------------------

def _cfg(nombre: str):
    return current_app.config[nombre]


def _ruta(job_id: int, token: str) -> Path:
    """The file of one claim of a job (a reclaimed job is rewritten under a new name)."""
    return Path(_cfg("EXPORT_DIR")).absolute() / f"{job_id}-{token.rsplit(':', 1)[-1]}.xlsx"


def _parcial(ruta: Path) -> Path:
    return ruta.with_name(ruta.name + ".part")


def _borrar(*rutas) -> None:
    for ruta in rutas:
        if ruta:
            try:
                os.remove(ruta)
            except FileNotFoundError:
                pass


def _marcar(job_id: int, token: str, **valores) -> bool:
    """Write ``valores`` on the job in a short transaction of its own, if the claim ``token`` still
    holds it. The export's long read keeps its own transaction (SQLite WAL and PostgreSQL let
    both run); False when the job was reclaimed meanwhile."""
    with db.engine.begin() as conn:
        result = conn.execute(update(Exportacion).where(Exportacion.id == job_id, Exportacion.reclamado_por == token,
                                                        Exportacion.estado == "en_curso").values(**valores))
    return result.rowcount == 1


def liberar_atascados(ahora: Optional[datetime] = None) -> int:
    """Jobs left 'en_curso' by a worker that died (no heartbeat within the timeout) go back to the
    queue, or become 'fallido' after EXPORT_MAX_INTENTOS tries. Their partial file is removed."""
    ahora = ahora or utcnow()
    limite = ahora - timedelta(seconds=int(_cfg("EXPORT_CLAIM_TIMEOUT_SECONDS")))
    atascados = db.session.execute(
        select(Exportacion.id, Exportacion.reclamado_por, Exportacion.intentos)
        .where(Exportacion.estado == "en_curso", Exportacion.latido < limite)).all()
    liberados = 0
    for job_id, token, intentos in atascados:
        if intentos >= int(_cfg("EXPORT_MAX_INTENTOS")):
            valores = {"estado": "fallido", "fecha_fin": ahora, "reclamado_por": None,
                       "expira_en": ahora + timedelta(hours=float(_cfg("EXPORT_TTL_HOURS"))),
                       "error": f"The export worker stopped {intentos} times while writing this file."}
        else:
            valores = {"estado": "pendiente", "reclamado_por": None}
        result = db.session.execute(
            update(Exportacion).where(Exportacion.id == job_id, Exportacion.estado == "en_curso",
                                      Exportacion.reclamado_por == token, Exportacion.latido < limite)
            .values(**valores).execution_options(synchronize_session=False))
        if result.rowcount and token:
            _borrar(_parcial(_ruta(job_id, token)))
            liberados += 1
            log.warning("Export %s: its worker stopped (try %s); %s", job_id, intentos, valores["estado"])
    db.session.commit()
    return liberados


def reclamar(trabajador: str, ahora: Optional[datetime] = None) -> Optional[Exportacion]:
    """Atomically take the oldest 'pendiente' job for ``trabajador`` (None when there is none).

    The UPDATE only touches a row still 'pendiente', so of two workers racing for it exactly one
    gets it; on PostgreSQL, SKIP LOCKED lets a parallel worker take the next job instead."""
    ahora = ahora or utcnow()
    token = f"{trabajador}:{uuid.uuid4().hex[:12]}"
    candidato = select(Exportacion.id).where(Exportacion.estado == "pendiente").order_by(Exportacion.id).limit(1)
    if db.session.execute(candidato).first() is None:
        db.session.rollback()
        return None  # the usual round: a read, no write lock taken
    filtro = trabajadores.filtro_reclamables(Exportacion.id, candidato)
    db.session.execute(
        update(Exportacion).where(filtro, Exportacion.estado == "pendiente")
        .values(estado="en_curso", reclamado_por=token, latido=ahora, fecha_inicio=ahora, filas_escritas=0,
                intentos=Exportacion.intentos + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return db.session.execute(select(Exportacion).where(Exportacion.reclamado_por == token)).scalar_one_or_none()


def ejecutar(job: Exportacion) -> str:
    """Write the claimed ``job``'s file, reporting progress; returns its final estado."""
    job_id, token = job.id, job.reclamado_por
    ruta = _ruta(job_id, token)
    parcial = _parcial(ruta)
    cada = max(1, int(_cfg("EXPORT_PROGRESS_ROWS")))
    escritas = {"filas": 0, "anotadas": 0}

    def progreso(filas: int) -> None:
        # The first chunk at once (the bar moves within a second), then every ``cada`` rows.
        escritas["filas"] = filas
        if escritas["anotadas"] and filas - escritas["anotadas"] < cada:
            return
        escritas["anotadas"] = filas
        if not _marcar(job_id, token, filas_escritas=filas, latido=utcnow()):
            raise Abandonada()

    try:
        viewer = db.session.get(Usuario, job.usuario_id)
        f = consulta(job)
        if not _marcar(job_id, token, filas_total=reports.contar_filas(viewer, f), latido=utcnow()):
            raise Abandonada()
        parcial.parent.mkdir(parents=True, exist_ok=True)
        reports.exportar_excel(viewer, f, str(parcial), progreso)
        db.session.rollback()  # end the long read before writing again (a SQLite snapshot cannot write)
        os.replace(parcial, ruta)
        ahora = utcnow()
        if not _marcar(job_id, token, estado="listo", archivo=str(ruta), filas_escritas=escritas["filas"],
                       filas_total=escritas["filas"], fecha_fin=ahora, latido=ahora, error=None,
                       expira_en=ahora + timedelta(hours=float(_cfg("EXPORT_TTL_HOURS")))):
            raise Abandonada()
        return "listo"
    except Abandonada:
        db.session.rollback()
        _borrar(parcial, ruta)
        log.warning("Export %s was reclaimed by another worker; this one stops", job_id)
        return "abandonado"
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the job, visible to its owner
        db.session.rollback()
        _borrar(parcial, ruta)
        log.exception("Export %s failed", job_id)
        ahora = utcnow()
        _marcar(job_id, token, estado="fallido", error=f"{type(exc).__name__}: {exc}"[:2000], fecha_fin=ahora,
                expira_en=ahora + timedelta(hours=float(_cfg("EXPORT_TTL_HOURS"))))
        return "fallido"


def limpiar_expirados(ahora: Optional[datetime] = None) -> int:
    """Delete the files of jobs past ``expira_en`` and mark them 'expirado' (their download is a 410)."""
    ahora = ahora or utcnow()
    vencidos = db.session.execute(
        select(Exportacion).where(Exportacion.estado.in_(("listo", "fallido")), Exportacion.expira_en <= ahora)
    ).scalars().all()
    for job in vencidos:
        _borrar(job.archivo)
        job.estado, job.archivo = "expirado", None
    db.session.commit()
    return len(vencidos)


def ronda(trabajador: Optional[str] = None) -> bool:
    """One worker round: free stalled jobs, expire old files, write one job. True when a job was
    written (more may be waiting: the loop goes on at once)."""
    ahora = utcnow()
    liberar_atascados(ahora)
    limpiar_expirados(ahora)
    job = reclamar(trabajador or nombre_trabajador(), ahora)
    if job is None:
        return False
    job_id, inicio = job.id, time.perf_counter()
    estado = ejecutar(job)
    log.info("Export %s: %s in %.1f s", job_id, estado, time.perf_counter() - inicio)
    return True


# --- workers: CLI and the dev server's thread --------------------------------------------------

def init_app(app: Flask) -> None:
    app.cli.add_command(export_worker_command)
    if app.config["EXPORT_THREAD"] and not app.testing:
        trabajadores.iniciar_hilo(app, "export-worker", ronda, float(app.config["EXPORT_POLL_SECONDS"]))


@click.command("export-worker")
@click.option("--loop", "en_bucle", is_flag=True, help="Keep working until stopped (a production worker).")
@click.option("--interval", default=None, type=float, help="Seconds between polls with --loop (EXPORT_POLL_SECONDS).")
def export_worker_command(en_bucle: bool, interval: Optional[float]) -> None:
    """Write the queued Excel exports and delete expired files (once, or with --loop). Several may run at once."""
    app = current_app._get_current_object()
    if en_bucle:
        intervalo = interval or float(app.config["EXPORT_POLL_SECONDS"])
        click.echo(f"Writing queued exports every {intervalo:g}s as {nombre_trabajador()} (Ctrl+C stops)")
        try:
            trabajadores.bucle(app, ronda, intervalo, nombre="export-worker")
        except KeyboardInterrupt:
            pass
        return
    n = 0
    while ronda():
        n += 1
    click.echo(f"exports written: {n}")
