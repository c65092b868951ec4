"""The HTML panels through the test client: who may open what, forms, languages, headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Categoria, NotaInterna, Ticket, Usuario, db

ROOT = Path(__file__).resolve().parent.parent
PANEL_PAGES = ["/tickets", "/tickets/ingeniero", "/tickets/admin", "/admin/ingenieros", "/admin/usuarios",
               "/admin/categorias"]
ALLOWED = {
    "usuario": {"/tickets"},
    "ingeniero": {"/tickets", "/tickets/ingeniero"},
    "admin": {"/tickets", "/tickets/admin", "/admin/ingenieros", "/admin/usuarios", "/admin/categorias"},
}


def count(model) -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count(model.id))).scalar_one()


def text(resp) -> str:
    return resp.get_data(as_text=True)


@pytest.mark.parametrize("path", PANEL_PAGES + ["/tickets/TKT-000001"])
def test_anonymous_visitor_is_sent_to_login(client, path):
    r = client.get(path)
    assert r.status_code == 302 and "/login" in r.headers["Location"]


@pytest.mark.parametrize("rol", ["usuario", "ingeniero", "admin"])
@pytest.mark.parametrize("path", PANEL_PAGES)
def test_each_role_opens_only_its_panels(login, make_user, rol, path):
    client, _ = login(make_user(rol))
    r = client.get(path)
    assert r.status_code == (200 if path in ALLOWED[rol] else 403), path
    if r.status_code == 403:
        assert "No puedes ver esta página" in text(r)


def test_html_pages_carry_a_script_csp_and_no_inline_script(login, make_user, make_ticket):
    admin = make_user("admin")
    ticket = make_ticket(make_user())
    client, _ = login(admin)
    for path in ("/login", "/tickets/admin", f"/tickets/{ticket.numero_ticket}", "/admin/usuarios"):
        r = client.get(path)
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text(r)), path  # every script is a file
        assert not re.search(r"\son(click|submit|change|load)=", text(r)), path
    assert "Content-Security-Policy" not in client.get("/api/me").headers


def test_usuario_cannot_open_anothers_ticket_page(login, make_user, make_ticket):
    ajeno = make_ticket(make_user(), titulo="Secreto de otra persona")
    client, _ = login(make_user())
    r = client.get(f"/tickets/{ajeno.numero_ticket}")
    assert r.status_code == 404 and "Secreto de otra persona" not in text(r)
    assert client.get(f"/tickets/{ajeno.numero_ticket.lower()}").status_code == 404


def test_new_ticket_form_creates_and_redirects_to_the_detail(login, make_user):
    client, csrf = login(make_user())
    r = client.post("/tickets", data={"csrf_token": csrf, "titulo": "Sin red", "descripcion": "No hay wifi",
                                      "categoria": "Redes", "prioridad": "alta", "etiquetas": "Wifi, red"})
    assert r.status_code == 302 and re.search(r"/tickets/TKT-\d{6}$", r.headers["Location"])
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert (ticket.prioridad, ticket.canal, [e.nombre for e in ticket.etiquetas]) == ("alta", "web", ["red", "wifi"])


@pytest.mark.parametrize("cambio, campo", [
    ({"titulo": "   "}, "titulo"),
    ({"descripcion": ""}, "descripcion"),
    ({"categoria": ""}, "categoria"),
    ({"categoria": "No existe"}, "categoria"),
    ({"prioridad": "urgentisima"}, "prioridad"),
    ({"etiquetas": ",".join(f"e{i}" for i in range(11))}, "etiquetas"),
    ({"titulo": "x" * 256}, "titulo"),
])
def test_bad_ticket_form_is_422_with_inline_error_and_saves_nothing(login, make_user, cambio, campo):
    client, csrf = login(make_user())
    data = {"csrf_token": csrf, "titulo": "Sin red", "descripcion": "No hay wifi", "categoria": "Redes",
            "prioridad": "media", **cambio}
    r = client.post("/tickets", data=data)
    assert r.status_code == 422
    html = text(r)
    assert re.search(rf'<div class="invalid-feedback" id="{campo}-error">', html)
    assert count(Ticket) == 0


def test_form_without_csrf_token_is_refused(login, make_user):
    client, _ = login(make_user())
    r = client.post("/tickets", data={"titulo": "t", "descripcion": "d", "categoria": "Redes", "prioridad": "media"})
    assert r.status_code == 400 and count(Ticket) == 0


def test_engineer_works_a_ticket_through_the_detail_forms(login, make_user, make_ticket):
    engineer = make_user("ingeniero")
    owner = make_user()
    ticket = make_ticket(owner, ingeniero=engineer)
    client, csrf = login(engineer)
    url = f"/tickets/{ticket.numero_ticket}"
    assert client.post(f"{url}/estado", data={"csrf_token": csrf, "estado": "en_progreso"}).status_code == 302
    assert client.post(f"{url}/notas", data={"csrf_token": csrf, "nota": "clave interna 99"}).status_code == 302
    assert client.post(f"{url}/mensajes", data={"csrf_token": csrf, "cuerpo": "Ya está"}).status_code == 302
    r = client.post(f"{url}/notas", data={"csrf_token": csrf, "nota": "  "})
    assert r.status_code == 422 and 'id="nota-error"' in text(r)
    assert count(NotaInterna) == 1

    r = client.post(f"{url}/estado", data={"csrf_token": csrf, "estado": "abierto"}, follow_redirects=True)
    assert "Ese cambio de estado no es posible desde el estado actual." in text(r)
    assert client.post(f"{url}/estado", data={"csrf_token": csrf, "estado": "volando"}).status_code == 422

    owner_client, owner_csrf = login(owner)
    page = text(owner_client.get(url))
    assert "Ya está" in page and "clave interna 99" not in page and "Notas internas" not in page
    assert owner_client.post(f"{url}/notas", data={"csrf_token": owner_csrf, "nota": "x"}).status_code == 403
    assert count(NotaInterna) == 1


def test_buttons_are_the_allowed_moves(login, make_user, make_ticket):
    engineer = make_user("ingeniero")
    owner = make_user()
    ticket = make_ticket(owner, ingeniero=engineer, estado="resuelto")
    staff_page = text(login(engineer)[0].get(f"/tickets/{ticket.numero_ticket}"))
    assert set(re.findall(r'name="estado" value="(\w+)"', staff_page)) == {"cerrado", "abierto"}
    owner_page = text(login(owner)[0].get(f"/tickets/{ticket.numero_ticket}"))
    assert set(re.findall(r'name="estado" value="(\w+)"', owner_page)) == {"cerrado", "abierto"}
    other = make_ticket(owner, ingeniero=engineer, estado="en_progreso")
    owner_page = text(login(owner)[0].get(f"/tickets/{other.numero_ticket}"))
    assert re.findall(r'name="estado" value="(\w+)"', owner_page) == []


def test_requester_edits_fields_and_tags_while_open(login, make_user, make_ticket):
    owner = make_user()
    ticket = make_ticket(owner)
    client, csrf = login(owner)
    r = client.post(f"/tickets/{ticket.numero_ticket}/editar", data={
        "csrf_token": csrf, "titulo": "Impresora 2º piso", "descripcion": ticket.descripcion,
        "categoria": "Hardware", "prioridad": "alta", "etiquetas": "impresora"})
    assert r.status_code == 302
    db.session.expire_all()
    assert (ticket.titulo, ticket.prioridad, [e.nombre for e in ticket.etiquetas]) == ("Impresora 2º piso", "alta",
                                                                                       ["impresora"])
    page = text(client.get(f"/tickets/{ticket.numero_ticket}"))
    assert "Prioridad:" in page and "Media" in page and "Alta" in page  # history shows old → new
    r = client.post(f"/tickets/{ticket.numero_ticket}/editar", data={
        "csrf_token": csrf, "titulo": "Impresora 2º piso", "descripcion": ticket.descripcion,
        "categoria": "Hardware", "prioridad": "alta", "etiquetas": "impresora"})
    assert r.status_code == 422 and "No hay nada que cambiar." in text(r)


def test_admin_filters_keep_in_pagination_and_bad_dates_are_reported(login, make_user, make_ticket):
    owner = make_user()
    for n in range(23):
        make_ticket(owner, titulo=f"Fallo {n}", prioridad="alta")
    make_ticket(owner, titulo="Otro asunto", prioridad="baja")
    client, _ = login(make_user("admin"))
    html = text(client.get("/tickets/admin?prioridad=alta&q=fallo"))
    assert html.count("data-numero=") == 20 and "Otro asunto" not in html
    assert re.search(r'href="/tickets/admin\?[^"]*prioridad=alta[^"]*page=2', html.replace("&amp;", "&"))
    page2 = text(client.get("/tickets/admin?prioridad=alta&q=fallo&page=2"))
    assert page2.count("data-numero=") == 3
    r = client.get("/tickets/admin?desde=ayer")
    assert r.status_code == 400 and 'id="f-desde-error"' in text(r)


def test_live_fragment_returns_only_the_rows(login, make_user, make_ticket):
    owner = make_user()
    ticket = make_ticket(owner, ingeniero=make_user("ingeniero"), estado="en_progreso")
    client, _ = login(owner)
    html = text(client.get("/tickets?fragmento=1"))
    assert "<html" not in html and f'data-numero="{ticket.numero_ticket}"' in html
    assert 'data-estado="en_progreso"' in html


def test_admin_assigns_with_the_dialog_form(login, make_user, make_ticket):
    engineer = make_user("ingeniero", nombre="María López")
    away = make_user("ingeniero")
    away.ingeniero.disponible = False
    db.session.commit()
    ticket = make_ticket(make_user())
    client, csrf = login(make_user("admin"))
    html = text(client.get("/tickets/admin"))
    assert "General" in html and "0 tickets abiertos" in html and "No disponible" in html
    r = client.post(f"/tickets/{ticket.numero_ticket}/asignar",
                    data={"csrf_token": csrf, "ingeniero_id": engineer.ingeniero.id, "next": "/tickets/admin?estado=abierto"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/tickets/admin?estado=abierto")
    db.session.expire_all()
    assert ticket.ingeniero_id == engineer.ingeniero.id
    r = client.post(f"/tickets/{ticket.numero_ticket}/asignar", data={"csrf_token": csrf, "ingeniero_id": away.ingeniero.id})
    assert r.status_code == 422 and "Ese ingeniero no está disponible." in text(r)
    r = client.post(f"/tickets/{ticket.numero_ticket}/asignar", data={"csrf_token": csrf, "ingeniero_id": "x",
                                                                       "next": "//evil.example"})
    assert r.status_code == 422
    db.session.expire_all()
    assert ticket.ingeniero_id == engineer.ingeniero.id


def test_admin_manages_accounts_engineers_and_categories(login, make_user):
    admin = make_user("admin")
    client, csrf = login(admin)
    cuenta = {"csrf_token": csrf, "username": "nueva", "nombre": "Nueva Persona", "email": "nueva@example.test",
              "password": "larga-clave", "rol": "usuario", "idioma": "en"}
    assert client.post("/admin/usuarios", data=cuenta).status_code == 302
    r = client.post("/admin/usuarios", data={**cuenta, "email": "otra@example.test"})
    assert r.status_code == 422 and "Ya está ocupado." in text(r)
    r = client.post("/admin/usuarios", data={**cuenta, "username": "otra", "password": "corta"})
    assert r.status_code == 422 and 'id="password-error"' in text(r)
    assert count(Usuario) == 2

    r = client.post("/admin/ingenieros", data={**cuenta, "username": "ing_nuevo", "email": "ing@example.test",
                                               "especialidad": "Redes", "disponible": "y"})
    assert r.status_code == 302
    assert count(Usuario) == 3

    nueva = db.session.execute(select(Usuario).where(Usuario.username == "nueva")).scalar_one()
    assert client.post(f"/admin/usuarios/{nueva.id}/activo", data={"csrf_token": csrf, "valor": "0"}).status_code == 302
    r = client.post(f"/admin/usuarios/{admin.id}/activo", data={"csrf_token": csrf, "valor": "0"}, follow_redirects=True)
    assert "No puedes desactivar tu propia cuenta." in text(r)
    db.session.expire_all()
    assert nueva.activo is False and admin.activo is True

    assert client.post("/admin/categorias", data={"csrf_token": csrf, "nombre": "Telefonía"}).status_code == 302
    r = client.post("/admin/categorias", data={"csrf_token": csrf, "nombre": "telefonía"})
    assert r.status_code == 422 and "Ya existe." in text(r)
    telefonia = db.session.execute(select(Categoria).where(Categoria.nombre == "Telefonía")).scalar_one()
    assert '<option value="Telefonía">' in text(client.get("/tickets"))
    client.post(f"/admin/categorias/{telefonia.id}", data={"csrf_token": csrf, "valor": "0"}, follow_redirects=True)
    assert '<option value="Telefonía">' not in text(client.get("/tickets"))  # retired: not offered for new tickets


def test_language_follows_account_then_accept_language(client, login, make_user):
    assert "Iniciar sesión" in text(client.get("/login"))
    assert "Log in" in text(client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    user = make_user(idioma="en")
    english, csrf = login(user)
    html = text(english.get("/tickets", headers={"Accept-Language": "es"}))
    assert "My tickets" in html and 'lang="en"' in html
    assert english.post("/idioma", data={"csrf_token": csrf, "idioma": "es", "next": "/tickets"}).status_code == 302
    db.session.expire_all()
    assert user.idioma == "es" and "Mis tickets" in text(english.get("/tickets"))
    assert english.post("/idioma", data={"csrf_token": csrf, "idioma": "fr"}).status_code == 422


def _catalog(lang: str):
    from babel.messages.pofile import read_po

    with open(ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


def test_every_ui_string_has_its_spanish_translation():
    """Source strings are English; Spanish (the default UI) must translate every one of them.

    After adding strings: ``make update-translations`` and fill in translations/es."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file

    keywords = {**DEFAULT_KEYWORDS, "_l": None, "N_": None}
    sources = [("python", p) for p in ROOT.glob("*.py")] + [("jinja2", p) for p in (ROOT / "templates").rglob("*.html")]
    wanted = set()
    for method, path in sources:
        for _lineno, message, _comments, _context in extract_from_file(method, str(path), keywords=keywords):
            wanted.add(message if isinstance(message, str) else message[0])
    spanish = _catalog("es")
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in spanish
                  if m.id and m.string and (isinstance(m.string, str) or all(m.string)) and not m.fuzzy}
    assert sorted(wanted - translated) == []


