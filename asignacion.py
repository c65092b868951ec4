"""Automatic assignment on creation (issue 12): available engineers under their open-ticket cap,
those whose especialidad matches the categoría first (admins map categoría → especialidad),
then the lowest open load weighted by prioridad, ties by least recently assigned (round-robin).

Runs on creation (web, API and escalations from a conversation all create through
``tickets.crear_ticket``): decided before the INSERT (``ticket_por_crear``), recorded after it
(``ticket_creado``), only when the setting is on and nobody assigned it already: manual
assignment always wins. Nobody fits → the ticket stays unassigned and admins are alerted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional

from sqlalchemy import Integer, bindparam, case, func, inspect, select, union_all

import sla
from models import ESTADOS_ABIERTOS, Ingeniero, Ticket, Usuario, db, sqlite_tomar_escritura, utcnow

PESO = {"baja": 1, "media": 2, "alta": 3, "critica": 4}


@dataclass(frozen=True)
class Decision:
    ingeniero: Optional[Ingeniero]
    motivo: str
    alertado: bool = False  # nobody fits and the admins were already told (alertas.sin_candidato_alertado)


def cargas(topes: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Per engineer of ``topes`` (id → cap): (open tickets, open load weighted by prioridad),
    reading at most ``cap`` open tickets of each: one at their cap is full whatever the rest, one
    below it has every open ticket counted. One statement, each part an index range on
    (ingeniero_id, estado): a GROUP BY over every open ticket took seconds at 100,000 tickets, on
    every creation."""
    topes = {i: tope for i, tope in topes.items() if tope > 0}
    if not topes:
        return {}
    params = {}
    for k, (ingeniero_id, tope) in enumerate(topes.items()):
        params[f"i{k}"], params[f"t{k}"] = ingeniero_id, tope
    return {i: (n, int(w or 0)) for i, n, w in db.session.execute(_consulta_cargas(len(topes)), params) if n}


@lru_cache(maxsize=32)
def _consulta_cargas(n: int):
    """The statement of ``cargas`` for ``n`` engineers, ids and caps as parameters: built once per
    size, so a creation does not rebuild and re-key a UNION of ``n`` parts every time."""
    partes = []
    for k in range(n):
        # Ordered as the (ingeniero_id, estado) index: without an order PostgreSQL read the cap's
        # rows by a sequential scan from the table's start (fine while the engineer has thousands
        # open, the whole table when they have fewer than their cap), and the generic plan of that
        # guess cost so much more than a custom one that every creation planned the statement
        # anew (~1 ms of the server's CPU per creation at 100k tickets; issue 13).
        abiertos = (select(Ticket.prioridad).where(Ticket.ingeniero_id == bindparam(f"i{k}"),
                                                    Ticket.estado.in_(ESTADOS_ABIERTOS))
                    .order_by(Ticket.ingeniero_id, Ticket.estado)
                    .limit(bindparam(f"t{k}", type_=Integer, literal_execute=True)).subquery())
        peso = case(PESO, value=abiertos.c.prioridad, else_=1)
        partes.append(select(bindparam(f"i{k}", type_=Integer), func.count(), func.sum(peso)).select_from(abiertos))
    return union_all(*partes)


def elegir(ticket: Ticket, excluir: Optional[int] = None) -> Decision:
    """Pick the engineer for ``ticket`` (no side effects); never the engineer ``excluir``.

    The choice is made from a plain read, then reserved (``_reservar``: the engineer held until
    commit, their load counted again); one found full meanwhile is dropped and the choice made
    again among the rest. Locking every candidate up front (PostgreSQL) made each creation wait
    for the previous one's commit even when nobody could be assigned; SQLite read the loads
    before taking the write lock and let concurrent creations pile onto one engineer."""
    candidatos = _candidatos(excluir)
    while True:
        decision = _decidir(ticket, candidatos)
        if decision.ingeniero is None or _reservar(decision.ingeniero):
            return decision
        candidatos = [i for i in candidatos if i is not decision.ingeniero]


def _reservar(ingeniero: Ingeniero) -> bool:
    """Hold ``ingeniero`` until commit if they are still available and below their cap, so two
    creations cannot both take their last slot. PostgreSQL locks their row, in a SAVEPOINT that
    gives the lock back when they are full (holding one while waiting for another could
    deadlock); SQLite begins the write transaction (one writer at a time: the load counted next
    cannot change before the creation commits)."""
    if db.engine.dialect.name != "postgresql":
        sqlite_tomar_escritura(db.session.connection())
        return _libre(ingeniero)
    punto = db.session.begin_nested()
    if _libre(ingeniero, bloquear=True):
        punto.commit()
        return True
    punto.rollback()
    return False


