"""Reports: the Excel export of ticket lists, the PDF of one ticket, and statistics.

Everything here reads; nothing writes. Lists are exported with the same filters and the
same access scope as the JSON lists (``tickets.filtered_select``). Both the export and
the statistics stay cheap at 100,000 tickets:

- Excel: openpyxl's write-only workbook (rows go straight to a temporary file as they are
  made, strings inline, no shared-string table; see ``_SheetRows``), the query streamed in
  chunks of plain columns (no ORM objects), tags and internal notes fetched with one query
  per chunk, the finished file kept on disk and sent from there. Memory does not grow with
  the number of rows.
- Statistics: SQL aggregates with GROUP BY, never a ticket loaded into Python; the median
  is ``percentile_cont`` on PostgreSQL and an ORDER BY/OFFSET probe on SQLite. An admin's
  statistics of every ticket read no ticket at all where they can: counts and time sums from the
  rollup (``acumulados``), medians and percentiles as probes of partial indexes, the daily series
  as index range counts (280 ms of CPU at 100,000 tickets before, ~25 ms after; 2.4 s and
  ~115 ms at 1,000,000).
"""

from __future__ import annotations

import itertools
import re
import tempfile
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import IO, Literal, Optional, Union
from zipfile import ZIP_DEFLATED, ZipFile

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.worksheet._writer import WorksheetWriter, create_temporary_file
from openpyxl.writer.excel import ExcelWriter
from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import True_

import acumulados
import csat
import sla
import tickets
from errors import ErrorCampo, Forbidden
from models import (
    ESTADOS,
    ESTADOS_ABIERTOS,
    PRIORIDADES,
    Categoria,
    Cliente,
    Etiqueta,
    Ingeniero,
    Mensaje,
    NotaInterna,
    Ticket,
    Usuario,
    Valoracion,
    db,
    idioma_de,
    ticket_etiquetas,
    utcnow,
)
from paneles import CAMPO_LABELS, VALOR_LABELS
from schemas import FechaFiltro, TicketFilters

TIPOS = ("mis", "ingeniero", "todos")
CHUNK = 1000
EXCEL_CELL_MAX = 32_767  # Excel refuses longer cell text
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _quitar_vacios(data):
    """Panels' filter forms send empty fields (``desde=``): an empty field is no filter."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v not in ("", None)}
    return data


class ExcelQuery(TicketFilters):
    """The export's query string: the list filters (pagination is ignored) plus ``tipo``."""

    tipo: Literal["mis", "ingeniero", "todos"]

    @model_validator(mode="before")
    @classmethod
    def _sin_vacios(cls, data):
        return _quitar_vacios(data)


# --- Excel -------------------------------------------------------------------------------

def export_scope(viewer: Usuario, tipo: str):
    """The base WHERE clause of an export, or ``Forbidden`` when the role may not ask for it."""
    if tipo == "todos":
        if viewer.rol != "admin":
            raise Forbidden("Only an admin may export every ticket (tipo=todos).")
        return tickets.scope_clause(viewer)
    if tipo == "ingeniero":
        if viewer.rol != "ingeniero":
            raise Forbidden("Only an engineer may export their assigned tickets (tipo=ingeniero).")
        return tickets.scope_clause(viewer)
    return Ticket.usuario_id == viewer.id


@dataclass(frozen=True)
class Columna:
    titulo: str  # lazily translated: read under force_locale(viewer.idioma)
    kind: str = "text"  # text | date | estado | prioridad | long | notes
    max_width: int = 40


COLUMNAS = [  # named where the SLA breaches export reuses them
    NUMERO := Columna(_l("Number"), max_width=14),
    TITULO := Columna(_l("Title"), "long", 50),
    Columna(_l("Description"), "long", 60),
    Columna(_l("User / client"), max_width=30),
    INGENIERO := Columna(_l("Engineer"), max_width=30),
    CATEGORIA := Columna(_l("Category"), max_width=22),
    PRIORIDAD := Columna(_l("Priority"), "prioridad", 12),
    ESTADO := Columna(_l("Status"), "estado", 14),
    Columna(_l("Channel"), max_width=10),
    Columna(_l("Tags"), max_width=30),
    CREADO := Columna(_l("Created (UTC)"), "date"),
    Columna(_l("Updated (UTC)"), "date"),
    PRIMERA_RESPUESTA := Columna(_l("First response (UTC)"), "date"),
    RESUELTO := Columna(_l("Resolved (UTC)"), "date"),
    Columna(_l("Closed (UTC)"), "date"),
]
COLUMNA_NOTAS = Columna(_l("Internal notes"), "notes", 80)
DATE_FORMAT = "yyyy-mm-dd hh:mm"
DATE_WIDTH = 17

ESTADO_COLORES = {  # (fill, font)
    "abierto": ("DBEAFE", "1E3A8A"),
    "en_progreso": ("FEF3C7", "92400E"),
    "en_espera": ("EDE9FE", "5B21B6"),
    "resuelto": ("D1FAE5", "065F46"),
    "cerrado": ("E5E7EB", "374151"),
}
PRIORIDAD_COLORES = {
    "baja": ("ECFDF5", "047857"),
    "media": ("EFF6FF", "1D4ED8"),
    "alta": ("FFEDD5", "C2410C"),
    "critica": ("DC2626", "FFFFFF"),
}


# Characters XML 1.0 (so xlsx) cannot hold: C0 controls but tab/newline/CR, surrogates,
# U+FFFE/U+FFFF. Any of them in one title would otherwise break the whole file.
XML_INVALIDO = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: str) -> str:
    """Text Excel accepts: only XML characters, at most 32,767 of them."""
    value = XML_INVALIDO.sub("", value)
    return value if len(value) <= EXCEL_CELL_MAX else value[:EXCEL_CELL_MAX - 1] + "…"


def _naive(value: Optional[datetime]) -> Optional[datetime]:
    """Excel dates carry no zone: naive UTC, to the second (the headers say UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


class _Estilos:
    """The workbook's cell styles, registered once; rows refer to them by id."""

    def __init__(self, ws):
        thin = Side(style="thin", color="1F2937")

        def style_id(**styles) -> str:
            cell = Cell(ws, row=1, column=1)
            for name, value in styles.items():
                setattr(cell, name, value)
            return str(cell.style_id)  # adds the style to the workbook's table

        self.header = style_id(font=Font(bold=True, color="FFFFFF"),
                               fill=PatternFill("solid", start_color="1F4E78", end_color="1F4E78"),
                               alignment=Alignment(horizontal="center", vertical="center", wrap_text=True),
                               border=Border(bottom=thin))
        self.date = style_id(number_format=DATE_FORMAT)
        self.notes = style_id(alignment=Alignment(wrap_text=True, vertical="top"))
        self.estado = {k: style_id(fill=PatternFill("solid", start_color=f, end_color=f), font=Font(color=c))
                       for k, (f, c) in ESTADO_COLORES.items()}
        self.prioridad = {k: style_id(fill=PatternFill("solid", start_color=f, end_color=f),
                                      font=Font(color=c, bold=k == "critica"))
                          for k, (f, c) in PRIORIDAD_COLORES.items()}


