"""Email in through its real entry points: ``flask ingest-email`` run as a subprocess (an MTA
pipe) with its exit codes, and ``flask fetch-email`` against a real dovecot on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imap_fixture
from click.testing import CliRunner
from sqlalchemy import func, select
from test_correo_entrante import eml

from models import Comunicacion, Mensaje, Ticket, db

dovecot, imap = imap_fixture.dovecot, imap_fixture.imap  # the real IMAP server fixtures
ROOT = Path(__file__).resolve().parent.parent


def flask_cli(comando: list[str], database_url: str, raw: bytes = b"", **env) -> subprocess.CompletedProcess:
    """``flask <comando>`` in a subprocess against the test database, as cron or an MTA runs it."""
    entorno = {**os.environ, "FLASK_APP": "app", "DATABASE_URL": database_url, "SECRET_KEY": "test-secret",
               "OUTBOX_THREAD": "0", **env}
    return subprocess.run([sys.executable, "-m", "flask", *comando], input=raw, cwd=ROOT, env=entorno,
                          capture_output=True, timeout=120)


def pipe(raw: bytes, database_url: str, **env) -> subprocess.CompletedProcess:
    return flask_cli(["ingest-email"], database_url, raw, **env)


def test_pipe_command_stores_once_and_exits_zero(app, database_url, make_user, make_ticket):
    requester = make_user("usuario", email="ana@cliente.test")
    engineer = make_user("ingeniero")
    ticket = make_ticket(requester, engineer, estado="en_espera")
    raw = eml("ana@cliente.test", f"Re: [{ticket.numero_ticket}] Tu ticket cambió a en_espera", "Adjunto datos")
    first = pipe(raw, database_url)
    assert first.returncode == 0, first.stderr.decode()
    assert b"respuesta" in first.stdout
    second = pipe(raw, database_url)
    assert second.returncode == 0 and b"duplicado" in second.stdout
    db.session.expire_all()
    assert [m.cuerpo for m in db.session.execute(select(Mensaje).where(Mensaje.ticket_id == ticket.id)).scalars()] \
        == ["Adjunto datos"]


def test_pipe_command_ignores_auto_replies_with_exit_zero(app, database_url, make_user):
    make_user("usuario", email="ana@cliente.test")
    r = pipe(eml("ana@cliente.test", "Out of office", "Vuelvo el lunes", cabeceras={"Auto-Submitted": "auto-replied"}),
             database_url)
    assert r.returncode == 0 and b"ignorado" in r.stdout
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_pipe_command_stores_garbage_as_failed_with_exit_zero(app, database_url):
    r = pipe(b"this is not an email\x00\xff", database_url)
    assert r.returncode == 0 and b"fallido" in r.stdout
    db.session.expire_all()
    com, = db.session.execute(select(Comunicacion)).scalars()
    assert com.estado == "fallido" and "From" in com.error


def test_pipe_command_asks_the_mta_to_retry_when_the_database_is_down(app, tmp_path):
    r = pipe(eml("a@cliente.test", "Hola", "x"), "postgresql+psycopg://nadie@127.0.0.1:1/nada")
    assert r.returncode == 75, (r.stdout, r.stderr)


def test_fetch_email_stores_each_message_once_and_marks_it_seen(app, imap, make_user, make_ticket):
    requester = make_user("usuario", email="ana@cliente.test")
    engineer = make_user("ingeniero", email="ing@mesa.test")
    ticket = make_ticket(requester, engineer, estado="en_progreso")
    respuesta = eml("ana@cliente.test", f"Re: [{ticket.numero_ticket}] x", "Respuesta por IMAP")
    imap.entregar(respuesta)
    imap.entregar(eml("vacaciones@cliente.test", "Auto", "fuera", cabeceras={"Auto-Submitted": "auto-replied"}))
    runner = CliRunner()
    out = runner.invoke(app.cli, ["fetch-email"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "respuesta: 1" in out.output and "ignorado: 1" in out.output
    assert imap.vistos() == 2
    # The same message delivered again (another copy in the mailbox) is not stored twice.
    imap.entregar(respuesta)
    out = runner.invoke(app.cli, ["fetch-email"], catch_exceptions=False)
    assert "duplicado: 1" in out.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Mensaje).where(Mensaje.ticket_id == ticket.id)) == 1


def test_fetch_email_reports_a_wrong_password(app, imap):
    app.config["IMAP_PASSWORD"] = "mala"
    out = CliRunner().invoke(app.cli, ["fetch-email"])
    assert out.exit_code != 0 and "IMAP error" in out.output
