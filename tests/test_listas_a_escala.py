"""Ticket lists at a million tickets (issue 13). The joint counts (``ConteoTickets``, kept by
``acumulados``) equal a COUNT of the tickets after random lifecycle operations, and the exact
``total`` an admin's list reads from them is the number of tickets the list pages through; both
plans of the tag filter agree; orden=prioridad is read from its index on both backends; a tag's list in date order follows its
tickets' dates (the links' copy of them)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from test_estadisticas_acumuladas import _paseo
from test_sla_metricas import oficina, reloj  # noqa: F401  (fixtures reused)

import acumulados
import tickets
from models import ConteoTickets, Ticket, db, ticket_etiquetas
from schemas import TicketCreate, TicketFilters


def _conteos() -> dict:
    return {(c.estado, c.prioridad, c.categoria_id, c.ingeniero): c.tickets
            for c in db.session.scalars(select(ConteoTickets)) if c.tickets}


def _desde_los_tickets() -> dict:
    ingeniero = func.coalesce(Ticket.ingeniero_id, 0)
    return {(e, p, c, i): n for e, p, c, i, n in db.session.execute(
        select(Ticket.estado, Ticket.prioridad, Ticket.categoria_id, ingeniero, func.count())
        .group_by(Ticket.estado, Ticket.prioridad, Ticket.categoria_id, ingeniero))}


@pytest.mark.parametrize("semilla", [4, 5])
def test_joint_counts_equal_a_count_of_the_tickets_after_random_operations(
        oficina, reloj, make_user, api, semilla):  # noqa: F811
    rng = random.Random(semilla)
    admin = make_user("admin")
    usuarios = [make_user("usuario"), make_user("usuario")]
    ingenieros = [make_user("ingeniero"), make_user("ingeniero"), make_user("ingeniero")]
    reloj.a(2026, 9, 14, 8, 0)
    lista = _paseo(rng, reloj, admin, usuarios, ingenieros, 120)
    db.session.delete(lista[0])  # a deleted ticket leaves its combination too
    db.session.commit()
    db.session.expire_all()

    assert len(_desde_los_tickets()) >= 10  # the walk spread the tickets over many combinations
    assert _conteos() == _desde_los_tickets()
    acumulados.reconstruir_conteos()
    assert _conteos() == _desde_los_tickets()
    db.session.rollback()

    cliente = api(admin)
    ing = ingenieros[0].ingeniero.id
    for query in ("", "estado=abierto", "estado=abierto,en_progreso&prioridad=alta", "categoria=redes",
                  "prioridad=baja&categoria=Software", f"ingeniero_id={ing}", "ingeniero_id=ninguno",
                  f"estado=resuelto,cerrado&ingeniero_id={ing}&categoria=Hardware", "categoria=no-existe"):
        cuerpo = cliente.get(f"/api/todos-tickets?per_page=100&{query}").get_json()
        assert cuerpo["total_exacto"] is True
        assert cuerpo["total"] == len(cuerpo["items"]), query


def test_list_total_follows_the_joint_counts_and_the_rebuild_restores_them(app, make_user, api):
    """An admin's filtered total is read from the counts (a Core insert, which bypasses the
    listener, is not seen until ``flask estadisticas-reconstruir``); a filter the counts cannot
    answer (a date) still counts the tickets."""
    admin, pepe = make_user("admin"), make_user("usuario")
    t = tickets.crear_ticket(TicketCreate(titulo="x", descripcion="y", prioridad="media", categoria="Redes"),
                             usuario=pepe)
    db.session.commit()
    fila = {c.key: getattr(t, c.key) for c in Ticket.__table__.columns if c.key not in ("id", "numero_ticket")}
    db.session.execute(insert(Ticket.__table__), [{**fila, "numero_ticket": "TKT-999999"}])
    db.session.commit()
    cliente = api(admin)
    assert cliente.get("/api/todos-tickets?estado=abierto").get_json()["total"] == 1
    assert cliente.get("/api/todos-tickets?desde=2000-01-01").get_json()["total"] == 2

    resultado = app.test_cli_runner().invoke(args=["estadisticas-reconstruir"])
    assert resultado.exit_code == 0, resultado.output
    assert cliente.get("/api/todos-tickets?estado=abierto").get_json()["total"] == 2


@pytest.mark.parametrize("limite", [1, 10**6], ids=["broad-tag-plan", "narrow-tag-plan"])
def test_tag_lists_page_and_count_like_the_straightforward_query(make_user, make_ticket, api, monkeypatch, limite):
    """Both plans of the tag filter (walking the list's order, or starting from the tag's links)
    give the same pages, and the tag-alone total (counted from the links) is the list's size."""
    monkeypatch.setattr(tickets, "LIMITE_ETIQUETA", limite)
    admin, ana = make_user("admin"), make_user()
    for i in range(9):
        make_ticket(ana, titulo=f"T{i}", prioridad=["alta", "baja", "media"][i % 3],
                    etiquetas=["vpn"] if i % 3 else ["vpn", "red"] if i % 2 else ["red"])
    esperado = {n: sorted((t.id for t in db.session.scalars(select(Ticket)) if n in {e.nombre for e in t.etiquetas}),
                          reverse=True) for n in ("vpn", "red")}
    cliente = api(admin)
    for query, nombre in (("etiqueta=vpn", "vpn"), ("etiqueta=RED", "red"), ("etiqueta=vpn&prioridad=alta", "vpn")):
        cuerpo = cliente.get(f"/api/todos-tickets?{query}&per_page=100").get_json()
        ids = [t["id"] for t in cuerpo["items"]]
        quiere = [i for i in esperado[nombre]
                  if "prioridad" not in query or db.session.get(Ticket, i).prioridad == "alta"]
        assert sorted(ids, reverse=True) == quiere and cuerpo["total"] == len(quiere), query
        segunda = cliente.get(f"/api/todos-tickets?{query}&per_page=2&page=2").get_json()
        assert [t["id"] for t in segunda["items"]] == ids[2:4] and segunda["total"] == len(quiere)
    assert cliente.get("/api/todos-tickets?etiqueta=nadie").get_json()["total"] == 0