def test_english_catalog_has_every_message_and_nothing_fuzzy():
    english = _catalog("en")
    assert {m.id for m in _catalog("es") if m.id} <= {m.id for m in english if m.id}
    assert [m.id for m in english if m.id and m.fuzzy] == []


def test_overdue_counter_links_to_the_overdue_list_within_scope(login, make_user, make_ticket):
    from datetime import timedelta

    from models import utcnow

    admin, ing, other_ing, ana = make_user("admin"), make_user("ingeniero"), make_user("ingeniero"), make_user()
    late = make_ticket(ana, ingeniero=ing, prioridad="critica", titulo="Caído desde ayer")
    late_other = make_ticket(ana, ingeniero=other_ing, prioridad="alta", titulo="Otro atrasado")
    fresh = make_ticket(ana, ingeniero=ing, prioridad="critica", titulo="Recién llegado")
    done = make_ticket(ana, ingeniero=ing, prioridad="baja", estado="cerrado", titulo="Viejo pero cerrado")
    import sla

    for t, hours in ((late, 9), (late_other, 30), (fresh, 1), (done, 24 * 30)):
        t.fecha_creacion = utcnow() - timedelta(hours=hours)
        sla.recalcular(t)  # due times are stored (sla.py); a backdated ticket needs them recomputed
    db.session.commit()

    client, _ = login(admin)
    page = client.get("/tickets/admin").get_data(as_text=True)
    assert 'href="/tickets/admin?vencidos=1"' in page
    listed = client.get("/tickets/admin?vencidos=1").get_data(as_text=True)
    assert late.numero_ticket in listed and late_other.numero_ticket in listed
    assert fresh.numero_ticket not in listed and done.numero_ticket not in listed

    client, _ = login(ing)
    mine = client.get("/tickets/ingeniero?vencidos=1").get_data(as_text=True)
    assert late.numero_ticket in mine
    assert late_other.numero_ticket not in mine and fresh.numero_ticket not in mine


