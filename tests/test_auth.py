"""Sessions, CSRF, Bearer tokens and login throttling."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from auth import limiter
from models import ApiToken, Usuario, db

TICKET = {"titulo": "t", "descripcion": "d", "categoria": "General"}


def login_page_csrf(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_passwords_are_stored_hashed(make_user):
    user = make_user(password="mi-clave-123")
    db.session.expire_all()
    stored = db.session.get(Usuario, user.id).password_hash
    assert "mi-clave-123" not in stored and stored.startswith("pbkdf2:")
    assert user.check_password("mi-clave-123") and not user.check_password("otra")


def test_production_hashes_with_scrypt(app):
    user = Usuario(username="p", nombre="p", email="p@x.com")
    app.config["PASSWORD_HASH_METHOD"] = "scrypt"
    user.set_password("clave-larga-1")
    assert user.password_hash.startswith("scrypt:")


def test_token_issue_use_and_revoke(client, make_user):
    user = make_user(password="clave-segura")
    r = client.post("/api/auth/token", json={"username": user.username, "password": "clave-segura"})
    assert r.status_code == 201
    token = r.get_json()["token"]
    stored = db.session.execute(select(ApiToken).where(ApiToken.usuario_id == user.id)).scalar_one()
    assert stored.token_hash != token and stored.token_hash == ApiToken.hash(token)

    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=auth).get_json()["username"] == user.username
    # Bearer writes need no CSRF token
    assert client.post("/api/tickets", json=TICKET, headers=auth).status_code == 201
    assert client.delete("/api/auth/token", headers=auth).status_code == 204
    assert client.get("/api/me", headers=auth).status_code == 401


@pytest.mark.parametrize("body", [{"username": "nadie", "password": "x"}, {"username": "u", "password": ""}, {}])
def test_token_refused_for_bad_credentials(client, make_user, body):
    make_user(username="u", password="clave-segura")
    r = client.post("/api/auth/token", json=body)
    assert r.status_code in (401, 422)
    assert "token" not in r.get_json()


def test_inactive_user_gets_no_token_and_loses_access(client, api, make_user):
    user = make_user(password="clave-segura")
    c = api(user)
    user.activo = False
    db.session.commit()
    assert client.post("/api/auth/token", json={"username": user.username, "password": "clave-segura"}).status_code == 401
    assert c.get("/api/me").status_code == 401


def test_invalid_bearer_is_401_even_with_a_valid_session(login, make_user):
    user = make_user()
    client, csrf = login(user)
    assert client.get("/api/me").status_code == 200
    r = client.get("/api/me", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401
    # and a forged Bearer header does not let a cookie-authenticated write skip CSRF
    r = client.post("/api/tickets", json=TICKET, headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401


def test_a_bearer_request_neither_reads_nor_rewrites_the_session_cookie(login, make_user):
    """A Bearer request is judged by its token alone: the browser session riding along is not
    read (the token's account answers), not rewritten and not ended, even by a route that writes
    the session; its response still carries the security headers."""
    dueno, otro = make_user(), make_user(password="clave-segura")
    client, csrf = login(dueno)
    token = client.post("/api/auth/token", json={"username": otro.username, "password": "clave-segura"}).get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = client.get("/api/me", headers=auth)
    assert r.get_json()["username"] == otro.username
    assert "Set-Cookie" not in r.headers and "Cookie" not in r.headers.get("Vary", "")
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
    r = client.post("/logout", headers=auth)
    assert r.status_code == 302 and "Set-Cookie" not in r.headers
    assert client.get("/api/me").get_json()["username"] == dueno.username


def test_session_json_write_requires_csrf(login, make_user):
    user = make_user()
    client, csrf = login(user)
    r = client.post("/api/tickets", json=TICKET)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "csrf_failed"
    r = client.post("/api/tickets", json=TICKET, headers={"X-CSRFToken": "wrong"})
    assert r.status_code == 400
    assert client.post("/api/tickets", json=TICKET, headers={"X-CSRFToken": csrf}).status_code == 201


def test_login_form_requires_csrf(client, make_user):
    user = make_user()
    r = client.post("/login", data={"username": user.username, "password": "secreto123"})
    assert r.status_code == 400
    assert client.get("/api/me").status_code == 401


def test_login_logout_and_role_redirects(client, make_user):
    for rol, home in (("usuario", "/tickets"), ("ingeniero", "/tickets/ingeniero"), ("admin", "/tickets/admin")):
        user = make_user(rol)
        token = login_page_csrf(client)
        r = client.post("/login", data={"username": user.username, "password": "secreto123", "csrf_token": token})
        assert r.status_code == 302 and r.headers["Location"].endswith(home)
        logout = client.post("/logout", data={"csrf_token": token})
        assert logout.status_code == 302
        assert client.get("/api/me").status_code == 401


def test_wrong_password_shows_error(client, make_user):
    user = make_user()
    token = login_page_csrf(client)
    r = client.post("/login", data={"username": user.username, "password": "mala", "csrf_token": token})
    assert r.status_code == 401
    assert client.get("/api/me").status_code == 401


def test_next_parameter_cannot_redirect_off_site(client, make_user):
    user = make_user()
    token = login_page_csrf(client)
    r = client.post("/login?next=//evil.example/x", data={"username": user.username, "password": "secreto123",
                                                          "csrf_token": token})
    assert r.headers["Location"].endswith("/tickets")


def test_anonymous_page_redirects_to_login_and_api_is_401(client):
    r = client.get("/tickets/admin")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.get("/api/mis-tickets").status_code == 401


def test_failed_logins_are_rate_limited(app, client, make_user):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    user = make_user(password="clave-segura")
    statuses = [client.post("/api/auth/token", json={"username": user.username, "password": "mala"}).status_code
                for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    r = client.post("/api/auth/token", json={"username": user.username, "password": "clave-segura"})
    assert r.status_code == 429 and r.is_json


def test_successful_logins_do_not_count_toward_the_limit(app, client, make_user):
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    limiter.reset()
    user = make_user(password="clave-segura")
    for _ in range(4):
        assert client.post("/api/auth/token", json={"username": user.username, "password": "clave-segura"}).status_code == 201


def test_reads_skip_the_rate_limiter_only_while_no_limit_applies_to_every_route(app, monkeypatch):
    import auth

    with app.test_request_context("/api/tickets", method="GET"):
        assert auth._lectura()  # only the credential POSTs carry a limit
        monkeypatch.setitem(app.config, "RATELIMIT_DEFAULT", "100 per minute")
        assert not auth._lectura()  # a default limit counts reads too
    with app.test_request_context("/api/auth/token", method="POST"):
        monkeypatch.delitem(app.config, "RATELIMIT_DEFAULT")
        assert not auth._lectura()


def test_a_revoked_token_is_refused_by_every_client_on_its_next_request(app, make_user, make_ticket):
    """No process keeps what a token let in: another client (another worker) that used the token
    a moment ago, so within the minute its last use is not written again, is refused at once."""
    user = make_user(password="clave-segura")
    ticket = make_ticket(user)
    token = app.test_client().post("/api/auth/token", json={"username": user.username,
                                                             "password": "clave-segura"}).get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    uno, otro = app.test_client(), app.test_client()
    assert uno.get(f"/api/tickets/{ticket.id}", headers=auth).status_code == 200
    assert otro.get(f"/api/tickets/{ticket.id}", headers=auth).status_code == 200
    assert uno.delete("/api/auth/token", headers=auth).status_code == 204
    r = otro.get(f"/api/tickets/{ticket.id}", headers=auth)
    assert r.status_code == 401 and "titulo" not in r.get_json()


def test_an_account_deactivated_in_the_database_alone_is_refused_at_once(app, api, make_user, make_ticket):
    """The token's own checks read the account on every request: deactivated by a statement that
    no ORM hook sees (so its tokens stay unrevoked), its token is refused on the next request."""
    from sqlalchemy import update

    user = make_user()
    ticket = make_ticket(user)
    c = api(user)
    assert c.get(f"/api/tickets/{ticket.id}").status_code == 200
    with db.engine.begin() as conn:
        conn.execute(update(Usuario).where(Usuario.id == user.id).values(activo=False))
    assert db.session.execute(select(ApiToken.revocado).where(ApiToken.usuario_id == user.id)).scalar_one() is False
    assert c.get(f"/api/tickets/{ticket.id}").status_code == 401
    assert c.get("/api/me").status_code == 401


def test_a_token_read_where_the_session_holds_its_account_gives_that_same_account(app, make_user):
    """The token's account is made from its row unless the session has it already: then it is
    the session's own object (one object per row), with its engineer row."""
    import usuarios

    ing = make_user("ingeniero")
    _, clear = usuarios.emitir_token(ing)
    db.session.commit()
    usuario = usuarios.usuario_por_token(clear)
    assert usuario is ing and usuario.ingeniero is ing.ingeniero and usuario.ingeniero.id is not None
    db.session.expunge_all()
    otro = usuarios.usuario_por_token(clear)
    assert otro is not ing and otro.id == ing.id and otro.ingeniero.usuario is otro
    assert otro in db.session and not db.session.dirty
