"""The PDF report (informe_pdf): opens, carries the ticket, survives any text a user can type."""

from __future__ import annotations

from io import BytesIO

from pypdf import PdfReader

import tickets
from informe_pdf import REPLACEMENT, generar_informe_pdf, texto_seguro


def _text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


def test_report_holds_the_ticket_fields_and_history(make_user, make_ticket):
    owner = make_user("usuario", nombre="Ana Pérez")
    engineer = make_user("ingeniero", nombre="Carlos Ruiz")
    ticket = make_ticket(owner, ingeniero=engineer, estado="en_progreso", titulo="Niño ñandú: Ünïcödé €100",
                         prioridad="alta", etiquetas=["vpn", "oficina"])
    text = _text(generar_informe_pdf(ticket))
    for expected in (ticket.numero_ticket, "Niño ñandú: Ünïcödé €100", "Ana Pérez", "Carlos Ruiz", "Hardware",
                     "Alta", "En progreso", "oficina, vpn", "Sale en blanco.", "Historial", "Abierto → En progreso"):
        assert expected in text, expected


def test_cjk_emoji_and_control_characters_are_replaced_not_fatal(make_user, make_ticket):
    ticket = make_ticket(make_user("usuario"), titulo="打印机坏了 🔥🖨️ ok", descripcion="línea\u0007uno\n\tdos \u200d‮fin")
    data = generar_informe_pdf(ticket)
    assert data.startswith(b"%PDF")
    text = _text(data)
    assert "ok" in text and "fin" in text
    assert texto_seguro("a打b🔥c\x00d") == f"a{REPLACEMENT}b{REPLACEMENT}cd"


def test_internal_notes_only_when_asked(make_user, make_ticket):
    engineer = make_user("ingeniero")
    ticket = make_ticket(make_user("usuario"), ingeniero=engineer)
    tickets.agregar_nota(ticket, engineer, "Nota secreta del equipo")
    tickets.agregar_mensaje(ticket, engineer, "Respuesta pública visible")
    assert "Nota secreta" not in _text(generar_informe_pdf(ticket))
    assert "Respuesta pública visible" in _text(generar_informe_pdf(ticket))
    assert "Nota secreta del equipo" in _text(generar_informe_pdf(ticket, incluir_notas=True))


def test_long_text_spans_pages(make_user, make_ticket):
    ticket = make_ticket(make_user("usuario"), descripcion="palabra " * 2000 + "x" * 600)
    assert len(PdfReader(BytesIO(generar_informe_pdf(ticket))).pages) > 1
