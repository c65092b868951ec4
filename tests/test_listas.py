"""Ticket lists read plain rows (tickets.filas) instead of ORM tickets: each row must show what
the ticket's own JSON and page show, for every viewer, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models import Cliente, db, utcnow


@pytest.fixture
def reparto(make_user, make_ticket):
    """Tickets with and without tags, engineer, notes and account: who sees which notes varies."""
    import tickets
    from schemas import TicketCreate

    admin, ana = make_user("admin"), make_user(nombre="Ana <Pérez>")
    ing, otro = make_user("ingeniero", nombre="Ingeniera Uno"), make_user("ingeniero", nombre="Ingeniero Dos")
    etiquetado = make_ticket(ana, ingeniero=ing, etiquetas=["wifi", "Red"], prioridad="alta")
    make_ticket(ana, titulo="Sin ingeniero ni etiquetas")
    ajeno = make_ticket(ana, ingeniero=otro, estado="en_progreso", etiquetas=["impresora"])
    # requested by an engineer, worked by another: in their "my tickets", without the notes
    pedido_por_ing = make_ticket(ing, ingeniero=otro, titulo="Pedido por un ingeniero")
    for ticket, autor in ((etiquetado, ing), (ajeno, otro), (pedido_por_ing, otro), (etiquetado, admin)):
        tickets.agregar_nota(ticket, autor, f"nota de {autor.nombre}")
    cliente = Cliente(nombre="Cliente WhatsApp", telefono="+34600123456")
    db.session.add(cliente)
    tickets.crear_ticket(TicketCreate(titulo="Por WhatsApp", descripcion="Hola", categoria="General"),
                         cliente=cliente, canal="whatsapp")
    db.session.commit()
    return {"admin": admin, "ana": ana, "ing": ing, "otro": otro}


@pytest.mark.parametrize("quien, rutas", [
    ("admin", ["/api/todos-tickets", "/api/todos-tickets?estado=abierto,en_progreso&orden=-prioridad",
               "/api/todos-tickets?q=impresora", "/api/todos-tickets?etiqueta=red", "/api/mis-tickets"]),
    ("ing", ["/api/tickets-ingeniero", "/api/mis-tickets"]),
    ("otro", ["/api/tickets-ingeniero", "/api/tickets-ingeniero?per_page=1"]),
    ("ana", ["/api/mis-tickets", "/api/mis-tickets?per_page=2&page=2"]),
])
def test_list_row_equals_the_ticket_json_for_every_viewer(api, reparto, quien, rutas):
    """Tags, people, dates, version and the internal notes (only where the viewer may read them)."""
    cliente, admin = api(reparto[quien]), api(reparto["admin"])
    vistos = 0
    for ruta in rutas:
        r = cliente.get(ruta)
        assert r.status_code == 200, r.get_data(as_text=True)
        for fila in r.get_json()["items"]:
            uno = cliente.get(f"/api/tickets/{fila['id']}")
            if uno.status_code == 404:
                # An engineer's own request worked by another engineer: in their /api/mis-tickets,
                # not readable alone (the engineer's scope). Without its notes: they do not manage it.
                assert quien == "ing" and "/api/mis-tickets" in ruta
                esperado = admin.get(f"/api/tickets/{fila['id']}").get_json()
                del esperado["notas_internas"]
            else:
                esperado = uno.get_json()
            assert fila == esperado
            vistos += 1
    assert vistos


@pytest.mark.parametrize("quien", ["admin", "ing", "otro", "ana"])
def test_one_ticket_json_equals_what_a_write_answers_for_every_viewer(api, reparto, quien):
    """GET /api/tickets/<id> writes its list row out (schemas.fila_dict); every write answers with
    the ORM ticket through TicketOut (schemas.ticket_dict): the two must never differ."""
    import tickets
    from models import Ticket
    from schemas import ticket_dict

    viewer, cliente = reparto[quien], api(reparto[quien])
    vistos = 0
    for ticket_id in db.session.execute(db.select(Ticket.id)).scalars():
        r = cliente.get(f"/api/tickets/{ticket_id}")
        db.session.expire_all()
        ticket = tickets.uno(ticket_id, viewer)
        if ticket is None:
            assert r.status_code == 404
            continue
        tickets.cargar_notas(ticket, viewer)
        assert r.status_code == 200 and r.headers["ETag"] == f'"{ticket.version}"'
        assert r.get_json() == ticket_dict(ticket, viewer)
        vistos += 1
    assert vistos


def test_list_rows_carry_tags_engineer_and_notes_as_stored(api, reparto):
    filas = {f["titulo"]: f for f in api(reparto["admin"]).get("/api/todos-tickets").get_json()["items"]}
    etiquetado = next(f for f in filas.values() if f["etiquetas"] == ["red", "wifi"])
    assert etiquetado["ingeniero"] == {"id": reparto["ing"].ingeniero.id, "nombre": "Ingeniera Uno"}
    assert etiquetado["usuario"] == {"id": reparto["ana"].id, "nombre": "Ana <Pérez>"}
    assert [n["texto"] for n in etiquetado["notas_internas"]] == ["nota de Ingeniera Uno", f"nota de {reparto['admin'].nombre}"]
    assert filas["Por WhatsApp"]["usuario"] is None and filas["Por WhatsApp"]["cliente"]["nombre"] == "Cliente WhatsApp"
    mias = api(reparto["ing"]).get("/api/mis-tickets").get_json()["items"]
    assert [("notas_internas" in f) for f in mias] == [False]  # requester, not its engineer


def test_panel_rows_show_names_tags_badges_and_links(login, make_user, make_ticket):
    import sla

    admin, ana = make_user("admin"), make_user(nombre="Ana Solicitante")
    ing = make_user("ingeniero", nombre="Ingeniera Uno")
    vencido = make_ticket(ana, ingeniero=ing, prioridad="critica", etiquetas=["red"], titulo="Caído")
    vencido.fecha_creacion = utcnow() - timedelta(days=3)
    sla.recalcular(vencido)
    libre = make_ticket(ana, prioridad="baja", titulo="Libre", estado="en_progreso")
    db.session.commit()
    client, _ = login(admin)
    html = client.get("/tickets/admin").get_data(as_text=True)
    filas = {t.numero_ticket: html.split(f'<tr data-numero="{t.numero_ticket}">')[1].split("</tr>")[0]
             for t in (vencido, libre)}
    fila = filas[vencido.numero_ticket]
    assert f'<a href="/tickets/{vencido.numero_ticket}" class="fw-semibold">{vencido.numero_ticket}</a>' in fila
    assert f'data-asignar-url="/tickets/{vencido.numero_ticket}/asignar"' in fila
    assert f'data-actual="{ing.ingeniero.id}"' in fila and ">Ingeniera Uno</td>" in fila
    assert '#red</span>' in fila and ">Ana Solicitante</td>" in fila and ">Hardware</td>" in fila
    assert fila.count('data-estado="abierto">Abierto</span>') == 2 and fila.count('data-prioridad="critica">Crítica') == 2
    assert fila.count('class="badge text-bg-danger"') == 2  # overdue, in both places
    otra = filas[libre.numero_ticket]
    assert f'<a href="/tickets/{libre.numero_ticket}" class="fw-semibold">' in otra
    assert 'data-estado="en_progreso">En progreso</span>' in otra and 'data-prioridad="baja">Baja</span>' in otra
    assert "text-bg-danger" not in otra and ">Sin asignar</td>" in otra and "etiqueta" not in otra



@pytest.mark.parametrize("formato", ["short", "medium", "long", "full"])
def test_fecha_writes_what_flask_babel_writes_in_each_language(app, formato):
    from flask_babel import force_locale, format_datetime

    import paneles

    fechas = [datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 23, 59, 59, tzinfo=UTC),
              datetime(2025, 12, 31, 12, 0)]  # the last one naive: UTC, as Flask-Babel reads it
    with app.test_request_context("/"):
        for idioma in ("es", "en", "es"):  # the same date again in another language: never the other's text
            with force_locale(idioma):
                for d in fechas:
                    assert paneles.fecha(d, formato) == format_datetime(d, formato)
        assert paneles.fecha(None, formato) == ""


def test_template_gettext_follows_the_current_language(app):
    """The templates' ``_()`` is remembered per language (paneles.traducir): an email rendered
    under force_locale in the middle of a request still gets its own language."""
    from flask import render_template_string
    from flask_babel import force_locale

    with app.test_request_context("/"):
        vistos = []
        for idioma in ("es", "en", "es", "en"):
            with force_locale(idioma):
                vistos.append(render_template_string(
                    '{{ _("Open") }}|{{ _("Page %(page)s of %(pages)s · %(total)s in total", page=2, pages=3, total=9) }}'))
    assert vistos == ["Abierto|Página 2 de 3 · 9 en total", "Open|Page 2 of 3 · 9 in total"] * 2


def test_a_list_shape_built_once_still_follows_its_viewer_filters_and_data(api, make_user, make_ticket):
    """The statements of a list shape are kept per process (tickets.forma_de_lista), never its
    rows: two engineers asking the same list each get their own tickets, each filter value its
    own rows, and a ticket created since (or changed) shows in the next answer and its total."""
    admin, ana = make_user("admin"), make_user()
    uno, dos = make_user("ingeniero"), make_user("ingeniero")
    a = make_ticket(ana, ingeniero=uno, prioridad="alta")
    b = make_ticket(ana, ingeniero=dos, prioridad="alta")

    def ids(cliente, ruta):
        r = cliente.get(ruta)
        assert r.status_code == 200, r.get_data(as_text=True)
        return [t["id"] for t in r.get_json()["items"]], r.get_json()["total"]

    mismo = "/api/tickets-ingeniero?estado=abierto&prioridad=alta&per_page=5"
    assert ids(api(uno), mismo) == ([a.id], 1)
    assert ids(api(dos), mismo) == ([b.id], 1)
    todos, jefe = "/api/todos-tickets?estado=abierto&per_page=5", api(admin)
    assert ids(jefe, todos) == ([b.id, a.id], 2)
    c = make_ticket(ana, prioridad="baja")
    assert ids(jefe, todos) == ([c.id, b.id, a.id], 3)
    assert ids(jefe, "/api/todos-tickets?estado=abierto&prioridad=baja") == ([c.id], 1)
    assert ids(jefe, f"/api/todos-tickets?ingeniero_id={uno.ingeniero.id}") == ([a.id], 1)
    assert ids(jefe, f"/api/todos-tickets?ingeniero_id={dos.ingeniero.id}") == ([b.id], 1)
    assert ids(jefe, "/api/todos-tickets?ingeniero_id=ninguno&categoria=HARDWARE") == ([c.id], 1)
    assert ids(jefe, "/api/todos-tickets?categoria=Redes") == ([], 0)
    assert jefe.put(f"/api/tickets/{a.id}/estado", json={"estado": "en_progreso"}).status_code == 200
    assert ids(jefe, todos) == ([c.id, b.id], 2)
    assert ids(jefe, "/api/todos-tickets?estado=abierto&per_page=1&page=2") == ([b.id], 2)
    assert ids(api(uno), mismo) == ([], 0)
