"""Full-text search (busqueda.py, migration 0014): accents, case and prefixes never matter, the
public thread is searched and internal notes never are, the index follows every write in the same
transaction, results are ranked and scoped, no input breaks it, and the panels highlight the hit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from conftest import BACKEND, ROOT
from flask_migrate import upgrade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, false, func, insert, literal_column, or_, select, text

import acumulados
import busqueda
import tickets
from models import Categoria, Cliente, Ticket, db
from schemas import TicketFilters


def numeros(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [t["numero_ticket"] for t in resp.get_json()["items"]]


RUTA = {"admin": "/api/todos-tickets", "ingeniero": "/api/tickets-ingeniero", "usuario": "/api/mis-tickets"}


def buscar(api_client, q: str, extra: str = "", rol: str = "admin") -> list[str]:
    """Numbers found by ``q`` in the list of ``rol`` (extra: more of the query string)."""
    return numeros(api_client.get(RUTA[rol], query_string={"q": q, **dict(
        p.split("=") for p in extra.split("&") if p)}))


@pytest.fixture
def gente(make_user):
    return {"admin": make_user("admin"), "ana": make_user(nombre="Ana Gómez", username="ana_g"),
            "beto": make_user(nombre="Beto Ruiz"), "ing": make_user("ingeniero"),
            "otro_ing": make_user("ingeniero")}


@pytest.mark.parametrize("q", ["impresion", "IMPRESIÓN", "Impresión", "impre", "IMPRE", "láser impre", "laser"])
def test_accents_case_and_prefixes_never_matter(api, gente, make_ticket, q):
    t = make_ticket(gente["ana"], titulo="Impresión láser", descripcion="No sale nada.")
    make_ticket(gente["ana"], titulo="Correo caído", descripcion="Outlook no conecta.")
    assert buscar(api(gente["admin"]), q) == [t.numero_ticket]


def test_all_words_must_match(api, gente, make_ticket):
    make_ticket(gente["ana"], titulo="Impresora atascada", descripcion="Papel")
    t = make_ticket(gente["ana"], titulo="Impresora sin tóner", descripcion="Planta 2")
    assert buscar(api(gente["admin"]), "impresora toner") == [t.numero_ticket]


def test_finds_description_requester_and_username(api, gente, make_ticket):
    t = make_ticket(gente["ana"], titulo="Pantalla", descripcion="El monitor parpadea en la sala Neptuno.")
    admin = api(gente["admin"])
    assert buscar(admin, "neptuno") == [t.numero_ticket]
    assert buscar(admin, "gomez") == [t.numero_ticket]
    assert buscar(admin, "ana_g") == [t.numero_ticket]


def test_public_thread_is_searched_and_follows_new_messages(api, gente, make_ticket):
    t = make_ticket(gente["ana"], ingeniero=gente["ing"], estado="en_progreso")
    admin = api(gente["admin"])
    assert buscar(admin, "tornillo") == []
    r = api(gente["ing"]).post(f"/api/tickets/{t.id}/mensajes", json={"cuerpo": "Falta el tornillo del cajón."})
    assert r.status_code == 201, r.get_json()
    assert buscar(admin, "tornillo") == [t.numero_ticket]
    assert buscar(api(gente["ana"]), "cajon", rol="usuario") == [t.numero_ticket]  # the requester finds it too


def test_internal_notes_are_never_searchable(api, gente, make_ticket):
    t = make_ticket(gente["ana"], ingeniero=gente["ing"], estado="en_progreso")
    r = api(gente["ing"]).put(f"/api/tickets/{t.id}/notas", json={"nota": "Contraseña del router: zafiro77"})
    assert r.status_code in (200, 201), r.get_json()
    assert "zafiro77" in " ".join(n.texto for n in db.session.get(Ticket, t.id).notas)
    # nobody, not even staff who may read the note, finds the ticket by it: notes are not indexed
    for quien, rol in (("ana", "usuario"), ("ing", "ingeniero"), ("admin", "admin")):
        assert buscar(api(gente[quien]), "zafiro77", rol=rol) == [], quien
    assert buscar(api(gente["ing"]), "router", rol="ingeniero") == []
    # ...and no snippet anywhere can carry it
    assert busqueda.fragmentos([t.id], "zafiro77") == {}


def test_a_usuario_never_gets_another_users_ticket_by_search(api, gente, make_ticket):
    mio = make_ticket(gente["ana"], titulo="Teclado roto")
    ajeno = make_ticket(gente["beto"], titulo="Teclado roto también", ingeniero=gente["ing"])
    assert buscar(api(gente["ana"]), "teclado", rol="usuario") == [mio.numero_ticket]
    assert buscar(api(gente["beto"]), "teclado", rol="usuario") == [ajeno.numero_ticket]
    assert buscar(api(gente["ana"]), ajeno.numero_ticket, rol="usuario") == []  # not even by its number
    assert buscar(api(gente["ing"]), "teclado", rol="ingeniero") == [ajeno.numero_ticket]
    assert buscar(api(gente["otro_ing"]), "teclado", rol="ingeniero") == []
    assert sorted(buscar(api(gente["admin"]), "teclado")) == sorted([mio.numero_ticket, ajeno.numero_ticket])


def test_search_combines_with_the_other_filters(api, gente, make_ticket):
    make_ticket(gente["ana"], titulo="Wifi lenta", prioridad="baja")
    alta = make_ticket(gente["ana"], titulo="Wifi caída", prioridad="alta")
    make_ticket(gente["ana"], titulo="Disco lleno", prioridad="alta")
    assert buscar(api(gente["admin"]), "wifi", "prioridad=alta") == [alta.numero_ticket]


def test_results_are_ranked_when_no_order_is_asked(api, gente, make_ticket):
    en_titulo = make_ticket(gente["ana"], titulo="Servidor de ficheros caído", descripcion="Nadie entra.")
    en_descripcion = make_ticket(gente["ana"], titulo="No puedo entrar",
                                 descripcion="Algo pasa con el acceso, quizá el servidor.")
    en_hilo = make_ticket(gente["ana"], ingeniero=gente["ing"], estado="en_progreso", titulo="Lentitud general")
    tickets.agregar_mensaje(en_hilo, gente["ing"], "Reiniciamos el servidor esta noche.")
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i, t in enumerate((en_titulo, en_descripcion, en_hilo)):  # oldest is the best match
        t.fecha_creacion = base + timedelta(days=i)
    db.session.commit()
    admin = api(gente["admin"])
    assert buscar(admin, "servidor") == [en_titulo.numero_ticket, en_descripcion.numero_ticket,
                                         en_hilo.numero_ticket]
    # an explicit order wins over relevance
    assert buscar(admin, "servidor", "orden=-fecha_creacion") == [en_hilo.numero_ticket,
                                                                  en_descripcion.numero_ticket,
                                                                  en_titulo.numero_ticket]


def test_broad_searches_come_newest_first(api, gente, make_ticket, monkeypatch):
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", 1)
    viejo = make_ticket(gente["ana"], titulo="Router router router", descripcion="router")
    nuevo = make_ticket(gente["ana"], titulo="Cambio de sitio", descripcion="Mover el router de planta.")
    viejo.fecha_creacion = datetime(2026, 1, 1, tzinfo=UTC)
    db.session.commit()
    assert buscar(api(gente["admin"]), "router") == [nuevo.numero_ticket, viejo.numero_ticket]


def _muchos(usuarios, n: int) -> dict[str, set[str]]:
    """``n`` tickets loaded in bulk (the index triggers fill the index, as for any write), spread
    over ``usuarios`` and over time with ties in fecha_creacion: "zafiro" in every 2nd, "ópalo"
    in every 3rd. Returns the numbers each word should find."""
    categoria = db.session.scalar(select(Categoria.id).limit(1))
    base = datetime(2026, 6, 1)
    filas, esperados = [], {"zafiro": set(), "opalo": set(), "zafiro opalo": set()}
    for i in range(1, n + 1):
        palabras = (["zafiro"] if i % 2 == 0 else []) + (["Ópalo"] if i % 3 == 0 else [])
        numero = f"TKT-{900000 + i:06d}"
        for clave, quiere in (("zafiro", {"zafiro"}), ("opalo", {"Ópalo"}), ("zafiro opalo", {"zafiro", "Ópalo"})):
            if quiere <= set(palabras):
                esperados[clave].add(numero)
        fecha = base + timedelta(hours=(i * 37) % (n // 2))  # every hour used twice: ties broken by id
        filas.append({"numero_ticket": numero, "titulo": f"Caso {i}", "descripcion": " ".join(["texto", *palabras]),
                      "prioridad": "media", "estado": "abierto", "canal": "web", "categoria_id": categoria,
                      "usuario_id": usuarios[i % len(usuarios)].id, "fecha_creacion": fecha,
                      "fecha_actualizacion": fecha})
    db.session.execute(insert(Ticket.__table__), filas)
    acumulados.reconstruir_conteos()  # a Core INSERT bypasses the rollup the lists' totals read
    db.session.commit()
    return esperados


def _a_mano(q: str, orden: str, usuario_id=None, estado=None) -> list[str]:
    """The numbers ``q`` finds, by the straightforward plan: every match (each word as the prefix
    it is, never spelled as terms), then ORDER BY."""
    f = TicketFilters(q=q, orden=orden)
    palabras = busqueda.terminos(q)
    coinciden = (select(busqueda._fts.c.rowid).where(busqueda._match(palabras)) if BACKEND == "sqlite"
                 else busqueda._ids_que_coinciden(palabras))
    stmt = select(Ticket.numero_ticket).where(Ticket.id.in_(coinciden))
    if usuario_id is not None:
        stmt = stmt.where(Ticket.usuario_id == usuario_id)
    if estado is not None:
        stmt = stmt.where(Ticket.estado == estado)
    return list(db.session.scalars(stmt.order_by(*tickets.order_by(f))))


@pytest.mark.parametrize("limite_rango", [1, 10**6], ids=["broad-plan", "narrow-plan"])
def test_search_pages_equal_the_straightforward_plan(api, gente, monkeypatch, limite_rango):
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", limite_rango)
    monkeypatch.setattr(busqueda, "TOPE_TOTAL", 1000)
    esperados = _muchos([gente["ana"], gente["beto"]], 300)
    admin = api(gente["admin"])
    for q, orden, clave in (("zafiro", "-fecha_creacion", "zafiro"), ("ópalo", "fecha_creacion", "opalo"),
                            ("ZAFIRO OPAL", "-fecha_creacion", "zafiro opalo"), ("zafi", "titulo", "zafiro"),
                            ("opalo", "-numero_ticket", "opalo")):
        todos = _a_mano(q, orden)
        assert set(todos) == esperados[clave]
        paginas = []
        for page in range(1, len(todos) // 40 + 2):
            r = admin.get(RUTA["admin"], query_string={"q": q, "orden": orden, "per_page": 40, "page": page})
            assert r.get_json()["total"] == len(todos) and r.get_json()["total_exacto"] is True
            paginas += numeros(r)
        assert paginas == todos, (q, orden)


# Words sharing prefixes ("zaf" begins four of them), one the tokenizer keeps non-ASCII (ß).
_PALABRAS_PREFIJO = ("zafiro", "zafiros", "zafra", "zafarrancho", "zapato", "straße")


@pytest.mark.parametrize("max_expansion, densidad", [(8, 0.0), (8, 2.0), (2, 0.0)],
                         ids=["seek-per-ticket", "matches-listed-once", "too-many-terms"])
def test_a_broad_prefix_finds_what_the_prefix_finds_whatever_terms_it_begins(api, gente, monkeypatch,
                                                                             max_expansion, densidad):
    """A broad search tests each ticket with its words spelled as the terms they begin, or
    probes them listed once when they are sparse (SQLite); the pages, their order and the capped
    count are those of the prefix itself, with a filter counted apart, and when a word begins
    too many terms or is not plain ASCII."""
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", 1)
    monkeypatch.setattr(busqueda, "DENSIDAD_POR_FILA", densidad)
    monkeypatch.setattr(busqueda, "TOPE_TOTAL", 30)
    monkeypatch.setattr(busqueda, "MAX_EXPANSION", max_expansion)
    categoria = db.session.scalar(select(Categoria.id).limit(1))
    base = datetime(2026, 6, 1)
    filas = []
    for i in range(1, 121):
        fecha = base + timedelta(hours=(i * 37) % 60)
        filas.append({"numero_ticket": f"TKT-{800000 + i:06d}", "titulo": f"Caso {i}",
                      "descripcion": f"texto {_PALABRAS_PREFIJO[i % 6]} {_PALABRAS_PREFIJO[i % 5]}",
                      "prioridad": "media", "estado": ("abierto", "cerrado")[i % 2 == 0 and i % 3 == 0],
                      "canal": "web", "categoria_id": categoria, "usuario_id": gente["ana"].id,
                      "fecha_creacion": fecha, "fecha_actualizacion": fecha})
    db.session.execute(insert(Ticket.__table__), filas)
    acumulados.reconstruir_conteos()
    db.session.commit()
    admin = api(gente["admin"])
    for q in ("zaf", "zafi", "zafiro", "zafr zapa", "ZAFIROS", "straß", "za", "z", "zafiroz"):
        for estado in (None, "abierto"):
            todos = _a_mano(q, "-fecha_creacion", estado=estado)
            paginas = []
            for page in range(1, 7):
                r = admin.get(RUTA["admin"], query_string={"q": q, "per_page": 10, "page": page,
                                                           **({"estado": estado} if estado else {})}).get_json()
                hasta = max(30, page * 10)
                assert (r["total"], r["total_exacto"]) == ((len(todos), True) if len(todos) <= hasta
                                                           else (hasta, False)), (q, estado, page)
                paginas += [t["numero_ticket"] for t in r["items"]]
            assert paginas == todos[:60], (q, estado)


def test_a_broad_search_counts_up_to_the_cap_and_keeps_paging(api, gente, monkeypatch):
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", 1)
    monkeypatch.setattr(busqueda, "TOPE_TOTAL", 60)
    _muchos([gente["ana"], gente["beto"]], 300)
    admin = api(gente["admin"])
    todos = _a_mano("zafiro", "-fecha_creacion")
    assert len(todos) == 150
    r = admin.get(RUTA["admin"], query_string={"q": "zafiro", "per_page": 25}).get_json()
    assert (r["total"], r["total_exacto"]) == (60, False)  # "more than 60"
    assert [t["numero_ticket"] for t in r["items"]] == todos[:25]
    # a page past the cap still comes, in order; the total then counts up to it
    r = admin.get(RUTA["admin"], query_string={"q": "zafiro", "per_page": 25, "page": 4}).get_json()
    assert [t["numero_ticket"] for t in r["items"]] == todos[75:100]
    assert (r["total"], r["total_exacto"]) == (100, False)
    r = admin.get(RUTA["admin"], query_string={"q": "zafiro", "per_page": 25, "page": 6}).get_json()
    assert [t["numero_ticket"] for t in r["items"]] == todos[125:150]
    assert (r["total"], r["total_exacto"]) == (150, True)
    # under the cap the count is exact; the list without q is never capped
    r = admin.get(RUTA["admin"], query_string={"q": "zafiro opalo"}).get_json()
    assert (r["total"], r["total_exacto"]) == (50, True)
    r = admin.get(RUTA["admin"]).get_json()
    assert (r["total"], r["total_exacto"]) == (300, True)


def test_a_broad_search_alone_is_more_than_the_cap_without_counting_it(app, api, gente, monkeypatch):
    """An admin's search by q alone whose words find more than LIMITE_RANGO tickets (counted that
    far to choose its plan) is "more than TOPE_TOTAL" at once: its page's ids are read alone, with
    no statement reading the first TOPE_TOTAL + 1 to count them. Another filter, or a requester's
    scope, still counts (they may leave fewer)."""
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", 100)
    monkeypatch.setattr(busqueda, "TOPE_TOTAL", 60)
    _muchos([gente["ana"], gente["beto"]], 300)
    todos = _a_mano("zafiro", "-fecha_creacion")
    sentencias = []
    escuchar = lambda _c, _cur, sql, *_a: sentencias.append(" ".join(sql.split()))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", escuchar)
    try:
        r = api(gente["admin"]).get(RUTA["admin"], query_string={"q": "zafiro", "per_page": 25, "page": 2}).get_json()
        # the list's ids, read as the page (LIMIT/OFFSET) or to count them (the first 61, or a COUNT of them)
        ids_leidos = [s for s in sentencias if "SELECT tickets.id FROM tickets" in s or "SELECT tickets.id AS id" in s]
        assert ids_leidos and all(s.startswith("SELECT tickets.id FROM tickets") and "OFFSET" in s
                                  for s in ids_leidos), ids_leidos
        assert (r["total"], r["total_exacto"]) == (60, False)
        assert [t["numero_ticket"] for t in r["items"]] == todos[25:50]
        r = api(gente["admin"]).get(RUTA["admin"], query_string={"q": "zafiro", "estado": "cerrado"}).get_json()
        assert (r["total"], r["total_exacto"], r["items"]) == (0, True, [])
    finally:
        event.remove(db.engine, "before_cursor_execute", escuchar)
    r = api(gente["ana"]).get(RUTA["usuario"], query_string={"q": "zafiro", "per_page": 25}).get_json()
    assert (r["total"], r["total_exacto"]) == (60, False)  # ana's 150 (counted up to the cap)
    r = api(gente["beto"]).get(RUTA["usuario"], query_string={"q": "zafiro"}).get_json()
    assert (r["total"], r["total_exacto"], r["items"]) == (0, True, [])


def test_a_capped_count_never_counts_another_users_tickets(api, gente, monkeypatch):
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", 1)
    monkeypatch.setattr(busqueda, "TOPE_TOTAL", 60)
    _muchos([gente["ana"], gente["beto"]], 300)
    r = api(gente["ana"]).get(RUTA["usuario"], query_string={"q": "zafiro", "per_page": 25}).get_json()
    propios = _a_mano("zafiro", "-fecha_creacion", usuario_id=gente["ana"].id)
    assert len(propios) == 150  # ana has the even tickets
    assert (r["total"], r["total_exacto"]) == (60, False)
    assert [t["numero_ticket"] for t in r["items"]] == propios[:25]
    r = api(gente["beto"]).get(RUTA["usuario"], query_string={"q": "zafiro"}).get_json()
    assert (r["total"], r["total_exacto"], r["items"]) == (0, True, [])


# --- the requester's names (PostgreSQL looks them up in usuarios, migration 0025) ----------------

@pytest.mark.parametrize("limite_rango, densidad", [(10**6, 0.1), (1, 0.0), (1, 2.0)],
                         ids=["narrow-plan", "broad-probed-per-ticket", "broad-listed-once"])
def test_a_requesters_name_finds_their_tickets_alone_or_with_words_of_the_text(api, gente, make_user, monkeypatch,
                                                                              limite_rango, densidad):
    """Every word is in the ticket's text or its requester's names: a requester alone, a
    requester and a word of the text, a word in one requester's name and in other tickets' text;
    pages, order and exact totals as the tickets themselves say, in every plan."""
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", limite_rango)
    monkeypatch.setattr(busqueda, "DENSIDAD_POR_FILA", densidad)
    zafiro = make_user(nombre="Zafiro Pérez", username="zp_77")
    _muchos([gente["ana"], gente["beto"]], 300)  # even i: Ana's, with "zafiro"; every 3rd: "ópalo"
    suyos = [Ticket.usuario_id == zafiro.id]
    db.session.execute(insert(Ticket.__table__), [{
        "numero_ticket": f"TKT-{700000 + i:06d}", "titulo": f"Otro {i}", "descripcion": "texto",
        "prioridad": "media", "estado": "abierto", "canal": "web", "categoria_id": db.session.scalar(
            select(Categoria.id).limit(1)), "usuario_id": zafiro.id, "fecha_creacion": datetime(2026, 6, 2, i),
        "fecha_actualizacion": datetime(2026, 6, 2, i)} for i in range(3)])
    acumulados.reconstruir_conteos()
    db.session.commit()
    de_ana, de_beto = [Ticket.usuario_id == gente["ana"].id], [Ticket.usuario_id == gente["beto"].id]
    con_opalo = [Ticket.descripcion.contains("Ópalo")]
    admin = api(gente["admin"])
    for q, orden, donde in (("GÓMEZ", "-fecha_creacion", de_ana), ("gom", "titulo", de_ana),
                            ("ana_g", "fecha_creacion", de_ana), ("gomez opalo", "-fecha_creacion", de_ana + con_opalo),
                            ("ópalo RUIZ", "-numero_ticket", de_beto + con_opalo), ("ruiz zafiro", "titulo", [false()]),
                            ("zafiro", "-fecha_creacion", [or_(Ticket.descripcion.contains("zafiro"), *suyos)]),
                            ("zp_77 otro", "titulo", suyos), ("zafiro perez texto", "titulo", suyos)):
        todos = list(db.session.scalars(select(Ticket.numero_ticket).where(*donde).order_by(
            *tickets.order_by(TicketFilters(q=q, orden=orden)))))
        paginas = []
        for page in range(1, len(todos) // 40 + 2):
            r = admin.get(RUTA["admin"], query_string={"q": q, "orden": orden, "per_page": 40, "page": page})
            assert (r.get_json()["total"], r.get_json()["total_exacto"]) == (len(todos), True), q
            paginas += numeros(r)
        assert paginas == todos, (q, orden)


def test_a_requester_hit_ranks_below_the_title_and_above_the_description(api, gente, make_ticket):
    en_titulo = make_ticket(gente["beto"], titulo="Gómez no puede entrar", descripcion="Nadie sabe.")
    del_solicitante = make_ticket(gente["ana"], titulo="Pantalla", descripcion="Parpadea.")
    en_descripcion = make_ticket(gente["beto"], titulo="Acceso", descripcion="Lo pide la señora Gómez.")
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i, t in enumerate((en_titulo, del_solicitante, en_descripcion)):  # oldest is the best match
        t.fecha_creacion = base + timedelta(days=i)
    db.session.commit()
    assert buscar(api(gente["admin"]), "gomez") == [en_titulo.numero_ticket, del_solicitante.numero_ticket,
                                                    en_descripcion.numero_ticket]


def test_a_renamed_requester_is_found_by_the_new_name_and_username_only(api, gente, make_user, make_ticket):
    zorro = make_user(nombre="Zoila Ortiz", username="zorro77")
    t = make_ticket(zorro, titulo="Monitor", descripcion="Sin imagen.")
    admin = api(gente["admin"])
    assert buscar(admin, "zorro77") == buscar(admin, "ortiz monitor") == [t.numero_ticket]
    zorro.nombre, zorro.username = "Lina Castro", "lince88"
    db.session.commit()
    assert buscar(admin, "zorro77") == buscar(admin, "ortiz") == []
    assert buscar(admin, "lince88") == buscar(admin, "castro monitor") == buscar(admin, "LINA") == [t.numero_ticket]
    assert buscar(api(zorro), "castro", rol="usuario") == [t.numero_ticket]


def test_the_panel_says_more_than_when_the_count_is_capped(login, gente, monkeypatch):
    monkeypatch.setattr(busqueda, "LIMITE_RANGO", 1)
    monkeypatch.setattr(busqueda, "TOPE_TOTAL", 60)
    _muchos([gente["ana"], gente["beto"]], 300)
    c, _ = login(gente["admin"])
    html = c.get("/tickets/admin", query_string={"q": "zafiro", "per_page": 25}).get_data(as_text=True)
    assert "más de 60" in html or "more than 60" in html
    assert 'rel="next"' in html


def test_a_phone_number_finds_its_clients_tickets_with_the_number_and_text_hits(api, gente, make_ticket):
    cliente = Cliente(nombre="Cliente WhatsApp", telefono="+34600123456")
    db.session.add(cliente)
    suyo, otro = make_ticket(gente["ana"], titulo="Pedido"), make_ticket(gente["ana"], titulo="Pedido")
    suyo.cliente_id = cliente.id
    db.session.commit()
    numero = make_ticket(gente["ana"], titulo="Otro")
    numero.numero_ticket = "TKT-123456"
    texto = make_ticket(gente["ana"], titulo="Referencia 123456")
    db.session.commit()
    admin = api(gente["admin"])
    assert buscar(admin, "600 123 456") == [suyo.numero_ticket]
    assert sorted(buscar(admin, "123456")) == sorted([suyo.numero_ticket, numero.numero_ticket, texto.numero_ticket])
    assert otro.numero_ticket not in buscar(admin, "+34 600123456")


@pytest.mark.parametrize("forma", ["{n}", "TKT-{n:06d}", "tkt-{n:06d}", "{n:06d}", "#{n}"])
def test_exact_ticket_number_lookup_still_works(api, gente, make_ticket, forma):
    tickets_ = [make_ticket(gente["ana"], titulo=f"Ticket número {i}") for i in range(3)]
    objetivo = tickets_[1]
    n = int(objetivo.numero_ticket.split("-")[1])
    got = buscar(api(gente["admin"]), forma.format(n=n))
    assert got[0] == objetivo.numero_ticket


def test_index_follows_edits_renames_and_deletes(api, gente, make_ticket):
    t = make_ticket(gente["ana"], titulo="Ratón inalámbrico")
    admin = api(gente["admin"])
    r = admin.put(f"/api/tickets/{t.id}", json={"titulo": "Altavoz sin sonido"})
    assert r.status_code == 200, r.get_json()
    assert buscar(admin, "raton") == []
    assert buscar(admin, "altavoz") == [t.numero_ticket]
    gente["ana"].nombre = "Anabel Quintanilla"
    db.session.commit()
    assert buscar(admin, "quintanilla") == [t.numero_ticket]
    assert buscar(admin, "gomez") == []
    tickets.agregar_mensaje(t, gente["ana"], "Sigue sin sonar el altavoz morado.")
    db.session.commit()
    assert buscar(admin, "morado") == [t.numero_ticket]
    numero = t.numero_ticket
    db.session.delete(t)
    db.session.commit()
    assert buscar(admin, "altavoz") == []
    assert _filas_del_indice() == 0
    assert numero


def _filas_del_indice() -> int:
    return db.session.execute(text(f"SELECT count(*) FROM {busqueda.TABLA_BUSQUEDA}")).scalar_one()


def test_the_index_is_written_in_the_same_transaction(app, gente, make_ticket):
    t = make_ticket(gente["ana"], titulo="Escáner")
    tickets.agregar_mensaje(t, gente["ana"], "palabrarara en el hilo")
    db.session.flush()
    dentro = busqueda.fragmentos([t.id], "palabrarara")
    db.session.rollback()
    assert t.id in dentro  # visible to the writing transaction before commit...
    assert busqueda.fragmentos([t.id], "palabrarara") == {}  # ...and gone with its rollback


HOSTILES = ['"', '""', '"impresora', '*', 'impre*', ':', 'titulo:impresora', '&', '|', '!', '(', ')', '(impresora',
            'NEAR', 'NEAR(a b)', 'a NEAR b', 'AND', 'OR', 'NOT', 'impresora OR', '-', '^', '+', "'", "''", '\\',
            '<->', 'a <-> b', "impresora:*", "{", "}", "[]", "%", "_", "\x01", "\u0301", "🖨️", "ñ", "@@", ";--",
            "' OR 1=1 --", "TKT-", "tkt-", "0", "9" * 30, "a" * 100]


@pytest.mark.parametrize("q", HOSTILES)
def test_operator_laden_input_is_a_200_never_a_500(api, gente, make_ticket, q):
    make_ticket(gente["ana"], titulo="Impresora atascada")
    for c, ruta in ((api(gente["admin"]), "/api/todos-tickets"), (api(gente["ana"]), "/api/mis-tickets")):
        r = c.get(ruta, query_string={"q": q})
        assert r.status_code == 200, (q, r.get_data(as_text=True))


def test_any_text_searches_without_error(app, gente, make_ticket):
    make_ticket(gente["ana"], titulo="Impresora atascada", descripcion="Sale en blanco (mucho)")
    admin = gente["admin"]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
    @given(q=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                     min_size=1, max_size=100))
    def check(q):
        f = TicketFilters(q=q)
        pagina = tickets.listar(admin, f)
        assert pagina.total >= len(pagina.items)
        busqueda.fragmentos([t.id for t in pagina.items], f.q)
        db.session.rollback()

    check()


def test_snippets_are_escaped_and_only_marks_are_markup(gente, make_ticket):
    t = make_ticket(gente["ana"], titulo="Ataque",
                    descripcion='<script>alert(1)</script> <img src=x onerror=alert(2)> impresora "rota" & sucia')
    frag = busqueda.fragmentos([t.id], "impresora")[t.id]
    assert "<mark>impresora</mark>" in str(frag)
    assert "<script>" not in frag and "<img" not in frag
    if BACKEND == "sqlite":  # PostgreSQL's parser drops tags from ts_headline altogether
        assert "&lt;script&gt;" in frag
    # stray markers in stored text never unbalance the markup
    raro = busqueda.resaltar(f"a{busqueda.CIERRA}<b>{busqueda.ABRE}x{busqueda.ABRE}y")
    assert str(raro) == "a&lt;b&gt;<mark>xy</mark>"


@pytest.mark.skipif(BACKEND != "sqlite", reason="FTS5: a word spelled as its terms (consulta_por_fila)")
def test_snippets_are_those_of_the_prefix_however_a_word_is_spelled(gente, make_ticket):
    """Snippets read by the terms a word begins are those of the word's prefix: a long text
    where the window with the most distinct words is far from the first hit."""
    relleno = " ".join(["texto"] * 30)
    ids = [make_ticket(gente["ana"], titulo="Caso", descripcion=f"zafiro {relleno} {cola} {relleno} zafra").id
           for cola in ("zafiros impresora zafiro", "zafarrancho zafiro impresora", "impresión zapato")]
    for q in ("zafiro", "zafi", "zaf", "za", "impre zafi", "zafiro impre", "impresion"):
        prefijo = db.session.execute(
            select(busqueda._fts.c.rowid, func.snippet(literal_column(busqueda.TABLA_BUSQUEDA), 3, busqueda.ABRE,
                                                       busqueda.CIERRA, "…", 16))
            .where(busqueda._match(busqueda.terminos(q)), busqueda._fts.c.rowid.in_(ids)))
        assert busqueda.fragmentos(ids, q) == {i: busqueda.resaltar(f) for i, f in prefijo if f and busqueda.ABRE in f}, q


def test_panel_highlights_the_match(login, gente, make_ticket):
    t = make_ticket(gente["ana"], titulo="Red", descripcion="El switch <b>core</b> de la planta tercera falla.")
    c, _ = login(gente["admin"])
    html = c.get("/tickets/admin", query_string={"q": "tercera"}).get_data(as_text=True)
    assert t.numero_ticket in html
    assert "<mark>tercera</mark>" in html
    assert "<b>core</b>" not in html  # stored markup is text: escaped (SQLite) or dropped (ts_headline)
    if BACKEND == "sqlite":
        assert "&lt;b&gt;core&lt;/b&gt;" in html
    # the live refresh of the rows keeps it
    frag = c.get("/tickets/admin", query_string={"q": "tercera", "fragmento": "1"}).get_data(as_text=True)
    assert "<mark>tercera</mark>" in frag


def test_search_triggers_exist_at_head(app):
    """A later migration that rebuilds tickets/mensajes/usuarios/clientes on SQLite (batch mode)
    drops their triggers: this fails until it recreates them (0014's crear_triggers_sqlite)."""
    esperados = {"busqueda_tickets_ai", "busqueda_tickets_au", "busqueda_mensajes_ai", "busqueda_mensajes_au",
                 "busqueda_mensajes_ad", "busqueda_clientes_au"}
    if db.engine.dialect.name == "postgresql":
        # the requester's names are looked up in usuarios, not copied into the document (0025)
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        esperados |= {"busqueda_tickets_ad", "busqueda_usuarios_au"}  # PostgreSQL deletes by ON DELETE CASCADE
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    assert esperados <= set(db.session.execute(text(sql)).scalars())


def test_postgresql_ignores_accents_with_unaccent(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL configuration")
    assert db.session.execute(text("SELECT to_tsvector('mesa_busqueda', 'Impresión AÑO')::text")).scalar_one() \
        == "'ano':2 'impresion':1"


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite online backup")
def test_the_fts_index_survives_backup_and_restore(app, gente, make_ticket, tmp_path):
    from app import create_app

    t = make_ticket(gente["ana"], titulo="Proyector del aula magna")
    assert app.test_cli_runner().invoke(args=["backup", str(tmp_path / "copia")]).exit_code == 0
    destino = tmp_path / "restaurada.db"
    nuevo = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{destino}",
                        "UPLOAD_DIR": str(tmp_path / "subidas")})
    with nuevo.app_context():
        r = nuevo.test_cli_runner().invoke(args=["restore", str(tmp_path / "copia")])
        db.engine.dispose()
    assert r.exit_code == 0, r.output
    con = sqlite3.connect(destino)
    try:
        assert con.execute("SELECT rowid FROM busqueda_tickets WHERE busqueda_tickets MATCH '\"magna\"*'"
                           ).fetchall() == [(t.id,)]
        con.execute("INSERT INTO tickets (numero_ticket, titulo, descripcion, prioridad, estado, canal, "
                    "categoria_id, fecha_creacion, fecha_actualizacion, version, sla_pausado_segundos) "
                    "VALUES ('TKT-999999', 'Pizarra digital', 'x', 'media', 'abierto', 'web', 1, "
                    "'2026-01-01', '2026-01-01', 1, 0)")
        assert con.execute("SELECT count(*) FROM busqueda_tickets WHERE busqueda_tickets MATCH 'pizarra'"
                           ).fetchone() == (1,)  # and its triggers still work
    finally:
        con.close()


