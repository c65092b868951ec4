"""Engineers, accounts and categories (admin-managed)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Categoria, Ingeniero, Usuario, db

NEW_ING = {"username": "ing_luis", "nombre": "Luis Prado", "email": "luis@empresa.local",
           "password": "contraseña-1", "especialidad": "Redes y Servidores", "telefono": "+34 600 111 222"}


def test_admin_creates_engineer_who_can_log_in(api, client, make_user):
    r = api(make_user("admin")).post("/api/ingenieros", json=NEW_ING)
    assert r.status_code == 201
    body = r.get_json()
    assert (body["username"], body["especialidad"], body["disponible"], body["tickets_abiertos"]) == (
        "ing_luis", "Redes y Servidores", True, 0)
    assert "password" not in str(body) and "password_hash" not in body
    token = client.post("/api/auth/token", json={"username": "ing_luis", "password": "contraseña-1"})
    assert token.status_code == 201 and token.get_json()["usuario"]["rol"] == "ingeniero"


@pytest.mark.parametrize("override,field", [
    ({"email": "no-es-email"}, "email"), ({"username": "a b"}, "username"), ({"password": "corta"}, "password"),
    ({"especialidad": ""}, "especialidad"), ({"disponible": "quizá"}, "disponible"),
])
def test_invalid_engineer_is_422_and_creates_nothing(api, make_user, override, field):
    admin = api(make_user("admin"))
    r = admin.post("/api/ingenieros", json={**NEW_ING, **override})
    assert r.status_code == 422 and field in r.get_json()["error"]["fields"]
    db.session.expire_all()
    assert db.session.execute(select(func.count(Ingeniero.id))).scalar_one() == 0


def test_duplicate_username_or_email_is_409(api, make_user):
    admin = api(make_user("admin"))
    assert admin.post("/api/ingenieros", json=NEW_ING).status_code == 201
    r = admin.post("/api/ingenieros", json={**NEW_ING, "email": "otro@empresa.local", "username": "ING_LUIS"})
    assert r.status_code == 409 and "username" in r.get_json()["error"]["fields"]
    r = admin.post("/api/usuarios", json={"username": "otro", "nombre": "x", "email": "LUIS@empresa.local",
                                          "password": "contraseña-1"})
    assert r.status_code == 409 and "email" in r.get_json()["error"]["fields"]


def test_update_engineer_and_open_load(api, make_user, make_ticket):
    admin = make_user("admin")
    ing = make_user("ingeniero")
    owner = make_user()
    make_ticket(owner, ingeniero=ing)
    make_ticket(owner, ingeniero=ing, estado="en_espera")
    make_ticket(owner, ingeniero=ing, estado="cerrado")
    r = api(admin).put(f"/api/ingenieros/{ing.ingeniero.id}", json={"especialidad": "Hardware", "disponible": False})
    assert r.status_code == 200
    assert (r.get_json()["especialidad"], r.get_json()["disponible"], r.get_json()["tickets_abiertos"]) == (
        "Hardware", False, 2)
    listed = {i["id"]: i for i in api(admin).get("/api/ingenieros").get_json()["items"]}
    assert listed[ing.ingeniero.id]["tickets_abiertos"] == 2


def test_update_unknown_engineer_is_404(api, make_user):
    assert api(make_user("admin")).put("/api/ingenieros/999", json={"disponible": True}).status_code == 404


def test_deactivated_engineer_cannot_be_assigned(api, make_user, make_ticket):
    admin, ing = make_user("admin"), make_user("ingeniero")
    api(admin).put(f"/api/ingenieros/{ing.ingeniero.id}", json={"activo": False})
    ticket = make_ticket(make_user())
    assert api(admin).put(f"/api/tickets/{ticket.id}/asignar", json={"ingeniero_id": ing.ingeniero.id}).status_code == 422


def test_admin_creates_accounts_of_each_role(api, make_user):
    admin = api(make_user("admin"))
    for rol in ("usuario", "ingeniero", "admin"):
        r = admin.post("/api/usuarios", json={"username": f"nuevo_{rol}", "nombre": rol, "email": f"{rol}@empresa.es",
                                              "password": "contraseña-1", "rol": rol, "idioma": "en"})
        assert r.status_code == 201 and r.get_json()["rol"] == rol and r.get_json()["idioma"] == "en"
    db.session.expire_all()
    created = db.session.execute(select(Usuario).where(Usuario.username == "nuevo_ingeniero")).scalar_one()
    assert created.ingeniero is not None  # an engineer account gets its profile
    listed = admin.get("/api/usuarios?per_page=2").get_json()
    assert listed["total"] == 4 and len(listed["items"]) == 2


@pytest.mark.parametrize("rol", ["root", "", None])
def test_unknown_role_is_422(api, make_user, rol):
    r = api(make_user("admin")).post("/api/usuarios", json={"username": "zz", "nombre": "z", "email": "z@e.es",
                                                            "password": "contraseña-1", "rol": rol})
    assert r.status_code == 422 and "rol" in r.get_json()["error"]["fields"]


def test_me(api, make_user):
    user = make_user(nombre="Eva", idioma="en")
    assert api(user).get("/api/me").get_json() == {
        "id": user.id, "username": user.username, "nombre": "Eva", "email": user.email, "rol": "usuario",
        "idioma": "en", "activo": True}


def test_categories_seeded_and_managed(api, make_user):
    admin = api(make_user("admin"))
    names = [c["nombre"] for c in admin.get("/api/categorias").get_json()["items"]]
    assert names == sorted(["General", "Software", "Hardware", "Redes", "Accesos y Cuentas", "Facturación"])
    assert admin.post("/api/categorias", json={"nombre": "Telefonía"}).status_code == 201
    assert admin.post("/api/categorias", json={"nombre": "telefonía"}).status_code == 409
    assert admin.post("/api/categorias", json={"nombre": ""}).status_code == 422
    db.session.expire_all()
    assert db.session.execute(select(func.count(Categoria.id))).scalar_one() == 7
    r = api(make_user()).post("/api/tickets", json={"titulo": "t", "descripcion": "d", "categoria": "Telefonía"})
    assert r.status_code == 201


def test_engineer_list_query_count_does_not_grow_with_engineers(app, api, make_user):
    from sqlalchemy import event

    admin = api(make_user("admin"))

    def queries_for_listing() -> int:
        seen = []
        listener = lambda *a: seen.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert admin.get("/api/ingenieros").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    make_user("ingeniero")
    queries_for_listing()  # warm-up: a token's first use records ultimo_uso (once a minute)
    few = queries_for_listing()
    for _ in range(5):
        make_user("ingeniero")
    assert queries_for_listing() == few