def test_counters_equal_a_direct_count_after_creating_assigning_and_resolving(app, login, make_user, make_ticket):
    """The admin's counters come from the statistics rollup and an index (paneles.contadores), a
    scoped viewer's from their tickets: both equal a count of the tickets themselves, overdue
    ones (by either due time) included, after every kind of change."""
    from datetime import timedelta

    import paneles
    import sla
    import tickets
    from models import ESTADOS, ESTADOS_ABIERTOS, utcnow

    admin, ing, otro, ana = make_user("admin"), make_user("ingeniero"), make_user("ingeniero"), make_user()
    hora = timedelta(hours=1)
    creados = [make_ticket(ana, ingeniero=ing), make_ticket(ana), make_ticket(ana, ingeniero=otro, estado="en_progreso"),
               make_ticket(ana, ingeniero=ing, estado="en_espera"), make_ticket(ana, ingeniero=ing, estado="resuelto"),
               make_ticket(ana, estado="cerrado"), make_ticket(ana), make_ticket(ana, ingeniero=otro)]
    a_tiempo, sin_respuesta_tarde, resolucion_tarde, sin_plazo, respondido, cerrado_tarde = (
        creados[0], creados[1], creados[2], creados[6], creados[7], creados[5])
    ahora = utcnow()
    for t, primera, resolucion, respuesta in (
            (a_tiempo, ahora + hora, ahora + 5 * hora, None),
            (sin_respuesta_tarde, ahora - hora, ahora + 5 * hora, None),  # late by the first-response time only
            (resolucion_tarde, ahora - 9 * hora, ahora - hora, ahora - 8 * hora),
            (sin_plazo, None, None, None),  # no due time: never overdue
            (respondido, ahora - hora, ahora + hora, ahora - 2 * hora),  # answered: the first-response time no longer counts
            (cerrado_tarde, ahora - 9 * hora, ahora - 5 * hora, None)):  # closed: not running
        t.sla_primera_respuesta_vence, t.sla_resolucion_vence, t.fecha_primera_respuesta = primera, resolucion, respuesta
    db.session.commit()

    def directos(viewer):
        db.session.expire_all()
        visibles = db.session.execute(select(Ticket).where(tickets.scope_clause(viewer))).scalars().all()
        por_estado = {e: sum(t.estado == e for t in visibles) for e in ESTADOS}
        return {"por_estado": por_estado, "total": len(visibles),
                "abiertos": sum(por_estado[e] for e in ESTADOS_ABIERTOS),
                "vencidos": sum(sla.es_vencido(t) for t in visibles),
                "sin_asignar": sum(t.ingeniero_id is None and t.estado in ESTADOS_ABIERTOS for t in visibles)}

    def comprobar():
        for viewer in (admin, ing, otro, ana):
            with app.test_request_context():
                assert paneles.contadores(viewer) == directos(viewer), viewer.rol
        with app.test_request_context():
            carga = {f["ingeniero"].id: f["carga"] for f in paneles.ingenieros_con_carga()}
        assert carga == {i.ingeniero.id: sum(t.ingeniero_id == i.ingeniero.id and t.estado in ESTADOS_ABIERTOS
                                             for t in db.session.execute(select(Ticket)).scalars())
                         for i in (ing, otro)}

    comprobar()
    assert directos(admin)["vencidos"] == 2 and directos(admin)["sin_asignar"] == 2

    tickets.asignar(sin_respuesta_tarde, admin, ing.ingeniero.id)
    tickets.asignar(creados[0], admin, None)
    tickets.cambiar_estado(resolucion_tarde, otro, "resuelto")
    nuevo = make_ticket(ana, ingeniero=otro)
    nuevo.sla_resolucion_vence = ahora - hora
    db.session.commit()
    comprobar()
    assert directos(admin)["vencidos"] == 2 and directos(ing)["vencidos"] == 1

    client, _ = login(admin)
    pagina = client.get("/tickets/admin").get_data(as_text=True)
    assert re.search(r'data-contador="vencidos">\s*<span class="valor">2</span>', pagina)