def test_the_migration_indexes_tickets_that_already_exist(fresh_database_url):
    from app import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_database_url, "SECRET_KEY": "t"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="0009")
        ahora = {"f": datetime(2026, 11, 1, 12, 0)}
        db.session.execute(text(
            "INSERT INTO usuarios (id, username, nombre, email, password_hash, rol, activo, idioma, fecha_creacion) "
            "VALUES (1, 'marta', 'Marta Núñez', 'marta@example.test', 'x', 'usuario', true, 'es', :f)"), ahora)
        db.session.execute(text(
            "INSERT INTO clientes (id, nombre, fecha_creacion) VALUES (1, 'Ferretería Peña', :f)"), ahora)
        db.session.execute(text(
            "INSERT INTO tickets (id, numero_ticket, titulo, descripcion, prioridad, estado, canal, categoria_id, "
            "usuario_id, cliente_id, fecha_creacion, fecha_actualizacion, sla_pausado_segundos) VALUES "
            "(1, 'TKT-000001', 'Fotocopiadora atascada', 'Bandeja dos', 'media', 'abierto', 'web', 1, 1, NULL, "
            ":f, :f, 0), "
            "(2, 'TKT-000002', 'Pedido', 'Sin stock', 'media', 'abierto', 'whatsapp', 1, NULL, 1, :f, :f, 0)"),
            ahora)
        db.session.execute(text(
            "INSERT INTO mensajes (ticket_id, autor_id, es_staff, cuerpo, leido, fecha) VALUES "
            "(1, 1, false, 'Huele a quemado', false, :f)"), ahora)
        db.session.execute(text(
            "INSERT INTO notas_internas (ticket_id, autor_id, texto, fecha) VALUES (1, 1, 'secretisimo', :f)"), ahora)
        db.session.commit()
        upgrade(directory=str(ROOT / "migrations"))

        def ids(q):
            return sorted(t.id for t in
                          db.session.execute(db.select(Ticket).where(*busqueda.condicion(q))).scalars())

        assert ids("fotocopiadora") == [1]
        assert ids("bandeja") == [1]
        assert ids("nunez") == [1]
        assert ids("quemado") == [1]  # the thread
        assert ids("ferreteria pena") == [2]  # the client
        assert ids("secretisimo") == []  # never the notes
        db.session.remove()
        db.engine.dispose()
