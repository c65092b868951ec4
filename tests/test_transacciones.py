"""How a request uses its connection (transacciones.py, issue 13): on PostgreSQL a GET reads in
autocommit, so psycopg's prepared statements outlive the request (a ROLLBACK would drop them),
and opens a transaction at its first write, which commits or rolls back as a whole; a pooled
connection that sat idle is pinged before use. Access rules and token checks stay those of every
request."""

from __future__ import annotations

import psycopg
import pytest
from conftest import BACKEND
from sqlalchemy import select, text

import tickets
import transacciones
from models import Mensaje, Ticket, db

VISTO_POR = {"owner": 200, "other_user": 404, "engineer": 200, "other_engineer": 404, "admin": 200}
solo_postgresql = pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's transactions and psycopg")


@pytest.fixture
def ticket_id(roles, make_ticket):
    return make_ticket(roles["owner"], ingeniero=roles["engineer"], estado="en_progreso").id


@pytest.fixture
def hilo(api, roles, ticket_id):
    """The owner wrote twice on the ticket: two messages the engineer has not read."""
    cliente = api(roles["owner"])
    for cuerpo in ("No imprime", "Sigue sin imprimir"):
        assert cliente.post(f"/api/tickets/{ticket_id}/mensajes", json={"cuerpo": cuerpo}).status_code == 201
    return ticket_id


@pytest.fixture
def ingeniero(api, roles, hilo):
    """The engineer's client, its token already used: its last use is not written (and
    committed) again within the minute, so the GETs below write nothing else."""
    cliente = api(roles["engineer"])
    assert cliente.get(f"/api/tickets/{hilo}").status_code == 200
    return cliente


def leidos(ticket_id: int) -> list[bool]:
    db.session.expire_all()
    return db.session.execute(select(Mensaje.leido).where(Mensaje.ticket_id == ticket_id)
                              .order_by(Mensaje.id)).scalars().all()


@pytest.mark.parametrize("quien", VISTO_POR)
def test_one_ticket_get_answers_each_role_as_before(api, roles, ticket_id, quien):
    cliente = api(roles[quien])
    for _ in range(2):  # the first use also records the token's ultimo_uso
        r = cliente.get(f"/api/tickets/{ticket_id}")
        assert r.status_code == VISTO_POR[quien]
    if r.status_code == 200:
        assert r.get_json()["id"] == ticket_id and r.headers["ETag"]


def test_a_revoked_token_is_refused_by_the_very_next_get(api, roles, ticket_id):
    cliente = api(roles["owner"])
    assert cliente.get(f"/api/tickets/{ticket_id}").status_code == 200
    assert cliente.delete("/api/auth/token").status_code == 204
    assert cliente.get(f"/api/tickets/{ticket_id}").status_code == 401


def test_a_get_that_writes_commits_its_write(ingeniero, hilo):
    assert leidos(hilo) == [False, False]
    r = ingeniero.get(f"/api/tickets/{hilo}/mensajes")
    assert r.status_code == 200 and r.get_json()["total"] == 2
    assert leidos(hilo) == [True, True]


def test_a_get_that_fails_after_writing_keeps_none_of_its_writes(ingeniero, hilo, monkeypatch):
    marcar = tickets.marcar_leidos

    def marcar_y_fallar(ticket, lector):
        marcar(ticket, lector)  # both messages flushed as read
        raise RuntimeError("after the write")

    monkeypatch.setattr(tickets, "marcar_leidos", marcar_y_fallar)
    assert ingeniero.get(f"/api/tickets/{hilo}/mensajes").status_code == 500
    assert leidos(hilo) == [False, False]


@solo_postgresql
def test_a_lock_taken_by_a_get_is_held_until_its_commit(ingeniero, hilo, database_url, monkeypatch):
    marcar, bloqueado = tickets.marcar_leidos, []

    def bloquear_y_marcar(ticket, lector):
        db.session.execute(select(Ticket.id).where(Ticket.id == ticket.id).with_for_update())
        with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as otra:
            try:
                otra.execute("SELECT id FROM tickets WHERE id = %s FOR UPDATE NOWAIT", [ticket.id])
                bloqueado.append(False)
            except psycopg.errors.LockNotAvailable:
                bloqueado.append(True)
        return marcar(ticket, lector)

    monkeypatch.setattr(tickets, "marcar_leidos", bloquear_y_marcar)
    assert ingeniero.get(f"/api/tickets/{hilo}/mensajes").status_code == 200
    assert bloqueado == [True]
    assert leidos(hilo) == [True, True]


