"""Creating a ticket writes it once (number, due times and history in the creation's own rows),
answers what a fresh read returns, and assigns by bounded loads; the benchmark's bare route
exists only in the benchmark's app (issue 13, creation throughput and one ticket's overhead)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Categoria, ConfiguracionSLA, Envio, Evento, PoliticaSLA, Ticket, db

NUEVO = {"titulo": "La VPN no conecta", "descripcion": "Desde esta mañana.", "categoria": "Redes",
         "prioridad": "alta"}


@pytest.mark.parametrize("rol", ["usuario", "admin"])  # an ingeniero sees only assigned tickets
def test_created_ticket_json_and_etag_are_what_a_fresh_read_returns(api, make_user, rol):
    cliente = api(make_user(rol))
    creado = cliente.post("/api/tickets", json={**NUEVO, "etiquetas": ["vpn", "oficina"]})
    assert creado.status_code == 201
    leido = cliente.get(f"/api/tickets/{creado.get_json()['id']}")
    assert leido.status_code == 200
    assert creado.get_json() == leido.get_json()
    assert creado.headers["ETag"] == leido.headers["ETag"]
    assert ("notas_internas" in creado.get_json()) == (rol == "admin")


def test_numbers_follow_the_ids_one_row_version_per_creation(api, make_user):
    cliente = api(make_user())
    cuerpos = [cliente.post("/api/tickets", json=NUEVO).get_json() for _ in range(5)]
    ids = [c["id"] for c in cuerpos]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [c["numero_ticket"] for c in cuerpos] == [f"TKT-{i:06d}" for i in ids]
    db.session.expire_all()
    filas = db.session.execute(select(Ticket).where(Ticket.id.in_(ids))).scalars().all()
    # Written by its INSERT alone: no UPDATE followed it (each one would bump the version).
    assert {t.version for t in filas} == {1}
    assert {t.numero_ticket for t in filas} == {c["numero_ticket"] for c in cuerpos}
    creados = db.session.execute(select(Evento.ticket_id, Evento.despues, Evento.fecha).where(
        Evento.ticket_id.in_(ids), Evento.tipo == "creado")).all()
    assert {(i, d) for i, d, _ in creados} == {(t.id, t.numero_ticket) for t in filas}
    fechas = {t.id: t.fecha_actualizacion for t in filas}
    assert all(fecha == fechas[i] for i, _, fecha in creados)


def test_due_times_at_creation_follow_the_categoria_policy(api, make_user):
    redes = db.session.execute(select(Categoria).where(Categoria.nombre == "Redes")).scalar_one()
    db.session.add_all([PoliticaSLA(prioridad="alta", categoria_id=None, primera_respuesta_min=600, resolucion_min=6000),
                        PoliticaSLA(prioridad="alta", categoria_id=redes.id, primera_respuesta_min=30,
                                    resolucion_min=120)])
    db.session.commit()
    cuerpo = api(make_user()).post("/api/tickets", json=NUEVO).get_json()
    db.session.expire_all()
    ticket = db.session.get(Ticket, cuerpo["id"])
    # The default calendar is 24x7: business minutes are calendar minutes (to the second).
    assert abs(ticket.sla_primera_respuesta_vence - ticket.fecha_creacion - timedelta(minutes=30)) < timedelta(seconds=1)
    assert abs(ticket.sla_resolucion_vence - ticket.fecha_creacion - timedelta(minutes=120)) < timedelta(seconds=1)
    assert ticket.version == 1


@pytest.fixture
def automatica(app):
    db.session.merge(ConfiguracionSLA(id=1, horario={str(d): ["00:00", "24:00"] for d in range(7)}, feriados=[],
                                      umbral_aviso_pct=80, minutos_critico_sin_asignar=15,
                                      asignacion_automatica=True))
    db.session.commit()


def test_only_open_tickets_count_toward_the_cap(automatica, api, make_user, make_ticket):
    ana = make_user()
    ocupado, libre = make_user("ingeniero"), make_user("ingeniero")
    ocupado.ingeniero.max_abiertos, libre.ingeniero.max_abiertos = 2, 3
    db.session.commit()
    for _ in range(4):  # closed work never fills a cap
        make_ticket(ana, ingeniero=libre, estado="cerrado")
    make_ticket(ana, ingeniero=ocupado)
    make_ticket(ana, ingeniero=ocupado, prioridad="baja")
    make_ticket(ana, ingeniero=libre, prioridad="critica")
    cliente = api(ana)
    # ocupado is at its cap (2 open), libre has 1 open of 3 despite 4 closed.
    asignados = [cliente.post("/api/tickets", json=NUEVO).get_json()["ingeniero_id"] for _ in range(3)]
    assert asignados == [libre.ingeniero.id, libre.ingeniero.id, None]


def test_an_automatically_assigned_ticket_is_written_assigned_by_its_insert(automatica, api, make_user):
    ing = make_user("ingeniero", nombre="Inés Ingeniera")
    creado = api(make_user()).post("/api/tickets", json=NUEVO)
    assert creado.status_code == 201 and creado.get_json()["ingeniero_id"] == ing.ingeniero.id
    db.session.expire_all()
    ticket = db.session.get(Ticket, creado.get_json()["id"])
    assert ticket.version == 1  # no UPDATE followed the INSERT
    assert creado.headers["ETag"] == api(ing).get(f"/api/tickets/{ticket.id}").headers["ETag"]
    eventos = db.session.execute(select(Evento.tipo, Evento.despues, Evento.fecha).where(
        Evento.ticket_id == ticket.id).order_by(Evento.id)).all()
    assert [(t, d) for t, d, _ in eventos][:2] == [("creado", ticket.numero_ticket), ("asignacion", "Inés Ingeniera")]
    assert eventos[2][0] == "asignacion_automatica" and eventos[2][1].startswith("asignado automáticamente")
    assert {f for _, _, f in eventos} == {ticket.fecha_actualizacion}
    asignado = db.session.execute(select(Envio).where(Envio.tipo == "ticket_asignado")).scalar_one()
    assert asignado.destinatarios == ing.email and asignado.datos["ticket"]["ingeniero"] is not None


def test_one_admin_turning_new_ticket_emails_off_leaves_the_others(api, make_user):
    apagado, encendido = make_user("admin"), make_user("admin")
    assert api(apagado).put("/api/me/preferencias", json={"email": {"nuevo_ticket": False}}).status_code == 200
    assert api(make_user()).post("/api/tickets", json=NUEVO).status_code == 201
    destinatarios = db.session.execute(select(Envio.destinatarios).where(Envio.tipo == "nuevo_ticket")).scalars().all()
    assert encendido.email in destinatarios and apagado.email not in destinatarios


def test_the_bare_benchmark_route_exists_only_in_the_benchmarks_app(app, database_url):
    from bench import app_bench

    assert app.test_client().get("/_bare/ticket").status_code == 404
    banco = app_bench.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "t"})
    respuesta = banco.test_client().get("/_bare/ticket")
    assert respuesta.status_code == 200 and respuesta.get_json()["numero_ticket"] == "TKT-004242"
    creado = banco.test_client().post("/_bare/ticket", json={"titulo": "suelo"})  # bench_peer's floor of a POST
    assert creado.status_code == 201 and creado.get_json()["titulo"] == "suelo"


def test_the_benchmarks_creation_floor_replays_a_real_creations_sql_for_new_tickets(app, api, database_url, make_user):
    """``/_bare/crear`` (bench_peer's and reparto's floor of a creation) records one creation of
    Mesa's and sends its statements again: each call is a whole new ticket, numbered by its own id,
    with its history and its emails, as the recorded creation wrote them."""
    from bench import app_bench

    autor = make_user()
    cabecera = api(autor).headers
    banco = app_bench.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "t"})
    cliente = banco.test_client()
    ids = [cliente.post("/_bare/crear", json=NUEVO, headers=cabecera).get_json()["id"] for _ in range(3)]
    db.session.expire_all()
    tickets = {t.id: t for t in db.session.execute(select(Ticket)).scalars()}
    assert len(tickets) == 5  # the recording's two real creations and three replays
    grabado = max(set(tickets) - set(ids))
    assert ids == sorted(ids) and min(ids) > grabado
    for i in ids:
        assert tickets[i].numero_ticket == f"TKT-{i:06d}" and tickets[i].usuario_id == autor.id
        assert tickets[i].titulo == NUEVO["titulo"] and tickets[i].prioridad == "alta"
        historia = db.session.execute(select(Evento.tipo, Evento.despues).where(Evento.ticket_id == i)).all()
        assert ("creado", f"TKT-{i:06d}") in historia
        asuntos = db.session.execute(select(Envio.asunto).where(Envio.ticket_id == i)).scalars().all()
        assert asuntos and all(f"TKT-{i:06d}" in a and f"TKT-{grabado:06d}" not in a for a in asuntos)
    assert len(db.session.execute(select(Evento.id).where(Evento.ticket_id == grabado)).all()) == len(historia)


def test_a_creation_reads_everything_before_its_insert(automatica, app, api, make_user, monkeypatch):
    """On SQLite the creation takes the write lock for its number and every other creation waits
    for its COMMIT: the people, settings and alert reads of the receivers happen before it, so
    from there to the COMMIT only rows are written (the rollup's share of a new ticket included)."""
    from sqlalchemy import event

    from models import AlertaSLA

    monkeypatch.setitem(app.config, "TICKETS_NOTIFY_EMAIL", "jefatura@example.test")
    admin, otro = make_user("admin"), make_user("admin")
    api(otro).put("/api/me/preferencias", json={"email": {"nuevo_ticket": False}})
    lleno = make_user("ingeniero")
    lleno.ingeniero.max_abiertos = 0  # nobody can take tickets: each creation is "sin candidato"
    db.session.commit()
    cliente = api(make_user())
    assert cliente.post("/api/tickets", json=NUEVO).status_code == 201  # this one alerts the admins
    sentencias = []
    escuchar = lambda _c, _cur, sql, *_a: sentencias.append(" ".join(sql.split()).upper())  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", escuchar)
    try:
        creado = cliente.post("/api/tickets", json={**NUEVO, "titulo": "Otra VPN"})
    finally:
        event.remove(db.engine, "before_cursor_execute", escuchar)
    assert creado.status_code == 201
    # SQLite: the write lock is taken for the number (BEGIN IMMEDIATE, then max(id) + 1).
    escritura = next(i for i, s in enumerate(sentencias) if s.startswith(("BEGIN IMMEDIATE", "INSERT INTO TICKETS")))
    despues = [s.split(" (")[0] for s in sentencias[escritura + 1:]]
    numero = "SELECT COALESCE(MAX(TICKETS.ID)"
    assert [s for s in despues if not s.startswith(("INSERT", "COMMIT", "RELEASE", numero))] == [], despues
    assert sum(s.startswith("INSERT INTO TICKETS") for s in despues) <= 1
    # ... and the rows are all there: the receipt, the admins' email (the one who turned it off
    # excluded), the contacts' report, the history; one alert for the period, not two.
    ticket_id = creado.get_json()["id"]
    correos = dict(db.session.execute(select(Envio.tipo, Envio.destinatarios).where(Envio.ticket_id == ticket_id)).all())
    assert correos["nuevo_ticket"] == admin.email and correos["informe_contactos"] == "jefatura@example.test"
    assert "ticket_recibido" in correos
    tipos = db.session.execute(select(Evento.tipo).where(Evento.ticket_id == ticket_id)).scalars().all()
    assert sorted(tipos) == ["asignacion_automatica", "creado"]
    assert db.session.execute(select(AlertaSLA.ticket_id).where(AlertaSLA.tipo == "sin_candidato")).scalars().all() \
        == [ticket_id - 1]


def test_a_state_change_writes_its_ticket_once_with_its_sla_clock(app, make_user, make_ticket):
    """The SLA clock, due times and outcome of a state change go into the change's own UPDATE
    (``estado_por_cambiar``): one UPDATE of the ticket and its version +1 per change."""
    from sqlalchemy import event

    import tickets

    admin, ana = make_user("admin"), make_user()
    ticket = make_ticket(ana)
    updates = []

    def contar(conn, cursor, sql, parametros, context, executemany):
        if sql.lstrip().upper().startswith("UPDATE TICKETS"):
            updates.append(sql)

    event.listen(db.engine, "before_cursor_execute", contar)
    try:
        for nuevo in ("en_progreso", "en_espera", "en_progreso", "resuelto", "abierto"):
            antes, updates[:] = ticket.version, []
            tickets.cambiar_estado(ticket, admin, nuevo)
            db.session.commit()
            assert len(updates) == 1, (nuevo, updates)
            db.session.expire_all()
            assert ticket.version == antes + 1 and ticket.estado == nuevo
            if nuevo == "en_espera":
                assert ticket.sla_pausa_desde is not None  # the clock stopped in that same UPDATE
            elif nuevo == "resuelto":
                assert ticket.sla_resolucion_segundos is not None and ticket.sla_resolucion_cumplida is True
            else:
                assert ticket.sla_pausa_desde is None and ticket.sla_resolucion_segundos is None
    finally:
        event.remove(db.engine, "before_cursor_execute", contar)
    assert ticket.fecha_primera_respuesta is not None and ticket.sla_primera_respuesta_segundos is not None


def test_the_ticket_page_names_the_automatic_assignment_in_the_history(automatica, api, login, make_user):
    import re

    make_user("ingeniero", nombre="Inés Ingeniera")
    numero = api(make_user()).post("/api/tickets", json=NUEVO).get_json()["numero_ticket"]
    cliente, _ = login(make_user("admin"))
    html = cliente.get(f"/tickets/{numero}").get_data(as_text=True)
    item = re.search(r'data-evento="asignacion_automatica">(.*?)</li>', html, re.S).group(1)
    texto = " ".join(re.sub(r"<[^>]+>", " ", item).split())
    assert "Asignación automática: asignado automáticamente" in texto
    assert "asignacion_automatica" not in texto  # the event's code name is not shown
