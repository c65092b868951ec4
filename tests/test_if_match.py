"""Optimistic concurrency from clients: a write based on a stale read of a ticket is refused.

The JSON API gives a ticket's version as its ``ETag`` (and as ``version`` in the body); the
ticket writes take ``If-Match: "<version>"`` (stale: 412) or ``version`` in the body (stale:
409), and a refused write leaves no trace: no field changed, no history row, no email queued.
Without either the write is accepted as before (older clients). The panels' estado, edit and
assign forms carry the version they were rendered from; a stale submit is refused with a flash.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from test_panels_browser import live_server, people  # noqa: F401 - fixtures: live server, browser contexts

from models import Envio, Evento, NotaInterna, Ticket, db

# The ticket writes of the API and a body each one accepts on an en_progreso ticket.
WRITES = {
    "editar": ("PUT", "/api/tickets/{id}", {"prioridad": "alta"}),
    "estado": ("PUT", "/api/tickets/{id}/estado", {"estado": "resuelto"}),
    "asignar": ("PUT", "/api/tickets/{id}/asignar", {"ingeniero_id": None}),
    "notas": ("PUT", "/api/tickets/{id}/notas", {"nota": "Revisado el cable."}),
    "editar (v1)": ("PUT", "/api/v1/tickets/{id}", {"titulo": "Impresora del 2º piso"}),
}


@pytest.fixture
def escena(make_user, make_ticket, api):
    admin = make_user("admin")
    ingeniero = make_user("ingeniero")
    ticket = make_ticket(make_user(), ingeniero=ingeniero, estado="en_progreso")
    return {"admin": api(admin), "ticket": ticket, "ingeniero": ingeniero}


def _huella(ticket_id: int) -> tuple:
    """Everything a ticket write could leave behind."""
    db.session.expire_all()
    t = db.session.get(Ticket, ticket_id)
    contar = lambda modelo: db.session.scalar(select(func.count()).select_from(modelo))  # noqa: E731
    return (t.version, t.titulo, t.prioridad, t.estado, t.ingeniero_id, contar(Evento), contar(Envio),
            contar(NotaInterna))


def _etag(client, ticket_id: int) -> str:
    resp = client.get(f"/api/tickets/{ticket_id}")
    assert resp.status_code == 200
    return resp.headers["ETag"]


def _otro_cambio(client, ticket_id: int) -> None:
    """Someone else writes meanwhile (the version moves on)."""
    assert client.put(f"/api/tickets/{ticket_id}", json={"descripcion": "Ahora también hace ruido."}).status_code == 200


def test_get_gives_the_version_as_etag_and_in_the_body(escena):
    resp = escena["admin"].get(f"/api/tickets/{escena['ticket'].id}")
    assert resp.headers["ETag"] == f'"{resp.get_json()["version"]}"'
    _otro_cambio(escena["admin"], escena["ticket"].id)
    despues = escena["admin"].get(f"/api/tickets/{escena['ticket'].id}")
    assert despues.get_json()["version"] > resp.get_json()["version"]
    assert despues.headers["ETag"] != resp.headers["ETag"]


@pytest.mark.parametrize("nombre", list(WRITES))
def test_stale_if_match_is_412_and_writes_nothing(escena, nombre):
    method, path, body = WRITES[nombre]
    client, tid = escena["admin"], escena["ticket"].id
    leida = _etag(client, tid)
    _otro_cambio(client, tid)
    antes = _huella(tid)

    resp = client.open(method, path.format(id=tid), json=body, headers={"If-Match": leida})

    assert resp.status_code == 412, resp.get_json()
    error = resp.get_json()["error"]
    actual = db.session.get(Ticket, tid).version
    assert error["code"] == "precondition_failed"
    assert error["fields"] == {"version": str(actual)} and str(actual) in error["message"]
    assert _huella(tid) == antes  # no field, no history row, no email, no note


@pytest.mark.parametrize("nombre", list(WRITES))
def test_matching_if_match_is_accepted_and_answers_the_new_etag(escena, nombre):
    method, path, body = WRITES[nombre]
    client, tid = escena["admin"], escena["ticket"].id
    antes = _huella(tid)

    resp = client.open(method, path.format(id=tid), json=body, headers={"If-Match": _etag(client, tid)})

    assert resp.status_code == 200, resp.get_json()
    assert _huella(tid) != antes
    assert resp.headers["ETag"] == _etag(client, tid) == f'"{resp.get_json()["version"]}"'


@pytest.mark.parametrize("nombre", list(WRITES))
def test_without_if_match_a_write_is_accepted_as_before(escena, nombre):
    method, path, body = WRITES[nombre]
    client, tid = escena["admin"], escena["ticket"].id
    _otro_cambio(client, tid)
    antes = _huella(tid)

    resp = client.open(method, path.format(id=tid), json=body)

    assert resp.status_code == 200, resp.get_json()
    assert _huella(tid) != antes


@pytest.mark.parametrize("nombre", list(WRITES))
def test_stale_version_in_the_body_is_409_and_writes_nothing(escena, nombre):
    method, path, body = WRITES[nombre]
    client, tid = escena["admin"], escena["ticket"].id
    leida = client.get(f"/api/tickets/{tid}").get_json()["version"]
    _otro_cambio(client, tid)
    antes = _huella(tid)

    resp = client.open(method, path.format(id=tid), json={**body, "version": leida})

    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["error"]["code"] == "stale_version"
    assert resp.get_json()["error"]["fields"] == {"version": str(antes[0])}
    assert _huella(tid) == antes

    resp = client.open(method, path.format(id=tid), json={**body, "version": antes[0]})
    assert resp.status_code == 200, resp.get_json()


def test_estado_email_is_queued_only_by_the_current_read(escena, make_user):
    """The requester's "estado changed" email: none for the stale write, one for the current one."""
    client, tid = escena["admin"], escena["ticket"].id
    leida = _etag(client, tid)
    _otro_cambio(client, tid)
    envios = _huella(tid)[6]
    assert client.put(f"/api/tickets/{tid}/estado", json={"estado": "resuelto"},
                      headers={"If-Match": leida}).status_code == 412
    assert _huella(tid)[6] == envios
    assert client.put(f"/api/tickets/{tid}/estado", json={"estado": "resuelto"},
                      headers={"If-Match": _etag(client, tid)}).status_code == 200
    assert _huella(tid)[6] > envios