class _SheetRows:
    """Rows written straight into a write-only sheet's XML file, as text.

    openpyxl's ``append`` builds, binds and serialises one Cell object per value, about
    12 µs each: some 25 s for 100,000 rows x 16 columns, past a WSGI worker's timeout; even one
    lxml element per cell costs most of an export. This writes the same ``<row>``/``<c>``
    markup as strings, a chunk at a time, into the file openpyxl's XML writer streams the sheet
    to (its buffer is flushed first, so the two never interleave); the workbook, styles,
    widths, panes, autofilter and the package stay openpyxl's. It relies on the write-only
    sheet's writer (openpyxl pinned in requirements.txt); the tests read every file back with
    openpyxl. Text is always an inline string, so nothing a user typed can become a formula.
    """

    def __init__(self, ws, n_columns: int):
        archivo = create_temporary_file()  # openpyxl zips it by this path and removes it afterwards
        self._out = open(archivo, "wb", buffering=0)  # noqa: SIM115 - closed by liberar(), after the save
        ws._writer = WorksheetWriter(ws, out=self._out)  # the XML writer opens on the file object...
        ws._writer.out = archivo  # ...which openpyxl's zip writer and cleanup then find by path
        ws._writer.write_top()  # what precedes <sheetData>: views (frozen pane), column widths
        self._ws = ws
        self._xf = ws._writer.xf.send(True)
        self._sheet_data = self._xf.element("sheetData")
        self._sheet_data.__enter__()
        self._letters = [get_column_letter(i) for i in range(1, n_columns + 1)]
        self._pendientes: list[str] = []
        self.rows = 0

    def append(self, values, styles, height: Optional[float] = None) -> None:
        self.rows += 1
        r = str(self.rows)
        partes = [f'<row r="{r}" ht="{height}" customHeight="1">' if height else f'<row r="{r}">']
        for letter, value, style in zip(self._letters, values, styles, strict=True):
            if value is None or value == "":
                continue
            s = f' s="{style}"' if style else ""
            if isinstance(value, str):
                partes.append(f'<c r="{letter}{r}"{s} t="inlineStr"><is>{_texto_xml(value)}</is></c>')
            elif isinstance(value, datetime):
                partes.append(f'<c r="{letter}{r}"{s}><v>{to_excel(value)!r}</v></c>')
            else:
                partes.append(f'<c r="{letter}{r}"{s}><v>{value}</v></c>')
        partes.append("</row>")
        self._pendientes.append("".join(partes))

    def vaciar(self) -> None:
        """Write the rows appended so far (a chunk) to the file."""
        if not self._pendientes:
            return
        # Characters XML cannot hold are dropped from the whole chunk at once (markup has none).
        texto = XML_INVALIDO.sub("", "".join(self._pendientes))
        self._pendientes.clear()
        self._xf.flush()
        self._out.write(texto.encode("utf-8"))

    def close(self) -> None:
        self.vaciar()
        self._sheet_data.__exit__(None, None, None)
        self._ws._writer.xf.send(None)
        self._ws._rows = (_ for _ in ())  # the sheet's close() (on save) then writes only the tail

    def liberar(self) -> None:
        """After the workbook is saved (the sheet's tail is written at save time)."""
        self._out.close()


def _serial_excel(columna):
    """An Excel date serial (days since 1899-12-30, naive UTC) computed by the database: no
    datetime object per value (500,000 of them at 100,000 rows). Milliseconds survive, which is
    what Excel and openpyxl read back."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", columna), Float) / 86400.0 + 25569.0
    return func.julianday(columna) - 2415018.5  # SQLite stores ISO text; julianday parses it in C


def _texto_xml(value: str) -> str:
    """``<t>`` of an inline string: escaped, at most 32,767 characters, spaces at the ends kept
    (the characters XML cannot hold are removed per chunk by ``_SheetRows.vaciar``)."""
    if len(value) > EXCEL_CELL_MAX:
        value = _clean(value)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")  # a raw CR would be read back as a newline
    if value[:1].isspace() or value[-1:].isspace():
        return f'<t xml:space="preserve">{value}</t>'
    return f"<t>{value}</t>"


def _cell(ws, value, style=None) -> Cell:
    """A cell for openpyxl's own ``append`` (the small summary sheet)."""
    if isinstance(value, str):
        value = _clean(value)
    cell = Cell(ws, row=1, column=1, value=value, style_array=style)  # append() sets the real position
    if isinstance(value, str):
        cell.data_type = "s"  # typed text is never a formula
    return cell


def _export_select(viewer: Usuario, f: ExcelQuery, base_scope):
    """The filtered tickets as plain columns (aliases keep the filters' subqueries apart)."""
    solicitante = aliased(Usuario)
    cliente = aliased(Cliente)
    ingeniero = aliased(Ingeniero)
    ingeniero_usuario = aliased(Usuario)
    categoria = aliased(Categoria)
    stmt = tickets.filtered_select(viewer, f, base_scope).with_only_columns(
        Ticket.id, Ticket.numero_ticket, Ticket.titulo, Ticket.descripcion,
        func.coalesce(solicitante.nombre, cliente.nombre).label("solicitante"),
        ingeniero_usuario.nombre.label("ingeniero"), categoria.nombre.label("categoria"),
        Ticket.prioridad, Ticket.estado, Ticket.canal,
        *(_serial_excel(col).label(col.key) for col in (
            Ticket.fecha_creacion, Ticket.fecha_actualizacion, Ticket.fecha_primera_respuesta,
            Ticket.fecha_resolucion, Ticket.fecha_cierre)),
        maintain_column_froms=True,
    )
    return (stmt.outerjoin(solicitante, solicitante.id == Ticket.usuario_id)
            .outerjoin(cliente, cliente.id == Ticket.cliente_id)
            .outerjoin(ingeniero, ingeniero.id == Ticket.ingeniero_id)
            .outerjoin(ingeniero_usuario, ingeniero_usuario.id == ingeniero.usuario_id)
            .join(categoria, categoria.id == Ticket.categoria_id)
            .order_by(*tickets.order_by(f)))


