"""SLA in business time: the one module that owns the arithmetic (issue 12).

A **calendar** is office hours per weekday plus holidays in the office time zone (APP_TIMEZONE,
zoneinfo, so DST days are handled: a 9–18 day is nine business hours whether the clocks moved
that night or not). All arithmetic is done on UTC instants; the calendar only decides where the
working windows of each local day start and end.

A ticket's clock runs from its creation while it is ``abierto`` or ``en_progreso``; it stops in
``en_espera`` (waiting on the customer) and after ``resuelto``/``cerrado``, and restarts when the
ticket goes back to work. Paused business time is accumulated in ``sla_pausado_segundos``, so a
due time is simply ``sumar(fecha_creacion, objetivo + pausado)``. Due and warning times are
stored on the ticket (indexed) and recomputed by ``recalcular`` on every change that moves them
(signal receivers connected in ``init_app``; policy and calendar edits recompute open tickets).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Optional
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.elements import True_

import generacion
from errors import ErrorCampo
from models import (
    ESTADOS_ABIERTOS,
    PRIORIDADES,
    VENCE_EFECTIVO,
    ConfiguracionSLA,
    PoliticaSLA,
    Ticket,
    db,
    leer,
    utcnow,
)

ESTADOS_EN_MARCHA = ("abierto", "en_progreso")  # the clock runs only here
MAX_DIAS = 3660  # search horizon: a calendar with no working day at all gives no due time

# Business minutes when no policy matches. The 24x7 default calendar keeps the historical
# panel rule (critical 8 h, high 24 h, medium 72 h, low 7 days) until an admin sets office hours.
OBJETIVOS_POR_DEFECTO = {
    "critica": (120, 8 * 60),
    "alta": (8 * 60, 24 * 60),
    "media": (24 * 60, 72 * 60),
    "baja": (48 * 60, 7 * 24 * 60),
}
HORARIO_24X7 = {str(d): ["00:00", "24:00"] for d in range(7)}
assert set(OBJETIVOS_POR_DEFECTO) == set(PRIORIDADES)


def _hora(texto: str) -> timedelta:
    hh, mm = texto.split(":")
    valor = timedelta(hours=int(hh), minutes=int(mm))
    if not timedelta(0) <= valor <= timedelta(hours=24):
        raise ErrorCampo("Not a time of day: %(texto)s", texto=repr(texto))
    return valor


@dataclass(frozen=True)
class Calendario:
    """Working window per weekday (0 = Monday) as offsets from local midnight, holidays, zone."""

    ventanas: dict[int, tuple[timedelta, timedelta]] = field(default_factory=dict)
    feriados: frozenset[date] = frozenset()
    zona: ZoneInfo = ZoneInfo("UTC")

    @classmethod
    def desde(cls, horario: dict, feriados=(), zona: str = "UTC") -> "Calendario":
        ventanas = {}
        for dia, tramo in (horario or {}).items():
            if not tramo:
                continue
            inicio, fin = _hora(tramo[0]), _hora(tramo[1])
            if fin > inicio:
                ventanas[int(dia)] = (inicio, fin)
        fechas = frozenset(f if isinstance(f, date) else date.fromisoformat(f) for f in feriados or ())
        return cls(ventanas, fechas, ZoneInfo(zona))

    def ventana(self, dia: date) -> Optional[tuple[datetime, datetime]]:
        """The working window of local day ``dia`` as UTC instants, or None (day off)."""
        if dia in self.feriados or dia.weekday() not in self.ventanas:
            return None
        inicio, fin = self.ventanas[dia.weekday()]
        return self._instante(dia, inicio), self._instante(dia, fin)

    def _instante(self, dia: date, offset: timedelta) -> datetime:
        # Local wall time → UTC. "24:00" is the next local midnight.
        local = datetime.combine(dia, time(0)) + offset
        return local.replace(tzinfo=self.zona).astimezone(UTC)

    def _dia_local(self, instante: datetime) -> date:
        return instante.astimezone(self.zona).date()


def _utc(instante: datetime) -> datetime:
    """Aware UTC, whole seconds (business time is counted in seconds, so sums stay exact)."""
    instante = instante.replace(tzinfo=UTC) if instante.tzinfo is None else instante.astimezone(UTC)
    return instante.replace(microsecond=0)


def sumar(inicio: datetime, segundos: float, cal: Calendario) -> Optional[datetime]:
    """The instant when ``segundos`` of business time have elapsed after ``inicio`` (UTC)."""
    cursor = _utc(inicio)
    restante = timedelta(seconds=segundos)
    dia = cal._dia_local(cursor) - timedelta(days=1)  # a window may start the local day before
    for _ in range(MAX_DIAS):
        tramo = cal.ventana(dia)
        dia += timedelta(days=1)
        if tramo is None:
            continue
        desde, hasta = max(cursor, tramo[0]), tramo[1]
        if desde >= hasta:
            continue
        if restante <= hasta - desde:
            return desde + restante
        restante -= hasta - desde
        cursor = hasta
    return None


def segundos_habiles(desde: datetime, hasta: datetime, cal: Calendario) -> int:
    """Business seconds in [desde, hasta) (0 when hasta <= desde)."""
    desde, hasta = _utc(desde), _utc(hasta)
    if hasta <= desde:
        return 0
    total = timedelta(0)
    dia = cal._dia_local(desde) - timedelta(days=1)
    ultimo = cal._dia_local(hasta)
    while dia <= ultimo:
        tramo = cal.ventana(dia)
        dia += timedelta(days=1)
        if tramo is None:
            continue
        a, b = max(desde, tramo[0]), min(hasta, tramo[1])
        if b > a:
            total += b - a
    return int(total.total_seconds())


# --- settings and policies ----------------------------------------------------------------------

def ajustes() -> ConfiguracionSLA:
    """The settings row, or an unsaved one with the defaults when the table is empty.

    Kept in ``session.info`` so that the session's identity map (weak references) does not drop it
    between the SLA and the assignment steps of one creation; while it stays in the session a
    commit or rollback expires it like any row, so a changed setting is read again."""
    fila = db.session.info.get("ajustes_sla")
    if fila is not None and fila in db.session:
        return fila
    fila = db.session.get(ConfiguracionSLA, 1)
    if fila is not None:
        db.session.info["ajustes_sla"] = fila
    else:
        fila = ConfiguracionSLA(id=1, horario=dict(HORARIO_24X7), feriados=[], umbral_aviso_pct=80,
                                minutos_critico_sin_asignar=15, asignacion_automatica=False)
    return fila


@dataclass(frozen=True)
class Vigentes:
    """The settings as the clock, the assignment and the alerts read them: ``ajustes()``'s
    values, frozen, kept per process under the settings' generation (``generacion``). Editing
    goes through ``ajustes()``'s row."""
    horario: dict
    feriados: tuple
    umbral_aviso_pct: int
    minutos_critico_sin_asignar: int
    asignacion_automatica: bool


