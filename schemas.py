"""Request bodies and query strings of the JSON API (pydantic), and how models serialize.

Pydantic checks types, enums and lengths; ``parse`` turns its errors into one 422
``ValidationFailed`` naming each bad field, so a rejected request writes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Literal, Optional, TypeVar

import email_validator
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from errors import N_, ErrorCampo, ValidationFailed, traducir
from models import CANALES_SALIDA, ESTADOS, ESTADOS_SALIDA, PRIORIDADES

# Small offices run intranet mail domains (``empresa.local``) and tests use ``.test``;
# email-validator rejects both as special-use by default. Everything else stays strict.
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if d not in ("local", "test")]

Prioridad = Literal["baja", "media", "alta", "critica"]
Estado = Literal["abierto", "en_progreso", "en_espera", "resuelto", "cerrado"]
Rol = Literal["usuario", "ingeniero", "admin"]
Idioma = Literal["es", "en"]

Titulo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Texto = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
Nombre = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]{3,80}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=200)]
EtiquetaNombre = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)]
Telefono = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
# Ids are 32-bit integers in the database; a larger number would be a driver error (a 500
# on PostgreSQL), so it is refused here as a 422 (and by the URL converter as a 404).
MAX_ID = 2**31 - 1
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
LinkId = DbId
# A ticket's optimistic-concurrency version (Ticket.version, also its ETag).
Version = Annotated[int, Field(ge=1, le=MAX_ID, description=(
    "The ticket's `version` as you read it: if it has changed since, nothing is written and the answer "
    "is 409 `stale_version` (the `If-Match` header does the same with 412)."))]


def _no_nul(value):
    """PostgreSQL refuses NUL in text (SQLite stores it): refuse it everywhere, as a 422."""
    if isinstance(value, str) and "\x00" in value:
        raise ErrorCampo("Must not contain NUL characters.")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value):
        return _no_nul(value)


class TicketCreate(Body):
    titulo: Titulo
    descripcion: Texto
    categoria: Nombre
    prioridad: Prioridad = "media"
    etiquetas: list[EtiquetaNombre] = Field(default_factory=list, max_length=10)
    conversacion_whatsapp_id: Optional[LinkId] = None
    comunicacion_email_id: Optional[LinkId] = None


class ConVersion(Body):
    """A ticket write that may name the version it was based on (``tickets.exigir_version``)."""

    version: Optional[Version] = None


class TicketUpdate(ConVersion):
    titulo: Optional[Titulo] = None
    descripcion: Optional[Texto] = None
    categoria: Optional[Nombre] = None
    prioridad: Optional[Prioridad] = None
    etiquetas: Optional[list[EtiquetaNombre]] = Field(default=None, max_length=10)
    conversacion_whatsapp_id: Optional[LinkId] = None
    comunicacion_email_id: Optional[LinkId] = None


class EstadoChange(ConVersion):
    estado: Estado


class NotaCreate(ConVersion):
    nota: Texto = Field(validation_alias=AliasChoices("nota", "notas"))  # seed 001 sends "notas"


class MensajeCreate(Body):
    cuerpo: Texto


class Asignacion(ConVersion):
    ingeniero_id: Optional[DbId] = Field(...)


class CategoriaCreate(Body):
    nombre: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    descripcion: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]] = None


class UsuarioCreate(Body):
    username: Username
    nombre: Nombre
    email: EmailStr
    password: Password
    rol: Rol = "usuario"
    idioma: Idioma = "es"
    especialidad: Optional[Nombre] = None
    telefono: Optional[Telefono] = None


class IngenieroCreate(Body):
    username: Username
    nombre: Nombre
    email: EmailStr
    password: Password
    especialidad: Nombre
    telefono: Optional[Telefono] = None
    disponible: bool = True
    idioma: Idioma = "es"


class IngenieroUpdate(Body):
    nombre: Optional[Nombre] = None
    email: Optional[EmailStr] = None
    especialidad: Optional[Nombre] = None
    telefono: Optional[Telefono] = None
    disponible: Optional[bool] = None
    activo: Optional[bool] = None


class TokenRequest(Body):
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    nombre: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]] = None


ORDENABLES = ("fecha_creacion", "fecha_actualizacion", "prioridad", "estado", "numero_ticket", "titulo")
MAX_PER_PAGE = 100


# Dates a filter may name: a sane window, so that "end of day" arithmetic and the database's
# timestamp range never overflow (hasta=9999-12-31 was a 500). Outside it: 422.
FECHA_MIN, FECHA_MAX = date(2000, 1, 1), date(2100, 12, 31)
FechaFiltro = Annotated[date, Field(ge=FECHA_MIN, le=FECHA_MAX)]


class TicketFilters(BaseModel):
    """Query string of every ticket list (and, later, the Excel export)."""

    model_config = ConfigDict(extra="ignore")

    _refuse_nul = field_validator("*", mode="before")(classmethod(lambda cls, value: _no_nul(value)))

    estado: list[Estado] = Field(default_factory=list)
    prioridad: list[Prioridad] = Field(default_factory=list)
    categoria: Optional[str] = None
    ingeniero_id: Optional[DbId | Literal["ninguno"]] = None
    etiqueta: Optional[str] = None
    q: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]] = None
    desde: Optional[FechaFiltro] = None
    hasta: Optional[FechaFiltro] = None
    orden: str = "-fecha_creacion"
    page: int = Field(default=1, ge=1, le=100000)
    per_page: int = Field(default=20, ge=1, le=10**6)
    # Keyset paging (paneles.paginar_por_clave): the ``next_cursor`` of the previous page; ``page``
    # is then ignored. Opaque and signed; one that was not issued for this list is a 400.
    cursor: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]] = None

    @field_validator("estado", "prioridad", mode="before")
    @classmethod
    def _split_csv(cls, value):
        if isinstance(value, str):
            return [v for v in (p.strip() for p in value.split(",")) if v]
        return value

    @field_validator("orden")
    @classmethod
    def _orden_conocido(cls, value: str) -> str:
        if value.lstrip("-") not in ORDENABLES:
            raise ErrorCampo("orden must be one of %(opciones)s (prefix - for descending)", opciones=", ".join(ORDENABLES))
        return value

    @field_validator("per_page")
    @classmethod
    def _clamp(cls, value: int) -> int:
        return min(value, MAX_PER_PAGE)

    @property
    def desde_dt(self) -> Optional[datetime]:
        return datetime.combine(self.desde, time.min, tzinfo=UTC) if self.desde else None

    @property
    def hasta_dt(self) -> Optional[datetime]:
        """End of the ``hasta`` day, exclusive: a ticket created that day is included."""
        if self.hasta is None:
            return None
        return datetime.combine(self.hasta, time.max, tzinfo=UTC)


B = TypeVar("B", bound=BaseModel)


def parse(model: type[B], data) -> B:
    """Validate ``data`` against ``model`` or raise one 422 that names every bad field."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = {}
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "body"
            fields.setdefault(name, mensaje_de_campo(err))
        raise ValidationFailed("Some fields are not valid.", fields=fields) from None


