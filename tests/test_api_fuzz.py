"""Property-based fuzzing of the JSON API's write routes: whatever the body, never a 500.

Hypothesis builds bodies with the routes' real keys (and some unknown ones) holding values
of every JSON type, including NUL characters, huge numbers, nested objects and very long
text. Each answer must be a 2xx or a 4xx JSON error; a 4xx must leave the ticket unchanged.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Ticket, db

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=300),
    st.sampled_from(["", " ", "\x00", "abierto", "critica", "General", "TKT-000001", "1", "-1", "9" * 30]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3), max_leaves=6)

ROUTES = {
    ("POST", "/api/tickets"): ["titulo", "descripcion", "categoria", "prioridad", "etiquetas", "conversacion_whatsapp_id"],
    ("PUT", "/api/tickets/{tid}"): ["titulo", "descripcion", "categoria", "prioridad", "etiquetas",
                                    "comunicacion_email_id"],
    ("PUT", "/api/tickets/{tid}/estado"): ["estado"],
    ("PUT", "/api/tickets/{tid}/notas"): ["nota"],
    ("PUT", "/api/tickets/{tid}/asignar"): ["ingeniero_id"],
    ("POST", "/api/tickets/{tid}/mensajes"): ["cuerpo"],
    ("POST", "/api/categorias"): ["nombre", "descripcion"],
    ("POST", "/api/usuarios"): ["username", "nombre", "email", "password", "rol", "idioma"],
    ("POST", "/api/ingenieros"): ["username", "nombre", "email", "password", "especialidad", "disponible"],
    ("PUT", "/api/ingenieros/{iid}"): ["nombre", "email", "especialidad", "telefono", "disponible", "activo"],
}


def bodies(keys):
    return st.one_of(
        st.fixed_dictionaries({}, optional={k: values for k in keys + ["extra"]}),
        values,  # not even an object
    )


@pytest.mark.parametrize("method,path", list(ROUTES), ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_body_makes_a_500(app, api, make_user, make_ticket, method, path):
    admin = make_user("admin")
    ing = make_user("ingeniero")
    ticket = make_ticket(make_user(), ingeniero=ing, estado="en_progreso")
    client = api(admin)
    url = path.format(tid=ticket.id, iid=ing.ingeniero.id)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
    @given(body=bodies(ROUTES[(method, path)]))
    def check(body):
        db.session.expire_all()
        before = _state(ticket.id)
        resp = client.open(method, url, json=body)
        assert resp.status_code < 500, (body, resp.get_data(as_text=True))
        assert resp.is_json
        if resp.status_code >= 400:
            assert "error" in resp.get_json()
            db.session.expire_all()
            assert _state(ticket.id) == before

    check()


def _state(tid):
    t = db.session.get(Ticket, tid)
    return (t.titulo, t.descripcion, t.prioridad, t.estado, t.categoria_id, t.ingeniero_id, len(t.notas),
            len(t.mensajes), len(t.eventos))


@pytest.mark.parametrize("path", ["/api/tickets/2147483648", "/api/tickets/99999999999999999999/historial",
                                  "/api/todos-tickets?ingeniero_id=2147483648", "/tickets/TKT-99999999999"])
def test_ids_beyond_the_database_range_are_4xx(api, make_user, path):
    resp = api(make_user("admin")).get(path)
    assert resp.status_code in (404, 422)


def test_put_on_a_huge_engineer_id_is_404(api, make_user):
    assert api(make_user("admin")).put("/api/ingenieros/2147483648", json={"disponible": True}).status_code == 404


@pytest.mark.parametrize("path", ["/api/usuarios?page=99999999999999999999999", "/api/correos?page=99999999999999999999",
                                  "/api/todos-tickets?page=99999999999999999999"])
def test_huge_page_numbers_are_not_a_500(api, make_user, path):
    resp = api(make_user("admin")).get(path)
    assert resp.status_code in (200, 422)
    if resp.status_code == 200:
        assert resp.get_json()["items"] == []