POR_DEFECTO = Vigentes(horario=HORARIO_24X7, feriados=(), umbral_aviso_pct=80, minutos_critico_sin_asignar=15,
                       asignacion_automatica=False)


def vigentes() -> Vigentes:
    """The settings in force (every creation asks): one row read per change, not per ticket."""
    return generacion.memo("ajustes_sla", _leer_vigentes)


def _leer_vigentes() -> Vigentes:
    fila = leer(_VIGENTES).one_or_none()
    if fila is None:
        return POR_DEFECTO
    return Vigentes(fila.horario or {}, tuple(fila.feriados or ()), fila.umbral_aviso_pct,
                    fila.minutos_critico_sin_asignar, fila.asignacion_automatica)


_VIGENTES = select(ConfiguracionSLA.horario, ConfiguracionSLA.feriados, ConfiguracionSLA.umbral_aviso_pct,
                   ConfiguracionSLA.minutos_critico_sin_asignar,
                   ConfiguracionSLA.asignacion_automatica).where(ConfiguracionSLA.id == 1)


def calendario(cfg: Optional[ConfiguracionSLA] = None) -> Calendario:
    """The calendar of ``cfg`` (a row being edited), or of the settings in force, built once per
    change of them."""
    zona = current_app.config.get("APP_TIMEZONE", "UTC") if has_app_context() else "UTC"
    if cfg is None:
        en_vigor = vigentes()
        return generacion.memo(("calendario", zona),
                               lambda: Calendario.desde(en_vigor.horario, en_vigor.feriados, zona))
    return Calendario.desde(cfg.horario or {}, cfg.feriados or (), zona)


def objetivos(prioridad: str, categoria_id: Optional[int]) -> tuple[int, int]:
    """(first response, resolution) in business minutes; a categoría-specific policy wins.
    Every creation asks: kept per process under the settings' generation."""
    return generacion.memo(("objetivos", prioridad, categoria_id), lambda: _leer_objetivos(prioridad, categoria_id))


def _leer_objetivos(prioridad: str, categoria_id: Optional[int]) -> tuple[int, int]:
    filas = leer(_OBJETIVOS, {"prioridad": prioridad, "categoria_id": categoria_id}).all()
    filas = sorted(filas, key=lambda p: p.categoria_id is None)  # specific first
    if filas:
        return filas[0].primera_respuesta_min, filas[0].resolucion_min
    return OBJETIVOS_POR_DEFECTO[prioridad]


# Built once, parameters bound (every creation asks it).
_OBJETIVOS = select(PoliticaSLA.categoria_id, PoliticaSLA.primera_respuesta_min, PoliticaSLA.resolucion_min).where(
    PoliticaSLA.prioridad == bindparam("prioridad"),
    or_(PoliticaSLA.categoria_id.is_(None), PoliticaSLA.categoria_id == bindparam("categoria_id")))


# --- the ticket's clock ----------------------------------------------------------------------------

def recalcular(ticket: Ticket, cal: Optional[Calendario] = None, cfg: Optional[ConfiguracionSLA | Vigentes] = None,
               ahora: Optional[datetime] = None) -> Ticket:
    """Bring the clock in line with the ticket's estado and recompute its due and warning times."""
    with generacion.una_lectura():  # the calendar, the settings and the policy: one number read
        cal = cal or calendario(cfg)
        cfg = cfg or vigentes()
        primera, resolucion = objetivos(ticket.prioridad, ticket.categoria_id)
    ahora = ahora or utcnow()
    corriendo = ticket.estado in ESTADOS_EN_MARCHA
    if corriendo and ticket.sla_pausa_desde is not None:  # restart: add the paused business time
        ticket.sla_pausado_segundos = (ticket.sla_pausado_segundos or 0) + segundos_habiles(
            ticket.sla_pausa_desde, ahora, cal)
        ticket.sla_pausa_desde = None
    elif not corriendo and ticket.sla_pausa_desde is None:
        # Stops when it went to en_espera / resuelto (the resolution instant when known).
        parada = ticket.fecha_resolucion if ticket.estado in ("resuelto", "cerrado") and ticket.fecha_resolucion \
            else ahora
        ticket.sla_pausa_desde = parada
    creado = ticket.fecha_creacion or ahora
    pausa = ticket.sla_pausado_segundos or 0
    umbral = (cfg.umbral_aviso_pct or 80) / 100
    # Once answered, the first-response due time is history: later pauses or edits do not move it.
    if ticket.fecha_primera_respuesta is None or ticket.sla_primera_respuesta_vence is None:
        ticket.sla_primera_respuesta_vence = sumar(creado, primera * 60 + pausa, cal)
        ticket.sla_primera_respuesta_aviso = sumar(creado, primera * 60 * umbral + pausa, cal)
    ticket.sla_resolucion_vence = sumar(creado, resolucion * 60 + pausa, cal)
    ticket.sla_resolucion_aviso = sumar(creado, resolucion * 60 * umbral + pausa, cal)
    registrar_resultado(ticket, cal)
    return ticket