# pydantic's error types → msgids of the catalogs, so a field's message is in the reader's language
# (pydantic only speaks English). ctx values fill the placeholders; unknown types get the generic one.
MENSAJES_CAMPO = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not accepted here."),
    "string_too_short": N_("Too short: at least %(min_length)s characters."),
    "string_too_long": N_("Too long: at most %(max_length)s characters."),
    "too_short": N_("Too few items: at least %(min_length)s."),
    "too_long": N_("Too many items: at most %(max_length)s."),
    "greater_than_equal": N_("Must be at least %(ge)s."),
    "greater_than": N_("Must be greater than %(gt)s."),
    "less_than_equal": N_("Must be at most %(le)s."),
    "less_than": N_("Must be less than %(lt)s."),
    "literal_error": N_("Must be one of: %(expected)s."),
    "enum": N_("Must be one of: %(expected)s."),
    "int_parsing": N_("Must be a whole number."),
    "int_type": N_("Must be a whole number."),
    "int_from_float": N_("Must be a whole number."),
    "float_parsing": N_("Must be a number."),
    "float_type": N_("Must be a number."),
    "bool_parsing": N_("Must be true or false."),
    "bool_type": N_("Must be true or false."),
    "string_type": N_("Must be text."),
    "list_type": N_("Must be a list."),
    "dict_type": N_("Must be an object."),
    "model_type": N_("Must be an object."),
    "date_parsing": N_("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": N_("Must be a date (YYYY-MM-DD)."),
    "date_type": N_("Must be a date (YYYY-MM-DD)."),
    "datetime_parsing": N_("Must be a date and time (ISO 8601)."),
    "datetime_from_date_parsing": N_("Must be a date and time (ISO 8601)."),
    "datetime_type": N_("Must be a date and time (ISO 8601)."),
    "url_parsing": N_("Must be a URL."),
    "url_scheme": N_("Must be a URL."),
    "string_pattern_mismatch": N_("Not a valid value."),
}


