"""Schemathesis over the app's own /api/openapi.json: every documented operation, as an admin
and as a usuario (Bearer tokens), must never answer a 5xx and must answer what the document
says (a documented status code, content type and response schema).

One test per operation and role, each on fresh tables with a small cast (requester, engineer,
admin, tickets in two estados, a failed email, a notification, a WhatsApp conversation). Path
ids are either those of the cast (so the operation really runs) or whatever schemathesis
generates (mostly 404s); bodies and query strings are valid (positive) or deliberately
invalid (negative) by the document. The number of examples is bounded and derandomized, so a
run is the same every time and the module stays within a couple of minutes per database.
"""

from __future__ import annotations

import importlib

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import openapi
import rutas
import usuarios
from models import Cliente, Conversacion, Envio, Notificacion, Usuario, db

MAX_EXAMPLES = 15
# Answers that cost far more than a query (a PDF rendered with its fonts): fewer examples.
MAX_EXAMPLES_DE = {("GET", "/api/tickets/{ticket_id}/pdf"): 5}

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]

# Operations that cannot be exercised meaningfully example by example:
EXCLUDED = {
    # Server-Sent Events: the response is a stream that stays open for SSE_MAX_SECONDS by design
    # (seconds per example); tests/test_notificaciones.py drives it and checks its events.
    ("GET", "/api/eventos/stream"),
}

for _modulo in rutas.MODULOS:  # the routes document themselves when their module is imported
    importlib.import_module(_modulo)
OPERATIONS = sorted((method.upper(), path) for (path, method) in openapi.operations()
                    if (method.upper(), path) not in EXCLUDED)


@pytest.fixture
def cast(app, make_user, make_ticket):
    """The people and rows the path ids point at."""
    admin = make_user("admin")
    usuario = make_user("usuario")
    ingeniero = make_user("ingeniero")
    en_curso = make_ticket(usuario, ingeniero=ingeniero, estado="en_progreso")
    abierto = make_ticket(usuario, titulo="Sin red", categoria="Redes")
    resuelto = make_ticket(usuario, ingeniero=ingeniero, estado="resuelto")
    envio = db.session.execute(db.select(Envio).order_by(Envio.id)).scalars().first()
    envio.estado = "fallido"
    cliente = Cliente(nombre="Ferretería Sol", telefono="+34 600 111 222")
    conversacion = Conversacion(canal="whatsapp", contacto="+34600111222", cliente=cliente, nombre_contacto="Sol")
    notas = [Notificacion(usuario_id=u.id, ticket_id=en_curso.id, tipo="estado", texto="x") for u in (admin, usuario)]
    db.session.add_all([cliente, conversacion, *notas])
    db.session.commit()
    ids = {
        "ticket_id": [en_curso.id, abierto.id, resuelto.id],
        "user_id": [usuario.id, admin.id],
        "ingeniero_id": [ingeniero.ingeniero.id],
        "categoria_id": [1],
        "correo_id": [envio.id],
        "notificacion_id": [n.id for n in notas],
        "cliente_id": [cliente.id],
        "conversacion_id": [conversacion.id],
        "numero": ["+34600111222"],
        "clave": ["technical"],
    }
    return {"admin": admin, "usuario": usuario, "ids": ids}


def _casos(operation, ids: dict):
    """Cases for ``operation``: valid ones at the cast's ids, valid ones anywhere, invalid ones."""
    positivos = operation.as_strategy(GenerationMode.POSITIVE)
    nombres = [p.name for p in operation.path_parameters if p.name in ids]
    if not nombres:
        return st.one_of(positivos, operation.as_strategy(GenerationMode.NEGATIVE))
    fijos = st.fixed_dictionaries({n: st.sampled_from(ids[n]) for n in nombres})
    return st.one_of(st.builds(_en, positivos, fijos), positivos, operation.as_strategy(GenerationMode.NEGATIVE))


def _en(case, valores: dict):
    """``case`` at the cast's ids (a strategy per id would be rebuilt for every example)."""
    case.path_parameters = {**(case.path_parameters or {}), **valores}
    return case


def _token(user) -> str:
    _, token = usuarios.emitir_token(user)
    db.session.commit()
    return token


