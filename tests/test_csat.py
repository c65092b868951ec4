"""CSAT (csat.py, rutas/csat.py): the closing email carries a signed rating link that works
without logging in, once per ticket, and expires; tampering is a 404; results per engineer and
categoría in /api/csat."""

from __future__ import annotations

import re

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

import csat
import email_manager
from models import Envio, Valoracion, db


def _enlace(ticket) -> str:
    envio = db.session.execute(select(Envio).where(Envio.tipo == "ticket_cerrado", Envio.ticket_id == ticket.id)).scalar_one()
    email_manager.renderizar(envio)  # what the sender does before the SMTP send
    return re.search(r"(/valorar/[^?\s]+)\?p=5", envio.cuerpo_texto).group(1)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_closing_email_link_records_one_rating_without_login(app, make_user, make_ticket, api):
    admin, ing, ana = make_user("admin"), make_user("ingeniero"), make_user()
    t = make_ticket(ana, ingeniero=ing, estado="cerrado", categoria="Redes")
    ruta = _enlace(t)
    client = app.test_client()
    pagina = client.get(ruta + "?p=4")
    assert pagina.status_code == 200 and 'value="4" required checked' in pagina.get_data(as_text=True)
    token = _csrf(pagina.get_data(as_text=True))
    r = client.post(ruta, data={"puntuacion": "4", "comentario": "Rápido", "csrf_token": token})
    assert r.status_code == 200 and "data-valorado" in r.get_data(as_text=True)
    # Replay: the same link cannot rate twice.
    r = client.post(ruta, data={"puntuacion": "1", "csrf_token": token})
    assert r.status_code == 409
    fila = db.session.execute(select(Valoracion)).scalar_one()
    assert (fila.puntuacion, fila.comentario, fila.ingeniero_id) == (4, "Rápido", ing.ingeniero.id)
    res = api(admin).get("/api/csat").get_json()
    assert res["valoraciones"] == 1 and res["media"] == 4.0
    assert res["por_ingeniero"] == [{"nombre": ing.nombre, "valoraciones": 1, "media": 4.0}]
    assert res["por_categoria"][0]["nombre"] == "Redes"
    assert api(ing).get("/api/csat").status_code == 403


def test_tampered_or_foreign_signed_link_is_404(app, make_user, make_ticket):
    t = make_ticket(make_user(), ingeniero=make_user("ingeniero"), estado="cerrado")
    ruta = _enlace(t)
    client = app.test_client()
    assert client.get(ruta[:-2] + ("AA" if not ruta.endswith("AA") else "BB")).status_code == 404
    otro = URLSafeTimedSerializer("otra-clave", salt=csat.SALT).dumps({"t": t.id})
    assert client.get(f"/valorar/{otro}").status_code == 404


def test_expired_link_is_410(app, make_user, make_ticket):
    t = make_ticket(make_user(), ingeniero=make_user("ingeniero"), estado="cerrado")
    ruta = _enlace(t)
    app.config["CSAT_MAX_DIAS"] = -1
    assert app.test_client().get(ruta).status_code == 410


def test_requester_rates_from_the_app_only_when_closed(make_user, make_ticket, api):
    ana, ing = make_user(), make_user("ingeniero")
    abierto = make_ticket(ana, ingeniero=ing, estado="en_progreso")
    assert api(ana).post(f"/api/tickets/{abierto.id}/valoracion", json={"puntuacion": 5}).status_code == 409
    t = make_ticket(ana, ingeniero=ing, estado="resuelto")
    assert api(ing).post(f"/api/tickets/{t.id}/valoracion", json={"puntuacion": 5}).status_code == 403
    assert api(ana).post(f"/api/tickets/{t.id}/valoracion", json={"puntuacion": 6}).status_code == 422
    assert api(ana).post(f"/api/tickets/{t.id}/valoracion", json={"puntuacion": 5}).status_code == 201
    assert api(ana).post(f"/api/tickets/{t.id}/valoracion", json={"puntuacion": 3}).status_code == 409
    assert api(make_user()).post(f"/api/tickets/{t.id}/valoracion", json={"puntuacion": 3}).status_code == 404


def test_ticket_page_shows_the_rating_form_to_the_requester(make_user, make_ticket, login):
    ana, ing = make_user(), make_user("ingeniero")
    t = make_ticket(ana, ingeniero=ing, estado="resuelto")
    client, csrf = login(ana)
    page = client.get(f"/tickets/{t.numero_ticket}").get_data(as_text=True)
    assert f"/tickets/{t.numero_ticket}/valorar" in page
    r = client.post(f"/tickets/{t.numero_ticket}/valorar", data={"puntuacion": "5", "csrf_token": csrf})
    assert r.status_code == 302
    assert "data-valorado" in client.get(f"/tickets/{t.numero_ticket}").get_data(as_text=True)
    staff, _ = login(ing)
    assert "data-sla" not in staff.get(f"/tickets/{t.numero_ticket}").get_data(as_text=True)  # resolved: no clock


def test_rating_email_is_delivered_with_its_links_in_both_parts(app, make_user, make_ticket, smtp_server, deliver):
    from smtp_fixture import parts

    ana = make_user()
    t = make_ticket(ana, ingeniero=make_user("ingeniero"), estado="cerrado")
    assert deliver()["fallido"] == 0
    [mensaje] = [m for m in smtp_server.to(ana.email) if "/valorar/" in parts(m)[0]]  # the closing email
    texto, html = parts(mensaje)
    assert "http://" in texto and f"{_enlace(t)}?p=5" in texto and f"{_enlace(t)}?p=1" in html