@pytest.mark.parametrize("if_match,status", [
    ("*", 200),                  # any version: the ticket exists
    ('W/"{v}"', 412),            # a weak tag never matches If-Match (strong comparison, RFC 9110)
    ('"999", "{v}"', 200),       # a list: one of them is current
    ("{v}", 200),                # unquoted, as some clients send it
    ("garbage", 412),
])
def test_if_match_forms(escena, if_match, status):
    client, tid = escena["admin"], escena["ticket"].id
    version = db.session.get(Ticket, tid).version
    resp = client.put(f"/api/tickets/{tid}", json={"prioridad": "baja"}, headers={"If-Match": if_match.format(v=version)})
    assert resp.status_code == status, resp.get_json()


def test_the_requester_gets_412_too(make_user, make_ticket, api):
    """Every role: a requester editing their abierto ticket from a stale read."""
    usuario = make_user()
    ticket = make_ticket(usuario)
    client = api(usuario)
    leida = _etag(client, ticket.id)
    assert client.put(f"/api/tickets/{ticket.id}", json={"titulo": "Primera"}).status_code == 200
    resp = client.put(f"/api/tickets/{ticket.id}", json={"titulo": "Segunda"}, headers={"If-Match": leida})
    assert resp.status_code == 412
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).titulo == "Primera"


def test_the_document_describes_if_match_and_etag(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/tickets/{ticket_id}", "/api/tickets/{ticket_id}/estado", "/api/tickets/{ticket_id}/asignar",
                 "/api/tickets/{ticket_id}/notas", "/api/v1/tickets/{ticket_id}"):
        put = paths[path]["put"]
        assert "If-Match" in [p["name"] for p in put["parameters"] if p["in"] == "header"], path
        assert "412" in put["responses"] and "ETag" in put["responses"]["200"]["headers"], path
    assert "ETag" in paths["/api/tickets/{ticket_id}"]["get"]["responses"]["200"]["headers"]


