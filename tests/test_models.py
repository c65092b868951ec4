"""Model-level rules: client phones in E.164, aware UTC dates."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy.exc import IntegrityError

from models import Cliente, Ticket, db, normalizar_telefono


@pytest.mark.parametrize("raw,expected", [
    ("+34 600 111 222", "+34600111222"),
    ("600-111-222", "+34600111222"),          # DEFAULT_PHONE_REGION=ES
    ("0034 600 111 222", "+34600111222"),
    ("+57 (300) 123 4567", "+573001234567"),
    ("whatsapp:+1 415 555 2671".split(":")[1], "+14155552671"),
])
def test_phone_numbers_normalize_to_e164(raw, expected):
    assert normalizar_telefono(raw, "ES") == expected


@pytest.mark.parametrize("raw", ["hola", "12", "+34 6"])
def test_not_a_phone_is_refused(raw):
    with pytest.raises(ValueError):
        normalizar_telefono(raw, "ES")


def test_one_client_per_phone_however_typed(app):
    db.session.add(Cliente(nombre="Ferretería Sol", telefono="+34 600 111 222"))
    db.session.commit()
    assert db.session.query(Cliente).one().telefono == "+34600111222"
    db.session.add(Cliente(nombre="Otro", telefono="600111222"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_dates_come_back_as_aware_utc(api, make_user):
    body = api(make_user()).post("/api/tickets", json={"titulo": "t", "descripcion": "d", "categoria": "General"}).get_json()
    db.session.expire_all()
    ticket = db.session.get(Ticket, body["id"])
    assert ticket.fecha_creacion.tzinfo == UTC
    assert body["fecha_creacion"].endswith("Z")


def test_ticket_may_be_requested_by_a_client(app):
    import tickets
    from schemas import TicketCreate

    cliente = Cliente(nombre="Clínica Norte", telefono="+34 611 222 333", email="info@clinica.es")
    db.session.add(cliente)
    ticket = tickets.crear_ticket(TicketCreate(titulo="Factura", descripcion="No llegó", categoria="Facturación"),
                                  cliente=cliente, canal="whatsapp")
    db.session.commit()
    assert (ticket.usuario_id, ticket.cliente_id, ticket.canal) == (None, cliente.id, "whatsapp")
    assert ticket.solicitante_nombre == "Clínica Norte"


def _sentencias_durante(accion) -> list[str]:
    from sqlalchemy import event

    vistas: list[str] = []

    def anotar(conn, cursor, statement, *_):
        vistas.append(statement)

    event.listen(db.engine, "before_cursor_execute", anotar)
    try:
        accion()
    finally:
        event.remove(db.engine, "before_cursor_execute", anotar)
    return vistas


def test_a_link_to_a_stored_row_sets_its_key_and_loads_it_without_sql(app, make_user, make_ticket):
    from werkzeug.local import LocalProxy

    from models import Evento, enlazar

    ana = make_user()
    ticket = make_ticket(ana)
    evento = Evento(tipo="nota", interno=False)
    for fila in (ticket, ana):  # loaded again after their commit, before what is measured
        db.session.refresh(fila)
    # Through a proxy (current_user is one): the row itself is linked, not the proxy.
    sql = _sentencias_durante(lambda: (enlazar(evento, "ticket", ticket), enlazar(evento, "actor", LocalProxy(lambda: ana))))
    assert sql == []
    assert (evento.ticket_id, evento.actor_id) == (ticket.id, ana.id)
    assert evento.ticket is ticket and evento.actor is ana
    enlazar(evento, "actor", None)
    assert evento.actor_id is None and evento.actor is None
    db.session.add(evento)
    db.session.commit()
    db.session.expire_all()
    assert (db.session.get(Evento, evento.id).ticket_id, db.session.get(Evento, evento.id).actor_id) == (ticket.id, None)


def test_a_link_to_a_row_not_stored_yet_goes_through_the_relationship(app, make_user):
    from models import Categoria, enlazar

    cliente = Cliente(nombre="Sin guardar", telefono="+34600999888")
    db.session.add(cliente)
    ticket = Ticket(titulo="t", descripcion="d", prioridad="baja", estado="abierto", canal="whatsapp")
    enlazar(ticket, "cliente", cliente)  # no id yet: the flush fills cliente_id
    enlazar(ticket, "categoria", db.session.query(Categoria).first())
    ticket.numero_ticket = "TKT-LINK"
    db.session.add(ticket)
    db.session.flush()
    assert cliente.id is not None and ticket.cliente_id == cliente.id


def test_history_recorded_on_a_ticket_whose_history_is_loaded_joins_it_in_memory(app, make_user, make_ticket):
    import tickets

    ana = make_user()
    ticket = make_ticket(ana)
    antes = list(ticket.eventos)  # loaded
    evento = tickets.record(ticket, ana, "comentario")
    assert ticket.eventos == [*antes, evento]
    db.session.commit()
    db.session.expire_all()
    assert [e.tipo for e in ticket.eventos][-1] == "comentario"