@solo_postgresql
def test_read_only_gets_of_every_kind_keep_their_prepared_statements(api, login, roles, ticket_id):
    token = api(roles["admin"])
    panel, _ = login(roles["admin"])
    db.session.commit()
    db.engine.dispose()  # one connection from here on: the one the GETs and the check below share
    for _ in range(8):  # psycopg prepares a statement at its fifth use on a connection
        assert token.get(f"/api/tickets/{ticket_id}").status_code == 200
        assert token.get("/api/todos-tickets?estado=en_progreso").status_code == 200
        assert panel.get("/tickets/admin").status_code == 200
    # A ROLLBACK at the end of any of these GETs would have made psycopg forget (and deallocate)
    # every statement of the connection, the other kinds' too.
    preparadas = db.session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    assert any("WHERE tickets.id IN ($1" in sql for sql in preparadas), preparadas  # the ticket's row
    assert any("api_tokens.token_hash = $1" in sql for sql in preparadas), preparadas  # its token
    assert any("WHERE tickets.estado IN ($1" in sql for sql in preparadas), preparadas  # the list's ids
    assert any("WHERE usuarios.id = $1" in sql for sql in preparadas), preparadas  # the panel's session user


@pytest.mark.parametrize(("sql", "lee"), [
    ("SELECT tickets.id FROM tickets WHERE tickets.id = $1", True),
    ("WITH t AS (SELECT 1) SELECT * FROM t", True),
    ("(SELECT 1) UNION (SELECT 2)", True),
    ("SELECT usuarios.ultimo_update FROM usuarios", True),
    ("SELECT tickets.id FROM tickets WHERE tickets.id = $1 FOR UPDATE", False),
    ("SELECT id FROM outbox LIMIT 5 FOR UPDATE SKIP LOCKED", False),
    ("SELECT id FROM tickets FOR NO KEY UPDATE", False),
    ("SELECT id FROM tickets FOR SHARE", False),
    ("SELECT pg_advisory_xact_lock($1)", False),
    ("SELECT nextval('tickets_numero_seq')", False),
    ("WITH x AS (UPDATE tickets SET version = 2 RETURNING id) SELECT id FROM x", False),
    ("INSERT INTO tickets (titulo) VALUES ($1)", False),
    ("update tickets set titulo = $1", False),
    ("SAVEPOINT sa_savepoint_1", False),
    ("SET LOCAL statement_timeout = 1000", False),
])
def test_only_a_plain_select_runs_outside_a_transaction(sql, lee):
    assert transacciones.solo_lee(sql) is lee


@solo_postgresql
def test_a_pooled_connection_closed_while_idle_is_replaced_before_use(api, roles, ticket_id, database_url,
                                                                      monkeypatch):
    cliente = api(roles["owner"])
    db.session.commit()
    assert cliente.get(f"/api/tickets/{ticket_id}").status_code == 200
    # The server closes every connection of the pool (a restart, an idle timeout)...
    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as otra:
        otra.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    # ...while they sat in the pool longer than the ping's threshold: the next request gets a live one.
    monkeypatch.setattr(transacciones, "PING_TRAS_SEGUNDOS", 0.0)
    assert cliente.get(f"/api/tickets/{ticket_id}").status_code == 200


@solo_postgresql
def test_a_description_is_built_only_when_read_and_then_it_is_psycopgs(api, roles, ticket_id, monkeypatch):
    cliente = api(roles["owner"])
    assert cliente.get(f"/api/tickets/{ticket_id}").status_code == 200  # its statements compiled and cached
    construidas = []
    original = psycopg.Column.__init__

    def contar(self, cursor, index):
        construidas.append(index)
        original(self, cursor, index)

    monkeypatch.setattr(psycopg.Column, "__init__", contar)
    cuerpo = cliente.get(f"/api/tickets/{ticket_id}").get_json()
    assert cuerpo["id"] == ticket_id and cuerpo["titulo"]
    assert construidas == []  # SQLAlchemy only asked whether the results had columns

    with db.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        assert isinstance(cursor, transacciones.CursorPerezoso)
        cursor.execute("SELECT id, titulo FROM tickets WHERE id = %s", (ticket_id,))
        descripcion = cursor.description
        assert construidas == []
        assert [(c.name, c.type_code) for c in descripcion] == [
            (c.name, c.type_code) for c in psycopg.Cursor.description.fget(cursor)]
        assert len(descripcion) == 2 and descripcion[1].name == "titulo"
        cursor.execute("UPDATE tickets SET titulo = titulo WHERE id = %s", (ticket_id,))
        assert cursor.description is None  # no rows, as psycopg says
        conn.rollback()
