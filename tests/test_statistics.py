"""Statistics: every figure of /api/estadisticas against a fixture whose answers are worked
out by hand, per role scope; the dashboard page per role."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

import tickets
from models import db

HOUR = 3600


@pytest.fixture
def now():
    return datetime.now(UTC)


@pytest.fixture
def fixture(roles, make_ticket, now):
    """Six tickets with explicit dates (seconds after creation in comments):

    T1 owner,  engineer,       en_progreso alta    Redes     created -2d    1st response +1h
    T2 owner,  engineer,       cerrado     media   Hardware  created -10d   1st +2h, resolved +10h, closed -5d
    T3 owner,  unassigned,     abierto     baja    Hardware  created -30min
    T4 other,  other_engineer, resuelto    critica Software  created -40d   1st +3h, resolved +30h
    T5 other,  engineer,       en_espera   alta    Redes     created -20d   1st +10h
    T6 other,  unassigned,     abierto     media   General   created -45d
    Messages: owner x2 and engineer x1 on T1, other_user x1 on T5, all unread.
    """
    owner, other, eng, other_eng = roles["owner"], roles["other_user"], roles["engineer"], roles["other_engineer"]
    t = {
        1: make_ticket(owner, eng, "en_progreso", prioridad="alta", categoria="Redes"),
        2: make_ticket(owner, eng, "cerrado", prioridad="media", categoria="Hardware"),
        3: make_ticket(owner, None, "abierto", prioridad="baja", categoria="Hardware"),
        4: make_ticket(other, other_eng, "resuelto", prioridad="critica", categoria="Software"),
        5: make_ticket(other, eng, "en_espera", prioridad="alta", categoria="Redes"),
        6: make_ticket(other, None, "abierto", prioridad="media", categoria="General"),
    }
    tickets.agregar_mensaje(t[1], owner, "¿Novedades?")
    tickets.agregar_mensaje(t[1], owner, "Sigue caído")
    tickets.agregar_mensaje(t[1], eng, "Estoy en ello")
    tickets.agregar_mensaje(t[5], other, "Gracias")

    def dates(n, created, primera=None, resolucion=None, cierre=None):
        t[n].fecha_creacion = created
        t[n].fecha_primera_respuesta = created + timedelta(seconds=primera) if primera is not None else None
        t[n].fecha_resolucion = created + timedelta(seconds=resolucion) if resolucion is not None else None
        t[n].fecha_cierre = cierre

    dates(1, now - timedelta(days=2), primera=1 * HOUR)
    dates(2, now - timedelta(days=10), primera=2 * HOUR, resolucion=10 * HOUR, cierre=now - timedelta(days=5))
    dates(3, now - timedelta(minutes=30))
    dates(4, now - timedelta(days=40), primera=3 * HOUR, resolucion=30 * HOUR)
    dates(5, now - timedelta(days=20), primera=10 * HOUR)
    dates(6, now - timedelta(days=45))
    db.session.commit()
    return t


def stats(api, user, query=""):
    resp = api(user).get(f"/api/estadisticas{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_admin_sees_everything(roles, fixture, api, now):
    s = stats(api, roles["admin"])
    assert s["alcance"] == "todos"
    assert s["total"] == 6 and s["abiertos"] == 4
    assert s["por_estado"] == {"abierto": 2, "en_progreso": 1, "en_espera": 1, "resuelto": 1, "cerrado": 1}
    assert s["por_prioridad"] == {"baja": 1, "media": 2, "alta": 2, "critica": 1}
    assert s["por_categoria"] == [{"categoria": "Hardware", "total": 2}, {"categoria": "Redes", "total": 2},
                                  {"categoria": "General", "total": 1}, {"categoria": "Software", "total": 1}]
    por_ing = {row["nombre"]: (row["total"], row["abiertos"]) for row in s["por_ingeniero"]}
    assert por_ing == {roles["engineer"].nombre: (3, 2), None: (2, 2), roles["other_engineer"].nombre: (1, 0)}

    # First responses 1h, 2h, 3h, 10h: mean 4h, median (2h + 3h) / 2 = 2.5h.
    assert s["primera_respuesta"] == {"n": 4, "media_segundos": 4 * HOUR, "mediana_segundos": 2.5 * HOUR}
    # Resolutions 10h and 30h: mean = median = 20h.
    assert s["resolucion"] == {"n": 2, "media_segundos": 20 * HOUR, "mediana_segundos": 20 * HOUR}

    # Open backlog by age: T3 (<1d), T1 (1-3d), T5 (7-30d), T6 (>30d).
    assert s["backlog_por_antiguedad"] == [{"rango": "<1d", "total": 1}, {"rango": "1-3d", "total": 1},
                                           {"rango": "3-7d", "total": 0}, {"rango": "7-30d", "total": 1},
                                           {"rango": ">30d", "total": 1}]
    assert s["mensajes_sin_leer"] == 3  # the requesters' three messages, unread by staff


def test_daily_series_covers_the_last_30_days(roles, fixture, api, now):
    serie = stats(api, roles["admin"])["serie_diaria"]
    assert len(serie) == 30
    assert serie[-1]["fecha"] == now.date().isoformat()
    assert serie[0]["fecha"] == (now.date() - timedelta(days=29)).isoformat()
    creados = {d["fecha"]: d["creados"] for d in serie if d["creados"]}
    cerrados = {d["fecha"]: d["cerrados"] for d in serie if d["cerrados"]}
    expected = {}
    for delta in (timedelta(days=2), timedelta(days=10), timedelta(minutes=30), timedelta(days=20)):
        day = (now - delta).date().isoformat()
        expected[day] = expected.get(day, 0) + 1
    assert creados == expected  # T4 (-40d) and T6 (-45d) are older than the window
    assert cerrados == {(now - timedelta(days=5)).date().isoformat(): 1}


def test_engineer_sees_assigned_tickets_only(roles, fixture, api, now):
    s = stats(api, roles["engineer"])
    assert s["alcance"] == "asignados"
    assert s["total"] == 3
    assert s["por_estado"] == {"abierto": 0, "en_progreso": 1, "en_espera": 1, "resuelto": 0, "cerrado": 1}
    assert [(r["nombre"], r["total"], r["abiertos"]) for r in s["por_ingeniero"]] == [(roles["engineer"].nombre, 3, 2)]
    # 1h, 2h, 10h: mean 13h / 3, median 2h (odd count).
    assert s["primera_respuesta"] == {"n": 3, "media_segundos": 13 * HOUR / 3, "mediana_segundos": 2 * HOUR}
    assert s["resolucion"] == {"n": 1, "media_segundos": 10 * HOUR, "mediana_segundos": 10 * HOUR}
    assert [b["total"] for b in s["backlog_por_antiguedad"]] == [0, 1, 0, 1, 0]
    assert s["mensajes_sin_leer"] == 3  # owner x2 on T1, other_user x1 on T5
    # The daily series of their own tickets: T1 (-2d), T2 (-10d, closed -5d), T5 (-20d).
    dia = {d["fecha"]: (d["creados"], d["cerrados"]) for d in s["serie_diaria"] if d["creados"] or d["cerrados"]}
    assert dia == {(now - timedelta(days=n)).date().isoformat(): cifras
                   for n, cifras in ((2, (1, 0)), (10, (1, 0)), (5, (0, 1)), (20, (1, 0)))}


def test_other_engineer_and_usuarios_see_their_own(roles, fixture, api):
    s = stats(api, roles["other_engineer"])
    assert s["total"] == 1 and s["por_estado"]["resuelto"] == 1 and s["mensajes_sin_leer"] == 0

    owner = stats(api, roles["owner"])
    assert owner["alcance"] == "propios"
    assert owner["total"] == 3 and owner["abiertos"] == 2
    assert owner["por_prioridad"] == {"baja": 1, "media": 1, "alta": 1, "critica": 0}
    assert owner["primera_respuesta"] == {"n": 2, "media_segundos": 1.5 * HOUR, "mediana_segundos": 1.5 * HOUR}
    assert owner["mensajes_sin_leer"] == 1  # the engineer's reply on T1

    other = stats(api, roles["other_user"])
    assert other["total"] == 3 and other["mensajes_sin_leer"] == 0
    assert other["por_categoria"] == [{"categoria": "General", "total": 1}, {"categoria": "Redes", "total": 1},
                                      {"categoria": "Software", "total": 1}]


def test_reading_the_thread_clears_unread(roles, fixture, api):
    assert api(roles["owner"]).get(f"/api/tickets/{fixture[1].id}/mensajes").status_code == 200
    assert stats(api, roles["owner"])["mensajes_sin_leer"] == 0
    assert stats(api, roles["admin"])["mensajes_sin_leer"] == 3  # the owner reading changes nothing for staff


def test_period_narrows_counters_and_times(roles, fixture, api, now):
    desde = (now - timedelta(days=12)).date().isoformat()
    s = stats(api, roles["admin"], f"?desde={desde}&hasta={now.date().isoformat()}")
    assert s["periodo"] == {"desde": desde, "hasta": now.date().isoformat()}
    assert s["total"] == 3  # T1, T2, T3
    assert s["primera_respuesta"] == {"n": 2, "media_segundos": 1.5 * HOUR, "mediana_segundos": 1.5 * HOUR}
    assert s["resolucion"]["n"] == 1
    assert sum(b["total"] for b in s["backlog_por_antiguedad"]) == 4  # backlog is always "now"


def test_empty_scope_has_zeros_and_no_times(roles, api):
    s = stats(api, roles["owner"])
    assert s["total"] == 0 and set(s["por_estado"].values()) == {0}
    assert s["primera_respuesta"] == {"n": 0, "media_segundos": None, "mediana_segundos": None}
    assert s["por_categoria"] == [] and s["por_ingeniero"] == []


@pytest.mark.parametrize("query", ["?desde=2026-02-30", "?desde=2026-05-02&hasta=2026-05-01"])
def test_bad_period_is_422(roles, api, query):
    resp = api(roles["admin"]).get(f"/api/estadisticas{query}")
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_error"


def test_anonymous_is_401(client):
    assert client.get("/api/estadisticas").status_code == 401


@pytest.mark.parametrize("who", ["admin", "engineer", "owner"])
def test_dashboard_page_per_role(roles, fixture, login, api, who):
    c, _ = login(roles[who])
    resp = c.get("/estadisticas")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    # Charts come from the vendored library and our own script; no inline script (CSP).
    srcs = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert any(s.endswith("vendor/chartjs/chart.umd.min.js") for s in srcs)
    assert any(s.endswith("js/estadisticas.js") for s in srcs)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    embedded = json.loads(re.search(r"data-estadisticas='([^']*)'", html).group(1).replace("&#39;", "'")
                          .replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"'))
    api_stats = stats(api, roles[who])
    for key in ("total", "por_estado", "por_prioridad", "primera_respuesta", "mensajes_sin_leer"):
        assert embedded[key] == api_stats[key]
    assert c.get("/static/vendor/chartjs/chart.umd.min.js").status_code == 200
    assert c.get("/static/js/estadisticas.js").status_code == 200