def _etiquetas_de(ids: list[int]) -> dict[int, str]:
    rows = db.session.execute(
        select(ticket_etiquetas.c.ticket_id, Etiqueta.nombre)
        .join(Etiqueta, Etiqueta.id == ticket_etiquetas.c.etiqueta_id)
        .where(ticket_etiquetas.c.ticket_id.in_(ids)).order_by(ticket_etiquetas.c.ticket_id, Etiqueta.nombre))
    out: dict[int, list[str]] = defaultdict(list)
    for ticket_id, nombre in rows:
        out[ticket_id].append(nombre)
    return {k: ", ".join(v) for k, v in out.items()}


def _notas_de(ids: list[int], viewer: Usuario) -> dict[int, str]:
    """Notes of the tickets ``ids`` that ``viewer`` may read (tickets.notas_clause: an engineer's
    own requests in a "mis" export carry none)."""
    rows = db.session.execute(
        select(NotaInterna.ticket_id, NotaInterna.fecha, NotaInterna.texto, Usuario.nombre)
        .join(Usuario, Usuario.id == NotaInterna.autor_id)
        .join(Ticket, Ticket.id == NotaInterna.ticket_id)
        .where(NotaInterna.ticket_id.in_(ids), tickets.notas_clause(viewer))
        .order_by(NotaInterna.ticket_id, NotaInterna.id))
    out: dict[int, list[str]] = defaultdict(list)
    for ticket_id, fecha, texto, autor in rows:
        out[ticket_id].append(f"[{_naive(fecha):%Y-%m-%d %H:%M} UTC] {autor}: {texto}")
    return {k: "\n".join(v) for k, v in out.items()}


def _filas(viewer: Usuario, f: ExcelQuery, base_scope, con_notas: bool) -> Iterator[list[tuple]]:
    """Chunks of export rows (tuples in COLUMNAS order, notes last when asked)."""
    result = db.session.execute(_export_select(viewer, f, base_scope).execution_options(yield_per=CHUNK))
    for chunk in result.partitions():
        ids = [r.id for r in chunk]
        etiquetas = _etiquetas_de(ids)
        notas = _notas_de(ids, viewer) if con_notas else {}
        # By position (the select's order: id, then COLUMNAS up to canal, then the dates): a
        # slice of a Row is a plain tuple, several times cheaper than 15 attribute lookups.
        if con_notas:
            yield [r[1:10] + (etiquetas.get(r[0]),) + r[10:15] + (notas.get(r[0]),) for r in chunk]
        else:
            yield [r[1:10] + (etiquetas.get(r[0]),) + r[10:15] for r in chunk]


def _anchos(columnas: list[Columna], muestra: list[tuple]) -> list[float]:
    """Column widths estimated from the header and the first chunk (write-only mode cannot
    measure afterwards): the longest line, within each column's bounds."""
    anchos = []
    for i, col in enumerate(columnas):
        if col.kind == "date":
            anchos.append(max(DATE_WIDTH, len(str(col.titulo)) * 0.8))
            continue
        largo = max(9, max(len(w) for w in str(col.titulo).split()) + 2)
        for fila in muestra[:500]:
            value = fila[i]
            if col.kind in ("estado", "prioridad"):
                value = str(VALOR_LABELS.get(value, value))
            if value:
                largo = max(largo, max(len(line) for line in str(value).split("\n")) + 2)
        anchos.append(min(largo, col.max_width))
    return anchos


def _titulo_filtros(f: ExcelQuery) -> list[tuple[str, str]]:
    filtros = []
    for campo in ("estado", "prioridad"):
        if getattr(f, campo):
            filtros.append((str(CAMPO_LABELS[campo]), ", ".join(getattr(f, campo))))
    for campo, etiqueta in (("categoria", _("Category")), ("ingeniero_id", _("Engineer (id)")),
                            ("etiqueta", _("Tag")), ("q", _("Search")), ("desde", _("Created from")),
                            ("hasta", _("Created until"))):
        value = getattr(f, campo)
        if value not in (None, ""):
            filtros.append((etiqueta, str(value)))
    return filtros


TIPO_TITULOS = {"mis": _l("My tickets"), "ingeniero": _l("Assigned tickets"), "todos": _l("All tickets")}


def excel_filename(tipo: str, today: Optional[date] = None) -> str:
    return f"tickets_{tipo}_{(today or utcnow().date()).isoformat()}.xlsx"


Progreso = Callable[[int], None]


def contar_filas(viewer: Usuario, f: ExcelQuery) -> int:
    """How many rows the export of ``f`` has (``Forbidden`` as ``exportar_excel``)."""
    stmt = tickets.filtered_select(viewer, f, export_scope(viewer, f.tipo)).with_only_columns(
        func.count(Ticket.id), maintain_column_froms=True).order_by(None)
    return db.session.execute(stmt).scalar_one()


def exportar_excel(viewer: Usuario, f: ExcelQuery, destino: Union[str, IO[bytes], None] = None,
                   progreso: Optional[Progreso] = None) -> IO[bytes]:
    """Write the export to ``destino`` (a path or a binary file; by default an anonymous
    temporary file, returned rewound): headers, values and sheet titles in the viewer's
    language (the file name stays ASCII). ``progreso(rows_written)`` is called after every
    chunk of rows (a background job reports it).

    Raises ``Forbidden`` when the caller's role may not ask for ``f.tipo``.
    """
    with force_locale(idioma_de(viewer.idioma)):
        out = tempfile.TemporaryFile(suffix=".xlsx") if destino is None else destino
        _exportar_excel(viewer, f, out, progreso or (lambda _filas: None))
        if destino is None:
            out.seek(0)
        return out


