"""One ticket's GET outside a transaction (rutas.comun.solo_lectura, issue 13): on PostgreSQL its
statements run in autocommit, so psycopg's prepared statements outlive the request; the access
rules and the token checks stay those of every request."""

from __future__ import annotations

import pytest
from conftest import BACKEND
from sqlalchemy import text

from models import db

VISTO_POR = {"owner": 200, "other_user": 404, "engineer": 200, "other_engineer": 404, "admin": 200}


@pytest.fixture
def ticket_id(roles, make_ticket):
    return make_ticket(roles["owner"], ingeniero=roles["engineer"], estado="en_progreso").id


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


@pytest.mark.skipif(BACKEND != "postgresql", reason="psycopg's prepared statements")
def test_one_ticket_gets_reuse_prepared_statements_on_postgresql(api, roles, ticket_id):
    cliente = api(roles["admin"])
    db.session.commit()
    db.engine.dispose()  # one connection from here on: the one the GETs and the check below share
    for _ in range(8):  # psycopg prepares a statement at its fifth use on a connection
        assert cliente.get(f"/api/tickets/{ticket_id}").status_code == 200
    # A ROLLBACK at the end of each GET would have made psycopg forget (and deallocate) them all.
    preparadas = db.session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    assert any("FROM tickets" in sql for sql in preparadas), preparadas