@pytest.fixture(scope="module")
def schema(database_url):
    """The document as the app serves it, loaded (and validated) once for the module."""
    from app import create_app

    return schemathesis.openapi.from_wsgi("/api/openapi.json", create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "test-secret"}))


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_never_5xx_and_answers_as_documented(request, subtests, app, schema, cast, method, path):
    """As an admin, then as a usuario (one subtest each, on the same tables: the cast is
    what costs most to build)."""
    if path == "/api/configuracion/email/prueba":
        request.getfixturevalue("smtp_server")  # the test email really goes (else a 502 smtp_error)
    app.config["SSE_MAX_SECONDS"] = 0.2  # GET /api/eventos?espera= waits at most this long
    casos = _casos(schema[path][method], cast["ids"])
    for rol in ("admin", "usuario"):
        with subtests.test(rol=rol):
            _fuzz(app, casos, db.session.get(Usuario, cast[rol].id), MAX_EXAMPLES_DE.get((method, path), MAX_EXAMPLES),
                  revoca=(method, path) == ("DELETE", "/api/auth/token"))


def _fuzz(app, casos, user, max_examples: int, revoca: bool) -> None:
    """Send ``max_examples`` of ``casos`` as ``user``; every answer must pass ``CHECKS``.
    ``revoca``: the operation revokes the token it is called with, so each example gets its own."""
    token = _token(user)

    @settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=casos)
    def run(case):
        headers = {"Authorization": f"Bearer {_token(user) if revoca else token}"}
        with app.app_context():  # a fresh context per request, as in production (see conftest)
            response = case.call(headers=headers, app=app)
        case.validate_response(response, checks=CHECKS)

    run()


# --- what schemathesis found (each fixed at its root, pinned here) ---------------------------

@pytest.mark.parametrize("path", ["/api/tickets/2991945092/mensajes", "/api/tickets/2147483648",
                                  "/api/tickets/99999999999/estado", "/api/notificaciones/2147483648/leida"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_an_id_beyond_the_database_range_is_a_404_whatever_the_method(api, make_user, method, path):
    """werkzeug checks a rule's methods before its converters: with the range only in the
    converter's ``max``, POST to a GET-only URL with a too-large id answered 405, not 404."""
    resp = api(make_user("admin")).open(method, path, json={})
    assert resp.status_code == 404, (method, path, resp.status_code)
    assert resp.get_json()["error"]["code"] == "not_found"


def test_the_largest_database_id_still_reaches_its_route(api, make_user):
    assert api(make_user("admin")).post("/api/tickets/2147483647/mensajes", json={"cuerpo": "x"}).status_code == 404
    assert api(make_user("admin")).put("/api/tickets/2147483647/mensajes", json={}).status_code == 405


@pytest.mark.parametrize("query", ["desde=1601559467998990308007735197696", "desde=-5", "desde=x",
                                   "espera=-5e16&desde=99999999999999999999"])
def test_eventos_with_any_desde_answers_without_a_500(api, make_user, query):
    """``desde`` beyond the ids the database holds overflowed the SQL comparison (a 500)."""
    resp = api(make_user()).get(f"/api/eventos?{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["eventos"] == []


def test_eventos_stream_with_a_huge_last_event_id_answers_without_a_500(app, api, make_user):
    app.config.update(SSE_MAX_SECONDS=0.01, SSE_POLL_SECONDS=0.01)  # a round or two, then the stream ends
    resp = api(make_user()).get("/api/eventos/stream", headers={"Last-Event-ID": "9" * 30})
    assert resp.status_code == 200 and "retry:" in resp.get_data(as_text=True)


@pytest.mark.parametrize("espera", ["nan", "NaN", "inf", "-inf", "1e400", "x"])
def test_a_non_finite_espera_never_waits_forever(app, espera):
    """``espera=nan`` survived the clamp (every comparison with NaN is false) and the long poll
    never reached its deadline. Checked on the parser, so a regression fails instead of hanging."""
    from rutas.notificaciones import _espera

    with app.test_request_context(f"/api/eventos?espera={espera}"):
        assert 0.0 <= _espera() <= app.config["SSE_MAX_SECONDS"]