def _exportar_excel(viewer: Usuario, f: ExcelQuery, out, progreso: Progreso) -> None:
    base_scope = export_scope(viewer, f.tipo)
    con_notas = viewer.es_staff
    columnas = COLUMNAS + ([COLUMNA_NOTAS] if con_notas else [])

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("Tickets"))
    estilos = _Estilos(ws)
    chunks = _filas(viewer, f, base_scope, con_notas)
    primero = next(chunks, [])

    # Column widths and panes precede the rows in the sheet's XML: set them first.
    for i, ancho in enumerate(_anchos(columnas, primero), start=1):
        ws.column_dimensions[get_column_letter(i)].width = ancho
    ws.freeze_panes = "A2"
    hoja = _SheetRows(ws, len(columnas))
    try:
        hoja.append([str(c.titulo) for c in columnas], [estilos.header] * len(columnas), height=32)

        kinds = [c.kind for c in columnas]
        base_styles = [estilos.date if k == "date" else estilos.notes if k == "notes" else None for k in kinds]
        i_estado, i_prioridad = kinds.index("estado"), kinds.index("prioridad")

        etiqueta = {k: str(v) for k, v in VALOR_LABELS.items()}

        def escribir(filas: list[tuple]) -> None:
            for fila in filas:
                values, styles = list(fila), list(base_styles)
                estado, prioridad = fila[i_estado], fila[i_prioridad]
                values[i_estado], styles[i_estado] = etiqueta.get(estado, estado), estilos.estado.get(estado)
                values[i_prioridad] = etiqueta.get(prioridad, prioridad)
                styles[i_prioridad] = estilos.prioridad.get(prioridad)
                hoja.append(values, styles)
            hoja.vaciar()
            progreso(hoja.rows - 1)

        escribir(primero)
        for filas in chunks:
            escribir(filas)
        hoja.close()
        total = hoja.rows - 1
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columnas))}{total + 1}"

        _hoja_resumen(wb, str(TIPO_TITULOS[f.tipo]), utcnow(), viewer, total, _titulo_filtros(f))

        # openpyxl's save with a lighter deflate: the sheet's XML is ~90 MB at 100,000 rows; zlib's
        # default level 6 takes 1.9 s CPU of it (10.3 MB), level 3 0.8 s (12.4 MB).
        with ZipFile(out, "w", ZIP_DEFLATED, allowZip64=True, compresslevel=3) as archivo:
            ExcelWriter(wb, archivo).save()
    finally:
        hoja.liberar()


def _hoja_resumen(wb, informe: str, generado_en, viewer: Usuario, total: int, filtros: list[tuple[str, str]]) -> None:
    """The "Summary" sheet of every export: which report, when, by whom, how many rows, the filters."""
    resumen = wb.create_sheet(_("Summary"))
    resumen.column_dimensions["A"].width = 22
    resumen.column_dimensions["B"].width = 50
    bold = Cell(resumen, row=1, column=1)
    bold.font = Font(bold=True)
    generado = Cell(resumen, row=1, column=1, value=_naive(generado_en))
    generado.number_format = DATE_FORMAT
    for nombre, value in [(_("Report"), informe), (_("Generated (UTC)"), generado), (_("By"), viewer.nombre),
                          (_("Tickets"), total)] + filtros:
        resumen.append([_cell(resumen, nombre, bold._style), _cell(resumen, value) if isinstance(value, str)
                        else value])


# --- statistics ----------------------------------------------------------------------------

class Periodo(BaseModel):
    """Query of /api/estadisticas: an optional creation-date window (both ends included)
    for the counters and times; the daily series always covers the last 30 days."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    desde: Optional[FechaFiltro] = None
    hasta: Optional[FechaFiltro] = None
    agrupacion: Optional[Literal["dia", "semana", "mes"]] = None  # SLA and CSAT per period; None: by span

    @model_validator(mode="before")
    @classmethod
    def _sin_vacios(cls, data):
        return _quitar_vacios(data)

    @property
    def limites(self) -> tuple[Optional[datetime], Optional[datetime]]:
        """[desde 00:00 UTC, the day after hasta 00:00 UTC): both ends' days included."""
        return (datetime.combine(self.desde, time.min, tzinfo=UTC) if self.desde else None,
                datetime.combine(self.hasta + timedelta(days=1), time.min, tzinfo=UTC) if self.hasta else None)

    @model_validator(mode="after")
    def _ordenado(self):
        if self.desde and self.hasta and self.desde > self.hasta:
            raise ErrorCampo("desde must not be after hasta")
        return self


BACKLOG_RANGOS = (("<1d", 0, 1), ("1-3d", 1, 3), ("3-7d", 3, 7), ("7-30d", 7, 30), (">30d", 30, None))
SERIE_DIAS = 30


def _es_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _segundos(fin, inicio):
    """Seconds between two timestamp columns (NULL when ``fin`` is NULL), in SQL."""
    return acumulados.duracion(fin, inicio, db.session.get_bind().dialect.name)


def _tiempo(n, media, mediana) -> dict:
    return {"n": n, "media_segundos": None if media is None else round(float(media), 1),
            "mediana_segundos": None if mediana is None else round(float(mediana), 1)}


def _medianas(where, n1: int, n2: int) -> tuple[Optional[float], Optional[float]]:
    """The medians of the seconds to first response (over its ``n1`` tickets) and to resolution
    (``n2``): the middle value (odd n) or the two middle values (even n) of the sorted durations,
    ORDER BY/OFFSET probes (over every ticket each walks the partial index on the expression
    itself, migration 0020), both in one statement. Two middle values are interpolated as
    PostgreSQL's ``percentile_cont(0.5)`` does, in floats."""
    cuales = tuple(i for i, n in enumerate((n1, n2)) if n)
    if not cuales:
        return None, None
    params = {}
    for i, n in ((0, n1), (1, n2)):
        params[f"l{i}"], params[f"o{i}"] = 2 - n % 2, (n - 1) // 2
    stmt = _sentencia_medianas(cuales, _es_postgresql()) if not where else _construir_medianas(cuales, where)
    medios: dict[int, list[float]] = {i: [] for i in cuales}
    for i, v in db.session.execute(stmt, params):
        medios[i].append(float(v))
    out: list[Optional[float]] = [None, None]
    for i, valores in medios.items():
        valores.sort()  # a UNION ALL keeps no order: the two middle values in order, as one probe gave them
        out[i] = valores[0] + (valores[-1] - valores[0]) * 0.5
    return out[0], out[1]


_FINES = (Ticket.fecha_primera_respuesta, Ticket.fecha_resolucion)


def _construir_medianas(cuales: tuple[int, ...], where=()):
    """``_medianas``' probes (0: first response, 1: resolution), limits and offsets bound as
    l<i> and o<i>."""
    partes = []
    for i in cuales:
        fin = _FINES[i]
        expr = _segundos(fin, Ticket.fecha_creacion)
        sub = (select(literal(i, Integer).label("i"), expr.label("v")).where(*where, fin.is_not(None))
               .order_by(expr).limit(bindparam(f"l{i}")).offset(bindparam(f"o{i}")).subquery())
        partes.append(select(sub.c.i, sub.c.v))
    return union_all(*partes) if len(partes) > 1 else partes[0]


@lru_cache(maxsize=8)
def _sentencia_medianas(cuales: tuple[int, ...], _postgresql: bool):
    """The admin's ``_construir_medianas``, built once per dialect (the duration is its SQL)."""
    return _construir_medianas(cuales)


