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
