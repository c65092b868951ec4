"""The settings a creation reads are kept per process under a number the database draws anew
whenever one of them changes (generacion.py, migration 0026): a creation reads that number
instead of five settings rows, and a change made anywhere (another process, a raw UPDATE) holds
from the next creation on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

import tickets
from errors import ValidationFailed
from models import Envio, Ticket, db
from schemas import TicketCreate

NUEVO = {"titulo": "La VPN no conecta", "descripcion": "Desde esta mañana.", "categoria": "Redes",
         "prioridad": "alta"}
# The settings rows a creation read before (each a statement of its own).
AJUSTES = ("FROM categorias", "FROM politicas_sla", "FROM configuracion_sla", "FROM configuracion_email",
           "WHERE usuarios.rol =")


def _ajustes_sla(asignacion_automatica: bool) -> None:
    """Configuración > SLA's row (a test starts without it), 24x7."""
    _por_fuera("DELETE FROM configuracion_sla")
    _por_fuera("INSERT INTO configuracion_sla (id, horario, feriados, umbral_aviso_pct, minutos_critico_sin_asignar, "
               "asignacion_automatica) VALUES (1, :horario, '[]', 80, 15, :auto)",
               horario='{"0": ["00:00", "24:00"], "1": ["00:00", "24:00"], "2": ["00:00", "24:00"], '
                       '"3": ["00:00", "24:00"], "4": ["00:00", "24:00"], "5": ["00:00", "24:00"], '
                       '"6": ["00:00", "24:00"]}', auto=asignacion_automatica)


def _numero() -> int:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT valor FROM generacion_ajustes WHERE id = 1")).scalar_one()


def _por_fuera(sql: str, **params) -> None:
    """A change made outside the application's sessions, as psql or another process would."""
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.fixture
def sentencias(app):
    """The statements run on the app's engine while the test runs."""
    vistas: list[str] = []

    def anotar(conn, cursor, statement, *_):
        vistas.append(statement)

    event.listen(db.engine, "before_cursor_execute", anotar)
    yield vistas
    event.remove(db.engine, "before_cursor_execute", anotar)


def test_a_creation_reads_the_settings_once_per_change_then_only_their_number(api, make_user, sentencias):
    make_user("admin")
    cliente = api(make_user())
    assert cliente.post("/api/tickets", json=NUEVO).status_code == 201
    leidos = [a for a in AJUSTES if any(a in s for s in sentencias)]
    assert leidos == list(AJUSTES)  # the first creation after a change reads every setting

    sentencias.clear()
    assert cliente.post("/api/tickets", json=NUEVO).status_code == 201
    assert [a for a in AJUSTES if any(a in s for s in sentencias)] == []
    assert sum("FROM generacion_ajustes" in s for s in sentencias) == 1

    _por_fuera("UPDATE politicas_sla SET resolucion_min = resolucion_min WHERE 1 = 0")  # a statement, no row
    _por_fuera("UPDATE categorias SET descripcion = 'otra' WHERE nombre = 'Redes'")
    sentencias.clear()
    assert cliente.post("/api/tickets", json=NUEVO).status_code == 201
    assert [a for a in AJUSTES if any(a in s for s in sentencias)] == list(AJUSTES)


@pytest.mark.parametrize("cambio", [
    "INSERT INTO categorias (nombre, activa) VALUES ('Nueva', true)",
    "UPDATE categorias SET activa = false WHERE nombre = 'Redes'",
    "DELETE FROM categorias WHERE nombre = 'Redes'",
    "INSERT INTO politicas_sla (prioridad, primera_respuesta_min, resolucion_min) VALUES ('baja', 1, 2)",
    "UPDATE configuracion_sla SET umbral_aviso_pct = 50",
    "DELETE FROM configuracion_sla",
    "INSERT INTO configuracion_email (id, contactos_notificacion) VALUES (1, 'x@empresa.test')",
    "UPDATE usuarios SET email = 'nuevo@empresa.test' WHERE rol = 'admin'",
    "UPDATE usuarios SET activo = false WHERE rol = 'admin'",
    "UPDATE usuarios SET rol = 'admin' WHERE rol = 'usuario'",
])
def test_every_change_to_a_watched_setting_draws_a_new_number(make_user, cambio):
    make_user("admin"), make_user("usuario")
    _ajustes_sla(asignacion_automatica=True)
    antes = _numero()
    _por_fuera(cambio)
    assert _numero() != antes


def test_a_password_change_or_a_new_ticket_keeps_the_number(make_user, make_ticket):
    ana = make_user()
    antes = _numero()
    _por_fuera("UPDATE usuarios SET password_hash = 'x', sesion_version = sesion_version + 1 WHERE id = :id", id=ana.id)
    make_ticket(ana)
    db.session.commit()
    assert _numero() == antes