def _tiempos(where) -> tuple[dict, dict]:
    """Mean and median seconds from creation to first response and to resolution, over the
    tickets that reached each (aggregates skip the NULLs of the others)."""
    primera = _segundos(Ticket.fecha_primera_respuesta, Ticket.fecha_creacion)
    resolucion = _segundos(Ticket.fecha_resolucion, Ticket.fecha_creacion)
    if _es_postgresql():
        mediana = func.percentile_cont(0.5).within_group
        n1, m1, med1, n2, m2, med2 = db.session.execute(select(
            func.count(Ticket.fecha_primera_respuesta), func.avg(primera), mediana(primera),
            func.count(Ticket.fecha_resolucion), func.avg(resolucion), mediana(resolucion)).where(*where)).one()
    else:
        n1, m1, n2, m2 = db.session.execute(select(
            func.count(Ticket.fecha_primera_respuesta), func.avg(primera),
            func.count(Ticket.fecha_resolucion), func.avg(resolucion)).where(*where)).one()
        med1, med2 = _medianas(where, n1, n2)
    return _tiempo(n1, m1, med1), _tiempo(n2, m2, med2)


# The medians of every ticket, {(dialect, n1, n2, the estado rows' tags): (first response,
# resolution)}: a tag changes whenever a time of its tickets does, so a hit is exact (as
# sla._PERCENTILES). Per process. The two probes walk half of each duration index (~4 ms of
# PostgreSQL's CPU at 100,000 tickets, ~40 at 1,000,000); only a change of some time asks again.
_MEDIANAS: dict[tuple, tuple] = {}
MAX_MEDIANAS = 64


def _tiempos_resumen(marginales: dict) -> tuple[dict, dict]:
    """``_tiempos`` of every ticket without reading one: count and sum of the durations from the
    rollup (``acumulados``, microseconds: the mean is exact), the medians by ``_medianas``' probes
    of the durations' own indexes, kept in ``_MEDIANAS`` until some time changes. At 100,000
    tickets the scan it replaced cost ~105 ms of CPU on SQLite (an AVG over every ticket and two
    ORDER BYs of a computed expression); this is two index walks to the middle, a few ms."""
    n1 = us1 = n2 = us2 = 0
    estados = marginales.get("estado", {})
    for v in estados.values():
        n1, us1 = n1 + v["respondidos"], us1 + v["respuesta_us"]
        n2, us2 = n2 + v["resueltos"], us2 + v["resolucion_us"]
    # Every ticket is in one estado row, whose tag changes with its times (``acumulados.ETIQUETA``).
    llave = (db.session.get_bind().dialect.name, n1, n2,
             tuple(sorted((k, v[acumulados.ETIQUETA]) for k, v in estados.items())))
    medianas = _MEDIANAS.get(llave)
    if medianas is None:
        medianas = _medianas([], n1, n2)
        if len(_MEDIANAS) >= MAX_MEDIANAS:
            _MEDIANAS.clear()
        _MEDIANAS[llave] = medianas
    med1, med2 = medianas
    return (_tiempo(n1, Fraction(us1, n1 * 1_000_000) if n1 else None, med1),
            _tiempo(n2, Fraction(us2, n2 * 1_000_000) if n2 else None, med2))


def _conteos(where) -> tuple[dict, dict, dict, dict]:
    """Tickets by estado, prioridad, categoria id and ingeniero id (the last as
    ``(total, abiertos)``), all with GROUP BY in the database."""
    por_estado = dict.fromkeys(ESTADOS, 0)
    por_prioridad = dict.fromkeys(PRIORIDADES, 0)
    por_categoria: dict[int, int] = defaultdict(int)
    por_ingeniero: dict[Optional[int], list[int]] = defaultdict(lambda: [0, 0])
    if _es_postgresql():
        # One scan, hashed into at most a few hundred groups, folded here.
        rows = db.session.execute(
            select(Ticket.estado, Ticket.prioridad, Ticket.categoria_id, Ticket.ingeniero_id, func.count())
            .where(*where).group_by(Ticket.estado, Ticket.prioridad, Ticket.categoria_id, Ticket.ingeniero_id))
        for estado, prioridad, categoria_id, ingeniero_id, n in rows:
            por_estado[estado] += n
            por_prioridad[prioridad] += n
            por_categoria[categoria_id] += n
            por_ingeniero[ingeniero_id][0] += n
            if estado in ESTADOS_ABIERTOS:
                por_ingeniero[ingeniero_id][1] += n
        return por_estado, por_prioridad, dict(por_categoria), {k: tuple(v) for k, v in por_ingeniero.items()}

    # SQLite groups by sorting: one query per dimension lets each ride its own index.
    for columna, counts in ((Ticket.estado, por_estado), (Ticket.prioridad, por_prioridad)):
        counts.update(dict(db.session.execute(select(columna, func.count()).where(*where).group_by(columna)).all()))
    # "+ 0" keeps SQLite from walking the categoria_id index and fetching every row to test
    # the scope; grouping the scoped rows directly is several times faster at 100k.
    cid = (Ticket.categoria_id + literal_column("0")).label("cid")
    por_categoria.update(dict(db.session.execute(select(cid, func.count()).where(*where).group_by(cid)).all()))
    abiertos = func.coalesce(func.sum(case((Ticket.estado.in_(ESTADOS_ABIERTOS), 1), else_=0)), 0)
    rows = db.session.execute(select(Ticket.ingeniero_id, func.count(), abiertos).where(*where)
                              .group_by(Ticket.ingeniero_id))
    return por_estado, por_prioridad, dict(por_categoria), {iid: (n, int(ab)) for iid, n, ab in rows}


def _conteos_resumen(marginales: dict) -> tuple[dict, dict, dict, dict]:
    """``_conteos`` of every ticket, from the rollup kept on every ticket change (``acumulados``,
    ``marginales``): a few dozen rows instead of four GROUP BYs over every ticket."""
    por_estado = dict.fromkeys(ESTADOS, 0)
    por_prioridad = dict.fromkeys(PRIORIDADES, 0)
    por_estado.update({k: v["tickets"] for k, v in marginales["estado"].items()})
    por_prioridad.update({k: v["tickets"] for k, v in marginales["prioridad"].items()})
    por_categoria = {int(k): v["tickets"] for k, v in marginales["categoria"].items()}
    por_ingeniero = {None if k == "" else int(k): (v["tickets"], v["abiertos"])
                     for k, v in marginales["ingeniero"].items()}
    return por_estado, por_prioridad, por_categoria, por_ingeniero