def mensaje_de_campo(err: dict) -> str:
    """One pydantic error as a translated sentence. Our own validators raise ValueError(msgid),
    translated as such; EmailStr's value_error carries email-validator's English reason."""
    tipo, ctx = err["type"], err.get("ctx") or {}
    if tipo == "value_error":
        if "reason" in ctx:
            return traducir("Not a valid email address.")
        causa = ctx.get("error")
        if isinstance(causa, ErrorCampo):
            return traducir(causa.msgid, **causa.params)
        return traducir("Not a valid value.")
    try:
        return traducir(MENSAJES_CAMPO.get(tipo, N_("Not a valid value.")),
                        **{k: v for k, v in ctx.items() if isinstance(v, (str, int, float))})
    except (KeyError, TypeError, ValueError):  # a placeholder pydantic did not fill
        return traducir("Not a valid value.")


def parse_query(model: type[B], args) -> B:
    """Like ``parse`` for a query string (last value of each key wins)."""
    return parse(model, {k: args.get(k) for k in args.keys()})


# --- serialization -------------------------------------------------------------

def iso(value: Optional[datetime]) -> Optional[str]:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FiltroEnvios(BaseModel):
    """Query of the outbox lists (``/admin/correos``, ``/api/correos``)."""

    model_config = ConfigDict(extra="ignore")
    estado: Optional[Literal[ESTADOS_SALIDA + ("todos",)]] = None  # type: ignore[valid-type]
    canal: Optional[Literal[CANALES_SALIDA]] = None  # type: ignore[valid-type]

    @field_validator("estado", "canal", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return value or None

    @property
    def estado_o_nada(self) -> Optional[str]:
        return None if self.estado in (None, "todos") else self.estado


# --- output shapes ----------------------------------------------------------------------------
# Declared once: routes serialize with ``openapi.dump(Model, obj)`` and /api/openapi.json lists
# every subclass of ``Salida`` under components (named without the "Out").

class Salida(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EnvioOut(Salida):
    """One outbox row (any channel)."""

    id: int
    canal: str
    tipo: str
    ticket_id: Optional[int]
    destinatarios: str
    asunto: Optional[str]
    estado: str
    intentos: int
    proximo_intento: Optional[datetime]
    ultimo_error: Optional[str]
    id_externo: Optional[str]
    fecha_creacion: datetime
    fecha_envio: Optional[datetime]


Fecha = Annotated[Optional[datetime], PlainSerializer(iso, return_type=Optional[str])]


class ExportacionOut(Salida):
    """A background Excel export: its progress, and its file's URL once ``estado`` is ``listo``
    (until ``expira_en``; then ``expirado`` and the download is a 410)."""

    id: int
    tipo: str
    filtros: dict
    estado: Literal["pendiente", "en_curso", "listo", "fallido", "expirado"]
    filas_escritas: int
    filas_total: Optional[int]
    porcentaje: int
    error: Optional[str]
    url: str
    archivo_url: Optional[str]
    fecha_creacion: Fecha
    fecha_inicio: Fecha
    fecha_fin: Fecha
    expira_en: Fecha


class PersonaOut(Salida):
    """Who: an account, a client or an engineer, by id and name."""

    id: Optional[int]
    nombre: Optional[str]


class NotaOut(Salida):
    """An internal note (staff only)."""

    id: int
    autor: Optional[PersonaOut]
    texto: str
    fecha: Fecha


class TicketOut(Salida):
    """A ticket. ``notas_internas`` only for staff (``tickets.ve_notas`` decides)."""

    id: int
    numero_ticket: str = Field(examples=["TKT-000123"])
    titulo: str
    descripcion: str
    prioridad: Prioridad
    estado: Estado
    categoria: str
    etiquetas: list[str]
    usuario: Optional[PersonaOut]
    usuario_id: Optional[int] = Field(description="Seed 001's flat id of the requesting usuario")
    cliente: Optional[PersonaOut]
    ingeniero: Optional[PersonaOut]
    ingeniero_id: Optional[int] = Field(description="Seed 001's flat id of the assigned ingeniero")
    canal: str
    fecha_creacion: Fecha
    fecha_actualizacion: Fecha
    fecha_primera_respuesta: Fecha
    fecha_resolucion: Fecha
    fecha_cierre: Fecha
    conversacion_whatsapp_id: Optional[int]
    comunicacion_email_id: Optional[int]
    version: int = Field(description="Changes with every write; the `ETag` header carries it too. Send it back "
                                     "as `If-Match` (or `version` in the body) to refuse a write on a stale read.")
    notas_internas: Optional[list[NotaOut]] = Field(
        default=None, description="Staff only; never present for usuario.")

    @field_validator("categoria", mode="before")
    @classmethod
    def _categoria(cls, v):
        return v if isinstance(v, str) else v.nombre

    @field_validator("etiquetas", mode="before")
    @classmethod
    def _etiquetas(cls, v):
        return [e if isinstance(e, str) else e.nombre for e in v]

    @field_validator("ingeniero", mode="before")
    @classmethod
    def _ingeniero(cls, v):
        return v if v is None or isinstance(v, dict) else {"id": v.id, "nombre": v.usuario.nombre}


class MensajeOut(Salida):
    """A public message of the thread."""

    id: int
    autor: PersonaOut
    es_staff: bool
    cuerpo: str
    leido: bool
    fecha_lectura: Fecha
    fecha: Fecha

    @model_validator(mode="before")
    @classmethod
    def _autor(cls, obj):
        if isinstance(obj, dict):
            return obj
        return {**{k: getattr(obj, k) for k in ("id", "es_staff", "cuerpo", "leido", "fecha_lectura", "fecha")},
                "autor": {"id": obj.autor_id, "nombre": obj.autor_nombre}}


class EventoOut(Salida):
    """One entry of a ticket's history."""

    id: int
    tipo: str
    campo: Optional[str]
    antes: Optional[str]
    despues: Optional[str]
    actor: Optional[PersonaOut]
    fecha: Fecha


class UsuarioOut(Salida):
    id: int
    username: str
    nombre: str
    email: str
    rol: str
    idioma: str
    activo: bool


class IngenieroOut(Salida):
    """An engineer with their account's data and open load."""

    id: int
    usuario_id: int
    username: str
    nombre: str
    email: str
    especialidad: str
    telefono: Optional[str]
    disponible: bool
    activo: bool
    tickets_abiertos: int
    fecha_creacion: Fecha


class CategoriaOut(Salida):
    id: int
    nombre: str
    descripcion: Optional[str]
    activa: bool


class MetricaSLAOut(Salida):
    """One SLA target (first response or resolution) over a set of tickets."""

    cumplimiento_pct: Optional[float] = Field(description="% of `tickets` that reached it by their due time")
    tickets: int = Field(description="Tickets that reached it (answered / resolved) and had a due time")
    mediana_min: Optional[float] = Field(description="Median business minutes (nearest rank)")
    p90_min: Optional[float] = Field(description="90th percentile of business minutes (nearest rank)")


class GrupoSLAOut(Salida):
    """The SLA figures of one engineer, prioridad, categoría or period."""

    clave: Optional[str] = Field(description="Engineer name (null: unassigned), prioridad, categoría name, or "
                                             "the period's first day (ISO date, office time zone)")
    id: Optional[int] = Field(None, description="Engineer or categoría id")
    tickets: int = Field(description="Tickets created in the range")
    incumplidos: int = Field(description="Tickets that missed a target or are past due and still open")
    primera_respuesta: MetricaSLAOut
    resolucion: MetricaSLAOut


class SLAMetricasOut(Salida):
    """SLA metrics in business time (sla.metricas): overall, and per engineer, prioridad, categoría
    and period. Times to first response from creation; to resolution, clock time (pauses excluded)."""

    tickets: int
    incumplidos: int
    primera_respuesta: MetricaSLAOut
    resolucion: MetricaSLAOut
    incumplimientos: dict[str, dict[str, int]] = Field(
        description="Breached tickets by ingeniero (name, — unassigned), prioridad and categoria; only non-zero")
    por_ingeniero: list[GrupoSLAOut]
    por_prioridad: list[GrupoSLAOut]
    por_categoria: list[GrupoSLAOut]
    agrupacion: Literal["dia", "semana", "mes"] = Field(description="Bucket of por_periodo (local days, weeks "
                                                                    "from Monday, months)")
    zona: str = Field(description="Office time zone of the periods (APP_TIMEZONE)")
    por_periodo: list[GrupoSLAOut] = Field(description="Periods with tickets, by creation date")


class CSATGrupoOut(Salida):
    nombre: str = Field(description="Engineer, categoría, or the period's first day")
    valoraciones: int
    media: Optional[float] = Field(description="Average rating, 1–5")


class CSATOut(Salida):
    """Satisfaction ratings (csat.resultados)."""

    valoraciones: int
    media: Optional[float]
    por_ingeniero: list[CSATGrupoOut]
    por_categoria: list[CSATGrupoOut]
    por_periodo: Optional[list[CSATGrupoOut]] = Field(None, description="By rating date (statistics only)")


class TiempoOut(Salida):
    n: int
    media_segundos: Optional[float]
    mediana_segundos: Optional[float]


class ConteoCategoriaOut(Salida):
    categoria: str
    total: int


class ConteoIngenieroOut(Salida):
    ingeniero_id: Optional[int]
    nombre: Optional[str]
    total: int
    abiertos: int


class DiaOut(Salida):
    fecha: str
    creados: int
    cerrados: int


class BacklogOut(Salida):
    rango: Literal["<1d", "1-3d", "3-7d", "7-30d", ">30d"]
    total: int


class EstadisticasOut(Salida):
    """/api/estadisticas, scoped to the caller (admin all, ingeniero assigned, usuario own)."""

    alcance: Literal["todos", "asignados", "propios"]
    generado: str
    periodo: dict[str, Optional[str]] = Field(description="The creation-date window asked for (desde, hasta)")
    total: int
    abiertos: int
    por_estado: dict[str, int]
    por_prioridad: dict[str, int]
    por_categoria: list[ConteoCategoriaOut]
    por_ingeniero: list[ConteoIngenieroOut]
    serie_diaria: list[DiaOut] = Field(description="Created and closed per day, last 30 days")
    primera_respuesta: TiempoOut = Field(description="Calendar seconds from creation to first response")
    resolucion: TiempoOut = Field(description="Calendar seconds from creation to resolution")
    backlog_por_antiguedad: list[BacklogOut]
    mensajes_sin_leer: int
    sla: Optional[SLAMetricasOut] = Field(
        None, description="Staff only (an engineer: their assigned tickets); null for usuario")
    csat: Optional[CSATOut] = Field(
        None, description="Staff only (an engineer: their own ratings), ratings given in the window; null for usuario")


def ticket_dict(ticket, viewer) -> dict:
    from tickets import ve_notas  # THE note-visibility rule (tickets imports this module)

    out = TicketOut.model_validate(ticket)
    if not ve_notas(ticket, viewer):
        return out.model_dump(mode="json", exclude={"notas_internas"})
    out.notas_internas = [NotaOut.model_validate(n) for n in ticket.notas]
    return out.model_dump(mode="json")


def _persona(id_, nombre) -> Optional[dict]:
    return None if id_ is None else {"id": id_, "nombre": nombre}


def fila_dict(fila, viewer) -> dict:
    """A list row (``tickets.FilaTicket``) as ``ticket_dict`` shows its ticket (``TicketOut``),
    written out: validating and dumping the model per row was a fifth of a list's CPU (issue 13).
    tests/test_listas.py holds the two equal, field by field."""
    from tickets import ve_notas

    out = {
        "id": fila.id, "numero_ticket": fila.numero_ticket, "titulo": fila.titulo, "descripcion": fila.descripcion,
        "prioridad": fila.prioridad, "estado": fila.estado, "categoria": fila.categoria_nombre,
        "etiquetas": fila.etiquetas, "usuario": _persona(fila.usuario_id, fila.usuario_nombre),
        "usuario_id": fila.usuario_id, "cliente": _persona(fila.cliente_id, fila.cliente_nombre),
        "ingeniero": _persona(fila.ingeniero_id, fila.ingeniero_nombre), "ingeniero_id": fila.ingeniero_id,
        "canal": fila.canal, "fecha_creacion": iso(fila.fecha_creacion),
        "fecha_actualizacion": iso(fila.fecha_actualizacion),
        "fecha_primera_respuesta": iso(fila.fecha_primera_respuesta),
        "fecha_resolucion": iso(fila.fecha_resolucion), "fecha_cierre": iso(fila.fecha_cierre),
        "conversacion_whatsapp_id": fila.conversacion_whatsapp_id, "comunicacion_email_id": fila.comunicacion_email_id,
        "version": fila.version,
    }
    if ve_notas(fila, viewer):
        out["notas_internas"] = [{"id": id_, "autor": _persona(autor_id, autor), "texto": texto, "fecha": iso(fecha)}
                                 for id_, autor_id, autor, texto, fecha in fila.notas]
    return out


def nota_dict(nota) -> dict:
    return NotaOut.model_validate(nota).model_dump(mode="json")


def mensaje_dict(mensaje) -> dict:
    return MensajeOut.model_validate(mensaje).model_dump(mode="json")


def evento_dict(evento) -> dict:
    return EventoOut.model_validate(evento).model_dump(mode="json")


def usuario_dict(usuario) -> dict:
    return UsuarioOut.model_validate(usuario).model_dump(mode="json")


def ingeniero_dict(ingeniero, tickets_abiertos: int = 0) -> dict:
    u = ingeniero.usuario
    return IngenieroOut.model_validate({
        "id": ingeniero.id, "usuario_id": ingeniero.usuario_id, "username": u.username, "nombre": u.nombre,
        "email": u.email, "especialidad": ingeniero.especialidad, "telefono": ingeniero.telefono,
        "disponible": ingeniero.disponible, "activo": u.activo, "tickets_abiertos": tickets_abiertos,
        "fecha_creacion": ingeniero.fecha_creacion}).model_dump(mode="json")


def categoria_dict(categoria) -> dict:
    return CategoriaOut.model_validate(categoria).model_dump(mode="json")


def page_dict(items: list, total: int, page: int, per_page: int, total_exacto: bool = True) -> dict:
    """One page of a list. ``total_exacto`` False: more than ``total`` match (a search counts
    its matches up to busqueda.TOPE_TOTAL)."""
    return {"items": items, "total": total, "total_exacto": total_exacto, "page": page, "per_page": per_page}


assert set(ESTADOS) == set(Estado.__args__) and set(PRIORIDADES) == set(Prioridad.__args__)
