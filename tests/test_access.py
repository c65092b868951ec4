"""Role x route access matrix of the JSON API, plus the internal-note leak check.

The ticket under test belongs to ``owner`` and is assigned to ``engineer`` (en_progreso).
``other_user`` and ``other_engineer`` have no business with it: for them it does not exist.
"""

from __future__ import annotations

import json

import pytest

from models import Ticket, db

WHO = ["owner", "other_user", "engineer", "other_engineer", "admin", "anon"]


def expect(owner, other_user, engineer, other_engineer, admin, anon=401):
    return dict(zip(WHO, (owner, other_user, engineer, other_engineer, admin, anon), strict=True))


VISIBLE = expect(200, 404, 200, 404, 200)
STAFF_ONLY_ROLE = expect(403, 403, 200, 404, 200)
ADMIN_ONLY = expect(403, 403, 403, 403, 200)
EVERYONE = expect(200, 200, 200, 200, 200)

MATRIX = [
    ("GET", "/api/me", None, EVERYONE),
    ("POST", "/api/tickets", {"titulo": "t", "descripcion": "d", "categoria": "General"}, expect(201, 201, 201, 201, 201)),
    ("GET", "/api/mis-tickets", None, EVERYONE),
    ("GET", "/api/tickets/{tid}", None, VISIBLE),
    ("PUT", "/api/tickets/{tid}", {"titulo": "Nuevo título"}, expect(409, 404, 200, 404, 200)),
    ("GET", "/api/tickets-ingeniero", None, expect(403, 403, 200, 200, 403)),
    ("PUT", "/api/tickets/{tid}/estado", {"estado": "en_espera"}, expect(403, 404, 200, 404, 200)),
    ("PUT", "/api/tickets/{tid}/notas", {"nota": "interna"}, STAFF_ONLY_ROLE),
    ("GET", "/api/todos-tickets", None, ADMIN_ONLY),
    ("PUT", "/api/tickets/{tid}/asignar", {"ingeniero_id": "{other_ing_id}"}, ADMIN_ONLY),
    ("GET", "/api/tickets/{tid}/mensajes", None, VISIBLE),
    ("POST", "/api/tickets/{tid}/mensajes", {"cuerpo": "hola"}, expect(201, 404, 201, 404, 201)),
    ("GET", "/api/tickets/{tid}/historial", None, VISIBLE),
    ("GET", "/api/categorias", None, EVERYONE),
    ("POST", "/api/categorias", {"nombre": "Telefonía"}, expect(403, 403, 403, 403, 201)),
    ("GET", "/api/ingenieros", None, expect(403, 403, 200, 200, 200)),
    ("POST", "/api/ingenieros", {"username": "ing_nuevo", "nombre": "Nuevo", "email": "nuevo@example.test",
                                 "password": "contraseña1", "especialidad": "Redes"}, expect(403, 403, 403, 403, 201)),
    ("PUT", "/api/ingenieros/{ing_id}", {"disponible": False}, ADMIN_ONLY),
    ("GET", "/api/usuarios", None, ADMIN_ONLY),
    ("POST", "/api/usuarios", {"username": "nueva", "nombre": "Nueva", "email": "nueva@example.test",
                               "password": "contraseña1", "rol": "usuario"}, expect(403, 403, 403, 403, 201)),
]

CASES = [(m, p, b, who, exp[who]) for (m, p, b, exp) in MATRIX for who in WHO]


@pytest.fixture
def world(roles, make_ticket):
    ticket = make_ticket(roles["owner"], ingeniero=roles["engineer"], estado="en_progreso")
    return {
        "tid": ticket.id,
        "ing_id": roles["engineer"].ingeniero.id,
        "other_ing_id": roles["other_engineer"].ingeniero.id,
    }


def _fill(value, world):
    text = json.dumps(value)
    for key, val in world.items():
        text = text.replace(f'"{{{key}}}"', str(val)).replace(f"{{{key}}}", str(val))
    return json.loads(text)


@pytest.mark.parametrize("method,path,body,who,status", CASES,
                         ids=[f"{m} {p} as {w}" for (m, p, b, w, s) in CASES])
def test_access_matrix(api, roles, world, method, path, body, who, status):
    client = api(None if who == "anon" else roles[who])
    resp = client.open(method, _fill(path, world), json=_fill(body, world) if body is not None else None)
    assert resp.status_code == status, resp.get_data(as_text=True)
    if status >= 400:
        assert resp.is_json and "error" in resp.get_json()


@pytest.mark.parametrize("method,path,body", [(m, p, b) for (m, p, b, exp) in MATRIX if exp["owner"] >= 400])
def test_refused_requests_change_nothing(api, roles, world, method, path, body):
    db.session.expire_all()
    before = _snapshot(world["tid"])
    api(roles["other_user"]).open(method, _fill(path, world), json=_fill(body, world) if body else None)
    db.session.expire_all()
    assert _snapshot(world["tid"]) == before


def _snapshot(tid):
    t = db.session.get(Ticket, tid)
    return (t.titulo, t.estado, t.ingeniero_id, len(t.notas), len(t.mensajes), len(t.eventos), t.fecha_actualizacion)


def test_internal_notes_reach_no_payload_a_usuario_can_get(api, roles, make_ticket):
    owner, engineer = roles["owner"], roles["engineer"]
    ticket = make_ticket(owner, ingeniero=engineer, estado="en_progreso")
    secret = "CLAVE-INTERNA-XYZ"
    assert api(engineer).put(f"/api/tickets/{ticket.id}/notas", json={"nota": secret}).status_code == 200
    staff = api(engineer).get(f"/api/tickets/{ticket.id}").get_json()
    assert [n["texto"] for n in staff["notas_internas"]] == [secret]

    usuario = api(owner)
    for path in (f"/api/tickets/{ticket.id}", "/api/mis-tickets", f"/api/tickets/{ticket.id}/historial",
                 f"/api/tickets/{ticket.id}/mensajes"):
        resp = usuario.get(path)
        assert resp.status_code == 200
        assert secret not in resp.get_data(as_text=True), path
        assert "notas_internas" not in resp.get_data(as_text=True), path


def test_admin_list_includes_notes_for_staff(api, roles, make_ticket):
    ticket = make_ticket(roles["owner"], ingeniero=roles["engineer"])
    api(roles["admin"]).put(f"/api/tickets/{ticket.id}/notas", json={"nota": "revisar cableado"})
    items = api(roles["admin"]).get("/api/todos-tickets").get_json()["items"]
    assert items[0]["notas_internas"][0]["texto"] == "revisar cableado"
    assert items[0]["notas_internas"][0]["autor"]["id"] == roles["admin"].id


def test_engineer_lists_only_assigned_tickets(api, roles, make_ticket):
    mine = make_ticket(roles["owner"], ingeniero=roles["engineer"])
    make_ticket(roles["owner"], ingeniero=roles["other_engineer"])
    make_ticket(roles["owner"])  # unassigned queue: the admin's
    body = api(roles["engineer"]).get("/api/tickets-ingeniero").get_json()
    assert [t["id"] for t in body["items"]] == [mine.id]
    assert body["total"] == 1


def test_usuario_lists_only_own_tickets(api, roles, make_ticket):
    own = make_ticket(roles["owner"])
    make_ticket(roles["other_user"])
    body = api(roles["owner"]).get("/api/mis-tickets").get_json()
    assert [t["id"] for t in body["items"]] == [own.id]