def _serie(scope, hoy: date, dias: int) -> list[dict]:
    """Tickets created and closed on each of the last ``dias`` UTC days: one count per day and
    field, each a range of its index (no date computed per ticket: a GROUP BY date() cost 17 ms
    of CPU at 1,000,000 tickets, the 60 index ranges 3 ms)."""
    inicio = hoy - timedelta(days=dias - 1)
    admin = isinstance(scope, True_)
    if _es_postgresql():
        stmt = _sentencia_serie_pg(dias) if admin else _construir_serie_pg(dias, scope)
        filas = db.session.execute(stmt, {"desde": datetime.combine(inicio, time.min, tzinfo=UTC)}).all()
    else:
        params = {f"d{i}": datetime.combine(inicio + timedelta(days=i), time.min, tzinfo=UTC)
                  for i in range(dias + 1)}
        fila = db.session.execute(_sentencia_serie(dias) if admin else _construir_serie(dias, scope), params).one()
        filas = [(fila[i], fila[dias + i]) for i in range(dias)]
    return [{"fecha": (inicio + timedelta(days=i)).isoformat(), "creados": creados, "cerrados": cerrados}
            for i, (creados, cerrados) in enumerate(filas)]


def _serie_desde_cero(scope, hoy: date, dias: int) -> list[dict]:
    """The reference of ``_serie`` (``desde_cero``): the window's creation and closing instants
    read and counted per UTC day here."""
    inicio = hoy - timedelta(days=dias - 1)
    desde = datetime.combine(inicio, time.min, tzinfo=UTC)
    hasta = desde + timedelta(days=dias)
    cuenta = {inicio + timedelta(days=i): [0, 0] for i in range(dias)}
    en_ventana = [and_(campo >= desde, campo < hasta) for campo in (Ticket.fecha_creacion, Ticket.fecha_cierre)]
    for instantes in db.session.execute(select(Ticket.fecha_creacion, Ticket.fecha_cierre)
                                        .where(scope, or_(*en_ventana))):
        for i, instante in enumerate(instantes):
            if instante is not None and desde <= instante < hasta:
                cuenta[instante.astimezone(UTC).date()][i] += 1
    return [{"fecha": dia.isoformat(), "creados": creados, "cerrados": cerrados}
            for dia, (creados, cerrados) in cuenta.items()]


def _construir_serie(dias: int, scope=None):
    """``_serie``'s counts, creations then closings, the day bounds bound parameters d0..d<dias>."""
    where = [] if scope is None else [scope]
    return select(*(select(func.count()).where(*where, campo >= bindparam(f"d{i}"), campo < bindparam(f"d{i + 1}"))
                    .scalar_subquery() for campo in (Ticket.fecha_creacion, Ticket.fecha_cierre) for i in range(dias)))


@lru_cache(maxsize=4)
def _sentencia_serie(dias: int):
    """The admin's ``_construir_serie``, built once (60 subqueries and their cache key: ~2 ms)."""
    return _construir_serie(dias)


def _construir_serie_pg(dias: int, scope=None):
    """``_serie`` on PostgreSQL: a row per day (generate_series), its two counts correlated
    subqueries, the same index ranges as ``_construir_serie``. PostgreSQL planned the 60
    subqueries anew on every request (a custom plan each time: 3.6 ms of the statement's 4.9 at
    100,000 tickets); this plans two. The days are numbered by literal integers: PostgreSQL then
    knows there are ``dias`` of them (a series of timestamps is estimated at 1,000 rows, which put
    the statement past ``jit_above_cost``: 5-13 ms of JIT per request at 1,000,000 tickets)."""
    un_dia = literal_column("INTERVAL '1 day'")
    numeros = func.generate_series(literal_column("0"), literal_column(str(int(dias) - 1))) \
        .table_valued("i").render_derived(name="dias")
    dia = bindparam("desde", type_=Ticket.fecha_creacion.type) + numeros.c.i * un_dia
    where = [] if scope is None else [scope]
    return select(*(select(func.count()).where(*where, campo >= dia, campo < dia + un_dia).scalar_subquery()
                    for campo in (Ticket.fecha_creacion, Ticket.fecha_cierre))
                  ).select_from(numeros).order_by(numeros.c.i)


@lru_cache(maxsize=4)
def _sentencia_serie_pg(dias: int):
    """The admin's ``_construir_serie_pg``, built once."""
    return _construir_serie_pg(dias)


def _backlog(scope, ahora: datetime) -> list[dict]:
    abiertos = Ticket.estado.in_(ESTADOS_ABIERTOS)
    sumas = []
    for _rango, desde_dias, hasta_dias in BACKLOG_RANGOS:
        cond = [Ticket.fecha_creacion <= ahora - timedelta(days=desde_dias)] if desde_dias else []
        if hasta_dias is not None:
            cond.append(Ticket.fecha_creacion > ahora - timedelta(days=hasta_dias))
        sumas.append(func.coalesce(func.sum(case((and_(*cond), 1), else_=0)), 0))
    row = db.session.execute(select(*sumas).where(scope, abiertos)).one()
    return [{"rango": rango, "total": int(n)} for (rango, _, _), n in zip(BACKLOG_RANGOS, row, strict=True)]


def _backlog_resumen(ahora: datetime, marginales: dict) -> list[dict]:
    """``_backlog`` of every ticket: open tickets created up to each threshold (now - 1, 3, 7, 30
    days) are the rollup's open tickets of the local days before the threshold's day plus the
    open tickets of that day up to the threshold, counted exactly on (estado, fecha_creacion)."""
    zona = acumulados.zona()
    por_dia = sorted(marginales.get("dia", {}).items())  # ISO days: in text order is in date order
    dias = [d for d, _v in por_dia]
    antes = [0, *itertools.accumulate(v["abiertos"] for _d, v in por_dia)]  # open tickets before dias[i]
    umbrales = [ahora - timedelta(days=desde_dias) for _r, desde_dias, _h in BACKLOG_RANGOS[1:]]
    inicios = [datetime.combine(u.astimezone(zona).date(), time.min, tzinfo=zona) for u in umbrales]
    params = {**{f"i{i}": v for i, v in enumerate(inicios)}, **{f"u{i}": v for i, v in enumerate(umbrales)}}
    del_dia = db.session.execute(_sentencia_backlog_del_dia(), params).one()
    hasta = [antes[bisect_left(dias, inicio.date().isoformat())] + n_dia
             for inicio, n_dia in zip(inicios, del_dia, strict=True)]  # open tickets created <= threshold
    total = antes[-1]
    cortes = [total, *hasta, 0]
    return [{"rango": rango, "total": cortes[i] - cortes[i + 1]} for i, (rango, _, _) in enumerate(BACKLOG_RANGOS)]


