"""The ticket page's public thread refreshes itself: ?fragmento=hilo serves it alone."""

from __future__ import annotations

import tickets
from models import Mensaje, db


def test_thread_fragment_has_the_new_message_and_marks_it_read(login, make_user, make_ticket):
    ana, ing = make_user(), make_user("ingeniero")
    ticket = make_ticket(ana, ingeniero=ing)
    tickets.agregar_mensaje(ticket, ing, "Mensaje que llega en vivo")
    tickets.agregar_nota(ticket, ing, "nota-interna-secreta")
    db.session.commit()

    client, _ = login(ana)
    resp = client.get(f"/tickets/{ticket.numero_ticket}?fragmento=hilo")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Mensaje que llega en vivo" in html
    assert "<html" not in html and "nota-interna-secreta" not in html
    db.session.expire_all()
    assert db.session.query(Mensaje).one().leido is True


def test_thread_fragment_of_anothers_ticket_is_404(login, make_user, make_ticket):
    ticket = make_ticket(make_user())
    client, _ = login(make_user())
    assert client.get(f"/tickets/{ticket.numero_ticket}?fragmento=hilo").status_code == 404


def test_detail_page_wires_the_thread_for_live_refresh(login, make_user, make_ticket):
    ana = make_user()
    ticket = make_ticket(ana)
    client, _ = login(ana)
    html = client.get(f"/tickets/{ticket.numero_ticket}").get_data(as_text=True)
    assert f'data-refresh="/tickets/{ticket.numero_ticket}?fragmento=hilo"' in html
