"""PDF report of one ticket (fpdf2): header, fields, dates, description, tags, history.

Used by the email sender (the report attached for the notification contacts) and by
``GET /api/tickets/<id>/pdf``. Any text a user can type renders: DejaVu Sans (committed
in static/fonts, license beside it) covers Latin, Greek and Cyrillic; characters it lacks
(CJK, emoji) are replaced by a visible box instead of breaking the document.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from flask_babel import force_locale
from flask_babel import gettext as _
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from models import idioma_de, utcnow
from paneles import EVENTO_LABELS, VALOR_LABELS

FONT_DIR = Path(__file__).resolve().parent / "static" / "fonts"
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"
SYSTEM_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
REPLACEMENT = "\u25a1"  # WHITE SQUARE: present in DejaVu, visibly "something was here"



def _font_path(path: Path) -> Path:
    if path.exists():
        return path
    return SYSTEM_FONT_DIR / path.name


@lru_cache(maxsize=1)
def _covered() -> frozenset[int]:
    """Code points both faces draw (fontTools comes with fpdf2)."""
    from fontTools.ttLib import TTFont

    sets = [set(TTFont(str(_font_path(p)), lazy=True).getBestCmap()) for p in (FONT_REGULAR, FONT_BOLD)]
    return frozenset(sets[0] & sets[1])


def texto_seguro(value) -> str:
    """``value`` as text the embedded font can draw: unknown glyphs become a box, control
    characters go, tabs become spaces."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value)).replace("\r\n", "\n").replace("\t", "    ")
    covered = _covered()
    out = []
    for ch in text:
        if ch == "\n" or ord(ch) in covered:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Mn"):
            continue  # controls, zero-width joiners, variation selectors: nothing to draw
        else:
            out.append(REPLACEMENT)
    return "".join(out)


def _fecha(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


class _Informe(FPDF):
    def __init__(self, numero: str):
        super().__init__(format="A4")
        self.numero = numero
        self.add_font("DejaVu", "", str(_font_path(FONT_REGULAR)))
        self.add_font("DejaVu", "B", str(_font_path(FONT_BOLD)))
        self.set_auto_page_break(True, margin=18)
        self.set_margins(18, 18, 18)

    def footer(self):
        self.set_y(-12)
        self.set_font("DejaVu", "", 8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 5, f"Mesa de Ayuda · {self.numero} · " + _("Page") + f" {self.page_no()}/{{nb}}", align="C")

    def seccion(self, titulo: str) -> None:
        self.ln(3)
        self.set_font("DejaVu", "B", 12)
        self.set_text_color(13, 71, 161)
        self.cell(0, 8, texto_seguro(titulo), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(13, 71, 161)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(2)
        self.set_text_color(33, 33, 33)

    def campo(self, etiqueta: str, valor: str) -> None:
        self.set_font("DejaVu", "B", 10)
        self.cell(48, 6, texto_seguro(etiqueta))
        self.set_font("DejaVu", "", 10)
        self.multi_cell(0, 6, texto_seguro(valor) or "—", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def parrafo(self, texto: str, size: int = 10) -> None:
        self.set_font("DejaVu", "", size)
        self.multi_cell(0, 5.5, texto_seguro(texto) or "—", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def entrada(self, cabecera: str, texto: str | None = None) -> None:
        self.set_font("DejaVu", "B", 9)
        self.set_text_color(90, 90, 90)
        self.multi_cell(0, 5, texto_seguro(cabecera), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(33, 33, 33)
        if texto:
            self.parrafo(texto, 10)
        self.ln(1.5)


def _evento_texto(evento) -> str:
    valores = VALOR_LABELS
    nombre = str(EVENTO_LABELS.get(evento.tipo, evento.tipo))
    if evento.tipo == "creado":
        return nombre
    if evento.campo and (evento.antes is not None or evento.despues is not None):
        antes = str(valores.get(evento.antes, evento.antes)) if evento.antes is not None else "—"
        despues = str(valores.get(evento.despues, evento.despues)) if evento.despues is not None else "—"
        return f"{nombre} · {evento.campo}: {antes} → {despues}"
    return nombre


def generar_informe_pdf(ticket, incluir_notas: bool = False, idioma: str = "es") -> bytes:
    """The PDF report of ``ticket`` as bytes. Internal notes (and their history entries) only
    when ``incluir_notas``: the requester's copy and the contacts' copy never have them."""
    with force_locale(idioma_de(idioma)):
        return _generar(ticket, incluir_notas)


def _generar(ticket, incluir_notas: bool) -> bytes:
    valores = VALOR_LABELS
    pdf = _Informe(ticket.numero_ticket or "")
    pdf.set_title(texto_seguro(f"{ticket.numero_ticket} {ticket.titulo}"))
    pdf.set_creator("Mesa de Ayuda")
    pdf.add_page()

    pdf.set_font("DejaVu", "", 10)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 6, texto_seguro(_("Ticket report") + f" · {ticket.numero_ticket}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "B", 16)
    pdf.set_text_color(33, 33, 33)
    pdf.multi_cell(0, 8, texto_seguro(ticket.titulo), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)

    ingeniero = ticket.ingeniero.usuario.nombre if ticket.ingeniero is not None else _('Unassigned')
    pdf.campo(_('Requester'), ticket.solicitante_nombre)
    pdf.campo(_('Category'), ticket.categoria.nombre if ticket.categoria else "")
    pdf.campo(_('Priority'), str(valores.get(ticket.prioridad, ticket.prioridad)))
    pdf.campo(_('Status'), str(valores.get(ticket.estado, ticket.estado)))
    pdf.campo(_('Assigned engineer'), ingeniero)
    pdf.campo(_('Channel'), ticket.canal)
    pdf.campo(_('Tags'), ", ".join(e.nombre for e in ticket.etiquetas) or _('None'))

    pdf.seccion(_('Dates'))
    for etiqueta, valor in ((_("Created"), ticket.fecha_creacion), (_("Last update"), ticket.fecha_actualizacion),
                            (_("First response"), ticket.fecha_primera_respuesta),
                            (_("Resolved"), ticket.fecha_resolucion), (_("Closed"), ticket.fecha_cierre)):
        pdf.campo(etiqueta, _fecha(valor))

    pdf.seccion(_('Description'))
    pdf.parrafo(ticket.descripcion)

    if ticket.mensajes:
        pdf.seccion(_('Conversation'))
        for m in ticket.mensajes:
            pdf.entrada(f"{_fecha(m.fecha)} · {m.autor_nombre}", m.cuerpo)

    if incluir_notas and ticket.notas:
        pdf.seccion(_('Internal notes'))
        for n in ticket.notas:
            pdf.entrada(f"{_fecha(n.fecha)} · {n.autor.nombre if n.autor else ''}", n.texto)

    eventos = [e for e in ticket.eventos if incluir_notas or not e.interno]
    pdf.seccion(_('History'))
    for e in eventos:
        actor = e.actor.nombre if e.actor is not None else _('System')
        pdf.entrada(f"{_fecha(e.fecha)} · {actor}", _evento_texto(e))

    pdf.ln(4)
    pdf.set_font("DejaVu", "", 8)
    pdf.set_text_color(120, 120, 120)
    pdf.cell(0, 5, _("Generated on") + f" {_fecha(utcnow())}")
    return bytes(pdf.output())