@lru_cache(maxsize=1)
def _sentencia_backlog_del_dia():
    """``_backlog_resumen``'s open tickets of each threshold's day up to it (from i<k> to u<k>),
    built once."""
    return select(*(select(func.count()).where(Ticket.estado.in_(ESTADOS_ABIERTOS),
                                               Ticket.fecha_creacion >= bindparam(f"i{k}"),
                                               Ticket.fecha_creacion <= bindparam(f"u{k}")).scalar_subquery()
                    for k in range(len(BACKLOG_RANGOS) - 1)))


def _sin_leer(viewer: Usuario, scope) -> int:
    """Public messages from the other side that the caller's side has not read yet."""
    if isinstance(scope, True_):  # an admin's: the statement built once
        return db.session.execute(_sentencia_sin_leer(viewer.es_staff)).scalar_one()
    return db.session.execute(_construir_sin_leer(viewer.es_staff, scope)).scalar_one()


def _construir_sin_leer(es_staff: bool, scope=None):
    del_otro_lado = Mensaje.es_staff.is_(False) if es_staff else Mensaje.es_staff.is_(True)
    return (select(func.count(Mensaje.id)).join(Ticket, Ticket.id == Mensaje.ticket_id)
            .where(*([] if scope is None else [scope]), Mensaje.leido.is_(False), del_otro_lado))


@lru_cache(maxsize=2)
def _sentencia_sin_leer(es_staff: bool):
    return _construir_sin_leer(es_staff)


def estadisticas(viewer: Usuario, periodo: Periodo = Periodo(), ahora: Optional[datetime] = None,
                 desde_cero: bool = False) -> dict:
    """Counters, daily series, response/resolution times, backlog and unread messages, all
    scoped to what ``viewer`` may see (admin all, ingeniero assigned, usuario own).

    An admin's figures over every ticket (no window) read the rollup kept on every ticket change
    (``acumulados``) and the SLA percentiles' partial indexes; ``desde_cero`` recomputes everything
    from the tickets instead (the reference the tests compare with)."""
    ahora = ahora or utcnow()
    scope = tickets.scope_clause(viewer)
    where = [scope]
    inicio, fin = periodo.limites
    if inicio:
        where.append(Ticket.fecha_creacion >= inicio)
    if fin:
        where.append(Ticket.fecha_creacion < fin)

    resumen = viewer.rol == "admin" and not (inicio or fin) and not desde_cero  # every ticket: the rollup
    # The rollup read once for every section that uses it (four reads of ~1,100 rows at 10,000
    # tickets were a tenth of this request's CPU); an admin's backlog reads it in any window.
    marginales = acumulados.marginales() if viewer.rol == "admin" and not desde_cero else None
    if resumen:
        por_estado, por_prioridad, por_categoria, por_ingeniero = _conteos_resumen(marginales)
    else:  # a scope or a window: counted from the tickets (an engineer's or a requester's are few)
        por_estado, por_prioridad, por_categoria, por_ingeniero = _conteos(where)
    # Read once for this section and the SLA's (their groups are the same tickets').
    nombres = categorias, ingenieros = sla.nombres_de(list(por_categoria), [i for i in por_ingeniero if i is not None])
    primera_respuesta, resolucion = _tiempos_resumen(marginales) if resumen else _tiempos(where)
    total = sum(por_estado.values())
    return {
        "alcance": {"admin": "todos", "ingeniero": "asignados"}.get(viewer.rol, "propios"),
        "generado": ahora.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "periodo": {"desde": periodo.desde.isoformat() if periodo.desde else None,
                    "hasta": periodo.hasta.isoformat() if periodo.hasta else None},
        "total": total,
        "abiertos": sum(por_estado[e] for e in ESTADOS_ABIERTOS),
        "por_estado": por_estado,
        "por_prioridad": por_prioridad,
        "por_categoria": sorted(({"categoria": categorias[cid], "total": n} for cid, n in por_categoria.items()),
                                key=lambda c: (-c["total"], c["categoria"])),
        "por_ingeniero": sorted(({"ingeniero_id": iid, "nombre": ingenieros.get(iid), "total": n, "abiertos": ab}
                                 for iid, (n, ab) in por_ingeniero.items()),
                                key=lambda i: (-i["total"], i["nombre"] is None, i["nombre"] or "")),
        "serie_diaria": (_serie_desde_cero if desde_cero else _serie)(scope, ahora.astimezone(UTC).date(), SERIE_DIAS),
        "primera_respuesta": primera_respuesta,
        "resolucion": resolucion,
        "backlog_por_antiguedad": _backlog_resumen(ahora, marginales) if marginales is not None
        else _backlog(scope, ahora),
        "mensajes_sin_leer": _sin_leer(viewer, scope),
        **_sla_y_csat(viewer, periodo, where, ahora, desde_cero, marginales, nombres),
    }


def _sla_y_csat(viewer: Usuario, periodo: Periodo, where: list, ahora: datetime, desde_cero: bool = False,
                marginales: Optional[dict] = None, nombres: Optional[tuple[dict, dict]] = None) -> dict:
    """SLA metrics of the tickets in ``where`` and the CSAT of the ratings given in the window:
    an admin's of everything, an engineer's of their assigned tickets and their own ratings; a
    usuario sees neither (they are staff performance figures)."""
    if not viewer.es_staff:
        return {"sla": None, "csat": None}
    metricas = sla.metricas(filtro=where, agrupacion=periodo.agrupacion, ahora=ahora, desde_cero=desde_cero,
                            marginales=marginales, nombres=nombres)
    filtro = []
    if viewer.rol != "admin":
        filtro.append(Valoracion.ingeniero_id == (viewer.ingeniero.id if viewer.ingeniero else -1))
    inicio, fin = periodo.limites
    if inicio:
        filtro.append(Valoracion.fecha >= inicio)
    if fin:
        filtro.append(Valoracion.fecha < fin)
    return {"sla": metricas, "csat": csat.resultados(filtro=filtro, agrupacion=metricas["agrupacion"])}


# --- SLA breaches (Excel) -----------------------------------------------------------------------

COLUMNAS_INCUMPLIMIENTOS = [
    NUMERO, TITULO, PRIORIDAD, CATEGORIA, INGENIERO, ESTADO, CREADO,
    Columna(_l("First response due (UTC)"), "date"), PRIMERA_RESPUESTA,
    Columna(_l("First response: business minutes over"), max_width=18),
    Columna(_l("Resolution due (UTC)"), "date"), RESUELTO,
    Columna(_l("Resolution: business minutes over"), max_width=18),
]