def registrar_resultado(ticket: Ticket, cal: Optional[Calendario] = None) -> Ticket:
    """Store the SLA outcome on the ticket, in the transaction that reached it (the metrics are
    then SQL aggregates over these columns, see ``metricas``).

    First response: business seconds from creation to the first response and whether it came by
    its due time; written once, like that due time (frozen once answered). Resolution: business
    seconds the clock ran until resolution (pauses excluded) and whether it was by its due time;
    rewritten on every recomputation while resolved (a prioridad edit of a resolved ticket moves
    that due time too) and cleared on reopen. No due time (a calendar without working days, rows
    older than the SLA) means no outcome, as in the metrics before."""
    if ticket.fecha_primera_respuesta is None or ticket.sla_primera_respuesta_vence is None:
        ticket.sla_primera_respuesta_segundos = ticket.sla_primera_respuesta_cumplida = None
    elif ticket.sla_primera_respuesta_segundos is None:
        cal = cal or calendario()
        ticket.sla_primera_respuesta_segundos = segundos_habiles(ticket.fecha_creacion,
                                                                 ticket.fecha_primera_respuesta, cal)
        ticket.sla_primera_respuesta_cumplida = ticket.fecha_primera_respuesta <= ticket.sla_primera_respuesta_vence
    if ticket.fecha_resolucion is None or ticket.sla_resolucion_vence is None:
        ticket.sla_resolucion_segundos = ticket.sla_resolucion_cumplida = None
    else:
        cal = cal or calendario()
        ticket.sla_resolucion_segundos = transcurrido(ticket, ticket.fecha_resolucion, cal)
        ticket.sla_resolucion_cumplida = ticket.fecha_resolucion <= ticket.sla_resolucion_vence
    return ticket


def recalcular_abiertos(limite: Optional[int] = None) -> int:
    """After a policy or calendar edit: recompute every open ticket (flushes, never commits)."""
    cfg = ajustes()
    cal = calendario(cfg)
    ahora = utcnow()
    stmt = select(Ticket).where(Ticket.estado.in_(ESTADOS_ABIERTOS)).order_by(Ticket.id)
    if limite:
        stmt = stmt.limit(limite)
    n = 0
    for ticket in db.session.execute(stmt).scalars():
        recalcular(ticket, cal, cfg, ahora)
        n += 1
    db.session.flush()
    return n


def vencido_clause(now=None):
    """WHERE clause of the overdue tickets: the clock is running and a due time has passed
    (the resolution one, or the first-response one before anyone answered): the earlier of the
    two, ``models.VENCE_EFECTIVO``, so that its index counts them."""
    now = now or utcnow()
    return and_(Ticket.estado.in_(ESTADOS_EN_MARCHA), VENCE_EFECTIVO < now)


def contar_a_tiempo(scope=true()) -> int:
    """Running tickets of ``scope`` that are not overdue (due later, or without a due time): the
    complement of ``vencido_clause`` among them. They are the tickets of the last target's span
    however large a forgotten backlog grows, so the panels count these and subtract them from
    the running total (``paneles.contadores``). Two range counts on ``ix_tickets_estado_vence``,
    one per side of NULL (joined by OR, SQLite without statistics scans every running ticket)."""
    now = utcnow()
    en_marcha = and_(scope, Ticket.estado.in_(ESTADOS_EN_MARCHA))
    despues = select(func.count()).where(en_marcha, VENCE_EFECTIVO >= now).scalar_subquery()
    sin_plazo = select(func.count()).where(en_marcha, VENCE_EFECTIVO.is_(None)).scalar_subquery()
    return db.session.execute(select(despues + sin_plazo)).scalar_one()


def es_vencido(ticket: Ticket, now=None) -> bool:
    now = now or utcnow()
    if ticket.estado not in ESTADOS_EN_MARCHA:
        return False
    if ticket.sla_resolucion_vence is not None and ticket.sla_resolucion_vence < now:
        return True
    return (ticket.fecha_primera_respuesta is None and ticket.sla_primera_respuesta_vence is not None
            and ticket.sla_primera_respuesta_vence < now)


def transcurrido(ticket: Ticket, hasta: datetime, cal: Optional[Calendario] = None) -> int:
    """Business seconds the clock ran between creation and ``hasta`` (pauses excluded)."""
    cal = cal or calendario()
    total = segundos_habiles(ticket.fecha_creacion, hasta, cal) - (ticket.sla_pausado_segundos or 0)
    if ticket.sla_pausa_desde is not None and _utc(ticket.sla_pausa_desde) < _utc(hasta):
        total -= segundos_habiles(ticket.sla_pausa_desde, hasta, cal)
    return max(total, 0)


# --- signal receivers -------------------------------------------------------------------------------

def _on_cambio(ticket, **_):
    recalcular(ticket)
    db.session.flush()


def _on_por_crear(ticket, **_):
    recalcular(ticket)  # before the INSERT (or a state change's UPDATE): the clock and due times go into it


def _on_mensaje(ticket, **_):
    # A staff reply is a first response without an estado change: store its outcome now.
    if ticket.fecha_primera_respuesta is not None and ticket.sla_primera_respuesta_segundos is None:
        registrar_resultado(ticket)
        db.session.flush()


def conectar_senales() -> None:
    import tickets

    tickets.ticket_por_crear.connect(_on_por_crear)
    tickets.estado_por_cambiar.connect(_on_por_crear)
    tickets.prioridad_cambiada.connect(_on_cambio)
    tickets.mensaje_publicado.connect(_on_mensaje)
    categoria_cambiada = getattr(tickets, "categoria_cambiada", None)
    if categoria_cambiada is not None:
        categoria_cambiada.connect(_on_cambio)


def init_app(app) -> None:
    """Due times follow every ticket change; automatic assignment; ``flask sla-tick``."""
    import alertas
    import asignacion
    import csat
    import notificaciones

    conectar_senales()
    asignacion.conectar_senales()
    notificaciones.conectar_senales()
    app.jinja_env.globals["valoracion_de"] = csat.valoracion  # the ticket page's rating block
    alertas.init_app(app)


# --- administration (rutas/sla.py) --------------------------------------------------------------------

def guardar_ajustes(datos: dict) -> ConfiguracionSLA:
    """Update the settings row (created when missing) and recompute open tickets' due times."""
    from errors import ValidationFailed

    fila = db.session.get(ConfiguracionSLA, 1)
    if fila is None:
        fila = ajustes()
        db.session.add(fila)
    if "horario" in datos and datos["horario"] is not None:
        try:
            Calendario.desde(datos["horario"])
        except (ValueError, TypeError, IndexError) as exc:
            raise ValidationFailed("Some fields are not valid.", fields={"horario": str(exc)}) from exc
    for campo, valor in datos.items():
        if valor is not None:
            setattr(fila, campo, valor)
    fila.fecha_actualizacion = utcnow()
    db.session.flush()
    recalcular_abiertos()
    return fila


