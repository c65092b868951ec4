"""Live panels (issue 12, part 5): the event stream also says ``cambio`` when a ticket in the
caller's scope changes, even with no notification for them (admin: all; engineer: assigned to
them; usuario: their own), read from the database through indexes; the long-poll fallback
compares versions; an engineer a ticket leaves hears it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

import notificaciones
from models import Ticket, db, utcnow


def _eventos(cuerpo: str) -> list[tuple[str, dict, str | None]]:
    """(event, data, id) of each SSE event in ``cuerpo``."""
    out = []
    for bloque in cuerpo.split("\n\n"):
        campos = dict(linea.split(": ", 1) for linea in bloque.splitlines() if ": " in linea and not linea.startswith(":"))
        if "event" in campos:
            out.append((campos["event"], json.loads(campos["data"]), campos.get("id")))
    return out


def _escuchar(cliente, accion, hasta=lambda eventos: False, headers=None):
    """Open the stream, wait for its first ``cambio`` (inicial), run ``accion()`` (another
    user's write, through an HTTP client made beforehand: while the stream is open its request
    context is the current one), then read until ``hasta(eventos)`` or until the stream ends by
    itself (SSE_MAX_SECONDS): no timing is asserted, only what arrived."""
    r = cliente.get("/api/eventos/stream", headers=headers or {}, buffered=False)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    cuerpo, hecho = "", False
    try:
        for trozo in r.response:
            cuerpo += trozo.decode() if isinstance(trozo, bytes) else trozo
            eventos = _eventos(cuerpo)
            if not hecho and any(e == "cambio" for e, _, _ in eventos):
                accion()
                hecho = True
            elif hecho and hasta(eventos):
                break
    finally:
        r.close()
    assert hecho, cuerpo
    return _eventos(cuerpo)


def _cambios(eventos) -> list[dict]:
    return [d for e, d, _ in eventos if e == "cambio" and not d["inicial"]]


@pytest.fixture
def corto(app):
    app.config.update(SSE_MAX_SECONDS=4, SSE_POLL_SECONDS=0.05, SSE_HEARTBEAT_SECONDS=10)


def test_admin_hears_a_new_ticket_of_a_usuario_with_no_notification(corto, make_user, api):
    admin, ana = make_user("admin"), make_user()
    como_ana, como_admin = api(ana), api(admin)

    def crear():
        r = como_ana.post("/api/tickets", json={"titulo": "Sin red", "descripcion": "Nada", "categoria": "Redes",
                                                "prioridad": "media"})
        assert r.status_code == 201, r.get_json()

    eventos = _escuchar(como_admin.client, crear, hasta=lambda ev: bool(_cambios(ev)), headers=como_admin.headers)
    inicial = [d for e, d, _ in eventos if e == "cambio" and d["inicial"]]
    assert len(inicial) == 1
    cambios = _cambios(eventos)
    assert cambios and cambios[0]["version"] != inicial[0]["version"]
    assert not [e for e, _, _ in eventos if e == "notificacion"]  # nobody notified the admin
    assert all(i is None for e, _, i in eventos if e == "cambio")  # never moves Last-Event-ID


def test_engineer_hears_changes_in_their_scope_only(corto, make_user, make_ticket, api):
    admin, ing, otro, ana = make_user("admin"), make_user("ingeniero"), make_user("ingeniero"), make_user()
    mio = make_ticket(ana, ingeniero=ing, titulo="Mío")
    ajeno = make_ticket(ana, ingeniero=otro, titulo="Ajeno")
    cliente, como_admin = api(ing), api(admin)

    def cambiar(ticket, prioridad):
        return lambda: como_admin.put(f"/api/tickets/{ticket.id}", json={"prioridad": prioridad})

    # Someone else's ticket changes: the stream runs to its end with only the inicial cambio.
    eventos = _escuchar(cliente.client, cambiar(ajeno, "alta"), headers=cliente.headers)
    assert _cambios(eventos) == [] and [e for e, _, _ in eventos] == ["cambio"]
    # Theirs changes (a priority edit notifies nobody): cambio.
    eventos = _escuchar(cliente.client, cambiar(mio, "alta"), hasta=lambda ev: bool(_cambios(ev)),
                        headers=cliente.headers)
    assert _cambios(eventos) and not [e for e, _, _ in eventos if e == "notificacion"]


def test_usuario_hears_their_own_tickets_only(corto, make_user, make_ticket, api):
    admin, ana, luis = make_user("admin"), make_user(), make_user()
    suyo, de_luis = make_ticket(ana), make_ticket(luis)
    cliente, como_admin = api(ana), api(admin)
    eventos = _escuchar(cliente.client, lambda: como_admin.put(f"/api/tickets/{de_luis.id}", json={"prioridad": "baja"}),
                        headers=cliente.headers)
    assert _cambios(eventos) == []
    eventos = _escuchar(cliente.client, lambda: como_admin.put(f"/api/tickets/{suyo.id}", json={"prioridad": "baja"}),
                        hasta=lambda ev: bool(_cambios(ev)), headers=cliente.headers)
    assert _cambios(eventos)


def test_notifications_still_resume_from_last_event_id(corto, make_user, make_ticket, api):
    admin, ing, ana = make_user("admin"), make_user("ingeniero"), make_user()
    t = make_ticket(ana)
    vieja = notificaciones.crear(ing, "prueba", "vieja")
    db.session.commit()
    cliente, como_admin = api(ing), api(admin)

    def asignar():
        assert como_admin.put(f"/api/tickets/{t.id}/asignar", json={"ingeniero_id": ing.ingeniero.id}).status_code == 200

    eventos = _escuchar(cliente.client, asignar, headers={**cliente.headers, "Last-Event-ID": str(vieja.id)},
                        hasta=lambda ev: any(e == "notificacion" for e, _, _ in ev) and bool(_cambios(ev)))
    notas = [(d, i) for e, d, i in eventos if e == "notificacion"]
    assert [d["tipo"] for d, _ in notas] == ["asignado"] and notas[0][1] == str(notas[0][0]["id"])
    assert _cambios(eventos)  # the ticket entered their scope


def test_an_engineer_a_ticket_leaves_is_told(make_user, make_ticket, api):
    admin, ing, otro = make_user("admin"), make_user("ingeniero"), make_user("ingeniero")
    t = make_ticket(make_user(), ingeniero=ing)
    assert api(admin).put(f"/api/tickets/{t.id}/asignar", json={"ingeniero_id": otro.ingeniero.id}).status_code == 200
    items = api(ing).get("/api/notificaciones").get_json()["items"]
    assert items[0]["tipo"] == "desasignado" and t.numero_ticket in items[0]["texto"]
    assert api(admin).put(f"/api/tickets/{t.id}/asignar", json={"ingeniero_id": None}).status_code == 200
    assert api(otro).get("/api/notificaciones").get_json()["items"][0]["tipo"] == "desasignado"


def test_long_poll_reports_a_change_against_the_known_version(app, make_user, make_ticket, api):
    admin, ana = make_user("admin"), make_user()
    t = make_ticket(ana)
    base = api(admin).get("/api/eventos").get_json()
    assert base["cambio"] is False and base["version"]
    same = api(admin).get(f"/api/eventos?version={base['version']}").get_json()
    assert same["cambio"] is False and same["version"] == base["version"]
    assert api(admin).put(f"/api/tickets/{t.id}", json={"prioridad": "alta"}).status_code == 200
    despues = api(admin).get(f"/api/eventos?version={base['version']}&espera=5").get_json()
    assert despues["cambio"] is True and despues["version"] != base["version"]
    # the usuario's own scope moved too; another usuario's did not
    assert api(make_user()).get("/api/eventos").get_json()["version"] == ""


def test_a_change_committed_late_with_an_older_timestamp_is_noticed(make_user, make_ticket):
    """A transaction that stamped its change before another one but committed after it does not
    move max(fecha_actualizacion); the recent-changes window still catches it."""
    admin = make_user("admin")
    a, b = make_ticket(make_user()), make_ticket(make_user())
    vigia = notificaciones.Vigia(admin.id)
    assert vigia.mirar() is False  # the first look is the baseline
    a.fecha_actualizacion = b.fecha_actualizacion - timedelta(seconds=2)
    db.session.commit()
    assert vigia.mirar() is True
    assert vigia.mirar() is False


def test_scope_queries_are_index_probes(app, make_user):
    admin, ing, ana = make_user("admin"), make_user("ingeniero"), make_user()
    recientes = select(Ticket.id, Ticket.fecha_actualizacion).where(Ticket.fecha_actualizacion >= utcnow())
    for usuario in (admin, ing, ana):
        for stmt in (notificaciones._en_alcance(select(func.max(Ticket.fecha_actualizacion)), usuario),
                     notificaciones._en_alcance(recientes, usuario)):
            sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
            if db.engine.dialect.name == "sqlite":
                plan = " ".join(str(r[-1]) for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
                # "SEARCH ... USING INDEX" (a probe or a range), never "SCAN tickets" (every row)
                assert "SEARCH" in plan and "INDEX" in plan and "SCAN" not in plan, plan
            else:
                db.session.execute(text("SET LOCAL enable_seqscan = off"))
                plan = " ".join(r[0] for r in db.session.execute(text("EXPLAIN " + sql)))
                assert "Index" in plan and "Seq Scan" not in plan, plan
                db.session.rollback()
