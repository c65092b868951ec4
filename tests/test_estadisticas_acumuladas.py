"""The fast statistics of every ticket (the rollup ``acumulados`` and the SLA percentile probes)
equal a from-scratch recomputation (``desde_cero``, the scan they replaced) after random lifecycle
operations through the domain functions, on a fake clock in Madrid office hours (so local days,
weeks and months cross a DST change), for every grouping and for the scoped and windowed paths."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from test_sla_metricas import Reloj, madrid, oficina, reloj  # noqa: F401  (fixtures reused)

import acumulados
import csat
import reports
import tickets
from errors import DomainError
from models import EstadisticaMarginal, Ticket, db
from schemas import TicketCreate, TicketUpdate

PRIORIDADES = ["alta", "media", "baja", "critica"]
CATEGORIAS = ["Hardware", "Redes", "Software"]


def _paseo(rng: random.Random, reloj: Reloj, admin, usuarios, ingenieros, pasos: int,  # noqa: F811
           cada_tanto=None) -> list[Ticket]:
    """Random operations, each committed (a refused one rolled back): create, assign, reassign,
    unassign, reply, change estado (resolve, close, reopen, pause), prioridad, categoría, rate;
    ``cada_tanto()`` every 20 steps."""
    lista: list[Ticket] = []
    for paso in range(pasos):
        if cada_tanto and paso % 20 == 19:
            cada_tanto()
        # Microseconds too (not drawn from rng: the walk stays the same): PostgreSQL's response and
        # resolution times are exact, SQLite's rounded to the second.
        reloj.ahora += timedelta(minutes=rng.choice([1, 7, 30, 95, 240, 600, 1500, 3000, 9000]),
                                 microseconds=paso * 104_729 % 1_000_000)
        op = rng.random()
        try:
            if op < 0.2 or not lista:
                t = tickets.crear_ticket(TicketCreate(titulo="x", descripcion="y", prioridad=rng.choice(PRIORIDADES),
                                                      categoria=rng.choice(CATEGORIAS)), usuario=rng.choice(usuarios))
                if rng.random() < 0.7:
                    tickets.asignar(t, admin, rng.choice(ingenieros).ingeniero.id)
                lista.append(t)
            else:
                t = rng.choice(lista)
                if op < 0.3:
                    tickets.agregar_mensaje(t, rng.choice([admin, t.usuario]), "hola")
                elif op < 0.36:
                    tickets.actualizar_ticket(t, admin, TicketUpdate(prioridad=rng.choice(PRIORIDADES)))
                elif op < 0.42:
                    tickets.actualizar_ticket(t, admin, TicketUpdate(categoria=rng.choice(CATEGORIAS)))
                elif op < 0.48:
                    tickets.asignar(t, admin, rng.choice(ingenieros).ingeniero.id)
                elif op < 0.52:
                    t.ingeniero = None  # unassigned through the relationship, as some panels do
                    db.session.flush()
                elif op < 0.58:
                    csat.valorar(t, rng.randint(1, 5), actor=t.usuario)
                else:
                    quien = rng.choice([admin, admin, t.usuario])
                    movimientos = tickets.allowed_moves(t, quien)
                    adelante = [m for m in movimientos if m in ("en_progreso", "resuelto", "cerrado")]
                    if movimientos:
                        tickets.cambiar_estado(t, quien, rng.choice(
                            adelante if adelante and rng.random() < 0.6 else movimientos))
            db.session.commit()
        except DomainError:
            db.session.rollback()
    return lista


def _acumulado() -> dict:
    return {(f.dimension, f.clave): tuple(getattr(f, v) for v in acumulados.VALORES)
            for f in db.session.query(EstadisticaMarginal) if f.tickets}


@pytest.mark.parametrize("semilla", [1, 2, 3])
def test_fast_statistics_equal_a_from_scratch_recomputation_after_random_operations(
        oficina, reloj, make_user, semilla):  # noqa: F811
    rng = random.Random(semilla)
    admin = make_user("admin")
    usuarios = [make_user("usuario"), make_user("usuario")]
    ingenieros = [make_user("ingeniero"), make_user("ingeniero"), make_user("ingeniero")]
    reloj.a(2026, 9, 14, 8, 0)  # the walk crosses the end of summer time (25 October)

    def comparar():
        """Along the walk too: the period percentiles kept from one call must follow the changes."""
        for agrupacion in ("dia", "semana"):
            periodo = reports.Periodo(agrupacion=agrupacion)
            assert reports.estadisticas(admin, periodo, ahora=reloj.ahora) == \
                reports.estadisticas(admin, periodo, ahora=reloj.ahora, desde_cero=True), agrupacion

    lista = _paseo(rng, reloj, admin, usuarios, ingenieros, 160, comparar)
    reloj.ahora += timedelta(hours=5)
    db.session.expire_all()

    assert len({t.estado for t in lista}) >= 4 and len(lista) >= 20  # the walk did move tickets around
    ahora = reloj.ahora
    for agrupacion in (None, "dia", "semana", "mes"):
        periodo = reports.Periodo(agrupacion=agrupacion)
        rapido = reports.estadisticas(admin, periodo, ahora=ahora)
        lento = reports.estadisticas(admin, periodo, ahora=ahora, desde_cero=True)
        assert rapido == lento, agrupacion
    assert rapido["sla"]["incumplidos"] > 0 and rapido["sla"]["resolucion"]["tickets"] > 0
    # The daily series too is compared with a count of the tickets' instants (``desde_cero``).
    assert sum(d["creados"] for d in rapido["serie_diaria"]) and sum(d["cerrados"] for d in rapido["serie_diaria"])
    for tiempo in ("primera_respuesta", "resolucion"):  # from the rollup and the duration index
        assert rapido[tiempo]["n"] > 1 and rapido[tiempo]["mediana_segundos"] is not None

    # Past due now is the rollup's pending clocks minus those not due yet: exact at any instant,
    # earlier (more still ahead) or later (more overdue) than the last change.
    vencidos = set()
    for desplazamiento in (timedelta(days=-20), timedelta(days=-3), timedelta(hours=1), timedelta(days=60)):
        cuando = ahora + desplazamiento
        rapido = reports.estadisticas(admin, ahora=cuando)
        assert rapido == reports.estadisticas(admin, ahora=cuando, desde_cero=True), desplazamiento
        vencidos.add(rapido["sla"]["incumplidos"])
    assert len(vencidos) > 1  # the instants did move tickets past their due time

    # The rollup itself equals one rebuilt from the tickets.
    guardado = _acumulado()
    acumulados.reconstruir()
    assert _acumulado() == guardado
    db.session.rollback()

    # Scoped and windowed statistics (the exact path) agree with the reference as well.
    for quien, periodo in ((ingenieros[0], reports.Periodo()), (usuarios[0], reports.Periodo()),
                           (admin, reports.Periodo(desde=madrid(2026, 10, 1, 12).date(),
                                                   hasta=madrid(2026, 10, 31, 12).date(), agrupacion="semana"))):
        assert reports.estadisticas(quien, periodo, ahora=ahora) == \
            reports.estadisticas(quien, periodo, ahora=ahora, desde_cero=True)


def test_a_rolled_back_change_leaves_the_rollup_as_it_was(oficina, reloj, make_user):  # noqa: F811
    admin, pepe = make_user("admin"), make_user("usuario")
    t = tickets.crear_ticket(TicketCreate(titulo="x", descripcion="y", prioridad="alta", categoria="Redes"),
                             usuario=pepe)
    db.session.commit()
    antes = _acumulado()
    assert antes[("estado", "abierto")][0] == 1 and antes[("prioridad", "alta")][0] == 1
    tickets.actualizar_ticket(t, admin, TicketUpdate(prioridad="baja"))
    db.session.rollback()
    assert _acumulado() == antes


def test_the_rebuild_command_restores_a_rollup_bypassed_by_a_bulk_insert(app, oficina, make_user):  # noqa: F811
    from sqlalchemy import insert

    pepe = make_user("usuario")
    t = tickets.crear_ticket(TicketCreate(titulo="x", descripcion="y", prioridad="media", categoria="Redes"),
                             usuario=pepe)
    db.session.commit()
    fila = {c.key: getattr(t, c.key) for c in Ticket.__table__.columns if c.key not in ("id", "numero_ticket")}
    db.session.execute(insert(Ticket.__table__), [fila])  # Core: no ORM flush, the rollup misses it
    db.session.commit()
    assert _acumulado()[("estado", "abierto")][0] == 1
    resultado = app.test_cli_runner().invoke(args=["estadisticas-reconstruir"])
    assert resultado.exit_code == 0 and "2 tickets" in resultado.output
    db.session.expire_all()
    assert _acumulado()[("estado", "abierto")][0] == 2


def test_the_rollup_read_before_commit_includes_the_transaction_s_own_changes(oficina, reloj, make_user):  # noqa: F811
    """The rollup is written just before the commit; a read of it inside the transaction writes it
    first, a rollback (or a SAVEPOINT's) leaves nothing behind for a later commit."""
    admin, pepe = make_user("admin"), make_user("usuario")

    def nuevo(prioridad):
        return tickets.crear_ticket(TicketCreate(titulo="x", descripcion="y", prioridad=prioridad, categoria="Redes"),
                                    usuario=pepe)

    t = nuevo("alta")  # not committed yet
    assert acumulados.contar_tickets(acumulados.consulta_de_conteo([acumulados.CONTEOS.c.prioridad == "alta"])) == 1
    assert _acumulado()[("prioridad", "alta")][0] == 1
    db.session.commit()
    tickets.actualizar_ticket(t, admin, TicketUpdate(prioridad="baja"))
    assert _acumulado()[("prioridad", "baja")][0] == 1 and ("prioridad", "alta") not in _acumulado()
    db.session.rollback()
    tickets.actualizar_ticket(t, admin, TicketUpdate(prioridad="baja"))  # not read: pending when rolled back
    db.session.rollback()
    otro = nuevo("media")
    punto = db.session.begin_nested()
    tickets.actualizar_ticket(otro, admin, TicketUpdate(prioridad="critica"))
    punto.rollback()
    db.session.commit()
    guardado = _acumulado()
    assert guardado[("prioridad", "alta")][0] == 1 and guardado[("prioridad", "media")][0] == 1
    assert ("prioridad", "baja") not in guardado and ("prioridad", "critica") not in guardado
    acumulados.reconstruir()
    assert _acumulado() == guardado
    db.session.rollback()


def test_the_kept_medians_follow_a_response_time_that_changed_alone(oficina, reloj, make_user):  # noqa: F811
    """The medians of every ticket are kept under the rollup's tags until a time changes: a ticket
    re-dated through the ORM (the demo seed does it) keeps its stored SLA seconds, not its
    response time, and the medians are asked again."""
    admin, pepe = make_user("admin"), make_user("usuario")
    reloj.a(2026, 9, 14, 10, 0)
    respondidos = []
    for minutos in (10, 20, 30):
        t = tickets.crear_ticket(TicketCreate(titulo="x", descripcion="y", prioridad="alta", categoria="Redes"),
                                 usuario=pepe)
        db.session.commit()
        reloj.ahora += timedelta(minutes=minutos)
        tickets.agregar_mensaje(t, admin, "hola")
        db.session.commit()
        respondidos.append(t)
    antes = reports.estadisticas(admin, ahora=reloj.ahora)
    assert antes == reports.estadisticas(admin, ahora=reloj.ahora, desde_cero=True)
    assert antes["primera_respuesta"]["mediana_segundos"] == 20 * 60

    segundos = respondidos[1].sla_primera_respuesta_segundos
    respondidos[1].fecha_creacion -= timedelta(hours=2)
    db.session.commit()
    assert respondidos[1].sla_primera_respuesta_segundos == segundos  # the SLA outcome stays
    despues = reports.estadisticas(admin, ahora=reloj.ahora)
    assert despues["primera_respuesta"]["mediana_segundos"] == 30 * 60  # 10, 30, 140 minutes
    assert despues == reports.estadisticas(admin, ahora=reloj.ahora, desde_cero=True)