def guardar_politica(prioridad: str, categoria_id: Optional[int], primera_respuesta_min: int,
                     resolucion_min: int) -> PoliticaSLA:
    """Create or replace the policy of (prioridad, categoría) and recompute open tickets."""
    stmt = select(PoliticaSLA).where(PoliticaSLA.prioridad == prioridad)
    stmt = stmt.where(PoliticaSLA.categoria_id.is_(None) if categoria_id is None
                      else PoliticaSLA.categoria_id == categoria_id)
    fila = db.session.execute(stmt).scalar_one_or_none()
    if fila is None:
        fila = PoliticaSLA(prioridad=prioridad, categoria_id=categoria_id)
        db.session.add(fila)
    fila.primera_respuesta_min, fila.resolucion_min = primera_respuesta_min, resolucion_min
    db.session.flush()
    recalcular_abiertos()
    return fila


def politicas() -> list[PoliticaSLA]:
    return list(db.session.execute(select(PoliticaSLA).order_by(PoliticaSLA.prioridad, PoliticaSLA.categoria_id))
                .scalars())


# --- metrics (statistics) ------------------------------------------------------------------------------
# From the stored outcome (``registrar_resultado``): counts from the rollup (every ticket) or one
# GROUP BY, percentiles by index probes (``_agregados``); the reference is one scan grouped in
# Python (``_agregados_desde_cero``). Percentiles are nearest-rank (``_percentil``) on both databases.

AGRUPACIONES = ("dia", "semana", "mes")
MAX_PERIODOS = 400  # a requested "dia" over years is coarsened to weeks, then months


