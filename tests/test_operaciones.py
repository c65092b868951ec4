"""Backups, restores and the health check (operaciones.py, rutas/operaciones.py)."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import func, select, text

from app import create_app
from models import Envio, Ticket, db, utcnow
from tests.conftest import BACKEND

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite online backup")


def _contar(ruta, tabla: str) -> int:
    con = sqlite3.connect(ruta)
    try:
        return con.execute(f"SELECT count(*) FROM {tabla}").fetchone()[0]
    finally:
        con.close()


@sqlite_only
def test_backup_under_concurrent_writes_restores_a_consistent_copy(app, api, make_user, tmp_path):
    clients = [api(make_user()) for _ in range(3)]
    upload_dir = tmp_path / "subidas"
    (upload_dir / "ab").mkdir(parents=True)
    (upload_dir / "ab" / "archivo").write_bytes(b"contenido")
    app.config["UPLOAD_DIR"] = str(upload_dir)
    parar = threading.Event()
    creados: list[int] = []

    def escribir(c) -> None:
        while not parar.is_set():
            r = c.post("/api/tickets", json={"titulo": "carga", "descripcion": "d", "categoria": "General"})
            creados.append(r.status_code)

    hilos = [threading.Thread(target=escribir, args=(c,)) for c in clients]
    for h in hilos:
        h.start()
    try:
        while len(creados) < 10:
            threading.Event().wait(0.05)
        resultado = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "copia")])
        while len(creados) < 20:
            threading.Event().wait(0.05)
    finally:
        parar.set()
        for h in hilos:
            h.join(timeout=60)
    assert resultado.exit_code == 0, resultado.output
    assert set(creados) == {201}

    destino_db = tmp_path / "restaurada" / "mesa.db"
    nuevo = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{destino_db}",
                        "UPLOAD_DIR": str(tmp_path / "subidas_restauradas")})
    with nuevo.app_context():  # the CLI runs in the current app context: the new app's
        r = nuevo.test_cli_runner().invoke(args=["restore", str(tmp_path / "copia")])
        again = nuevo.test_cli_runner().invoke(args=["restore", str(tmp_path / "copia")])
        db.engine.dispose()
    assert r.exit_code == 0, r.output
    with sqlite3.connect(destino_db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # consistent snapshot: every ticket copied has its creation event, numbers are whole
        sin_evento = con.execute("SELECT count(*) FROM tickets t WHERE NOT EXISTS (SELECT 1 FROM eventos e "
                                 "WHERE e.ticket_id = t.id AND e.tipo = 'creado')").fetchone()[0]
        assert sin_evento == 0
        assert con.execute("SELECT count(*) FROM tickets WHERE numero_ticket IS NULL").fetchone()[0] == 0
    copiados = _contar(destino_db, "tickets")
    db.session.expire_all()
    total = db.session.scalar(select(func.count()).select_from(Ticket))
    assert 10 <= copiados <= total
    assert _contar(destino_db, "usuarios") == _contar(tmp_path / "copia" / "mesa_de_ayuda.db", "usuarios")
    assert (tmp_path / "subidas_restauradas" / "ab" / "archivo").read_bytes() == b"contenido"

    # never over a database that has data
    assert again.exit_code != 0 and "not empty" in again.output


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL advice")
def test_backup_on_postgresql_prints_the_pg_dump_command(app, tmp_path):
    r = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "copia")])
    assert r.exit_code != 0 and "pg_dump" in r.output


def test_healthz_reports_database_migrations_and_outbox(app, client):
    db.session.add(Envio(canal="email", tipo="prueba", destinatarios="a@example.test", cuerpo_texto="x",
                         estado="pendiente", fecha_creacion=utcnow()))
    db.session.commit()
    r = client.get("/healthz")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["migrations"] == "current"
    assert body["outbox"]["pending"] == 1
    assert body["outbox"]["oldest_pending_seconds"] >= 0


def test_healthz_is_503_when_migrations_are_behind(app, client):
    actual = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.session.commit()
    try:
        r = client.get("/healthz")
        assert r.status_code == 503
        assert r.get_json()["migrations"] == "pending"
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": actual})
        db.session.commit()