def test_the_priority_order_is_read_from_the_rank_index(app):
    """The ORDER BY of orden=prioridad is the expression of ix_tickets_prioridad_rango (literals,
    not bound parameters): the database walks the index instead of sorting every match."""
    orden = tickets.order_by(TicketFilters(orden="-prioridad"))
    sql = str(select(Ticket.id).order_by(*orden).limit(5).compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A test's few rows: a scan, or another index and a sort of its one or two rows, can win on
            # cost. With both priced out, the rank index is left only if it gives the order itself.
            conn.execute(text("SET enable_seqscan = off"))
            conn.execute(text("SET enable_sort = off"))
            plan = " ".join(conn.execute(text("EXPLAIN " + sql)).scalars())
        else:
            plan = " ".join(fila[-1] for fila in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert "ix_tickets_prioridad_rango" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan  # the id tie-break comes from it too


def _enlaces_con_fecha() -> dict:
    """(ticket_id, etiqueta_id) -> the link's copy of the date, beside its ticket's date."""
    return {(t, e): (fecha, creado) for t, e, fecha, creado in db.session.execute(
        select(ticket_etiquetas.c.ticket_id, ticket_etiquetas.c.etiqueta_id, ticket_etiquetas.c.fecha_creacion,
               Ticket.fecha_creacion).join(Ticket, Ticket.id == ticket_etiquetas.c.ticket_id))}


def test_a_tag_list_follows_its_tickets_dates_when_they_change(make_user, make_ticket, api):
    """A tag's list in date order is read along the links' copy of their ticket's date: the copy
    is written with each link (at creation and when tags are edited) and follows a ticket that is
    re-dated (the demo seed does), so pages and cursors give the tickets' own order."""
    admin, ana = make_user("admin"), make_user()
    creados = [make_ticket(ana, titulo=f"T{i}", etiquetas=["vpn"] if i % 4 else ["vpn", "red"]) for i in range(8)]
    base = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    for i, t in enumerate(creados):  # re-dated: a new order, with ties that the id breaks
        t.fecha_creacion = base - timedelta(days=(i * 5) % 3)
    db.session.commit()
    cliente = api(admin)
    assert cliente.put(f"/api/tickets/{creados[1].id}", json={"etiquetas": ["red"]}).status_code == 200
    assert cliente.put(f"/api/tickets/{creados[2].id}", json={"etiquetas": ["red", "vpn"]}).status_code == 200
    db.session.expire_all()  # the requests wrote new versions of those tickets
    creados[2].fecha_creacion = base + timedelta(days=1)  # re-dated again after its tags changed
    db.session.commit()
    enlaces = _enlaces_con_fecha()
    assert enlaces and all(fecha == creado for fecha, creado in enlaces.values())
    for nombre in ("vpn", "red"):
        suyos = [t for t in db.session.scalars(select(Ticket)) if nombre in {e.nombre for e in t.etiquetas}]
        for orden, invertir in (("-fecha_creacion", True), ("fecha_creacion", False)):
            quiere = [t.id for t in sorted(suyos, key=lambda t: (t.fecha_creacion, t.id), reverse=invertir)]
            url = f"/api/todos-tickets?etiqueta={nombre}&orden={orden}&per_page=2"
            por_pagina = [t["id"] for p in range(1, 6) for t in cliente.get(f"{url}&page={p}").get_json()["items"]]
            assert por_pagina == quiere, (nombre, orden)
            cuerpo, por_cursor = cliente.get(url).get_json(), []
            while True:
                por_cursor += [t["id"] for t in cuerpo["items"]]
                if cuerpo["next_cursor"] is None:
                    break
                cuerpo = cliente.get(f"{url}&cursor={cuerpo['next_cursor']}").get_json()
            assert por_cursor == quiere, (nombre, orden)


def test_the_migration_gives_existing_tag_links_their_tickets_dates(fresh_database_url):
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_database_url, "SECRET_KEY": "t"})
    directorio = str(Path(__file__).resolve().parent.parent / "migrations")
    with app.app_context():
        upgrade(directory=directorio, revision="0023")
        fechas = {"a": datetime(2026, 11, 1, 12, 0, 0, 250_000), "b": datetime(2025, 2, 3, 4, 5, 6)}
        db.session.execute(text(
            "INSERT INTO usuarios (id, username, nombre, email, password_hash, rol, activo, idioma, fecha_creacion) "
            "VALUES (1, 'marta', 'Marta', 'marta@example.test', 'x', 'usuario', true, 'es', :a)"), fechas)
        db.session.execute(text(
            "INSERT INTO tickets (id, numero_ticket, titulo, descripcion, prioridad, estado, canal, categoria_id, "
            "usuario_id, fecha_creacion, fecha_actualizacion, sla_pausado_segundos, version) VALUES "
            "(1, 'TKT-000001', 'Uno', 'x', 'media', 'abierto', 'web', 1, 1, :a, :a, 0, 1), "
            "(2, 'TKT-000002', 'Dos', 'x', 'media', 'abierto', 'web', 1, 1, :b, :b, 0, 1)"), fechas)
        db.session.execute(text("INSERT INTO etiquetas (id, nombre) VALUES (1, 'vpn'), (2, 'red')"))
        db.session.execute(text("INSERT INTO ticket_etiquetas (ticket_id, etiqueta_id) VALUES (1, 1), (2, 1), (2, 2)"))
        db.session.commit()
        upgrade(directory=directorio)
        enlaces = _enlaces_con_fecha()
        assert set(enlaces) == {(1, 1), (2, 1), (2, 2)}
        assert all(fecha == creado for fecha, creado in enlaces.values())
        assert enlaces[(1, 1)][0] == fechas["a"].replace(tzinfo=UTC)
        db.session.remove()


