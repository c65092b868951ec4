"""One translation system: the Excel export, the PDF report, emails and domain errors follow
the reader's language through the Flask-Babel catalogs."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from pypdf import PdfReader
from smtp_fixture import parts

from models import db

URL = "/api/tickets/descargar/excel?tipo=todos"


def _xlsx(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Disposition"].isascii()
    return load_workbook(io.BytesIO(resp.data))


def _tickets(make_user, make_ticket):
    owner = make_user()
    engineer = make_user("ingeniero")
    make_ticket(owner, engineer, "en_progreso", prioridad="alta")
    make_ticket(owner, prioridad="critica")
    db.session.commit()


def test_english_admin_downloads_english_excel(make_user, make_ticket, api):
    _tickets(make_user, make_ticket)
    wb = _xlsx(api(make_user("admin", idioma="en")).get(URL))
    assert wb.sheetnames == ["Tickets", "Summary"]
    ws = wb["Tickets"]
    cols = [c.value for c in ws[1]]
    assert cols[:10] == ["Number", "Title", "Description", "User / client", "Engineer", "Category", "Priority",
                         "Status", "Channel", "Tags"]
    assert cols[-1] == "Internal notes"
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert {r[cols.index("Status")] for r in rows} == {"In progress", "Open"}
    assert {r[cols.index("Priority")] for r in rows} == {"High", "Critical"}
    resumen = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True)}
    assert resumen["Report"] == "All tickets" and resumen["Tickets"] == 2


def test_spanish_admin_downloads_spanish_excel(make_user, make_ticket, api):
    _tickets(make_user, make_ticket)
    wb = _xlsx(api(make_user("admin", idioma="es")).get(URL))
    assert wb.sheetnames == ["Tickets", "Resumen"]
    ws = wb["Tickets"]
    cols = [c.value for c in ws[1]]
    assert cols[:3] == ["Número", "Título", "Descripción"] and cols[-1] == "Notas internas"
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert {r[cols.index("Estado")] for r in rows} == {"En progreso", "Abierto"}
    assert {r[cols.index("Prioridad")] for r in rows} == {"Alta", "Crítica"}
    assert {r[0]: r[1] for r in wb["Resumen"].iter_rows(values_only=True)}["Informe"] == "Todos los tickets"


def _pdf_text(resp) -> str:
    assert resp.status_code == 200
    return " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(resp.data)).pages).split())


def test_pdf_follows_the_viewers_language(make_user, make_ticket, api):
    owner = make_user()
    ticket = make_ticket(owner, make_user("ingeniero"), "en_progreso", prioridad="alta")
    db.session.commit()
    en = _pdf_text(api(make_user("admin", idioma="en")).get(f"/api/tickets/{ticket.id}/pdf"))
    es = _pdf_text(api(make_user("admin", idioma="es")).get(f"/api/tickets/{ticket.id}/pdf"))
    assert "Ticket report" in en and "Requester" in en and "In progress" in en and "High" in en
    assert "Informe de ticket" in es and "Solicitante" in es and "En progreso" in es and "Alta" in es


def test_english_recipient_gets_english_email(make_user, api, smtp_server, deliver):
    owner = make_user("usuario", email="john@empresa.test", nombre="John", idioma="en")
    resp = api(owner).post("/api/tickets", json={"titulo": "Printer jam", "descripcion": "Paper stuck.",
                                                 "categoria": "Hardware"})
    assert resp.status_code == 201
    numero = resp.get_json()["numero_ticket"]
    deliver()
    receipt, = smtp_server.to("john@empresa.test")
    assert receipt["Subject"] == f"[{numero}] Your ticket was received - #{numero}"
    text, html = parts(receipt)
    assert "Hello John," in text and "View the ticket" in html and "Status: Open" in text


def test_domain_errors_are_translated_for_the_reader(make_user, make_ticket, api):
    owner = make_user()
    ticket = make_ticket(owner, make_user("ingeniero"), "cerrado")
    db.session.commit()
    for idioma, esperado in (("en", "That status change is not possible"),
                             ("es", "Ese cambio de estado no es posible")):
        admin = make_user("admin", idioma=idioma)
        r = api(admin).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_espera"})
        err = r.get_json()["error"]
        assert r.status_code == 409 and err["code"] == "invalid_transition"
        assert err["message"].startswith(esperado) and "cerrado" in err["message"]


def test_field_messages_of_a_422_are_in_the_readers_language(make_user, api, login):
    """pydantic speaks English; each field's message goes through the catalogs like the error's."""
    body = {"titulo": "Impresora", "categoria": "General", "prioridad": "urgentisima"}
    es = api(make_user(idioma="es")).post("/api/tickets", json=body).get_json()["error"]
    en = api(make_user(idioma="en")).post("/api/tickets", json=body).get_json()["error"]
    assert es["message"] == "Algunos campos no son válidos." and en["message"] == "Some fields are not valid."
    assert es["fields"]["prioridad"].startswith("Debe ser uno de:") and "'critica'" in es["fields"]["prioridad"]
    assert en["fields"]["prioridad"].startswith("Must be one of:")
    assert es["fields"]["descripcion"] == "Este campo es obligatorio."
    assert en["fields"]["descripcion"] == "This field is required."
    # a validator of ours (ErrorCampo) keeps its values inside the translated sentence
    admin = make_user("admin", idioma="es")
    r = api(admin).put("/api/configuracion/email", json={"contactos_notificacion": "no-es-correo, a@b.es"})
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"]["contactos_notificacion"] == \
        "Direcciones de correo no válidas: no-es-correo"
