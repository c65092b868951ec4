"""Keyset pagination of the ticket lists: the API's opt-in ``cursor`` and the panels' "Next"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import update

import acumulados
import paneles
from models import Ticket, db
from schemas import ORDENABLES

ORDENES = [o for campo in ORDENABLES for o in (campo, "-" + campo)]
FILTROS = ["", "estado=abierto,en_progreso", "prioridad=alta", "q=impresora&orden=-fecha_creacion",
           "estado=abierto&prioridad=alta,critica"]


@pytest.fixture
def lista(make_user, make_ticket):
    """23 tickets of two requesters with many ties on every sort column (so the id decides)."""
    admin = make_user("admin")
    ana, beto = make_user(), make_user()
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    prioridades = ["baja", "media", "alta", "critica"]
    for i in range(23):
        t = make_ticket(ana if i % 3 else beto, titulo=["Impresora rota", "VPN caída", "Correo"][i % 3],
                        prioridad=prioridades[i % 4])
        # four creation instants and three update instants shared by several tickets: ties everywhere
        db.session.execute(update(Ticket).where(Ticket.id == t.id).values(
            fecha_creacion=base + timedelta(hours=i % 4), fecha_actualizacion=base + timedelta(days=i % 3),
            estado=["abierto", "en_progreso", "resuelto"][i % 3]))
    acumulados.reconstruir_conteos()  # a Core UPDATE of estado bypasses the rollup the totals read
    db.session.commit()
    return {"admin": admin, "ana": ana, "beto": beto}


def caminar(cliente, url: str, per_page: int = 4, limite: int = 50) -> tuple[list[int], list[dict]]:
    """Every page of ``url`` by following ``next_cursor``: the ids in order and the answers."""
    sep = "&" if "?" in url else "?"
    r = cliente.get(f"{url}{sep}per_page={per_page}")
    assert r.status_code == 200, r.get_json()
    paginas = [r.get_json()]
    for _ in range(limite):
        cursor = paginas[-1]["next_cursor"]
        if cursor is None:
            break
        r = cliente.get(f"{url}{sep}per_page={per_page}&cursor={quote(cursor)}")
        assert r.status_code == 200, r.get_json()
        paginas.append(r.get_json())
    else:
        pytest.fail("the walk did not end")
    return [t["id"] for p in paginas for t in p["items"]], paginas


def por_paginas(cliente, url: str, per_page: int = 4) -> list[int]:
    sep = "&" if "?" in url else "?"
    ids, page = [], 1
    while True:
        body = cliente.get(f"{url}{sep}per_page={per_page}&page={page}").get_json()
        ids += [t["id"] for t in body["items"]]
        if page * per_page >= body["total"]:
            return ids
        page += 1


@pytest.mark.parametrize("filtro", FILTROS)
def test_cursor_walk_matches_page_walk_under_every_order_and_filter(api, lista, filtro):
    admin = api(lista["admin"])
    for orden in ORDENES:
        url = f"/api/todos-tickets?{filtro + '&' if filtro else ''}orden={orden}"
        ids, paginas = caminar(admin, url)
        esperado = [t["id"] for t in admin.get(f"{url}&per_page=100").get_json()["items"]]
        assert esperado, url  # every filter matches something: the comparison is not vacuous
        assert ids == esperado == por_paginas(admin, url), url
        assert len(set(ids)) == len(ids) == paginas[0]["total"]
        assert [p["page"] for p in paginas] == list(range(1, len(paginas) + 1))
        assert {p["total"] for p in paginas} == {len(ids)}
        assert paginas[-1]["next_cursor"] is None


def test_relevance_ranked_search_pages_by_position(api, lista):
    admin = api(lista["admin"])
    ids, _ = caminar(admin, "/api/todos-tickets?q=impresora", per_page=3)
    assert ids == [t["id"] for t in admin.get("/api/todos-tickets?q=impresora&per_page=100").get_json()["items"]]
    assert len(ids) == 8


def test_rows_inserted_between_pages_neither_repeat_nor_hide_the_rest(api, lista, make_ticket):
    admin = api(lista["admin"])
    url = "/api/todos-tickets?orden=fecha_creacion&per_page=5"
    antes = [t["id"] for t in admin.get("/api/todos-tickets?orden=fecha_creacion&per_page=100").get_json()["items"]]
    primera = admin.get(url).get_json()
    # new tickets that sort before the cursor (an old date), among the rest (a tie with the
    # cursor's date: placed by id, after every old row) and at the end (now)
    ultima_fecha = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    nuevos = []
    for fecha in (datetime(2020, 1, 1, tzinfo=UTC), ultima_fecha, None):
        t = make_ticket(lista["ana"], titulo="Nuevo")
        if fecha is not None:
            t.fecha_creacion = fecha
        db.session.commit()
        nuevos.append(t.id)
    ids = [t["id"] for t in primera["items"]]
    cursor = primera["next_cursor"]
    for _ in range(20):
        if cursor is None:
            break
        body = admin.get(f"{url}&cursor={quote(cursor)}").get_json()
        ids += [t["id"] for t in body["items"]]
        cursor = body["next_cursor"]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i not in nuevos] == antes
    assert nuevos[0] not in ids and set(nuevos[1:]) <= set(ids)


def test_tampered_garbage_or_foreign_cursors_are_refused_with_400(api, lista):
    admin = api(lista["admin"])
    cursor = admin.get("/api/todos-tickets?per_page=4").get_json()["next_cursor"]
    payload, firma = cursor.rsplit(".", 1)
    otro = chr(ord(payload[-3]) ^ 1)  # one character of the signed key changed
    for malo in (payload[:-3] + otro + payload[-2:] + "." + firma, "basura", cursor + "x", "." * 10):
        r = admin.get(f"/api/todos-tickets?per_page=4&cursor={quote(malo)}")
        assert r.status_code == 400
        assert r.get_json()["error"]["code"] == "invalid_cursor" and r.get_json()["error"]["message"]
    # the same cursor with another filter, another order or on another list
    for url in ("/api/todos-tickets?estado=abierto", "/api/todos-tickets?orden=titulo", "/api/v1/tickets"):
        r = admin.get(f"{url}{'&' if '?' in url else '?'}cursor={quote(cursor)}")
        assert (r.status_code, r.get_json()["error"]["code"]) == (400, "invalid_cursor"), url
    assert admin.get(f"/api/todos-tickets?per_page=4&cursor={quote(cursor)}").status_code == 200


def test_a_usuario_walks_only_their_tickets_and_cannot_reuse_anothers_cursor(api, lista):
    ana, admin = api(lista["ana"]), api(lista["admin"])
    for url in ("/api/mis-tickets", "/api/v1/tickets?orden=-prioridad"):
        ids, paginas = caminar(ana, url, per_page=3)
        propios = {t.id for t in db.session.query(Ticket).filter_by(usuario_id=lista["ana"].id)}
        assert set(ids) == propios and len(ids) == len(propios) == paginas[0]["total"] == 15
    cursor_admin = admin.get("/api/v1/tickets?per_page=3").get_json()["next_cursor"]
    r = ana.get(f"/api/v1/tickets?per_page=3&cursor={quote(cursor_admin)}")
    assert (r.status_code, r.get_json()["error"]["code"]) == (400, "invalid_cursor")


def test_page_answers_keep_their_shape_and_add_next_cursor(api, lista):
    body = api(lista["admin"]).get("/api/todos-tickets?per_page=10&page=3").get_json()
    assert set(body) == {"items", "total", "total_exacto", "page", "per_page", "next_cursor"}
    assert (body["total"], body["page"], body["per_page"], len(body["items"]), body["next_cursor"]) == (23, 3, 10, 3, None)
    assert body["total_exacto"] is True


def _siguiente(html: str) -> str | None:
    m = re.search(r'<a class="page-link" href="([^"]+)" rel="next">', html)
    return m.group(1).replace("&amp;", "&") if m else None


def test_panel_next_links_follow_the_keyset_through_the_whole_list(login, lista, monkeypatch):
    monkeypatch.setattr(paneles, "TOPE_CUENTA", 6)  # the count stops early: "more than 6"
    client, _ = login(lista["admin"])
    url = "/tickets/admin?orden=prioridad&per_page=4"
    html = client.get(url).get_data(as_text=True)
    assert "más de 6" in html
    vistos = re.findall(r'data-numero="([^"]+)"', html)
    for _ in range(20):
        url = _siguiente(html)
        if url is None:
            break
        assert "cursor" in parse_qs(urlsplit(url).query) and "orden=prioridad" in url
        r = client.get(url)
        assert r.status_code == 200
        html = r.get_data(as_text=True)
        filas = re.findall(r'data-numero="([^"]+)"', html)
        vistos += filas
        # the live refresh of this page reloads these very rows (it keeps the page's cursor)
        refresco = re.search(r'<tbody data-refresh="([^"]+)"', html).group(1).replace("&amp;", "&")
        assert re.findall(r'data-numero="([^"]+)"', client.get(refresco).get_data(as_text=True)) == filas
    orden = db.session.query(Ticket).order_by(Ticket.prioridad, Ticket.id).all()
    rango = {"baja": 1, "media": 2, "alta": 3, "critica": 4}
    esperado = [t.numero_ticket for t in sorted(orden, key=lambda t: (rango[t.prioridad], t.id))]
    assert vistos == esperado
    assert "Página 6 de 6 · 23 en total" in html  # the last page knows the total


def test_panel_refuses_a_tampered_cursor(login, lista):
    client, _ = login(lista["admin"])
    html = client.get("/tickets/admin?per_page=4").get_data(as_text=True)
    url = _siguiente(html)
    assert client.get(url[:-2] + "zz").status_code == 400
    assert client.get(url).status_code == 200


def test_numbers_past_a_million_sort_by_their_value(api, make_user, make_ticket):
    """TKT-1000000 comes after TKT-999999 (as text it would sort first), by page and by cursor."""
    from sqlalchemy import inspect, text

    admin = make_user("admin")
    primero = make_ticket(admin)
    columnas = [c["name"] for c in inspect(db.engine).get_columns("tickets") if c["name"] not in ("id", "numero_ticket")]
    lista = ", ".join(columnas)
    db.session.execute(text(f"INSERT INTO tickets (id, numero_ticket, {lista}) "
                            f"SELECT 999998, 'TKT-999998', {lista} FROM tickets WHERE id = :id"), {"id": primero.id})
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT setval('tickets_id_seq', 999998)"))
    acumulados.reconstruir()
    acumulados.reconstruir_conteos()
    db.session.commit()
    nuevos = [make_ticket(admin).numero_ticket for _ in range(2)]
    assert nuevos == ["TKT-999999", "TKT-1000000"]
    cliente = api(admin)
    for orden, esperado in (("numero_ticket", [primero.id, 999998, 999999, 1000000]),
                            ("-numero_ticket", [1000000, 999999, 999998, primero.id])):
        url = f"/api/todos-tickets?orden={orden}"
        assert [t["id"] for t in cliente.get(url).get_json()["items"]] == esperado
        assert caminar(cliente, url, per_page=1)[0] == esperado == por_paginas(cliente, url, per_page=1)