def incumplimientos_filename(today: Optional[date] = None) -> str:
    return f"incumplimientos_sla_{(today or utcnow().date()).isoformat()}.xlsx"


def _minutos_de_mas(vence: Optional[datetime], real: Optional[datetime], cumplida: Optional[bool], corriendo: bool,
                    ahora: datetime, cal) -> Optional[float]:
    """Business minutes past a due time: up to when it was reached late, or up to now while the
    clock runs past it. Due times already include the paused time before them, so this is the
    running time beyond the target."""
    if vence is None:
        return None
    if cumplida is False and real is not None:
        return round(sla.segundos_habiles(vence, real, cal) / 60, 1)
    if real is None and corriendo and vence < ahora:
        return round(sla.segundos_habiles(vence, ahora, cal) / 60, 1)
    return None


def _filas_incumplimientos(periodo: Periodo, ahora: datetime) -> Iterator[list[tuple]]:
    """Chunks of breached tickets created in the window (``sla.incumplido_clause``), oldest first."""
    cal = sla.calendario()
    ingeniero_usuario = aliased(Usuario)
    stmt = (select(Ticket.numero_ticket, Ticket.titulo, Ticket.prioridad, Categoria.nombre.label("categoria"),
                   ingeniero_usuario.nombre.label("ingeniero"), Ticket.estado, Ticket.fecha_creacion,
                   Ticket.sla_primera_respuesta_vence, Ticket.fecha_primera_respuesta,
                   Ticket.sla_primera_respuesta_cumplida, Ticket.sla_resolucion_vence, Ticket.fecha_resolucion,
                   Ticket.sla_resolucion_cumplida)
            .join(Categoria, Categoria.id == Ticket.categoria_id)
            .outerjoin(Ingeniero, Ingeniero.id == Ticket.ingeniero_id)
            .outerjoin(ingeniero_usuario, ingeniero_usuario.id == Ingeniero.usuario_id)
            .where(sla.incumplido_clause(ahora)).order_by(Ticket.fecha_creacion, Ticket.id))
    inicio, fin = periodo.limites
    if inicio:
        stmt = stmt.where(Ticket.fecha_creacion >= inicio)
    if fin:
        stmt = stmt.where(Ticket.fecha_creacion < fin)
    for chunk in db.session.execute(stmt.execution_options(yield_per=CHUNK)).partitions():
        filas = []
        for r in chunk:
            corriendo = r.estado in sla.ESTADOS_EN_MARCHA
            filas.append((
                r.numero_ticket, r.titulo, r.prioridad, r.categoria, r.ingeniero or "", r.estado,
                _naive(r.fecha_creacion), _naive(r.sla_primera_respuesta_vence), _naive(r.fecha_primera_respuesta),
                _minutos_de_mas(r.sla_primera_respuesta_vence, r.fecha_primera_respuesta,
                                r.sla_primera_respuesta_cumplida, corriendo, ahora, cal),
                _naive(r.sla_resolucion_vence), _naive(r.fecha_resolucion),
                _minutos_de_mas(r.sla_resolucion_vence, r.fecha_resolucion, r.sla_resolucion_cumplida, corriendo,
                                ahora, cal)))
        yield filas


def exportar_incumplimientos(viewer: Usuario, periodo: Periodo, ahora: Optional[datetime] = None) -> IO[bytes]:
    """The SLA breaches of the tickets created in the window, as an Excel file in the viewer's
    language: tickets that missed their first-response or resolution target, or are past due and
    still open, with due times, actual times and business minutes over. Admin only."""
    if viewer.rol != "admin":
        raise Forbidden("Only an admin may export SLA breaches.")
    with force_locale(idioma_de(viewer.idioma)):
        return _exportar_incumplimientos(viewer, periodo, ahora or utcnow())


def _exportar_incumplimientos(viewer: Usuario, periodo: Periodo, ahora: datetime) -> IO[bytes]:
    columnas = COLUMNAS_INCUMPLIMIENTOS
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("SLA breaches"))
    estilos = _Estilos(ws)
    chunks = _filas_incumplimientos(periodo, ahora)
    primero = next(chunks, [])
    for i, ancho in enumerate(_anchos(columnas, primero), start=1):
        ws.column_dimensions[get_column_letter(i)].width = ancho
    ws.freeze_panes = "A2"
    hoja = _SheetRows(ws, len(columnas))
    hoja.append([str(c.titulo) for c in columnas], [estilos.header] * len(columnas), height=32)
    kinds = [c.kind for c in columnas]
    base_styles = [estilos.date if k == "date" else None for k in kinds]
    i_estado, i_prioridad = kinds.index("estado"), kinds.index("prioridad")
    etiqueta = {k: str(v) for k, v in VALOR_LABELS.items()}
    for filas in itertools.chain([primero], chunks):  # streamed: one chunk in memory at a time
        for fila in filas:
            values, styles = list(fila), list(base_styles)
            estado, prioridad = fila[i_estado], fila[i_prioridad]
            values[i_estado], styles[i_estado] = etiqueta.get(estado, estado), estilos.estado.get(estado)
            values[i_prioridad], styles[i_prioridad] = etiqueta.get(prioridad, prioridad), estilos.prioridad.get(prioridad)
            hoja.append(values, styles)
    hoja.close()
    total = hoja.rows - 1
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columnas))}{total + 1}"

    filtros = []
    if periodo.desde:
        filtros.append((_("Created from"), periodo.desde.isoformat()))
    if periodo.hasta:
        filtros.append((_("Created until"), periodo.hasta.isoformat()))
    _hoja_resumen(wb, _("SLA breaches"), ahora, viewer, total, filtros)
    out = tempfile.TemporaryFile(suffix=".xlsx")
    wb.save(out)
    out.seek(0)
    return out


# --- PDF ------------------------------------------------------------------------------------

def ticket_pdf(ticket_id: int, viewer: Usuario) -> tuple[bytes, str]:
    """The PDF report of one ticket the viewer may see (404 otherwise), and its file name.
    A usuario's copy never has internal notes."""
    from informe_pdf import generar_informe_pdf

    ticket = tickets.get_visible(ticket_id, viewer)
    contenido = generar_informe_pdf(ticket, incluir_notas=tickets.ve_notas(ticket, viewer),
                                    idioma=viewer.idioma)
    return contenido, f"informe_{ticket.numero_ticket}.pdf"
