"""Ticket creation, validation and lists of the seed 001 API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Comunicacion, Conversacion, Etiqueta, Evento, Ticket, db

VALID = {"titulo": "No puedo acceder al correo", "descripcion": "Error 401 al entrar",
         "categoria": "Software", "prioridad": "alta"}


def count(model):
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _conversacion(canal="whatsapp"):
    conversacion = Conversacion(canal=canal, contacto="+34600111222")
    db.session.add(conversacion)
    db.session.commit()
    return conversacion.id


def test_create_returns_201_with_the_whole_ticket(api, make_user):
    user = make_user(nombre="Ana Pérez")
    conversacion_id = _conversacion()
    r = api(user).post("/api/tickets", json={**VALID, "etiquetas": ["Correo", " outlook "],
                                             "conversacion_whatsapp_id": conversacion_id})
    assert r.status_code == 201
    t = r.get_json()
    assert t["numero_ticket"] == f"TKT-{t['id']:06d}"
    assert (t["titulo"], t["descripcion"], t["categoria"], t["prioridad"], t["estado"]) == (
        VALID["titulo"], VALID["descripcion"], "Software", "alta", "abierto")
    assert t["etiquetas"] == ["correo", "outlook"]
    assert t["usuario"] == {"id": user.id, "nombre": "Ana Pérez"}
    assert t["ingeniero"] is None
    assert t["canal"] == "api"
    assert t["conversacion_whatsapp_id"] == conversacion_id and t["comunicacion_email_id"] is None
    created = datetime.fromisoformat(t["fecha_creacion"].replace("Z", "+00:00"))
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=1)
    for campo in ("fecha_primera_respuesta", "fecha_resolucion", "fecha_cierre"):
        assert t[campo] is None
    assert "notas_internas" not in t


def test_session_created_ticket_has_web_channel(login, make_user):
    user = make_user()
    client, csrf = login(user)
    r = client.post("/api/tickets", json=VALID, headers={"X-CSRFToken": csrf})
    assert r.status_code == 201 and r.get_json()["canal"] == "web"


def test_prioridad_defaults_to_media_and_category_matches_case_insensitively(api, make_user):
    r = api(make_user()).post("/api/tickets", json={"titulo": "a", "descripcion": "b", "categoria": "accesos y cuentas"})
    assert r.status_code == 201
    assert (r.get_json()["prioridad"], r.get_json()["categoria"]) == ("media", "Accesos y Cuentas")


def test_numbers_follow_the_sequence(api, make_user):
    client = api(make_user())
    numbers = [client.post("/api/tickets", json=VALID).get_json()["numero_ticket"] for _ in range(3)]
    assert numbers == ["TKT-000001", "TKT-000002", "TKT-000003"]


@pytest.mark.parametrize("body,field", [
    ({k: v for k, v in VALID.items() if k != "titulo"}, "titulo"),
    ({k: v for k, v in VALID.items() if k != "descripcion"}, "descripcion"),
    ({k: v for k, v in VALID.items() if k != "categoria"}, "categoria"),
    ({**VALID, "titulo": ""}, "titulo"),
    ({**VALID, "titulo": "   "}, "titulo"),
    ({**VALID, "titulo": "x" * 256}, "titulo"),
    ({**VALID, "titulo": 123}, "titulo"),
    ({**VALID, "descripcion": ["a"]}, "descripcion"),
    ({**VALID, "prioridad": "urgente"}, "prioridad"),
    ({**VALID, "prioridad": None}, "prioridad"),
    ({**VALID, "categoria": "Inexistente"}, "categoria"),
    ({**VALID, "etiquetas": "vpn"}, "etiquetas"),
    ({**VALID, "etiquetas": ["x" * 51]}, "etiquetas.0"),
    ({**VALID, "etiquetas": [f"t{i}" for i in range(11)]}, "etiquetas"),
    ({**VALID, "conversacion_whatsapp_id": "abc"}, "conversacion_whatsapp_id"),
    ({**VALID, "conversacion_whatsapp_id": 0}, "conversacion_whatsapp_id"),
])
def test_invalid_ticket_is_422_naming_the_field_and_writes_nothing(api, make_user, body, field):
    client = api(make_user())
    before = (count(Ticket), count(Evento), count(Etiqueta))
    r = client.post("/api/tickets", json=body)
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "validation_error"
    assert field in err["fields"], err
    assert (count(Ticket), count(Evento), count(Etiqueta)) == before


def test_titulo_of_exactly_255_is_accepted(api, make_user):
    assert api(make_user()).post("/api/tickets", json={**VALID, "titulo": "ñ" * 255}).status_code == 201


@pytest.mark.parametrize("kwargs,status,code", [
    ({"data": "titulo=x", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": "[1, 2]", "content_type": "application/json"}, 422, "invalid_body"),
    ({"data": '"texto"', "content_type": "application/json"}, 422, "invalid_body"),
])
def test_non_json_bodies_are_4xx(api, make_user, kwargs, status, code):
    client = api(make_user())
    r = client.client.post("/api/tickets", headers=client.headers, **kwargs)
    assert r.status_code == status
    assert r.get_json()["error"]["code"] == code
    assert count(Ticket) == 0


def test_unknown_ticket_is_404_json(api, make_user):
    r = api(make_user("admin")).get("/api/tickets/999999")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


def test_unknown_api_route_is_404_json(api, make_user):
    r = api(make_user()).get("/api/no-existe")
    assert r.status_code == 404 and r.is_json


def test_update_fields_and_tags(api, make_user, make_ticket):
    admin, owner = make_user("admin"), make_user()
    ticket = make_ticket(owner)
    comunicacion = Comunicacion(canal="email", direccion="entrante", de="ana@example.test")
    db.session.add(comunicacion)
    db.session.commit()
    r = api(admin).put(f"/api/tickets/{ticket.id}", json={"categoria": "Redes", "prioridad": "critica",
                                                           "etiquetas": ["wifi"], "comunicacion_email_id": comunicacion.id})
    assert r.status_code == 200
    body = r.get_json()
    assert (body["categoria"], body["prioridad"], body["etiquetas"], body["comunicacion_email_id"]) == (
        "Redes", "critica", ["wifi"], comunicacion.id)


def test_links_to_missing_or_wrong_channel_conversations_are_422(api, make_user, make_ticket):
    user = make_user()
    email_thread = _conversacion(canal="email")
    for body in ({"conversacion_whatsapp_id": 999}, {"conversacion_whatsapp_id": email_thread},
                 {"comunicacion_email_id": 999}):
        r = api(user).post("/api/tickets", json={**VALID, **body})
        assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == set(body)
    assert count(Ticket) == 0


@pytest.mark.parametrize("body", [{}, {"prioridad": "ya"}, {"categoria": "Nope"}, {"titulo": "x" * 300}])
def test_bad_update_is_422_and_changes_nothing(api, make_user, make_ticket, body):
    admin = make_user("admin")
    ticket = make_ticket(make_user())
    r = api(admin).put(f"/api/tickets/{ticket.id}", json=body)
    assert r.status_code == 422
    db.session.expire_all()
    t = db.session.get(Ticket, ticket.id)
    assert (t.titulo, t.prioridad, t.categoria.nombre, len(t.eventos)) == ("Impresora no imprime", "media", "Hardware", 1)


@pytest.mark.parametrize("body", [{"estado": "terminado"}, {"estado": None}, {}, {"estado": 3}])
def test_bad_estado_is_422(api, make_user, make_ticket, body):
    ing = make_user("ingeniero")
    ticket = make_ticket(make_user(), ingeniero=ing)
    r = api(ing).put(f"/api/tickets/{ticket.id}/estado", json=body)
    assert r.status_code == 422 and "estado" in r.get_json()["error"]["fields"]


@pytest.mark.parametrize("body", [{"nota": ""}, {"nota": None}, {}, {"nota": "x" * 20001}])
def test_bad_note_is_422(api, make_user, make_ticket, body):
    ing = make_user("ingeniero")
    ticket = make_ticket(make_user(), ingeniero=ing)
    assert api(ing).put(f"/api/tickets/{ticket.id}/notas", json=body).status_code == 422


@pytest.mark.parametrize("body,status", [({"ingeniero_id": 999}, 422), ({"ingeniero_id": "x"}, 422), ({}, 422)])
def test_bad_assignment(api, make_user, make_ticket, body, status):
    admin = make_user("admin")
    ticket = make_ticket(make_user())
    assert api(admin).put(f"/api/tickets/{ticket.id}/asignar", json=body).status_code == status


def test_assign_reassign_unassign_and_unavailable(api, make_user, make_ticket):
    admin, a, b = make_user("admin"), make_user("ingeniero"), make_user("ingeniero")
    ticket = make_ticket(make_user())
    client = api(admin)
    r = client.put(f"/api/tickets/{ticket.id}/asignar", json={"ingeniero_id": a.ingeniero.id})
    assert r.get_json()["ingeniero"] == {"id": a.ingeniero.id, "nombre": a.nombre}
    assert client.put(f"/api/tickets/{ticket.id}/asignar", json={"ingeniero_id": a.ingeniero.id}).status_code == 409
    client.put(f"/api/ingenieros/{b.ingeniero.id}", json={"disponible": False})
    r = client.put(f"/api/tickets/{ticket.id}/asignar", json={"ingeniero_id": b.ingeniero.id})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "engineer_unavailable"
    r = client.put(f"/api/tickets/{ticket.id}/asignar", json={"ingeniero_id": None})
    assert r.status_code == 200 and r.get_json()["ingeniero"] is None


# --- lists ---------------------------------------------------------------------------

@pytest.fixture
def catalogue(make_user, make_ticket):
    """Five tickets with known attributes, created a day apart."""
    admin = make_user("admin")
    ana = make_user(nombre="Ana Gómez")
    beto = make_user(nombre="Beto Ruiz")
    ing = make_user("ingeniero")
    t1 = make_ticket(ana, titulo="VPN caída", categoria="Redes", prioridad="critica", etiquetas=["vpn"])
    t2 = make_ticket(ana, ingeniero=ing, titulo="Impresora atascada", categoria="Hardware", prioridad="baja",
                     estado="en_progreso")
    t3 = make_ticket(beto, ingeniero=ing, titulo="ERP lento", categoria="Software", prioridad="alta",
                     etiquetas=["erp", "vpn"], estado="cerrado")
    t4 = make_ticket(beto, titulo="Alta de cuenta", categoria="Accesos y Cuentas", prioridad="media")
    t5 = make_ticket(ana, titulo="Factura repetida", categoria="Facturación", prioridad="alta", estado="resuelto")
    base = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    for i, t in enumerate((t1, t2, t3, t4, t5)):
        t.fecha_creacion = base + timedelta(days=i)
    db.session.commit()
    return {"admin": admin, "ana": ana, "beto": beto, "ing": ing, "t": (t1, t2, t3, t4, t5)}


def ids(resp):
    assert resp.status_code == 200, resp.get_json()
    return [t["id"] for t in resp.get_json()["items"]]


@pytest.mark.parametrize("query,expected", [
    ("", [5, 4, 3, 2, 1]),
    ("estado=abierto", [4, 1]),
    ("estado=abierto,en_progreso", [4, 2, 1]),
    ("prioridad=alta", [5, 3]),
    ("categoria=redes", [1]),
    ("etiqueta=vpn", [3, 1]),
    ("ingeniero_id=ninguno", [5, 4, 1]),
    ("q=erp", [3]),
    ("q=tkt-000004", [4]),
    ("q=beto&orden=-fecha_creacion", [4, 3]),  # with q and no orden: best match first (test_busqueda)
    ("desde=2026-11-02&hasta=2026-11-03", [3, 2]),
    ("hasta=2026-11-01", [1]),
    ("orden=fecha_creacion", [1, 2, 3, 4, 5]),
    ("orden=-prioridad", [1, 5, 3, 4, 2]),
    ("orden=titulo", [4, 3, 5, 2, 1]),
    ("estado=abierto&prioridad=critica&categoria=Redes", [1]),
])
def test_admin_list_filters(api, catalogue, query, expected):
    tickets = catalogue["t"]
    got = ids(api(catalogue["admin"]).get(f"/api/todos-tickets?{query}"))
    assert got == [tickets[i - 1].id for i in expected]


def test_filter_by_engineer(api, catalogue):
    got = ids(api(catalogue["admin"]).get(f"/api/todos-tickets?ingeniero_id={catalogue['ing'].ingeniero.id}"))
    assert got == [catalogue["t"][2].id, catalogue["t"][1].id]


def test_pagination_envelope_and_clamp(api, catalogue):
    client = api(catalogue["admin"])
    body = client.get("/api/todos-tickets?per_page=2&page=2").get_json()
    assert (body["total"], body["page"], body["per_page"]) == (5, 2, 2)
    assert [t["id"] for t in body["items"]] == [catalogue["t"][2].id, catalogue["t"][1].id]
    assert client.get("/api/todos-tickets?per_page=1000").get_json()["per_page"] == 100
    assert client.get("/api/todos-tickets?page=9").get_json()["items"] == []


@pytest.mark.parametrize("query,field", [
    ("estado=perdido", "estado.0"), ("prioridad=urgente", "prioridad.0"), ("page=0", "page"),
    ("page=abc", "page"), ("per_page=0", "per_page"), ("desde=ayer", "desde"), ("orden=password_hash", "orden"),
    ("ingeniero_id=pepe", "ingeniero_id"),
])
def test_bad_list_query_is_422(api, catalogue, query, field):
    r = api(catalogue["admin"]).get(f"/api/todos-tickets?{query}")
    assert r.status_code == 422
    assert any(k.startswith(field.split(".")[0]) for k in r.get_json()["error"]["fields"])


def test_filters_apply_within_the_callers_scope(api, catalogue):
    assert ids(api(catalogue["ana"]).get("/api/mis-tickets?prioridad=alta")) == [catalogue["t"][4].id]
    assert ids(api(catalogue["ing"]).get("/api/tickets-ingeniero?estado=cerrado")) == [catalogue["t"][2].id]


@pytest.mark.parametrize("body", [{**VALID, "titulo": "a\x00b"}, {**VALID, "descripcion": "x\x00"},
                                  {**VALID, "etiquetas": ["v\x00pn"]}])
def test_nul_characters_are_422_on_every_backend(api, make_user, body):
    r = api(make_user()).post("/api/tickets", json=body)
    assert r.status_code == 422
    assert count(Ticket) == 0


def test_nul_in_search_is_422(api, make_user):
    assert api(make_user("admin")).get("/api/todos-tickets?q=a%00b").status_code == 422