def _libre(ingeniero: Ingeniero, bloquear: bool = False) -> bool:
    stmt = select(Ingeniero.id).where(Ingeniero.id == ingeniero.id, Ingeniero.disponible.is_(True))
    if db.session.execute(stmt.with_for_update() if bloquear else stmt).scalar() is None:
        return False
    tope = ingeniero.max_abiertos or 0
    return cargas({ingeniero.id: tope}).get(ingeniero.id, (0, 0))[0] < tope


def _candidatos(excluir: Optional[int]) -> list[Ingeniero]:
    stmt = _CANDIDATOS if excluir is None else _CANDIDATOS.where(Ingeniero.id != excluir)
    return list(db.session.execute(stmt).scalars())


# Built once: every creation asks (a redistribution adds the engineer it empties).
_CANDIDATOS = (select(Ingeniero).join(Usuario, Usuario.id == Ingeniero.usuario_id)
               .where(Ingeniero.disponible.is_(True), Usuario.activo.is_(True), Usuario.rol == "ingeniero")
               .order_by(Ingeniero.id))


def _decidir(ticket: Ticket, ingenieros: list[Ingeniero]) -> Decision:
    carga = cargas({i.id: i.max_abiertos or 0 for i in ingenieros})
    libres = [i for i in ingenieros if carga.get(i.id, (0, 0))[0] < (i.max_abiertos or 0)]
    if not libres:
        return Decision(None, "no available engineer below their maximum open load")
    especialidad = (ticket.categoria.especialidad or "").strip().lower() if ticket.categoria else ""
    expertos = [i for i in libres if especialidad and (i.especialidad or "").strip().lower() == especialidad]
    grupo = expertos or libres
    epoch = utcnow().replace(year=1970, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elegido = min(grupo, key=lambda i: (carga.get(i.id, (0, 0))[1], i.ultima_asignacion or epoch, i.id))
    abiertos = carga.get(elegido.id, (0, 0))[0]
    if expertos:
        motivo = f"especialidad {elegido.especialidad}, {abiertos} abiertos"
    else:
        motivo = f"menor carga, {abiertos} abiertos"
    return Decision(elegido, motivo)


def asignar_automaticamente(ticket: Ticket) -> Decision:
    """Before the ticket's INSERT: pick its engineer and set it, so the row is written assigned
    (no UPDATE of the new ticket, no second pass of the statistics rollup, and on SQLite these
    reads happen before the write lock is taken). ``registrar`` writes the history after it."""
    decision = elegir(ticket)
    if decision.ingeniero is not None:
        ticket.ingeniero = decision.ingeniero
        decision.ingeniero.ultima_asignacion = utcnow()
    return decision


def registrar(ticket: Ticket, decision: Decision, fecha=None) -> None:
    """The history of an automatic assignment (with the reason) and who hears it; nobody fit →
    the ticket stays unassigned and the admins are alerted (alertas.alertar_sin_candidato).
    ``fecha``: the instant of the history rows (on creation, the creation's own)."""
    import alertas
    import tickets

    ingeniero = decision.ingeniero
    if ingeniero is None:
        tickets.record(ticket, None, "asignacion_automatica", "ingeniero", None, None, interno=True, fecha=fecha)
        if not decision.alertado:
            alertas.alertar_sin_candidato(ticket)
        return
    tickets.record(ticket, None, "asignacion", "ingeniero", None, ingeniero.usuario.nombre, fecha=fecha)
    tickets.record(ticket, None, "asignacion_automatica", "motivo", None,
                   f"asignado automáticamente: {decision.motivo}", interno=True, fecha=fecha)
    tickets.ticket_asignado.send(ticket, actor=None, ingeniero=ingeniero)


_DECISION = "asignacion.decision"  # the creation's decision, kept on the ticket's instance state


def _on_por_crear(ticket, **_):
    if ticket.ingeniero is None and ticket.ingeniero_id is None and sla.vigentes().asignacion_automatica:
        decision = asignar_automaticamente(ticket)
        if decision.ingeniero is None:  # read now, not while the creation holds SQLite's write lock
            import alertas

            decision = replace(decision, alertado=alertas.sin_candidato_alertado())
        inspect(ticket).info[_DECISION] = decision


def _on_creado(ticket, **_):
    decision = inspect(ticket).info.pop(_DECISION, None)
    if decision is not None:
        # Part of the creation: its history rows share the creation's instant, so the ticket's
        # fecha_actualizacion stays the one its INSERT wrote.
        registrar(ticket, decision, fecha=ticket.fecha_creacion)


def conectar_senales() -> None:
    import tickets

    tickets.ticket_por_crear.connect(_on_por_crear)  # manual assignment always wins: it is set before
    tickets.ticket_creado.connect(_on_creado)


# --- administration (rutas/sla.py) ------------------------------------------------------------------

def mapear_especialidad(categoria_id: int, especialidad: Optional[str]):
    """Admins map a categoría to the especialidad that handles it (None clears it)."""
    from errors import NotFound
    from models import Categoria

    categoria = db.session.get(Categoria, categoria_id)
    if categoria is None:
        raise NotFound("Unknown category.")
    categoria.especialidad = (especialidad or "").strip() or None
    db.session.flush()
    return categoria


def ajustar_ingeniero(ingeniero_id: int, actor: Usuario, max_abiertos: Optional[int] = None,
                      disponible: Optional[bool] = None) -> Ingeniero:
    """The cap is the admin's; the "disponible" switch is the engineer's own (or the admin's)."""
    from errors import Forbidden, NotFound

    ingeniero = db.session.get(Ingeniero, ingeniero_id)
    if ingeniero is None:
        raise NotFound("Engineer not found.")
    if actor.rol != "admin" and not (actor.rol == "ingeniero" and ingeniero.usuario_id == actor.id):
        raise NotFound("Engineer not found.")
    if max_abiertos is not None:
        if actor.rol != "admin":
            raise Forbidden("Your role may not do this.")
        ingeniero.max_abiertos = max_abiertos
    if disponible is not None:
        ingeniero.disponible = disponible
    db.session.flush()
    return ingeniero


# --- redistribution (an engineer became unavailable) -----------------------------------------

@dataclass(frozen=True)
class Redistribucion:
    reasignados: list[tuple[Ticket, Ingeniero, str]]  # ticket, its new engineer, the reason
    sin_asignar: list[Ticket]  # nobody fitted: left unassigned, admins alerted


def abiertos_de(ingeniero_id: int) -> int:
    """Open tickets assigned to the engineer (what "Redistribute N open tickets" offers)."""
    return db.session.execute(select(func.count()).select_from(Ticket).where(
        Ticket.ingeniero_id == ingeniero_id, Ticket.estado.in_(ESTADOS_ABIERTOS))).scalar_one()


def oferta_redistribuir(ingeniero: Ingeniero) -> int:
    """N when the engineer cannot take work (unavailable or deactivated) and still holds N open
    tickets; 0 when there is nothing to offer."""
    if ingeniero.disponible and ingeniero.usuario.activo:
        return 0
    return abiertos_de(ingeniero.id)


def redistribuir(ingeniero_id: int, actor: Usuario) -> Redistribucion:
    """Reassign every open ticket still assigned to the engineer through the automatic rules
    (never back to them), most urgent first, with history saying why; those nobody fits are
    left unassigned and the admins alerted. Only tickets assigned to them now are touched: a
    ticket an admin already moved by hand stays where it is (manual assignment wins)."""
    import alertas
    import tickets
    from errors import Forbidden, NotFound

    if actor.rol != "admin":
        raise Forbidden("Only an admin assigns tickets.")
    ingeniero = db.session.get(Ingeniero, ingeniero_id)
    if ingeniero is None:
        raise NotFound("Engineer not found.")
    rango = case(PESO, value=Ticket.prioridad, else_=1)
    stmt = (select(Ticket).where(Ticket.ingeniero_id == ingeniero.id, Ticket.estado.in_(ESTADOS_ABIERTOS))
            .order_by(rango.desc(), Ticket.fecha_creacion, Ticket.id))
    nombre = ingeniero.usuario.nombre
    reasignados, sin_asignar = [], []
    for ticket in list(db.session.execute(stmt).scalars()):
        decision = elegir(ticket, excluir=ingeniero.id)
        nuevo = decision.ingeniero
        ticket.ingeniero = nuevo
        tickets.record(ticket, actor, "asignacion", "ingeniero", nombre, nuevo.usuario.nombre if nuevo else None)
        if nuevo is None:
            tickets.record(ticket, actor, "asignacion_automatica", "motivo", None,
                           f"redistribuido ({nombre} no disponible): {decision.motivo}", interno=True)
        else:
            nuevo.ultima_asignacion = utcnow()
            tickets.record(ticket, actor, "asignacion_automatica", "motivo", None,
                           f"redistribuido ({nombre} no disponible); asignado automáticamente: {decision.motivo}",
                           interno=True)
        tickets.guardar(ticket)  # optimistic lock: a ticket changed meanwhile is a 409, nothing written
        tickets.ticket_desasignado.send(ticket, actor=actor, ingeniero=ingeniero)
        if nuevo is None:
            alertas.notificar(ticket, "sin_candidato")
            sin_asignar.append(ticket)
        else:
            tickets.ticket_asignado.send(ticket, actor=actor, ingeniero=nuevo)
            reasignados.append((ticket, nuevo, decision.motivo))
    db.session.flush()
    return Redistribucion(reasignados, sin_asignar)
