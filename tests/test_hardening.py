"""Hardening regressions (issue 14): each test reproduces one finding of the outside probe."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

import usuarios
from models import ApiToken, Categoria, Mensaje, NotaInterna, db, utcnow
from rutas.comun import safe_next

# --- 3. open redirect ------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/\t/evil.com", "/\n/x", "//evil.com", "/\\evil.com", "\\\\evil.com", "https://evil.com/",
    "javascript:alert(1)", "/%09/evil.com".replace("%09", "\t"), " //evil.com", "evil.com", "/\x00/x",
])
def test_safe_next_refuses_anything_but_a_local_path(target):
    assert safe_next(target) is None


def test_safe_next_keeps_local_paths():
    assert safe_next("/tickets?estado=abierto") == "/tickets?estado=abierto"


@pytest.mark.parametrize("query", ["next=/%09/evil.com", "next=/%0A/x", "next=/%5Cevil.com",
                                   "next=https://evil.com"])
def test_login_never_redirects_off_site(client, make_user, query):
    user = make_user()
    page = client.get("/login")
    import re
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post(f"/login?{query}", data={"username": user.username, "password": "secreto123",
                                             "csrf_token": token})
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/tickets") or r.headers["Location"].startswith("/")
    assert "evil" not in r.headers["Location"] and not r.headers["Location"].startswith("//")


# --- 4. unknown query parameters on list panels --------------------------------------------------


@pytest.mark.parametrize("rol,path", [("usuario", "/tickets"), ("admin", "/tickets/admin"),
                                      ("ingeniero", "/tickets/ingeniero")])
@pytest.mark.parametrize("query", ["tipo=x", "_method=POST", "endpoint=x", "_external=1&page=2"])
def test_list_panels_ignore_unknown_query_parameters(login, make_user, rol, path, query):
    c, _ = login(make_user(rol))
    r = c.get(f"{path}?{query}&estado=abierto")
    assert r.status_code == 200
    assert "estado=abierto" in r.get_data(as_text=True)  # the known filter is kept in links


@pytest.mark.parametrize("query", ["_method=POST", "endpoint=x", "_external=1", "fragmento=x"])
def test_paginated_channel_pages_keep_their_filters_and_ignore_unknown_parameters(login, make_user, query):
    """The outbox and Comunicaciones pages page through ``m.pagination`` like the ticket lists:
    page links keep the known filters and drop anything else (no 500 on ``_method``)."""
    import outbox
    from models import Comunicacion, Envio

    for n in range(60):
        outbox.encolar("email", "prueba", f"p{n}@example.test", asunto=f"m{n}", cuerpo_texto="x")
        db.session.add(Comunicacion(canal="email", direccion="entrante", de=f"p{n}@example.test", cuerpo="x"))
    db.session.execute(db.update(Envio).values(estado="fallido"))
    db.session.commit()
    c, _ = login(make_user("admin"))
    for path, kept in (("/admin/correos?canal=email", "canal=email"), ("/comunicaciones?direccion=entrante",
                                                                        "direccion=entrante")):
        r = c.get(f"{path}&{query}")
        html = r.get_data(as_text=True)
        assert r.status_code == 200 and "page=2" in html
        link = html[html.index("page=2") - 200:html.index("page=2") + 20]
        assert kept in link and query.split("=")[0] not in link


# --- 5. deep JSON, body size ----------------------------------------------------------------------

DEEP = '{"a":' + "[" * 5000 + "]" * 5000 + "}"


def test_deeply_nested_json_is_400_even_unauthenticated(client):
    r = client.post("/api/auth/token", data=DEEP, content_type="application/json")
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "invalid_json"


def test_deeply_nested_json_is_400_on_authenticated_endpoints(api, make_user):
    c = api(make_user())
    r = c.post("/api/tickets", data=DEEP, headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_json_body_over_the_cap_is_413_json(app, api, make_user):
    app.config["MAX_JSON_BYTES"] = 1000
    c = api(make_user())
    r = c.post("/api/tickets", json={"titulo": "t", "descripcion": "x" * 5000, "categoria": "General"})
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "request_entity_too_large"


def test_any_body_over_max_content_length_is_413_json(app, api, make_user):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    c = api(make_user())
    r = c.post("/api/tickets", data="x" * 5000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "error" in r.get_json()


# --- 6. NUL in HTML forms --------------------------------------------------------------------------


def test_nul_in_panel_forms_is_422_and_nothing_stored(login, make_user, make_ticket):
    owner, eng, admin = make_user(), make_user("ingeniero"), make_user("admin")
    t = make_ticket(owner, eng)
    c, csrf = login(admin)
    r = c.post(f"/tickets/{t.numero_ticket}/mensajes", data={"cuerpo": "hola\x00", "csrf_token": csrf})
    assert r.status_code == 422
    r = c.post(f"/tickets/{t.numero_ticket}/notas", data={"nota": "nota\x00", "csrf_token": csrf})
    assert r.status_code == 422
    r = c.post("/admin/categorias", data={"nombre": "Cat\x00", "csrf_token": csrf})
    assert r.status_code == 422
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Mensaje)) == 0
    assert db.session.scalar(select(func.count()).select_from(NotaInterna)) == 0
    assert db.session.scalar(select(func.count()).select_from(Categoria).where(Categoria.nombre.like("Cat%"))) == 0


# --- 7. edge dates -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/estadisticas", "/api/mis-tickets",
                                  "/api/tickets/descargar/excel?tipo=mis&x=1"])
@pytest.mark.parametrize("fecha", ["hasta=9999-12-31", "desde=0001-01-01", "hasta=1999-12-31"])
def test_dates_outside_the_sane_range_are_422(api, make_user, path, fecha):
    c = api(make_user())
    sep = "&" if "?" in path else "?"
    r = c.get(f"{path}{sep}{fecha}")
    assert r.status_code == 422


def test_statistics_page_with_an_edge_date_is_422(login, make_user):
    c, _ = login(make_user("admin"))
    assert c.get("/estadisticas?hasta=9999-12-31").status_code == 422
    assert c.get("/estadisticas?hasta=2030-12-31").status_code == 200


# --- 8. notes of an engineer who is also a requester -------------------------------------------------


def test_engineer_as_requester_never_sees_internal_notes(api, login, make_user, make_ticket):
    import tickets

    eng_a, eng_b, admin = make_user("ingeniero"), make_user("ingeniero"), make_user("admin")
    t = make_ticket(eng_b, eng_a)  # eng_b asked; eng_a works on it
    tickets.agregar_nota(t, eng_a, "SECRETO-INTERNO")
    db.session.commit()
    c = api(eng_b)
    r = c.get("/api/mis-tickets")
    assert r.status_code == 200 and "SECRETO-INTERNO" not in r.get_data(as_text=True)
    assert "notas_internas" not in r.get_json()["items"][0]
    x = c.get("/api/tickets/descargar/excel?tipo=mis")
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.data)).active
    assert "SECRETO-INTERNO" not in str([[cell.value for cell in row] for row in ws.iter_rows()])
    # the rule still shows them to those who manage the ticket
    assert "SECRETO-INTERNO" in api(admin).get(f"/api/tickets/{t.id}").get_data(as_text=True)
    assert "SECRETO-INTERNO" in api(eng_a).get("/api/tickets-ingeniero").get_data(as_text=True)


# --- 9. authentication ------------------------------------------------------------------------------


def test_unknown_username_costs_a_password_hash(app, make_user, monkeypatch):
    calls = []
    real = usuarios.check_password_hash
    monkeypatch.setattr(usuarios, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    assert usuarios.autenticar("nadie-con-este-nombre", "x") is None
    assert len(calls) == 1


def test_session_cookie_copied_before_logout_is_dead_after_it(app, login, make_user):
    c, csrf = login(make_user())
    robada = app.test_client()
    robada.set_cookie("session", c.get_cookie("session").value)
    assert robada.get("/api/me").status_code == 200
    assert c.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert robada.get("/api/me").status_code == 401


def test_deactivation_ends_sessions_and_revokes_tokens_for_good(app, api, login, make_user):
    admin, user = make_user("admin"), make_user()
    c, _ = login(user)
    token_client = api(user)
    assert token_client.get("/api/me").status_code == 200
    usuarios.cambiar_activo(user, admin, False)
    db.session.commit()
    usuarios.cambiar_activo(user, admin, True)
    db.session.commit()
    assert c.get("/api/me").status_code == 401
    assert token_client.get("/api/me").status_code == 401  # not revived by the reactivation


def test_password_change_revokes_tokens(app, api, make_user):
    user = make_user()
    c = api(user)
    user.set_password("otra-clave-larga")
    db.session.commit()
    assert c.get("/api/me").status_code == 401


def test_tokens_expire_and_record_their_last_use(app, api, make_user):
    user = make_user()
    c = api(user)
    assert c.get("/api/me").status_code == 200
    db.session.expire_all()
    token = db.session.execute(select(ApiToken).where(ApiToken.usuario_id == user.id)).scalar_one()
    assert token.ultimo_uso is not None
    assert token.expira_en - utcnow() > timedelta(days=app.config["API_TOKEN_DAYS"] - 1)
    token.expira_en = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert c.get("/api/me").status_code == 401


def test_rate_limited_login_says_when_to_retry(app, client, make_user):
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    user = make_user()
    codes = []
    for _ in range(3):
        r = client.post("/api/auth/token", json={"username": user.username, "password": "mala-clave"})
        codes.append(r.status_code)
    assert codes[-1] == 429
    assert int(r.headers["Retry-After"]) > 0


@pytest.mark.parametrize("path", ["/api/openapi.json", "/login", "/static/js/app.js", "/api/me"])
def test_security_headers_on_every_response(client, path):
    r = client.get(path)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