# --- panels -------------------------------------------------------------------------------

def _version_del_formulario(html: str, action: str) -> str:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S).group(1)
    return re.search(r'name="version" value="(\d+)"', form).group(1)


@pytest.mark.parametrize("accion,datos", [
    ("estado", {"estado": "resuelto"}),
    ("editar", {"titulo": "Otro título", "descripcion": "Sale en blanco.", "categoria": "Hardware",
                "prioridad": "alta", "etiquetas": ""}),
    ("asignar", {"ingeniero_id": ""}),
])
def test_panel_form_from_a_stale_page_is_refused_with_a_flash(escena, make_user, login, accion, datos):
    admin = make_user("admin", username="admin_panel", idioma="en")
    web, csrf = login(admin)
    ticket = escena["ticket"]
    numero = ticket.numero_ticket
    action = f"/tickets/{numero}/{accion}"
    version = _version_del_formulario(web.get(f"/tickets/{numero}").get_data(as_text=True), action)
    _otro_cambio(escena["admin"], ticket.id)
    antes = _huella(ticket.id)

    resp = web.post(action, data={**datos, "version": version, "csrf_token": csrf}, follow_redirects=True)

    assert "Someone else changed this ticket while you had it open; nothing was saved." in resp.get_data(as_text=True)
    assert _huella(ticket.id) == antes

    actual = _version_del_formulario(resp.get_data(as_text=True), action)  # the page as it is now
    assert actual == str(antes[0])
    web.post(action, data={**datos, "version": actual, "csrf_token": csrf})
    assert _huella(ticket.id) != antes


def test_panel_forms_without_a_version_still_work(escena, make_user, login):
    """A page rendered before this change (no hidden version) is not refused."""
    web, csrf = login(make_user("admin", username="admin_panel"))
    ticket = escena["ticket"]
    antes = _huella(ticket.id)
    resp = web.post(f"/tickets/{ticket.numero_ticket}/estado", data={"estado": "resuelto", "csrf_token": csrf})
    assert resp.status_code == 302
    assert _huella(ticket.id)[3] == "resuelto" != antes[3]


def test_admin_list_assign_links_carry_the_version(escena, make_user, login):
    web, _ = login(make_user("admin", username="admin_panel"))
    html = web.get("/tickets/admin").get_data(as_text=True)
    ticket = escena["ticket"]
    assert f'data-asignar="{ticket.numero_ticket}"' in html
    enlace = re.search(rf'<a[^>]*data-asignar="{ticket.numero_ticket}"[^>]*>', html).group(0)
    assert f'data-version="{db.session.get(Ticket, ticket.id).version}"' in enlace
    assert "data-asignar-version" in html


@pytest.mark.browser
def test_assign_dialog_on_a_ticket_changed_meanwhile_is_refused_in_the_browser(escena, make_user, people):  # noqa: F811
    """The admin list's dialog takes the version from the row it was opened on (app.js)."""
    ticket, otro = escena["ticket"], make_user("ingeniero", nombre="Marta Otra")
    make_user("admin", username="admin_panel")
    p = people()
    p.login("admin_panel")
    p.goto("/tickets/admin")
    p.page.locator(f'[data-asignar="{ticket.numero_ticket}"]').click()
    p.page.locator(f'#dialogo-asignar input[name=ingeniero_id][value="{otro.ingeniero.id}"]').check()
    _otro_cambio(escena["admin"], ticket.id)  # someone edits the ticket while the dialog is open
    antes = _huella(ticket.id)

    p.submit("#dialogo-asignar form")

    assert "Otra persona cambió este ticket" in p.flash()
    assert _huella(ticket.id) == antes
    p.shoot("ticket-stale-assign")

    p.page.locator(f'[data-asignar="{ticket.numero_ticket}"]').click()  # the list as it is now
    p.page.locator(f'#dialogo-asignar input[name=ingeniero_id][value="{otro.ingeniero.id}"]').check()
    p.submit("#dialogo-asignar form")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).ingeniero_id == otro.ingeniero.id
