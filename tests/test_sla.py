"""SLA in business time (sla.py): calendar arithmetic as properties (weekends, holidays, DST in
Europe/Madrid, pauses and reopenings), the hand-computed cases, due times stored on tickets and
the overdue rule that reads them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sla
from models import ConfiguracionSLA, PoliticaSLA, Ticket, db

MADRID = ZoneInfo("Europe/Madrid")
OFICINA = {str(d): ["09:00", "18:00"] for d in range(5)}  # Monday–Friday 9–18
FERIADOS = ["2026-12-08", "2026-12-25", "2027-01-01", "2026-03-19"]
CAL = sla.Calendario.desde(OFICINA, FERIADOS, "Europe/Madrid")
CAL_24X7 = sla.Calendario.desde(sla.HORARIO_24X7, (), "Europe/Madrid")


def madrid(*args) -> datetime:
    return datetime(*args, tzinfo=MADRID).astimezone(UTC)


# --- hand-computed cases ------------------------------------------------------------------------

def test_friday_1755_with_two_business_hours_is_due_monday_1055():
    vence = sla.sumar(madrid(2026, 11, 20, 17, 55), 2 * 3600, CAL)
    assert vence == madrid(2026, 11, 23, 10, 55)
    assert vence.astimezone(MADRID).strftime("%A %H:%M") == "Monday 10:55"


def test_holiday_is_skipped():
    # Monday 7 Dec 17:00 + 2 h: one hour on Monday, Tuesday 8 Dec is a holiday → Wednesday 10:00.
    assert sla.sumar(madrid(2026, 12, 7, 17, 0), 2 * 3600, CAL) == madrid(2026, 12, 9, 10, 0)


def test_before_opening_and_weekend_start_count_from_the_next_opening():
    assert sla.sumar(madrid(2026, 11, 23, 6, 30), 3600, CAL) == madrid(2026, 11, 23, 10, 0)
    assert sla.sumar(madrid(2026, 11, 21, 12, 0), 3600, CAL) == madrid(2026, 11, 23, 10, 0)


def test_dst_spring_forward_day_has_23_hours_on_a_24x7_calendar():
    # Clocks go 02:00 → 03:00 on Sunday 29 March 2026 in Madrid.
    assert sla.segundos_habiles(madrid(2026, 3, 29, 0, 0), madrid(2026, 3, 30, 0, 0), CAL_24X7) == 23 * 3600
    assert sla.segundos_habiles(madrid(2026, 10, 25, 0, 0), madrid(2026, 10, 26, 0, 0), CAL_24X7) == 25 * 3600
    # Saturday 20:00 + 24 business hours across the short night → Sunday 21:00 local.
    assert sla.sumar(madrid(2026, 3, 28, 20, 0), 24 * 3600, CAL_24X7) == madrid(2026, 3, 29, 21, 0)


def test_office_day_around_dst_change_is_still_nine_hours():
    for dia in (date(2026, 3, 27), date(2026, 3, 30), date(2026, 10, 23), date(2026, 10, 26)):
        inicio, fin = CAL.ventana(dia)
        assert fin - inicio == timedelta(hours=9)
        assert inicio.astimezone(MADRID).hour == 9


def test_calendar_without_working_days_gives_no_due_time():
    assert sla.sumar(madrid(2026, 11, 20, 10, 0), 60, sla.Calendario.desde({}, (), "Europe/Madrid")) is None


# --- properties ------------------------------------------------------------------------------------

instantes = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                         timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
duraciones = st.integers(min_value=0, max_value=200 * 3600)
calendarios = st.sampled_from([CAL, CAL_24X7, sla.Calendario.desde(
    {"0": ["08:30", "14:00"], "2": ["16:00", "24:00"], "5": ["00:00", "02:30"]}, FERIADOS, "Europe/Madrid")])


@given(instantes, duraciones, calendarios)
@settings(max_examples=300, deadline=None)
def test_business_time_between_start_and_due_is_the_target(inicio, segundos, cal):
    vence = sla.sumar(inicio, segundos, cal)
    assert vence >= inicio
    assert sla.segundos_habiles(inicio, vence, cal) == segundos


@given(instantes, st.integers(min_value=1, max_value=200 * 3600), calendarios)
@settings(max_examples=300, deadline=None)
def test_due_time_falls_inside_a_working_window_never_on_a_weekend_or_holiday(inicio, segundos, cal):
    vence = sla.sumar(inicio, segundos, cal)
    local = vence.astimezone(MADRID)
    dias = {local.date(), (local - timedelta(microseconds=1)).date()}  # 18:00 closes the day
    assert any((v := cal.ventana(d)) is not None and v[0] < vence <= v[1] for d in dias)
    if cal is CAL:
        assert local.weekday() < 5 and local.date().isoformat() not in FERIADOS


@given(instantes, duraciones, duraciones, calendarios)
@settings(max_examples=200, deadline=None)
def test_adding_in_two_steps_equals_adding_at_once(inicio, a, b, cal):
    assert sla.sumar(sla.sumar(inicio, a, cal), b, cal) == sla.sumar(inicio, a + b, cal)


@given(instantes, instantes, instantes, calendarios)
@settings(max_examples=200, deadline=None)
def test_business_time_is_additive_over_intervals(x, y, z, cal):
    a, b, c = sorted((x, y, z))
    assert sla.segundos_habiles(a, c, cal) == sla.segundos_habiles(a, b, cal) + sla.segundos_habiles(b, c, cal)


# --- tickets: stored due times, pauses, reopen -------------------------------------------------------

@pytest.fixture
def oficina(app):
    app.config["APP_TIMEZONE"] = "Europe/Madrid"
    db.session.merge(ConfiguracionSLA(id=1, horario=OFICINA, feriados=FERIADOS, umbral_aviso_pct=80,
                                      minutos_critico_sin_asignar=15, asignacion_automatica=False))
    db.session.add(PoliticaSLA(prioridad="alta", categoria_id=None, primera_respuesta_min=60, resolucion_min=120))
    db.session.commit()
    return app


def test_ticket_created_friday_evening_carries_monday_due_times(oficina, make_user, make_ticket):
    t = make_ticket(make_user(), prioridad="alta")
    t.fecha_creacion = madrid(2026, 11, 20, 17, 55)
    sla.recalcular(t, ahora=madrid(2026, 11, 20, 17, 55))
    assert t.sla_resolucion_vence == madrid(2026, 11, 23, 10, 55)
    assert t.sla_primera_respuesta_vence == madrid(2026, 11, 23, 9, 55)
    assert t.sla_resolucion_aviso == madrid(2026, 11, 23, 10, 31)  # 80 % of 120 min = 96 min


def test_category_policy_is_more_specific_than_the_priority_one(oficina, make_user, make_ticket):
    from models import Categoria

    redes = db.session.query(Categoria).filter_by(nombre="Redes").one()
    db.session.add(PoliticaSLA(prioridad="alta", categoria_id=redes.id, primera_respuesta_min=30, resolucion_min=60))
    db.session.commit()
    assert sla.objetivos("alta", redes.id) == (30, 60)
    assert sla.objetivos("alta", None) == (60, 120)
    assert sla.objetivos("baja", None) == sla.OBJETIVOS_POR_DEFECTO["baja"]


def test_waiting_on_the_customer_stops_the_clock_and_reopening_restarts_it(oficina, make_user, make_ticket):
    ing = make_user("ingeniero")
    t = make_ticket(make_user(), ingeniero=ing, prioridad="alta", estado="en_progreso")
    t.fecha_creacion = madrid(2026, 11, 23, 9, 0)  # Monday; due 11:00 without pauses
    sla.recalcular(t, ahora=madrid(2026, 11, 23, 9, 0))
    assert t.sla_resolucion_vence == madrid(2026, 11, 23, 11, 0)
    t.estado = "en_espera"  # 9:30 → waits on the customer until Tuesday 10:00
    sla.recalcular(t, ahora=madrid(2026, 11, 23, 9, 30))
    assert not sla.es_vencido(t, now=madrid(2026, 11, 24, 9, 0))
    t.estado = "en_progreso"
    sla.recalcular(t, ahora=madrid(2026, 11, 24, 10, 0))
    # Paused 9:30–18:00 Monday + 9:00–10:00 Tuesday = 9.5 business hours; 1.5 h were left.
    assert t.sla_pausado_segundos == int(9.5 * 3600)
    assert t.sla_resolucion_vence == madrid(2026, 11, 24, 11, 30)
    assert sla.transcurrido(t, madrid(2026, 11, 24, 11, 30)) == 120 * 60
    t.estado, t.fecha_resolucion = "resuelto", madrid(2026, 11, 24, 11, 0)
    sla.recalcular(t, ahora=madrid(2026, 11, 24, 11, 0))
    t.estado, t.fecha_resolucion = "abierto", None  # reopened Wednesday 9:15
    sla.recalcular(t, ahora=madrid(2026, 11, 25, 9, 15))
    assert t.sla_resolucion_vence == madrid(2026, 11, 25, 9, 45)


pausas = st.lists(st.integers(min_value=60, max_value=3 * 24 * 3600), min_size=1, max_size=8)


@given(inicio=instantes, saltos=pausas)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_paused_business_time_never_counts(oficina, inicio, saltos):
    """Alternate running / en_espera at random instants: the due time always leaves exactly the
    target of running business time, whatever the pauses."""
    t = Ticket(prioridad="alta", estado="abierto", fecha_creacion=inicio, sla_pausado_segundos=0)
    sla.recalcular(t, CAL, ahora=inicio)
    ahora, corriendo, pausado = inicio, True, 0
    for salto in saltos:
        siguiente = ahora + timedelta(seconds=salto)
        if not corriendo:
            pausado += sla.segundos_habiles(ahora, siguiente, CAL)
        t.estado = "en_espera" if corriendo else "en_progreso"
        sla.recalcular(t, CAL, ahora=siguiente)
        ahora, corriendo = siguiente, not corriendo
    if not corriendo:
        t.estado = "en_progreso"
        pausado += 0
        sla.recalcular(t, CAL, ahora=ahora)
    assert t.sla_pausado_segundos == pausado
    assert sla.segundos_habiles(inicio, t.sla_resolucion_vence, CAL) - pausado == 120 * 60


def test_signals_keep_due_times_current(oficina, make_user, make_ticket):
    import tickets
    from schemas import TicketUpdate

    admin = make_user("admin")
    t = make_ticket(make_user(), prioridad="baja")
    antes = t.sla_resolucion_vence
    assert antes is not None and t.sla_primera_respuesta_vence is not None
    tickets.actualizar_ticket(t, admin, TicketUpdate(prioridad="alta"))
    assert t.sla_resolucion_vence < antes
    tickets.cambiar_estado(t, admin, "en_progreso")
    tickets.cambiar_estado(t, admin, "en_espera")
    assert t.sla_pausa_desde is not None
    tickets.cambiar_estado(t, admin, "en_progreso")
    assert t.sla_pausa_desde is None


def test_overdue_counter_reads_the_sla_due_times(login, make_user, make_ticket):
    admin, ana = make_user("admin"), make_user()
    tarde = make_ticket(ana, prioridad="critica", titulo="Caído")
    en_espera = make_ticket(ana, ingeniero=make_user("ingeniero"), prioridad="critica", estado="en_espera",
                            titulo="Esperando al cliente")
    for t in (tarde, en_espera):
        t.fecha_creacion = t.fecha_creacion - timedelta(hours=9)
        sla.recalcular(t)
    db.session.commit()
    assert sla.es_vencido(tarde) and not sla.es_vencido(en_espera)
    client, _ = login(admin)
    listed = client.get("/tickets/admin?vencidos=1").get_data(as_text=True)
    assert tarde.numero_ticket in listed and en_espera.numero_ticket not in listed


def test_metrics_match_the_hand_computed_case(oficina, make_user, make_ticket, api):
    """A: Fri 17:55 → answered Mon 9:30 (35 min), resolved Mon 10:50 (115 min): both met.
    B: Mon 9:00 → answered 10:30 (90 min, late), waits 11:00 → Tue 10:00, resolved Tue 11:30
    (120 + 90 = 210 running minutes, late)."""
    admin, ing = make_user("admin"), make_user("ingeniero")
    a = make_ticket(make_user(), prioridad="alta", titulo="A")
    b = make_ticket(make_user(), ingeniero=ing, prioridad="alta", titulo="B")
    a.fecha_creacion = madrid(2026, 11, 20, 17, 55)
    sla.recalcular(a, ahora=a.fecha_creacion)
    a.fecha_primera_respuesta = madrid(2026, 11, 23, 9, 30)
    a.estado, a.fecha_resolucion = "resuelto", madrid(2026, 11, 23, 10, 50)
    sla.recalcular(a, ahora=a.fecha_resolucion)
    b.fecha_creacion = madrid(2026, 11, 23, 9, 0)
    sla.recalcular(b, ahora=b.fecha_creacion)
    b.fecha_primera_respuesta = madrid(2026, 11, 23, 10, 30)
    b.estado = "en_espera"
    sla.recalcular(b, ahora=madrid(2026, 11, 23, 11, 0))
    b.estado = "en_progreso"
    sla.recalcular(b, ahora=madrid(2026, 11, 24, 10, 0))
    b.estado, b.fecha_resolucion = "resuelto", madrid(2026, 11, 24, 11, 30)
    sla.recalcular(b, ahora=b.fecha_resolucion)
    db.session.commit()

    m = api(admin).get("/api/sla/metricas").get_json()
    assert m["primera_respuesta"] == {"cumplimiento_pct": 50.0, "tickets": 2, "mediana_min": 35.0, "p90_min": 90.0}
    assert m["resolucion"] == {"cumplimiento_pct": 50.0, "tickets": 2, "mediana_min": 115.0, "p90_min": 210.0}
    assert m["incumplimientos"] == {"ingeniero": {ing.nombre: 1}, "prioridad": {"alta": 1},
                                    "categoria": {"Hardware": 1}}
    assert api(ing).get("/api/sla/metricas").status_code == 403


def test_admin_page_saves_office_hours_holidays_and_targets(login, make_user, make_ticket):
    admin = make_user("admin")
    t = make_ticket(make_user(), prioridad="alta")
    client, csrf = login(admin)
    page = client.get("/admin/sla")
    assert page.status_code == 200 and 'name="inicio0"' in page.get_data(as_text=True)
    form = {"csrf_token": csrf, "feriados": "2026-12-25\n2026-12-08", "umbral_aviso_pct": "75",
            "minutos_critico_sin_asignar": "10", "asignacion_automatica": "1",
            **{f"inicio{d}": "09:00" for d in range(5)}, **{f"fin{d}": "18:00" for d in range(5)},
            "inicio5": "", "fin5": "", "inicio6": "", "fin6": ""}
    for p, (a, b) in sla.OBJETIVOS_POR_DEFECTO.items():
        form[f"primera_{p}"], form[f"resolucion_{p}"] = str(a), str(b)
    form["primera_alta"], form["resolucion_alta"] = "60", "120"
    r = client.post("/admin/sla", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)
    db.session.expire_all()
    cfg = sla.ajustes()
    assert cfg.horario == {str(d): ["09:00", "18:00"] for d in range(5)}
    assert cfg.feriados == ["2026-12-08", "2026-12-25"] and cfg.umbral_aviso_pct == 75
    assert sla.objetivos("alta", None) == (60, 120)
    assert db.session.query(PoliticaSLA).count() == 1  # unchanged priorities keep the defaults
    t = db.session.get(Ticket, t.id)
    assert sla.segundos_habiles(t.fecha_creacion, t.sla_resolucion_vence, sla.calendario()) == 120 * 60
    form["umbral_aviso_pct"] = "150"
    assert client.post("/admin/sla", data=form).status_code == 422
    assert login(make_user("ingeniero"))[0].get("/admin/sla").status_code == 403
