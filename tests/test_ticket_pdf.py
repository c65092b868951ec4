"""PDF per ticket: who may download it, and what each copy says (text read back with pypdf)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

import tickets
from models import db

NOTE_TEXT = "Clave del router en el cajón azul"


@pytest.fixture
def ticket(roles, make_ticket):
    t = make_ticket(roles["owner"], roles["engineer"], "en_progreso", titulo="Correo no sincroniza",
                    descripcion="Outlook pide la contraseña cada hora.")
    tickets.agregar_nota(t, roles["engineer"], NOTE_TEXT)
    tickets.agregar_mensaje(t, roles["engineer"], "¿Puedes probar desde el móvil?")
    db.session.commit()
    return t


def pdf_text(resp) -> str:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(resp.data))
    return "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("who", ["engineer", "admin"])
def test_staff_copy_has_the_ticket_and_internal_notes(roles, ticket, api, who):
    text = flat(pdf_text(api(roles[who]).get(f"/api/tickets/{ticket.id}/pdf")))
    assert ticket.numero_ticket in text
    assert "Correo no sincroniza" in text
    assert "Outlook pide la contraseña cada hora." in text
    assert NOTE_TEXT in text


def test_usuario_copy_has_no_internal_notes(roles, ticket, api):
    resp = api(roles["owner"]).get(f"/api/tickets/{ticket.id}/pdf")
    text = flat(pdf_text(resp))
    assert ticket.numero_ticket in text and "Correo no sincroniza" in text
    assert "¿Puedes probar desde el móvil?" in text  # the public thread is theirs to keep
    assert NOTE_TEXT not in text
    assert resp.headers["Content-Disposition"] == f"attachment; filename=informe_{ticket.numero_ticket}.pdf"


@pytest.mark.parametrize("who", ["other_user", "other_engineer"])
def test_ticket_outside_the_callers_scope_is_404(roles, ticket, api, who):
    resp = api(roles[who]).get(f"/api/tickets/{ticket.id}/pdf")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_unknown_ticket_is_404_and_anonymous_is_401(roles, api, client):
    assert api(roles["admin"]).get("/api/tickets/999999/pdf").status_code == 404
    assert client.get("/api/tickets/1/pdf").status_code == 401


def test_ticket_page_links_to_the_pdf(roles, ticket, login):
    c, _ = login(roles["owner"])
    html = c.get(f"/tickets/{ticket.numero_ticket}").get_data(as_text=True)
    assert f'href="/api/tickets/{ticket.id}/pdf"' in html
    assert NOTE_TEXT not in flat(pdf_text(c.get(f"/api/tickets/{ticket.id}/pdf")))