def test_a_category_deactivated_by_another_process_refuses_the_next_creation(api, make_user):
    cliente = api(make_user())
    assert cliente.post("/api/tickets", json=NUEVO).status_code == 201
    _por_fuera("UPDATE categorias SET activa = false WHERE nombre = 'Redes'")
    r = cliente.post("/api/tickets", json=NUEVO)
    assert r.status_code == 422
    assert "categoria" in r.get_json()["error"]["fields"]


def test_a_policy_added_by_another_process_sets_the_next_due_times(api, make_user):
    cliente = api(make_user())
    assert cliente.post("/api/tickets", json=NUEVO).status_code == 201
    _por_fuera("INSERT INTO politicas_sla (prioridad, categoria_id, primera_respuesta_min, resolucion_min) "
               "VALUES ('alta', NULL, 7, 70)")
    cuerpo = cliente.post("/api/tickets", json=NUEVO).get_json()
    db.session.expire_all()
    ticket = db.session.get(Ticket, cuerpo["id"])
    # The default calendar is 24x7: business minutes are calendar minutes.
    assert abs(ticket.sla_primera_respuesta_vence - ticket.fecha_creacion - timedelta(minutes=7)) < timedelta(seconds=1)
    assert abs(ticket.sla_resolucion_vence - ticket.fecha_creacion - timedelta(minutes=70)) < timedelta(seconds=1)


def _destinatarios(ticket_id: int) -> set[str]:
    db.session.expire_all()
    filas = db.session.execute(select(Envio.destinatarios).where(Envio.ticket_id == ticket_id)).scalars()
    return {d for fila in filas for d in fila.split(", ")}


def test_contacts_and_admins_changed_by_another_process_get_the_next_creations_email(api, make_user):
    admin = make_user("admin", email="jefa@empresa.test")
    cliente = api(make_user())
    primero = cliente.post("/api/tickets", json=NUEVO).get_json()
    assert "jefa@empresa.test" in _destinatarios(primero["id"])

    _por_fuera("UPDATE usuarios SET email = 'jefa.nueva@empresa.test' WHERE id = :id", id=admin.id)
    _por_fuera("INSERT INTO configuracion_email (id, contactos_notificacion) VALUES (1, 'gerencia@empresa.test')")
    segundo = cliente.post("/api/tickets", json=NUEVO).get_json()
    recibe = _destinatarios(segundo["id"])
    assert {"jefa.nueva@empresa.test", "gerencia@empresa.test"} <= recibe
    assert "jefa@empresa.test" not in recibe

    _por_fuera("UPDATE usuarios SET activo = false WHERE id = :id", id=admin.id)
    tercero = cliente.post("/api/tickets", json=NUEVO).get_json()
    assert "jefa.nueva@empresa.test" not in _destinatarios(tercero["id"])


def test_automatic_assignment_switched_on_by_another_process_assigns_the_next_ticket(api, make_user):
    _ajustes_sla(asignacion_automatica=False)
    ingeniero = make_user("ingeniero")
    cliente = api(make_user())
    assert cliente.post("/api/tickets", json=NUEVO).get_json()["ingeniero"] is None
    _por_fuera("UPDATE configuracion_sla SET asignacion_automatica = true")
    asignado = cliente.post("/api/tickets", json=NUEVO).get_json()["ingeniero"]
    assert asignado is not None and asignado["id"] == ingeniero.ingeniero.id


def test_a_category_created_in_the_same_transaction_is_found_by_its_creation(api, make_user):
    ana = make_user()
    assert api(ana).post("/api/tickets", json=NUEVO).status_code == 201  # the categories are kept now
    with pytest.raises(ValidationFailed):  # kept now, as unknown, under the number this transaction read
        tickets.categoria_por_nombre("Impresoras 3D")
    tickets.crear_categoria("Impresoras 3D")  # flushed, not committed
    ticket = tickets.crear_ticket(TicketCreate(**{**NUEVO, "categoria": "impresoras 3d"}), usuario=ana)
    assert ticket.categoria.nombre == "Impresoras 3D"
    db.session.rollback()
    r = api(ana).post("/api/tickets", json={**NUEVO, "categoria": "Impresoras 3D"})
    assert r.status_code == 422  # rolled back: it never existed for anyone else


def test_a_state_change_recomputes_the_clock_from_the_kept_settings(api, make_user, sentencias):
    admin = api(make_user("admin"))
    ticket = admin.post("/api/tickets", json=NUEVO).get_json()  # the settings are kept now
    sentencias.clear()
    assert admin.put(f"/api/tickets/{ticket['id']}/estado", json={"estado": "en_progreso"}).status_code == 200
    assert [a for a in ("FROM politicas_sla", "FROM configuracion_sla") if any(a in s for s in sentencias)] == []
    # The calendar, the settings and the policy of the recomputation: one read of the number.
    assert 1 <= sum("FROM generacion_ajustes" in s for s in sentencias) <= 2