@pytest.mark.parametrize("zona", ["UTC", "America/Santiago"])
def test_every_deep_page_of_the_whole_list_is_the_page_offset_gives(app, make_user, make_ticket, api, monkeypatch,
                                                                     zona):
    """A deep page of an admin's whole list in creation order starts at its day, from the
    tickets per local day of the statistics rollup, and skips only the rest by OFFSET: every page
    is the one OFFSET alone gives, around local midnights (Santiago's clocks change at midnight),
    with tickets that share an instant (the id decides)."""
    app.config["APP_TIMEZONE"] = zona
    monkeypatch.setattr(tickets, "OFFSET_DIRECTO", 1)
    admin, ana = make_user("admin"), make_user()
    medianoches = [datetime(2026, 4, 5, 3, 0, tzinfo=UTC), datetime(2026, 4, 6, 4, 0, tzinfo=UTC),
                   datetime(2026, 9, 6, 4, 0, tzinfo=UTC), datetime(2026, 9, 7, 3, 0, tzinfo=UTC),
                   datetime(2026, 9, 8, 0, 0, tzinfo=UTC)]
    fechas = [m + timedelta(minutes=d) for m in medianoches for d in (-61, -1, 0, 0, 1, 59, 61)]
    creados = [make_ticket(ana, titulo=f"T{i}") for i in range(len(fechas))]
    for t, fecha in zip(creados, random.Random(3).sample(fechas, len(fechas)), strict=True):
        t.fecha_creacion = fecha
    db.session.commit()
    cliente = api(admin)
    for orden, invertir in (("-fecha_creacion", True), ("fecha_creacion", False)):
        quiere = [t.id for t in sorted(creados, key=lambda t: (t.fecha_creacion, t.id), reverse=invertir)]
        paginas = [cliente.get(f"/api/todos-tickets?orden={orden}&per_page=4&page={p}").get_json()
                   for p in range(1, len(fechas) // 4 + 3)]
        assert [t["id"] for p in paginas for t in p["items"]] == quiere, orden
        assert {p["total"] for p in paginas} == {len(fechas)}