def _percentil(valores: list[int], p: float) -> Optional[int]:
    """Nearest-rank percentile (p in 0..100) of business seconds; None for no data. The definition
    the SQL below implements (rank ceil(n * p / 100), at least the first)."""
    if not valores:
        return None
    orden = sorted(valores)
    k = max(1, -(-len(orden) * p // 100))  # ceil(n * p / 100), at least the first
    return orden[int(k) - 1]


def incumplido_clause(ahora=None):
    """WHERE clause of a breached ticket: it missed its first-response or resolution target, or
    it is past due with its clock running (``vencido_clause``)."""
    return or_(Ticket.sla_primera_respuesta_cumplida.is_(False), Ticket.sla_resolucion_cumplida.is_(False),
               vencido_clause(ahora))


def _es_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _zona() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("APP_TIMEZONE", "UTC") if has_app_context() else "UTC")


def _cambios_de_hora(zona: ZoneInfo, lo: datetime, hi: datetime) -> list[tuple[Optional[datetime], int]]:
    """The zone's UTC offset in seconds at ``lo`` and at each change up to ``hi``:
    ``[(None, offset), (instant, offset), ...]`` (DST changes are months apart: a daily probe and a
    bisection to the second find them)."""
    def offset(t: datetime) -> int:
        return int(t.astimezone(zona).utcoffset().total_seconds())

    lo, hi = _utc(lo), _utc(hi)
    cambios: list[tuple[Optional[datetime], int]] = [(None, offset(lo))]
    t = lo
    while t < hi:
        siguiente = min(t + timedelta(days=1), hi)
        if offset(siguiente) != cambios[-1][1]:
            a, b = t, siguiente  # offset(a) is the old one, offset(b) the new one
            while b - a > timedelta(seconds=1):
                medio = a + (b - a) / 2
                a, b = (medio, b) if offset(medio) == cambios[-1][1] else (a, medio)
            cambios.append((b.replace(microsecond=0), offset(b)))
        t = siguiente
    return cambios


def expresion_periodo(columna, agrupacion: str, lo: datetime, hi: datetime):
    """SQL expression of the local period (office time zone) an instant column falls in, as the
    ISO date of its first day: the day, the week's Monday or the month's first day. ``lo``/``hi``
    bound the instants it will see (SQLite has no zone database: it shifts by the zone's offset,
    a CASE over the offset changes in that range)."""
    zona = _zona()
    if _es_postgresql():
        local = func.timezone(literal(zona.key, String), func.timezone(literal("UTC", String), columna))
        unidad = {"dia": "day", "semana": "week", "mes": "month"}[agrupacion]
        return func.to_char(func.date_trunc(literal(unidad, String), local), literal("YYYY-MM-DD", String))
    cambios = _cambios_de_hora(zona, lo, hi)
    if len(cambios) == 1:
        desplazamiento = literal(cambios[0][1])
    else:
        desplazamiento = case(*((columna < cambios[i + 1][0], cambios[i][1]) for i in range(len(cambios) - 1)),
                              else_=cambios[-1][1])
    mod = func.printf("%+d seconds", desplazamiento)
    if agrupacion == "dia":
        return func.date(columna, mod)
    if agrupacion == "semana":
        return func.date(columna, mod, "weekday 0", "-6 days")  # the Monday of its week
    return func.strftime("%Y-%m-01", columna, mod)


def elegir_agrupacion(lo: datetime, hi: datetime, pedida: Optional[str] = None) -> str:
    """Day buckets up to two months, weeks up to a year, months beyond; a requested one is kept
    unless it gives more than MAX_PERIODOS buckets."""
    dias = (_utc(hi) - _utc(lo)).days + 1
    if pedida is None:
        pedida = "dia" if dias <= 62 else "semana" if dias <= 366 else "mes"
    if pedida == "dia" and dias > MAX_PERIODOS:
        pedida = "semana"
    if pedida == "semana" and dias / 7 > MAX_PERIODOS:
        pedida = "mes"
    return pedida


class _Grupo:
    """Running figures of one group: counts, met counts, breaches and the times for percentiles."""

    __slots__ = ("total", "ok1", "ok2", "incumplidos", "x1", "x2")

    def __init__(self):
        self.total = self.ok1 = self.ok2 = self.incumplidos = 0
        self.x1: list[int] = []
        self.x2: list[int] = []

    def sumar(self, x1, ok1, x2, ok2, incumplido) -> None:
        self.total += 1
        self.incumplidos += incumplido
        if x1 is not None:
            self.x1.append(x1)
            self.ok1 += bool(ok1)
        if x2 is not None:
            self.x2.append(x2)
            self.ok2 += bool(ok2)

    def agregado(self) -> tuple:
        return (self.total, len(self.x1), self.ok1, _percentil(self.x1, 50), _percentil(self.x1, 90),
                len(self.x2), self.ok2, _percentil(self.x2, 50), _percentil(self.x2, 90), self.incumplidos)


# The columns a percentile is grouped by, each with a partial index (column, seconds) per
# outcome (models.Ticket): the k-th value of a group is one ORDER BY/OFFSET probe of that index.
_COLUMNAS = {"ingeniero": Ticket.ingeniero_id, "prioridad": Ticket.prioridad, "categoria": Ticket.categoria_id}


def _rango(n: int, p: int) -> int:
    """The 1-based nearest rank of ``_percentil``: ceil(n * p / 100), at least the first."""
    return max(1, -(-n * p // 100))


def _conteos(where, ahora, periodo) -> tuple[dict, list]:
    """Counts per group of ``_agregados`` (tickets, outcomes reached and met, breaches) with one
    GROUP BY of the four grouping columns, folded here: ``({dimension: {clave: cifras}}, total)``."""
    s1, c1 = Ticket.sla_primera_respuesta_segundos, Ticket.sla_primera_respuesta_cumplida
    s2, c2 = Ticket.sla_resolucion_segundos, Ticket.sla_resolucion_cumplida
    claves = _COLUMNAS
    conteos: dict[str, dict] = {nombre: {} for nombre in (*claves, "periodo")}
    total = [0] * 6
    if periodo is not None:
        def cumplidos(segundos, cumplida):
            return func.sum(case((and_(segundos.is_not(None), cumplida.is_(True)), 1), else_=0))

        per = periodo.label("periodo")
        filas = db.session.execute(
            select(*claves.values(), per, func.count(), func.count(s1), cumplidos(s1, c1), func.count(s2),
                   cumplidos(s2, c2), func.sum(case((incumplido_clause(ahora), 1), else_=0)))
            .where(*where).group_by(*claves.values(), per))
        for fila in filas:
            cifras = [int(v or 0) for v in fila[4:]]
            total = [a + b for a, b in zip(total, cifras, strict=True)]
            for nombre, clave in zip(conteos, fila[:4], strict=True):
                actual = conteos[nombre].get(clave)
                conteos[nombre][clave] = cifras if actual is None else [a + b for a, b in zip(actual, cifras,
                                                                                               strict=True)]
    return conteos, total


def pendiente_clause():
    """WHERE clause of the tickets the rollup counts as ``pendientes`` (``acumulados.pendiente``):
    clock running, no target missed yet, a due time set. Past due now (``vencido_clause``) are
    exactly those whose due time has passed."""
    return and_(Ticket.estado.in_(ESTADOS_EN_MARCHA), Ticket.sla_primera_respuesta_cumplida.is_not(False),
                Ticket.sla_resolucion_cumplida.is_not(False),
                or_(Ticket.sla_resolucion_vence.is_not(None),
                    and_(Ticket.fecha_primera_respuesta.is_(None), Ticket.sla_primera_respuesta_vence.is_not(None))))


def _conteos_resumen(ahora, agrupacion: str, periodo, marginales: Optional[dict] = None) -> tuple[dict, list, dict]:
    """``_conteos`` of every ticket from the rollup (``acumulados``): its stored counts per
    engineer, prioridad, categoría and local day (folded into weeks or months here), and each
    group's signature, the key of its cached percentiles: its row's ``acumulados.ETIQUETA``, its
    days' for a period, the estados' for the total. The breaches
    that depend on ``ahora`` (clock running past a due time, no target missed yet) are the rollup's
    ``pendientes`` minus the pending tickets not due yet, counted from the tickets: those with a
    due time ahead of ``ahora`` are only the recent ones (the due-time indexes find them), while
    past due ones pile up with the years (35,000 of 100,000 in the bench, a 66 ms GROUP BY)."""
    import acumulados

    if marginales is None:
        marginales = acumulados.marginales()

    def cifras(v):
        return [v["tickets"], v["primera_n"], v["primera_ok"], v["resolucion_n"], v["resolucion_ok"],
                v["fallidos"] + v["pendientes"]]

    conteos: dict[str, dict] = {
        "ingeniero": {None if k == "" else int(k): cifras(v) for k, v in marginales["ingeniero"].items()},
        "prioridad": {k: cifras(v) for k, v in marginales["prioridad"].items()},
        "categoria": {int(k): cifras(v) for k, v in marginales["categoria"].items()},
        "periodo": {},
    }
    etiqueta = acumulados.ETIQUETA
    firmas: dict[tuple, object] = {
        **{("ingeniero", None if k == "" else int(k)): v[etiqueta] for k, v in marginales["ingeniero"].items()},
        **{("prioridad", k): v[etiqueta] for k, v in marginales["prioridad"].items()},
        **{("categoria", int(k)): v[etiqueta] for k, v in marginales["categoria"].items()},
    }
    dias: dict[str, list] = defaultdict(list)
    por_periodo = conteos["periodo"]
    for dia, v in sorted(marginales["dia"].items()):
        clave = _periodo_del_dia(dia, agrupacion)
        actual = por_periodo.get(clave)
        if actual is None:
            por_periodo[clave] = cifras(v)
        else:
            for i, n in enumerate(cifras(v)):
                actual[i] += n
        dias[clave].append((dia, v[etiqueta]))
    firmas.update({("periodo", clave): tuple(d) for clave, d in dias.items()})
    # Every ticket is in one estado row, whose tag changes with its SLA times: the total's signature.
    firmas[("total", None)] = tuple(sorted((k, v[etiqueta]) for k, v in marginales["estado"].items()))
    total = [0] * 6
    for v in marginales["estado"].values():
        total = [a + b for a, b in zip(total, cifras(v), strict=True)]
    if periodo is None:
        return conteos, total, firmas
    # Not past due: a pending ticket always has an effective due time (``models.VENCE_EFECTIVO``,
    # the earlier of those that apply), and it is not past due when that one is at or after
    # ``ahora`` (``vencido_clause`` negated). Those are only the recent tickets: one range of the
    # (estado, due time) index. The former self-join on the two due-time indexes cost 11 ms per
    # request on PostgreSQL at 100,000 tickets (a parallel plan, planned anew each time), this ~1.
    per = periodo.label("periodo")
    filas = db.session.execute(select(*_COLUMNAS.values(), per, func.count())
                               .where(Ticket.estado.in_(ESTADOS_EN_MARCHA), VENCE_EFECTIVO >= ahora,
                                      pendiente_clause())
                               .group_by(*_COLUMNAS.values(), per))
    for *grupo, n in filas:
        total[5] -= n
        for nombre, clave in zip(conteos, grupo, strict=True):
            conteos[nombre][str(clave)[:10] if nombre == "periodo" else clave][5] -= n
    return conteos, total, firmas


def _limites_periodo(primero: date, agrupacion: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local period that begins on ``primero``."""
    return _limites_en_zona(primero.isoformat(), agrupacion, _zona().key)


@lru_cache(maxsize=8192)
def _limites_en_zona(primero_iso: str, agrupacion: str, zona_key: str) -> tuple[datetime, datetime]:
    """``_limites_periodo`` in the zone named ``zona_key`` (every request asks it for each period)."""
    primero = date.fromisoformat(primero_iso)
    if agrupacion == "semana":
        siguiente = primero + timedelta(days=7)
    elif agrupacion == "mes":
        siguiente = (primero.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        siguiente = primero + timedelta(days=1)
    zona = ZoneInfo(zona_key)
    return tuple(datetime.combine(d, time(0), tzinfo=zona).astimezone(UTC) for d in (primero, siguiente))


@lru_cache(maxsize=8192)
def _periodo_del_dia(dia: str, agrupacion: str) -> str:
    """``_inicio_periodo`` of an ISO day, as an ISO day (every request folds the rollup's days)."""
    return _inicio_periodo(date.fromisoformat(dia), agrupacion).isoformat()


def _inicio_periodo(dia: date, agrupacion: str) -> date:
    """The first local day of the period ``dia`` falls in (as ``expresion_periodo``)."""
    if agrupacion == "semana":
        return dia - timedelta(days=dia.weekday())
    if agrupacion == "mes":
        return dia.replace(day=1)
    return dia


# SLA percentiles of the groups of every ticket, {(group, value, zone, grouping, signature): (p50,
# p90, p50, p90)}: the signature (``_conteos_resumen``) changes whenever the SLA times in the group
# change, so a hit is exact. Per process; cleared when it grows past a few years of periods.
_PERCENTILES: dict[tuple, tuple] = {}
MAX_PERCENTILES = 4096


def _agregados(where, ahora, periodo, agrupacion: str, conteos=None, firmas=None) -> tuple[tuple, dict]:
    """Overall and per engineer, prioridad, categoría and period, exactly as
    ``_agregados_desde_cero`` computes them, without bringing one ticket into Python:

    - counts (tickets, outcomes reached and met, breaches): ``conteos`` when given (the rollup's,
      ``_conteos_resumen``), else one GROUP BY of the four grouping columns (``_conteos``);
    - percentiles: the nearest-rank value of a group is the row at OFFSET rank - 1 of its outcomes
      in order, one probe each, walking a partial index (column, seconds) WHERE seconds IS NOT NULL
      (migration 0016: overall, per engineer, prioridad, categoría, and per creation instant for
      the periods, whose local bounds become a UTC range). A ticket creation (NULL outcome) writes
      none of those indexes. The probes still walk half the group or sort a period's tickets (the
      index gives them by creation, not by time): with ``firmas`` (every ticket), the percentiles
      of a group whose times did not change since are taken from ``_PERCENTILES``. At 1,000,000
      tickets the sorts of 54 weeks cost ~170 ms of the ~340 and the walks ~60; a first response
      or a resolution probes again its week, its engineer, prioridad, categoría and the total.

    Measured at 100,000 tickets: the scan this replaced took 1.2–1.5 s (README, benchmark)."""
    s1 = Ticket.sla_primera_respuesta_segundos
    s2 = Ticket.sla_resolucion_segundos
    claves = _COLUMNAS
    if conteos is None:
        conteos, total = _conteos(where, ahora, periodo)
    else:
        conteos, total = conteos

    sondas: list = []  # (outcome column, rank, outcomes in the group, group): answered by _sondear

    def agregado(cifras, condicion) -> list:
        """The group's row; its percentiles probed unless ``condicion`` is None (known already)."""
        n, n1, ok1, n2, ok2, incumplidos = cifras
        fila = [n, n1, ok1, None, None, n2, ok2, None, None, incumplidos]
        for i, (segundos, alcanzados) in ((3, (s1, n1)), (7, (s2, n2))):
            if alcanzados and condicion is not None:
                sondas.append((fila, i, segundos, _rango(alcanzados, 50), alcanzados, condicion))
                sondas.append((fila, i + 1, segundos, _rango(alcanzados, 90), alcanzados, condicion))
        return fila

    por_guardar = []
    zona = _zona().key

    def grupo(nombre, clave, cifras, condicion) -> list:
        """``agregado`` of one group, its percentiles from ``_PERCENTILES`` when its signature is
        known there."""
        llave = None if firmas is None else (nombre, clave, zona, agrupacion, firmas[(nombre, clave)])
        guardado = _PERCENTILES.get(llave) if llave else None
        if guardado is not None:
            fila = agregado(cifras, None)
            fila[3], fila[4], fila[7], fila[8] = guardado
            return fila
        fila = agregado(cifras, condicion)
        if llave:
            por_guardar.append((llave, fila))
        return fila

    grupos: dict[str, dict] = {nombre: {clave: grupo(nombre, clave, cifras, ("grupo", nombre, clave))
                                        for clave, cifras in conteos[nombre].items()} for nombre in claves}
    grupos["periodo"] = {}
    for clave, cifras in conteos["periodo"].items():
        inicio, fin = _limites_en_zona(str(clave)[:10], agrupacion, zona)
        grupos["periodo"][clave] = grupo("periodo", clave, cifras, ("periodo", inicio, fin))
    fila_total = grupo("total", None, total, ("total",))
    for valor, (fila, i, *_resto) in zip(_sondear(where, [sonda[2:] for sonda in sondas]), sondas, strict=True):
        fila[i] = valor
    if len(_PERCENTILES) + len(por_guardar) > MAX_PERCENTILES:
        _PERCENTILES.clear()
    for llave, fila in por_guardar:
        _PERCENTILES[llave] = (fila[3], fila[4], fila[7], fila[8])
    return tuple(fila_total), {nombre: {k: tuple(v) for k, v in d.items()} for nombre, d in grupos.items()}


def _sondear(where, sondas: list, por_sentencia: int = 200) -> list:
    """The value at 1-based ``rank`` of each (column, rank, n, group) probe, in order: each is
    ``ORDER BY column LIMIT 1 OFFSET rank - 1`` over a partial index, UNION ALL'ed a couple of
    hundred per statement (one round trip instead of one per group and percentile). A rank past
    the middle of the group's ``n`` outcomes is asked from the other end (``DESC OFFSET n - rank``):
    the 90th percentile walks a tenth of the index, or keeps a tenth of a period's rows in the
    sorter, instead of nine tenths. A group is ``("total",)``, ``("grupo", name in _COLUMNAS,
    value)`` or ``("periodo", start, end)``."""
    valores = []
    for inicio in range(0, len(sondas), por_sentencia):
        parte = sondas[inicio:inicio + por_sentencia]
        forma = tuple((segundos.key, rango - 1 > n - rango, grupo[0], grupo[1] if grupo[0] == "grupo" else None,
                       grupo[0] == "grupo" and grupo[2] is None) for segundos, rango, n, grupo in parte)
        params = {}
        for i, (_segundos, rango, n, grupo) in enumerate(parte):
            params[f"o{i}"] = min(rango - 1, n - rango)
            if grupo[0] == "grupo" and grupo[2] is not None:
                params[f"v{i}"] = grupo[2]
            elif grupo[0] == "periodo":
                params[f"a{i}"], params[f"b{i}"] = grupo[1], grupo[2]
        stmt = _sentencia_sondas(forma) if not where else _construir_sondas(forma, where)
        encontrados = dict(db.session.execute(stmt, params).all())
        valores.extend(encontrados[i] for i in range(len(parte)))
    return valores


def _construir_sondas(forma: tuple, where=()):
    """The UNION ALL of the probes of one shape (``_sondear``), every value a bound parameter."""
    partes = []
    for i, (columna, descendente, tipo, nombre, nulo) in enumerate(forma):
        segundos = getattr(Ticket, columna)
        if tipo == "grupo":
            condicion = [_COLUMNAS[nombre].is_(None) if nulo else _COLUMNAS[nombre] == bindparam(f"v{i}")]
        elif tipo == "periodo":
            condicion = [Ticket.fecha_creacion >= bindparam(f"a{i}"), Ticket.fecha_creacion < bindparam(f"b{i}")]
        else:
            condicion = []
        sub = (select(literal(i, Integer).label("i"), segundos.label("v"))
               .where(*where, segundos.is_not(None), *condicion)
               .order_by(segundos.desc() if descendente else segundos)
               .offset(bindparam(f"o{i}")).limit(1).subquery())
        partes.append(select(sub.c.i, sub.c.v))
    return union_all(*partes) if len(partes) > 1 else partes[0]


@lru_cache(maxsize=16)
def _sentencia_sondas(forma: tuple):
    """``_construir_sondas`` of every ticket, kept: the shape (which probes, by group kind) stays
    the same from one request to the next, and building a few hundred subqueries and their cache
    key cost ~30 ms of CPU per request at 100,000 tickets; the same statement object skips both."""
    return _construir_sondas(forma)


def _agregados_desde_cero(where, ahora, periodo) -> tuple[tuple, dict]:
    """The reference computation of ``_agregados`` (the tests compare the two): one SELECT of the
    stored outcome (and the breach flag, computed in SQL) streamed in chunks, every group and
    percentile computed here in Python with ``_percentil``. 1.2–1.5 s at 100,000 tickets."""
    periodo = literal(None) if periodo is None else periodo
    # Core execution (no ORM row processing: half the time at 100k rows), streamed in chunks.
    # Streamed per statement (Connection.execution_options would stream every later statement
    # of the session's connection too, upserts included, which PostgreSQL refuses).
    filas = db.session.connection().execute(
        select(Ticket.ingeniero_id, Ticket.prioridad, Ticket.categoria_id, periodo,
               Ticket.sla_primera_respuesta_segundos, Ticket.sla_primera_respuesta_cumplida,
               Ticket.sla_resolucion_segundos, Ticket.sla_resolucion_cumplida,
               case((incumplido_clause(ahora), 1), else_=0)).where(*where).execution_options(yield_per=5000))
    total = _Grupo()
    grupos: dict[str, dict] = {"ingeniero": {}, "prioridad": {}, "categoria": {}, "periodo": {}}
    nombres = ("ingeniero", "prioridad", "categoria", "periodo")
    for fila in filas:
        datos = fila[4:]
        total.sumar(*datos)
        for nombre, clave in zip(nombres, fila[:4], strict=True):
            grupo = grupos[nombre].get(clave)
            if grupo is None:
                grupo = grupos[nombre][clave] = _Grupo()
            grupo.sumar(*datos)
    return total.agregado(), {nombre: {k: g.agregado() for k, g in d.items()} for nombre, d in grupos.items()}


def _fila(agregado) -> dict:
    total, n1, ok1, p50_1, p90_1, n2, ok2, p50_2, p90_2, incumplidos = agregado

    def pct(ok, n):
        return round(100 * int(ok) / n, 1) if n else None

    def minutos(s):
        return None if s is None else round(int(s) / 60, 1)

    return {"tickets": total, "incumplidos": int(incumplidos),
            "primera_respuesta": {"cumplimiento_pct": pct(ok1, n1), "tickets": n1,
                                  "mediana_min": minutos(p50_1), "p90_min": minutos(p90_1)},
            "resolucion": {"cumplimiento_pct": pct(ok2, n2), "tickets": n2,
                           "mediana_min": minutos(p50_2), "p90_min": minutos(p90_2)}}


def _extremos(where=()):
    """The first and last creation instants of the tickets in ``where``: two subqueries, as SQLite
    answers a lone min() or max() from an index, not both in one SELECT."""
    return select(select(func.min(Ticket.fecha_creacion)).where(*where).scalar_subquery(),
                  select(func.max(Ticket.fecha_creacion)).where(*where).scalar_subquery())


@lru_cache(maxsize=1)
def _sentencia_extremos():
    """``_extremos`` of every ticket, built once."""
    return _extremos()


def nombres_de(categorias: list[int], ingenieros: list[int]) -> tuple[dict[int, str], dict[int, str]]:
    """The names of the categorías and of the engineers with these ids, in one statement."""
    out: tuple[dict, dict] = ({}, {})
    for tipo, id_, nombre in db.session.execute(_sentencia_nombres(), {"c": categorias, "i": ingenieros}):
        out[tipo][id_] = nombre
    return out


@lru_cache(maxsize=1)
def _sentencia_nombres():
    from models import Categoria, Ingeniero, Usuario

    return union_all(
        select(literal_column("0"), Categoria.id, Categoria.nombre)
        .where(Categoria.id.in_(bindparam("c", expanding=True))),
        select(literal_column("1"), Ingeniero.id, Usuario.nombre).join(Usuario, Usuario.id == Ingeniero.usuario_id)
        .where(Ingeniero.id.in_(bindparam("i", expanding=True))))


def metricas(desde: Optional[datetime] = None, hasta: Optional[datetime] = None, *, filtro=(),
             agrupacion: Optional[str] = None, ahora: Optional[datetime] = None, desde_cero: bool = False,
             marginales: Optional[dict] = None, nombres: Optional[tuple[dict, dict]] = None) -> dict:
    """SLA compliance and business times of the tickets created in [desde, hasta] (and matching
    ``filtro``, e.g. a viewer's scope), overall and per engineer, prioridad, categoría and period.

    First response: met when answered by its due time; time = business seconds from creation to
    the first response. Resolution: met when resolved by its due time; time = business seconds the
    clock ran until resolution (pauses excluded). Breaches count tickets that missed either target
    or are past due and still open. Periods are local days, weeks (from Monday) or months of the
    office time zone (APP_TIMEZONE), chosen from the span when ``agrupacion`` is None.
    ``desde_cero`` computes them with the reference implementation (the tests compare both);
    ``marginales``: the rollup (``acumulados.marginales()``) if the caller has already read it;
    ``nombres``: ``nombres_de``'s names of the categorías and engineers, if the caller has them."""
    ahora = ahora or utcnow()
    where = [w for w in filtro if not isinstance(w, True_)]  # an admin's scope is no condition
    if desde is not None:
        where.append(Ticket.fecha_creacion >= desde)
    if hasta is not None:
        where.append(Ticket.fecha_creacion <= hasta)

    lo, hi = db.session.execute(_sentencia_extremos() if not where else _extremos(where)).one()
    agrupacion_usada = agrupacion or "dia"
    periodo = None  # no ticket in the window
    if lo is not None:
        agrupacion_usada = elegir_agrupacion(desde or lo, hasta or hi, agrupacion)
        periodo = expresion_periodo(Ticket.fecha_creacion, agrupacion_usada, lo, hi)
    if desde_cero:
        total, por = _agregados_desde_cero(where, ahora, periodo)
    elif not where:  # every ticket: the counts come from the rollup
        conteos, total, firmas = _conteos_resumen(ahora, agrupacion_usada, periodo, marginales)
        total, por = _agregados(where, ahora, periodo, agrupacion_usada, (conteos, total), firmas)
    else:
        total, por = _agregados(where, ahora, periodo, agrupacion_usada)
    total = _fila(total)
    categorias, ingenieros = nombres or ({}, {})
    faltan = ([c for c in por["categoria"] if c not in categorias],
              [i for i in por["ingeniero"] if i is not None and i not in ingenieros])
    if any(faltan):
        mas_categorias, mas_ingenieros = nombres_de(*faltan)
        categorias, ingenieros = {**categorias, **mas_categorias}, {**ingenieros, **mas_ingenieros}

    por_ingeniero = sorted(({"clave": ingenieros.get(i), "id": i, **_fila(a)} for i, a in por["ingeniero"].items()),
                           key=lambda f: (f["clave"] is None, f["clave"] or "", f["id"] or 0))
    rango = {p: i for i, p in enumerate(PRIORIDADES)}
    por_prioridad = sorted(({"clave": p, **_fila(a)} for p, a in por["prioridad"].items()),
                           key=lambda f: rango.get(f["clave"], 99))
    por_categoria = sorted(({"clave": categorias[c], "id": c, **_fila(a)} for c, a in por["categoria"].items()),
                           key=lambda f: f["clave"])
    por_periodo = sorted(({"clave": str(k)[:10], **_fila(a)} for k, a in por["periodo"].items() if k is not None),
                         key=lambda f: f["clave"])

    def incumplimientos(filas, nulo=None):
        return {(f["clave"] if f["clave"] is not None else nulo): f["incumplidos"] for f in filas if f["incumplidos"]}

    return {
        "tickets": total["tickets"], "incumplidos": total["incumplidos"],
        "primera_respuesta": total["primera_respuesta"], "resolucion": total["resolucion"],
        "incumplimientos": {"ingeniero": dict(sorted(incumplimientos(por_ingeniero, "—").items())),
                            "prioridad": dict(sorted(incumplimientos(por_prioridad).items())),
                            "categoria": dict(sorted(incumplimientos(por_categoria).items()))},
        "por_ingeniero": por_ingeniero, "por_prioridad": por_prioridad, "por_categoria": por_categoria,
        "agrupacion": agrupacion_usada, "zona": _zona().key, "por_periodo": por_periodo,
    }
