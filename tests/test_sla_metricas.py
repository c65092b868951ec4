"""SLA metrics from the outcome stored on the ticket (issue 12, part 3) and CSAT in the statistics:
a hand-computed week in Europe/Madrid office hours driven through the real lifecycle on a fake
clock, checked to the minute through /api/estadisticas; the stored columns against a from-scratch
recomputation after random lifecycle operations; the Excel export of breaches; who sees what."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from test_panels_browser import Person, axe_violations, live_server  # noqa: F401  (fixture reused)

import csat
import reports
import sla
import tickets
from models import ConfiguracionSLA, Evento, PoliticaSLA, Ticket, db
from schemas import TicketCreate, TicketUpdate

MADRID = ZoneInfo("Europe/Madrid")
OFICINA = {str(d): ["09:00", "18:00"] for d in range(5)}  # Monday–Friday 9–18, Madrid


def madrid(*args) -> datetime:
    return datetime(*args, tzinfo=MADRID).astimezone(UTC)


class Reloj:
    """The clock of the lifecycle, SLA, statistics and CSAT modules (their ``utcnow``)."""

    def __init__(self):
        self.ahora = madrid(2026, 11, 20, 9, 0)

    def __call__(self) -> datetime:
        return self.ahora

    def a(self, *args) -> None:
        self.ahora = madrid(*args)


@pytest.fixture
def reloj(monkeypatch):
    r = Reloj()
    for modulo in (tickets, sla, reports, csat):
        monkeypatch.setattr(modulo, "utcnow", r)
    return r


@pytest.fixture
def oficina(app):
    """Office hours 9–18 Monday–Friday in Madrid; alta 60/120 business minutes, media 120/480."""
    app.config["APP_TIMEZONE"] = "Europe/Madrid"
    db.session.merge(ConfiguracionSLA(id=1, horario=OFICINA, feriados=[], umbral_aviso_pct=80,
                                      minutos_critico_sin_asignar=15, asignacion_automatica=False))
    db.session.add_all([PoliticaSLA(prioridad="alta", categoria_id=None, primera_respuesta_min=60, resolucion_min=120),
                        PoliticaSLA(prioridad="media", categoria_id=None, primera_respuesta_min=120,
                                    resolucion_min=480)])
    db.session.commit()
    return app


@pytest.fixture
def semana(oficina, reloj, make_user):
    """Five tickets (business minutes worked out by hand; Madrid is UTC+1 in November):

    A alta  Hardware Ana   Fri 20 17:30. Ana replies Mon 9:10 (30 + 10 = 40 min, due Mon 9:30: met);
      en_progreso 9:20, en_espera 9:50 (80 min run), en_progreso Tue 10:00, resuelto Tue 10:30:
      110 min run ≤ 120, met. Rated 5.
    B alta  Redes    Beto  Mon 23 9:00. en_progreso 10:30 (90 min, due 10:00: missed by 30);
      resuelto 11:30 (150 min, due 11:00: missed by 30). Rated 4.
    C media Hardware Ana   Sat 21 12:00 (clock starts Mon 9:00). Ana replies Mon 9:45 (45 min, met);
      en_progreso 10:00, resuelto Tue 9:30: 540 + 30 = 570 min > 480 (due Mon 17:00: missed by 90). Rated 2.
    D alta  Redes    —     Tue 24 00:30 local (Mon 23 23:30 UTC). Never answered; at Wed 25 12:00 past due:
      first response by 480 + 180 = 660 min, resolution by 420 + 180 = 600.
    E media Redes    Beto  Wed 25 9:00. Beto replies 9:20 (20 min, met); en_progreso, not yet due.
    Statistics are read on Wed 25 Nov 12:00.
    """
    admin = make_user("admin", nombre="Admin")
    ana, beto = make_user("ingeniero", nombre="Ana Ingeniera"), make_user("ingeniero", nombre="Beto Ingeniero")
    pepe = make_user("usuario", nombre="Pepe", idioma="es")

    def crear(titulo, prioridad, categoria, cuando, ingeniero=None):
        reloj.a(*cuando)
        t = tickets.crear_ticket(TicketCreate(titulo=titulo, descripcion="…", categoria=categoria,
                                              prioridad=prioridad), usuario=pepe)
        if ingeniero is not None:
            tickets.asignar(t, admin, ingeniero.ingeniero.id)
        db.session.commit()
        return t

    def paso(cuando, funcion, *args):
        reloj.a(*cuando)
        funcion(*args)
        db.session.commit()

    a = crear("A", "alta", "Hardware", (2026, 11, 20, 17, 30), ana)
    c = crear("C", "media", "Hardware", (2026, 11, 21, 12, 0), ana)
    b = crear("B", "alta", "Redes", (2026, 11, 23, 9, 0), beto)
    paso((2026, 11, 23, 9, 10), tickets.agregar_mensaje, a, ana, "Mirando")
    paso((2026, 11, 23, 9, 20), tickets.cambiar_estado, a, ana, "en_progreso")
    paso((2026, 11, 23, 9, 45), tickets.agregar_mensaje, c, ana, "Voy")
    paso((2026, 11, 23, 9, 50), tickets.cambiar_estado, a, ana, "en_espera")
    paso((2026, 11, 23, 10, 0), tickets.cambiar_estado, c, ana, "en_progreso")
    paso((2026, 11, 23, 10, 30), tickets.cambiar_estado, b, beto, "en_progreso")
    paso((2026, 11, 23, 11, 30), tickets.cambiar_estado, b, beto, "resuelto")
    paso((2026, 11, 23, 12, 0), csat.valorar, b, 4)
    d = crear("D", "alta", "Redes", (2026, 11, 24, 0, 30))
    paso((2026, 11, 24, 9, 30), tickets.cambiar_estado, c, ana, "resuelto")
    paso((2026, 11, 24, 10, 0), tickets.cambiar_estado, a, ana, "en_progreso")
    paso((2026, 11, 24, 10, 30), tickets.cambiar_estado, a, ana, "resuelto")
    paso((2026, 11, 24, 11, 0), csat.valorar, a, 5)
    e = crear("E", "media", "Redes", (2026, 11, 25, 9, 0), beto)
    paso((2026, 11, 25, 9, 20), tickets.agregar_mensaje, e, beto, "Hola")
    paso((2026, 11, 25, 9, 30), tickets.cambiar_estado, e, beto, "en_progreso")
    paso((2026, 11, 25, 10, 0), csat.valorar, c, 2)
    reloj.a(2026, 11, 25, 12, 0)
    return {"admin": admin, "ana": ana, "beto": beto, "pepe": pepe, **dict(zip("abcde", (a, b, c, d, e), strict=True))}


def metrica(pct, n, mediana, p90):
    return {"cumplimiento_pct": pct, "tickets": n, "mediana_min": mediana, "p90_min": p90}


NADA = metrica(None, 0, None, None)


def grupo(clave, tickets_, incumplidos, primera, resolucion, id_=None):
    return {"clave": clave, "id": id_, "tickets": tickets_, "incumplidos": incumplidos,
            "primera_respuesta": primera, "resolucion": resolucion}


def test_the_outcome_is_stored_when_it_happens(semana):
    a, b, c, d, e = (db.session.get(Ticket, semana[k].id) for k in "abcde")
    assert (a.sla_primera_respuesta_segundos, a.sla_primera_respuesta_cumplida) == (40 * 60, True)
    assert (a.sla_resolucion_segundos, a.sla_resolucion_cumplida) == (110 * 60, True)
    assert a.sla_resolucion_vence == madrid(2026, 11, 24, 10, 40)  # 120 + 550 paused minutes
    assert (b.sla_primera_respuesta_segundos, b.sla_primera_respuesta_cumplida) == (90 * 60, False)
    assert (b.sla_resolucion_segundos, b.sla_resolucion_cumplida) == (150 * 60, False)
    assert (c.sla_primera_respuesta_segundos, c.sla_resolucion_segundos, c.sla_resolucion_cumplida) == (
        45 * 60, 570 * 60, False)
    assert d.sla_primera_respuesta_segundos is None and d.sla_resolucion_segundos is None
    assert (e.sla_primera_respuesta_segundos, e.sla_resolucion_segundos) == (20 * 60, None)


def test_estadisticas_sla_matches_the_hand_computed_week(semana, api):
    s = api(semana["admin"]).get("/api/estadisticas?agrupacion=dia").get_json()["sla"]
    ana, beto = semana["ana"].ingeniero.id, semana["beto"].ingeniero.id
    # First response: 20, 40, 45, 90 (3 of 4 on time); resolution: 110, 150, 570 (1 of 3).
    assert s["primera_respuesta"] == metrica(75.0, 4, 40.0, 90.0)
    assert s["resolucion"] == metrica(33.3, 3, 150.0, 570.0)
    assert (s["tickets"], s["incumplidos"]) == (5, 3)
    assert s["incumplimientos"] == {"ingeniero": {"Ana Ingeniera": 1, "Beto Ingeniero": 1, "—": 1},
                                    "prioridad": {"alta": 2, "media": 1}, "categoria": {"Hardware": 1, "Redes": 2}}
    assert s["por_ingeniero"] == [
        grupo("Ana Ingeniera", 2, 1, metrica(100.0, 2, 40.0, 45.0), metrica(50.0, 2, 110.0, 570.0), ana),
        grupo("Beto Ingeniero", 2, 1, metrica(50.0, 2, 20.0, 90.0), metrica(0.0, 1, 150.0, 150.0), beto),
        grupo(None, 1, 1, NADA, NADA)]
    assert s["por_prioridad"] == [
        grupo("media", 2, 1, metrica(100.0, 2, 20.0, 45.0), metrica(0.0, 1, 570.0, 570.0)),
        grupo("alta", 3, 2, metrica(50.0, 2, 40.0, 90.0), metrica(50.0, 2, 110.0, 150.0))]
    hardware, redes = s["por_categoria"]
    assert {k: v for k, v in hardware.items() if k != "id"} == {k: v for k, v in grupo(
        "Hardware", 2, 1, metrica(100.0, 2, 40.0, 45.0), metrica(50.0, 2, 110.0, 570.0)).items() if k != "id"}
    assert (redes["clave"], redes["tickets"], redes["incumplidos"], redes["primera_respuesta"],
            redes["resolucion"]) == ("Redes", 3, 2, metrica(50.0, 2, 20.0, 90.0), metrica(0.0, 1, 150.0, 150.0))
    # Local days of Madrid: D was created on Tuesday 24 there (Monday 23 in UTC).
    assert (s["agrupacion"], s["zona"]) == ("dia", "Europe/Madrid")
    assert [(p["clave"], p["tickets"], p["incumplidos"]) for p in s["por_periodo"]] == [
        ("2026-11-20", 1, 0), ("2026-11-21", 1, 1), ("2026-11-23", 1, 1), ("2026-11-24", 1, 1), ("2026-11-25", 1, 0)]
    assert s["por_periodo"][0]["resolucion"] == metrica(100.0, 1, 110.0, 110.0)
    semanas = api(semana["admin"]).get("/api/estadisticas?agrupacion=semana").get_json()["sla"]["por_periodo"]
    assert [(p["clave"], p["tickets"], p["primera_respuesta"]) for p in semanas] == [
        ("2026-11-16", 2, metrica(100.0, 2, 40.0, 45.0)), ("2026-11-23", 3, metrica(50.0, 2, 20.0, 90.0))]


def test_the_period_filter_applies_to_sla_and_csat(semana, api):
    r = api(semana["admin"]).get("/api/estadisticas?desde=2026-11-23&hasta=2026-11-24").get_json()
    # Created 23–24 Nov (UTC days, as every figure of the statistics): B and D.
    assert (r["sla"]["tickets"], r["sla"]["incumplidos"]) == (2, 2)
    assert r["sla"]["primera_respuesta"] == metrica(0.0, 1, 90.0, 90.0)
    # Ratings given 23–24 Nov: B's 4 and A's 5.
    assert (r["csat"]["valoraciones"], r["csat"]["media"]) == (2, 4.5)


def test_csat_in_the_statistics_per_engineer_category_and_period(semana, api):
    c = api(semana["admin"]).get("/api/estadisticas?agrupacion=dia").get_json()["csat"]
    assert (c["valoraciones"], c["media"]) == (3, 3.67)
    assert c["por_ingeniero"] == [{"nombre": "Ana Ingeniera", "valoraciones": 2, "media": 3.5},
                                  {"nombre": "Beto Ingeniero", "valoraciones": 1, "media": 4.0}]
    assert c["por_categoria"] == [{"nombre": "Hardware", "valoraciones": 2, "media": 3.5},
                                  {"nombre": "Redes", "valoraciones": 1, "media": 4.0}]
    assert c["por_periodo"] == [{"nombre": "2026-11-23", "valoraciones": 1, "media": 4.0},
                                {"nombre": "2026-11-24", "valoraciones": 1, "media": 5.0},
                                {"nombre": "2026-11-25", "valoraciones": 1, "media": 2.0}]


def test_sla_metricas_api_keeps_its_keys_and_adds_the_groupings(semana, api):
    m = api(semana["admin"]).get("/api/sla/metricas").get_json()
    assert m["primera_respuesta"] == metrica(75.0, 4, 40.0, 90.0)
    assert m["incumplimientos"]["prioridad"] == {"alta": 2, "media": 1}
    assert {"por_ingeniero", "por_prioridad", "por_categoria", "por_periodo"} <= set(m)
    assert api(semana["admin"]).get("/api/sla/metricas?agrupacion=año").status_code == 422


def test_an_engineer_sees_the_sla_and_csat_of_their_own_tickets_only(semana, api):
    r = api(semana["ana"]).get("/api/estadisticas").get_json()
    assert (r["sla"]["tickets"], r["sla"]["incumplidos"]) == (2, 1)  # A and C
    assert r["sla"]["primera_respuesta"] == metrica(100.0, 2, 40.0, 45.0)
    assert [g["clave"] for g in r["sla"]["por_ingeniero"]] == ["Ana Ingeniera"]
    assert (r["csat"]["valoraciones"], r["csat"]["media"]) == (2, 3.5)
    assert [g["nombre"] for g in r["csat"]["por_ingeniero"]] == ["Ana Ingeniera"]


def test_a_usuario_sees_no_sla_nor_csat(semana, api, login):
    r = api(semana["pepe"]).get("/api/estadisticas").get_json()
    assert r["sla"] is None and r["csat"] is None and r["total"] == 5
    html = login(semana["pepe"])[0].get("/estadisticas").get_data(as_text=True)
    assert 'id="sla"' not in html and 'id="csat"' not in html


@pytest.mark.parametrize("quien", ["ana", "pepe"])
def test_only_an_admin_exports_the_breaches(semana, api, quien):
    r = api(semana[quien]).get("/api/estadisticas/incumplimientos/excel")
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "forbidden"


CABECERAS = {
    "en": ["Number", "Title", "Priority", "Category", "Engineer", "Status", "Created (UTC)",
           "First response due (UTC)", "First response (UTC)", "First response: business minutes over",
           "Resolution due (UTC)", "Resolved (UTC)", "Resolution: business minutes over"],
    "es": ["Número", "Título", "Prioridad", "Categoría", "Ingeniero", "Estado", "Creación (UTC)",
           "Vencimiento de la primera respuesta (UTC)", "Primera respuesta (UTC)",
           "Primera respuesta: minutos hábiles de retraso", "Vencimiento de la resolución (UTC)",
           "Resolución (UTC)", "Resolución: minutos hábiles de retraso"],
}


@pytest.mark.parametrize("idioma", ["en", "es"])
def test_breaches_excel_lists_the_late_tickets_with_minutes_over(semana, api, idioma):
    admin = semana["admin"]
    admin.idioma = idioma
    db.session.commit()
    r = api(admin).get("/api/estadisticas/incumplimientos/excel")
    assert r.status_code == 200 and r.mimetype == reports.XLSX_MIMETYPE
    assert "incumplimientos_sla_2026-11-25.xlsx" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    ws = wb.worksheets[0]
    filas = list(ws.iter_rows(values_only=True))
    assert list(filas[0]) == CABECERAS[idioma]
    numeros = {k: semana[k].numero_ticket for k in "bcd"}
    # Oldest first: C (Sat 21), B (Mon 23 9:00), D (Mon 23 23:30 UTC).
    assert [f[0] for f in filas[1:]] == [numeros["c"], numeros["b"], numeros["d"]]
    c, b, d = filas[1:]
    alta = {"en": "High", "es": "Alta"}[idioma]
    assert (c[1], c[3], c[4]) == ("C", "Hardware", "Ana Ingeniera")
    assert (b[2], b[4], b[9], b[12]) == (alta, "Beto Ingeniero", 30, 30)
    assert c[9] is None and c[12] == 90  # answered on time, resolved 90 business minutes late
    assert c[10] == datetime(2026, 11, 23, 16, 0) and c[11] == datetime(2026, 11, 24, 8, 30)  # UTC
    assert (d[4], d[8], d[9], d[11], d[12]) == (None, None, 660, None, 600)  # open, still running late
    assert d[7] == datetime(2026, 11, 24, 9, 0)  # Tuesday 10:00 in Madrid
    assert wb.worksheets[1]["B4"].value == 3


def test_breaches_excel_honours_the_period(semana, api):
    r = api(semana["admin"]).get("/api/estadisticas/incumplimientos/excel?desde=2026-11-22")
    filas = list(load_workbook(io.BytesIO(r.data)).worksheets[0].iter_rows(values_only=True))
    assert [f[1] for f in filas[1:]] == ["B", "D"]


def test_statistics_page_shows_sla_and_csat(semana, login):
    admin_html = login(semana["admin"])[0].get("/estadisticas?agrupacion=semana").get_data(as_text=True)
    for texto in ('id="sla"', 'data-sla="ingeniero"', 'data-sla="periodo"', 'id="csat"', "data-excel-incumplimientos",
                  "Ana Ingeniera", "/api/estadisticas/incumplimientos/excel"):
        assert texto in admin_html, texto
    assert 'data-kpi="sla_incumplidos">3<' in admin_html
    ana_html = login(semana["ana"])[0].get("/estadisticas").get_data(as_text=True)
    assert 'id="sla"' in ana_html and "data-excel-incumplimientos" not in ana_html
    assert 'data-kpi="sla_incumplidos">1<' in ana_html and "Beto Ingeniero" not in ana_html


def test_openapi_documents_the_new_keys(client):
    doc = client.get("/api/openapi.json").get_json()
    esquemas = doc["components"]["schemas"]
    assert {"sla", "csat"} <= set(esquemas["Estadisticas"]["properties"])
    assert "por_periodo" in esquemas["SLAMetricas"]["properties"]
    ok = doc["paths"]["/api/estadisticas"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Estadisticas"}
    assert "/api/estadisticas/incumplimientos/excel" in doc["paths"]


# --- the stored outcome equals a from-scratch recomputation ----------------------------------------

def _corrido(ticket: Ticket, hasta: datetime, cal) -> int:
    """Business seconds the ticket spent in abierto/en_progreso from creation to ``hasta``, read
    from its history alone (each estado event is dated)."""
    eventos = db.session.query(Evento).filter_by(ticket_id=ticket.id, tipo="estado").order_by(Evento.id).all()
    total, desde, corriendo = 0, ticket.fecha_creacion, True
    for ev in eventos:
        if ev.fecha > hasta:
            break
        ahora_corre = ev.despues in sla.ESTADOS_EN_MARCHA
        if corriendo and not ahora_corre:
            total += sla.segundos_habiles(desde, ev.fecha, cal)
        if ahora_corre and not corriendo:
            desde = ev.fecha
        corriendo = ahora_corre
    if corriendo:
        total += sla.segundos_habiles(desde, hasta, cal)
    return total


@pytest.mark.parametrize("semilla", [1, 2, 3])
def test_stored_outcome_equals_a_from_scratch_recomputation_after_random_operations(
        oficina, reloj, make_user, api, semilla):
    rng = random.Random(semilla)
    admin, pepe = make_user("admin"), make_user("usuario")
    ingenieros = [make_user("ingeniero"), make_user("ingeniero")]
    reloj.a(2026, 11, 2, 8, 0)
    lista: list[Ticket] = []
    for _ in range(100):
        reloj.ahora += timedelta(minutes=rng.choice([1, 7, 30, 95, 240, 600, 1500, 3000]))
        op = rng.random()
        try:
            if op < 0.15 or not lista:
                t = tickets.crear_ticket(TicketCreate(titulo="x", descripcion="y", prioridad=rng.choice(
                    ["alta", "media", "baja", "critica"]), categoria=rng.choice(["Hardware", "Redes"])), usuario=pepe)
                if rng.random() < 0.8:
                    tickets.asignar(t, admin, rng.choice(ingenieros).ingeniero.id)
                lista.append(t)
            else:
                t = rng.choice(lista)
                staff = admin
                if op < 0.25:
                    tickets.agregar_mensaje(t, rng.choice([staff, pepe]), "hola")
                elif op < 0.33:
                    tickets.actualizar_ticket(t, staff, TicketUpdate(prioridad=rng.choice(["alta", "media", "baja"])))
                elif op < 0.38:
                    tickets.actualizar_ticket(t, staff, TicketUpdate(categoria=rng.choice(["Hardware", "Redes"])))
                else:
                    quien = rng.choice([staff, staff, pepe])
                    movimientos = tickets.allowed_moves(t, quien)
                    adelante = [m for m in movimientos if m in ("en_progreso", "resuelto", "cerrado")]
                    if movimientos:  # mostly forward, so that targets are reached, reopened, reached again
                        tickets.cambiar_estado(t, quien, rng.choice(
                            adelante if adelante and rng.random() < 0.6 else movimientos))
            db.session.commit()
        except Exception as exc:  # a refused move (e.g. editing a closed ticket) changes nothing
            from errors import DomainError

            db.session.rollback()
            assert isinstance(exc, DomainError), exc
    reloj.ahora += timedelta(hours=5)

    cal = sla.calendario()
    db.session.expire_all()
    primeras, resoluciones, alcanzadas = [], [], 0
    for t in db.session.query(Ticket).order_by(Ticket.id):
        if t.fecha_primera_respuesta is not None and t.sla_primera_respuesta_vence is not None:
            esperado = sla.segundos_habiles(t.fecha_creacion, t.fecha_primera_respuesta, cal)
            assert t.sla_primera_respuesta_segundos == esperado, t.numero_ticket
            assert t.sla_primera_respuesta_cumplida == (t.fecha_primera_respuesta <= t.sla_primera_respuesta_vence)
            primeras.append(esperado)
        else:
            assert t.sla_primera_respuesta_segundos is None and t.sla_primera_respuesta_cumplida is None
        if t.fecha_resolucion is not None:
            esperado = _corrido(t, t.fecha_resolucion, cal)
            assert t.sla_resolucion_segundos == esperado, t.numero_ticket
            assert t.sla_resolucion_cumplida == (t.fecha_resolucion <= t.sla_resolucion_vence)
            resoluciones.append(esperado)
            alcanzadas += 1
        else:
            assert t.sla_resolucion_segundos is None and t.sla_resolucion_cumplida is None
    assert alcanzadas >= 3 and len(primeras) >= 5  # the walk did reach both targets

    m = api(admin).get("/api/sla/metricas").get_json()

    def minutos(v):
        return None if v is None else round(v / 60, 1)

    assert (m["primera_respuesta"]["tickets"], m["primera_respuesta"]["mediana_min"], m["primera_respuesta"]["p90_min"]) \
        == (len(primeras), minutos(sla._percentil(primeras, 50)), minutos(sla._percentil(primeras, 90)))
    assert (m["resolucion"]["tickets"], m["resolucion"]["mediana_min"], m["resolucion"]["p90_min"]) \
        == (len(resoluciones), minutos(sla._percentil(resoluciones, 50)), minutos(sla._percentil(resoluciones, 90)))


# --- in a real browser --------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("quien", ["admin", "ana"])
def test_statistics_page_sla_and_csat_in_the_browser(semana, browser, live_server, quien):  # noqa: F811
    """The SLA and CSAT sections render under the CSP without console errors, pass axe (WCAG A/AA),
    fit a 375px phone (wide tables scroll inside their card), and are screenshotted."""
    person = Person(browser, live_server)
    try:
        person.page.emulate_media(reduced_motion="reduce")
        person.login(semana[quien].username)
        person.goto("/estadisticas?agrupacion=dia")
        assert person.page.locator("#sla-titulo").inner_text() == "Nivel de servicio (SLA)"
        kpi = person.page.locator('[data-kpi="sla_primera_respuesta"]').inner_text()
        assert kpi == {"admin": "75 %", "ana": "100 %"}[quien]
        assert person.page.locator('[data-kpi="csat_media"]').inner_text() == {"admin": "3,67", "ana": "3,5"}[quien]
        assert (person.page.locator("[data-excel-incumplimientos]").count() == 1) == (quien == "admin")
        assert axe_violations(person.page) == []
        person.page.set_viewport_size({"width": 375, "height": 800})
        person.page.wait_for_timeout(300)
        assert person.page.evaluate("document.documentElement.scrollWidth") <= 375
        assert axe_violations(person.page) == []  # the tables scroll sideways here: keyboard too
        person.shoot(f"estadisticas-sla-{quien}")
    finally:
        person.close()


def test_migration_0011_backfills_what_the_lifecycle_stores(semana, monkeypatch):
    """The migration's backfill (run on rows whose outcome columns are empty) writes exactly what
    the lifecycle wrote when it happened."""
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    from sqlalchemy import update

    columnas = ("sla_primera_respuesta_segundos", "sla_primera_respuesta_cumplida", "sla_resolucion_segundos",
                "sla_resolucion_cumplida")

    def estado():
        db.session.expire_all()
        return {t.id: tuple(getattr(t, c) for c in columnas) for t in db.session.query(Ticket)}

    antes = estado()
    assert sum(v[0] is not None for v in antes.values()) == 4
    db.session.execute(update(Ticket).values(dict.fromkeys(columnas)).execution_options(synchronize_session=False))
    assert all(v == (None,) * 4 for v in estado().values())
    ruta = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0011_sla_resultado.py"
    spec = importlib.util.spec_from_file_location("migracion_0011", ruta)
    migracion = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migracion)
    monkeypatch.setattr(migracion, "op", SimpleNamespace(get_bind=lambda: db.session.connection()))
    migracion._rellenar()
    assert estado() == antes
