"""The state machine, the dates it sets, and the history row each change writes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Evento, Ticket, db
from tickets import CIERRE_DIRECTO, TRANSITIONS

ESTADOS = ["abierto", "en_progreso", "en_espera", "resuelto", "cerrado"]
ALL_PAIRS = [(a, b) for a in ESTADOS for b in ESTADOS if a != b]


@pytest.fixture
def cast(make_user):
    return {"admin": make_user("admin"), "usuario": make_user("usuario"), "ing": make_user("ingeniero")}


@pytest.mark.parametrize("desde,hacia", ALL_PAIRS)
def test_staff_transition_allowed_or_refused_with_409(api, cast, make_ticket, desde, hacia):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"], estado=desde)
    before = db.session.execute(select(Evento).where(Evento.ticket_id == ticket.id).order_by(Evento.id)).scalars().all()

    r = api(cast["ing"]).put(f"/api/tickets/{ticket.id}/estado", json={"estado": hacia})

    db.session.expire_all()
    after = db.session.execute(select(Evento).where(Evento.ticket_id == ticket.id).order_by(Evento.id)).scalars().all()
    if hacia == "cerrado" and desde in CIERRE_DIRECTO:  # seed 001: direct close, implied resuelto recorded
        assert r.status_code == 200, r.get_json()
        assert [(e.antes, e.despues) for e in after[len(before):]] == [(desde, "resuelto"), ("resuelto", "cerrado")]
        assert r.get_json()["fecha_resolucion"] is not None
    elif hacia in TRANSITIONS[desde]:
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["estado"] == hacia
        assert len(after) == len(before) + 1
        assert (after[-1].campo, after[-1].antes, after[-1].despues) == ("estado", desde, hacia)
        assert after[-1].actor_id == cast["ing"].id
    else:
        assert r.status_code == 409
        err = r.get_json()["error"]
        assert err["code"] == "invalid_transition"
        assert desde in err["message"] and hacia in err["message"]
        assert db.session.get(Ticket, ticket.id).estado == desde
        assert len(after) == len(before)


def test_expected_machine_shape():
    assert TRANSITIONS == {
        "abierto": ("en_progreso",),
        "en_progreso": ("en_espera", "resuelto"),
        "en_espera": ("en_progreso", "resuelto"),
        "resuelto": ("cerrado", "abierto"),
        "cerrado": ("abierto",),
    }


@pytest.mark.parametrize("desde,hacia,status", [
    ("resuelto", "abierto", 200),      # requester reopens a resolved ticket
    ("resuelto", "cerrado", 200),      # requester accepts the resolution
    ("cerrado", "abierto", 403),       # only staff reopen a closed ticket
    ("abierto", "en_progreso", 403),   # work states are the staff's
    ("en_progreso", "resuelto", 403),
    ("en_espera", "en_progreso", 403),
])
def test_requester_moves(api, cast, make_ticket, desde, hacia, status):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"], estado=desde)
    r = api(cast["usuario"]).put(f"/api/tickets/{ticket.id}/estado", json={"estado": hacia})
    assert r.status_code == status, r.get_json()
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).estado == (hacia if status == 200 else desde)


def test_admin_reopens_closed_ticket_and_dates_reset(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"], estado="cerrado")
    assert ticket.fecha_resolucion is not None and ticket.fecha_cierre is not None
    r = api(cast["admin"]).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "abierto"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["estado"] == "abierto"
    assert body["fecha_resolucion"] is None and body["fecha_cierre"] is None
    assert body["fecha_primera_respuesta"] is not None  # first response stays


def test_other_engineer_cannot_change_state(api, cast, make_user, make_ticket):
    other = make_user("ingeniero")
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"])
    r = api(other).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_progreso"})
    assert r.status_code == 404


def test_same_state_is_a_409(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"], estado="en_progreso")
    r = api(cast["ing"]).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_progreso"})
    assert r.status_code == 409


def test_first_response_set_once_by_first_move_out_of_abierto(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"])
    assert ticket.fecha_primera_respuesta is None
    client = api(cast["ing"])
    first = client.put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_progreso"}).get_json()
    assert first["fecha_primera_respuesta"] is not None
    client.put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_espera"})
    client.post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "¿Sigue pasando?"})
    later = client.put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_progreso"}).get_json()
    assert later["fecha_primera_respuesta"] == first["fecha_primera_respuesta"]


def test_first_response_set_by_first_staff_public_reply(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"])
    api(cast["usuario"]).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "Más datos"})
    assert api(cast["usuario"]).get(f"/api/tickets/{ticket.id}").get_json()["fecha_primera_respuesta"] is None
    api(cast["ing"]).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "Lo reviso"})
    body = api(cast["usuario"]).get(f"/api/tickets/{ticket.id}").get_json()
    assert body["fecha_primera_respuesta"] is not None
    assert body["estado"] == "abierto"  # replying does not move the state


def test_internal_note_does_not_count_as_first_response(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"])
    api(cast["ing"]).put(f"/api/tickets/{ticket.id}/notas", json={"nota": "mirar logs"})
    assert api(cast["ing"]).get(f"/api/tickets/{ticket.id}").get_json()["fecha_primera_respuesta"] is None


def test_resolution_and_closure_dates(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"], estado="en_progreso")
    client = api(cast["ing"])
    resolved = client.put(f"/api/tickets/{ticket.id}/estado", json={"estado": "resuelto"}).get_json()
    assert resolved["fecha_resolucion"] is not None and resolved["fecha_cierre"] is None
    closed = client.put(f"/api/tickets/{ticket.id}/estado", json={"estado": "cerrado"}).get_json()
    assert closed["fecha_resolucion"] == resolved["fecha_resolucion"]
    assert closed["fecha_cierre"] is not None
    assert closed["fecha_cierre"].endswith("Z")


def test_history_lists_every_change_with_actor_and_values(api, cast, make_ticket):
    owner, ing, admin = cast["usuario"], cast["ing"], cast["admin"]
    created = api(owner).post("/api/tickets", json={"titulo": "Sin red", "descripcion": "No hay red",
                                                    "categoria": "Redes", "prioridad": "media"}).get_json()
    tid = created["id"]
    api(admin).put(f"/api/tickets/{tid}/asignar", json={"ingeniero_id": ing.ingeniero.id})
    api(ing).put(f"/api/tickets/{tid}", json={"prioridad": "alta", "etiquetas": ["vpn"]})
    api(ing).put(f"/api/tickets/{tid}/estado", json={"estado": "en_progreso"})
    api(ing).put(f"/api/tickets/{tid}/notas", json={"nota": "secreto interno"})
    api(ing).post(f"/api/tickets/{tid}/mensajes", json={"cuerpo": "Estamos en ello"})

    staff_view = api(admin).get(f"/api/tickets/{tid}/historial").get_json()["items"]
    summary = [(e["tipo"], e["campo"], e["antes"], e["despues"], e["actor"]["id"]) for e in staff_view]
    assert summary == [
        ("creado", None, None, created["numero_ticket"], owner.id),
        ("asignacion", "ingeniero", None, ing.nombre, admin.id),
        ("campo", "prioridad", "media", "alta", ing.id),
        ("campo", "etiquetas", None, "vpn", ing.id),
        ("estado", "estado", "abierto", "en_progreso", ing.id),
        ("nota", None, None, None, ing.id),
        ("mensaje", None, None, None, ing.id),
    ]
    requester_view = api(owner).get(f"/api/tickets/{tid}/historial").get_json()["items"]
    assert [e["tipo"] for e in requester_view] == ["creado", "asignacion", "campo", "campo", "estado", "mensaje"]
    assert all(e["fecha"].endswith("Z") for e in requester_view)


def test_each_change_updates_fecha_actualizacion(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"])
    before = api(cast["ing"]).get(f"/api/tickets/{ticket.id}").get_json()["fecha_actualizacion"]
    after = api(cast["ing"]).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_progreso"}).get_json()
    assert after["fecha_actualizacion"] > before


def test_closed_ticket_refuses_messages_and_edits(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"], estado="cerrado")
    assert api(cast["usuario"]).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "hola"}).status_code == 409
    assert api(cast["ing"]).put(f"/api/tickets/{ticket.id}", json={"titulo": "nuevo"}).status_code == 409


def test_requester_edits_only_while_abierto(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"])
    r = api(cast["usuario"]).put(f"/api/tickets/{ticket.id}", json={"titulo": "Impresora 2º piso"})
    assert r.status_code == 200 and r.get_json()["titulo"] == "Impresora 2º piso"
    api(cast["ing"]).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_progreso"})
    r = api(cast["usuario"]).put(f"/api/tickets/{ticket.id}", json={"titulo": "otro"})
    assert r.status_code == 409
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).titulo == "Impresora 2º piso"


def test_read_receipts(api, cast, make_ticket):
    ticket = make_ticket(cast["usuario"], ingeniero=cast["ing"])
    api(cast["ing"]).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "¿Puedes reiniciar?"})
    # the author reading their own thread does not mark it read
    own = api(cast["ing"]).get(f"/api/tickets/{ticket.id}/mensajes").get_json()["items"]
    assert own[0]["leido"] is False
    seen = api(cast["usuario"]).get(f"/api/tickets/{ticket.id}/mensajes").get_json()["items"]
    assert seen[0]["leido"] is True and seen[0]["fecha_lectura"] is not None
    assert seen[0]["es_staff"] is True and seen[0]["autor"]["nombre"] == cast["ing"].nombre
