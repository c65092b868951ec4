"""The three role panels in a real browser: Debian's chromium driven by Playwright.

The app is served by a live werkzeug server on loopback, on the same database as the test
(``app`` fixture); one browser per session, one context per person. Every page is checked
for Content-Security-Policy violations and JavaScript errors.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from models import Ingeniero, Ticket, db

pytestmark = pytest.mark.browser

# One folder per backend: `make test` runs both suites at the same time.
SCREENSHOTS = (Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
               / os.environ.get("MESA_TEST_DB", "sqlite"))
WIDTHS = (375, 1280)


@pytest.fixture
def live_server(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


class Person:
    """One person's browser context (own cookies and language) with its page."""

    def __init__(self, browser, base: str, locale: str = "es-ES"):
        self.base = base
        # Reduced motion: Bootstrap scrolls smoothly otherwise, and a click on an element below the
        # fold could land while the page was still scrolling to it (a missed click on a radio and on
        # a note's button in the fresh-clone runs of 2026-11-30: "element is outside of the viewport").
        self.context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900},
                                           reduced_motion="reduce")
        self.context.set_default_timeout(30_000)  # two suites share 2 cores in make test: a busy upload can take >10 s
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda msg: self.problems.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))

    def goto(self, path: str):
        return self.page.goto(self.base + path)

    def login(self, username: str, password: str = "secreto123") -> None:
        self.goto("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.locator("#contenido form button[type=submit]").click()
        assert "/login" not in self.page.url, self.page.inner_text("#contenido")

    def submit(self, form_selector: str):
        """Submit a form by its submit button and return the navigation's response. The click
        has the context's 30 s, so a button something covers says so; the answer may take
        longer: in two fresh-clone runs on 2026-11-30 (both suites at once, each with its
        chromium, on a slow 2-core VM) an internal note's POST had not answered after 30 s,
        where alone it takes under one. A write that waits longer than SQLite's 30 s busy timeout
        still fails, with the server's own error page."""
        with self.page.expect_navigation(timeout=90_000) as nav:
            self.page.locator(f"{form_selector} button[type=submit]").last.click()
        return nav.value

    def flash(self) -> str:
        return " ".join(self.page.locator(".flash").all_inner_texts())

    def shoot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        self.page.set_viewport_size({"width": 1280, "height": 900})

    def close(self) -> None:
        self.context.close()
        assert not self.problems, self.problems  # CSP violations and JS errors show up here


@pytest.fixture
def people(browser, live_server):
    opened: list[Person] = []

    def open_person(locale: str = "es-ES") -> Person:
        person = Person(browser, live_server, locale)
        opened.append(person)
        return person

    yield open_person
    for person in opened:
        person.close()


@pytest.fixture
def cast(make_user):
    admin = make_user("admin", username="admin_b", nombre="Admin Central")
    maria = make_user("ingeniero", username="ing_maria", nombre="María López")
    carlos = make_user("ingeniero", username="ing_carlos", nombre="Carlos Méndez")
    maria.ingeniero.especialidad = "Hardware y Impresoras"
    carlos.ingeniero.especialidad = "Redes y Servidores"
    db.session.commit()
    return {"admin": admin, "maria": maria, "carlos": carlos,
            "ana": make_user("usuario", username="ana", nombre="Ana Usuaria"),
            "lucia": make_user("usuario", username="lucia", nombre="Lucía Fernández")}


def ticket_count() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count(Ticket.id))).scalar_one()


def test_seed_001_scenario_end_to_end(people, cast, make_ticket):
    """usuario reports → admin filters and assigns ing_maria → she works and closes it → usuario sees it."""
    make_ticket(cast["lucia"], titulo="La impresora atasca el papel", categoria="Hardware")
    secreto = "Revisar la contraseña del LDAP: clave-interna-42"

    ana = people()
    ana.login("ana")
    ana.page.fill("#titulo", "No puedo acceder al correo")
    ana.page.fill("#descripcion", "Al entrar en Outlook recibo un error 401 desde esta mañana.")
    ana.page.select_option("#categoria", "Software")
    ana.page.select_option("#prioridad", "alta")
    ana.page.fill("#etiquetas", "correo, outlook")
    response = ana.submit("#form-nuevo-ticket")
    assert response.status == 200
    numero = re.search(r"/tickets/(TKT-\d{6})$", ana.page.url).group(1)
    assert "creado" in ana.flash()
    ana.goto("/tickets")  # she keeps her list open while the staff work

    admin = people()
    admin.login("admin_b")
    admin.page.locator("details.filtros summary").click()
    admin.page.fill("#f-q", "correo")
    admin.page.select_option("#f-estado", "abierto")
    admin.submit("#form-filtros")
    rows = admin.page.locator("tbody tr[data-numero]")
    assert rows.count() == 1 and rows.first.get_attribute("data-numero") == numero
    admin.page.click(f"[data-asignar='{numero}']")
    dialog = admin.page.locator("#dialogo-asignar")
    assert dialog.is_visible()
    assert "Hardware y Impresoras" in dialog.inner_text() and "Redes y Servidores" in dialog.inner_text()
    dialog.locator("input[data-username='ing_maria']").check()
    admin.submit("#dialogo-asignar")
    assert "asignado a María López" in admin.flash()
    assert "q=correo" in admin.page.url  # back to the same filtered list
    assert "María López" in admin.page.locator(f"tr[data-numero='{numero}']").inner_text()

    maria = people()
    maria.login("ing_maria")
    assert "/tickets/ingeniero" in maria.page.url
    assert maria.page.locator("[data-contador='abierto'] .valor").inner_text() == "1"
    with maria.page.expect_navigation():
        maria.page.locator(f"tr[data-numero='{numero}'] a").first.click()
    maria.submit("form:has(input[name=estado][value=en_progreso])")
    assert maria.page.locator("#estado-actual [data-estado]").get_attribute("data-estado") == "en_progreso"
    maria.page.fill("#nota", secreto)
    maria.submit("#form-nota")
    assert secreto in maria.page.inner_text("#notas")
    maria.page.fill("#cuerpo", "Hola Ana: reinicié tu buzón, ya puedes entrar.")
    maria.submit("#form-respuesta")
    maria.submit("form:has(input[name=estado][value=resuelto])")
    maria.page.once("dialog", lambda d: d.accept())  # "Close this ticket?" confirmation
    maria.submit("form:has(input[name=estado][value=cerrado])")
    assert maria.page.locator("#estado-actual [data-estado]").get_attribute("data-estado") == "cerrado"

    # Her open list refreshes itself (no reload): on the live event (issue 12's SSE) or when the
    # tab comes back into view.
    badge = ana.page.locator(f"tr[data-numero='{numero}'] td.col-estado [data-estado]")
    ana.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(badge).to_have_attribute("data-estado", "cerrado")
    assert badge.inner_text() == "Cerrado"
    ana.goto(f"/tickets/{numero}")
    body = ana.page.inner_text("body")
    assert "Hola Ana: reinicié tu buzón" in body
    timeline = ana.page.inner_text(".timeline")
    for paso in ("Ticket creado", "Asignado a María López", "En progreso", "Resuelto", "Cerrado"):
        assert paso in timeline
    assert secreto not in ana.page.content()
    assert "Notas internas" not in body and ana.page.locator("#notas, [data-evento=nota]").count() == 0

    maria.goto(f"/tickets/{numero}")  # her reply shows the read receipt now that Ana opened it
    assert "Leído" in maria.page.inner_text("#hilo .lectura")


def test_usuario_typing_anothers_ticket_url_gets_not_found(people, cast, make_ticket):
    ajeno = make_ticket(cast["lucia"], titulo="Ticket de Lucía")
    ana = people()
    ana.login("ana")
    response = ana.goto(f"/tickets/{ajeno.numero_ticket}")
    assert response.status == 404
    assert "No encontrado" in ana.page.inner_text("h1")
    assert "Ticket de Lucía" not in ana.page.content()
    ana.problems.clear()  # the browser logs the 404 itself as a console error


def test_bad_input_shows_the_field_error_and_saves_nothing(people, cast):
    ana = people()
    ana.login("ana")
    before = ticket_count()
    ana.page.fill("#titulo", "   ")  # passes the browser's `required`, not the server's check
    ana.page.fill("#descripcion", "Algo falla")
    ana.page.select_option("#categoria", "Hardware")
    response = ana.submit("#form-nuevo-ticket")
    assert response.status == 422
    error = ana.page.locator("#titulo-error")
    assert error.is_visible() and "obligatorio" in error.inner_text()
    assert ana.page.locator("#titulo").get_attribute("aria-invalid") == "true"
    assert ana.page.input_value("#descripcion") == "Algo falla"  # what was typed is kept
    assert ticket_count() == before
    ana.problems.clear()  # the 422 document is logged as a console error by chromium


def test_english_ui_by_account_accept_language_and_switch(people, make_user):
    make_user("usuario", username="john", nombre="John Smith", idioma="en")
    visitor = people("es-ES")
    visitor.goto("/login")
    assert visitor.page.inner_text("h1") == "Iniciar sesión"
    with visitor.page.expect_navigation():
        visitor.page.select_option("#idioma-select", "en")  # the switch submits itself
    assert visitor.page.inner_text("h1") == "Log in"

    john = people("es-ES")  # a Spanish browser, but his account says English
    john.login("john")
    text = john.page.inner_text("body")
    for english in ("My tickets", "New ticket", "Send ticket", "Log out", "Category", "Priority"):
        assert english in text
    assert "Mis tickets" not in text
    john.page.fill("#titulo", " ")
    john.page.fill("#descripcion", "x")
    john.page.select_option("#categoria", "General")
    john.submit("#form-nuevo-ticket")
    assert "This field is required." in john.page.inner_text("#titulo-error")
    john.shoot("usuario-panel-en")
    john.problems.clear()


def test_screenshots_of_every_panel(people, cast, make_ticket):
    """Every panel at 375 and 1280 px, saved to test-artifacts/screenshots/<backend>/ for review."""
    maria = cast["maria"]
    t1 = make_ticket(cast["ana"], ingeniero=maria, estado="en_progreso", titulo="No puedo acceder al correo",
                     categoria="Software", prioridad="alta", etiquetas=["correo"])
    make_ticket(cast["ana"], titulo="Pantalla parpadea", prioridad="baja")
    make_ticket(cast["lucia"], ingeniero=maria, estado="en_espera", titulo="VPN muy lenta desde casa",
                categoria="Redes", prioridad="critica")
    make_ticket(cast["lucia"], ingeniero=maria, estado="cerrado", titulo="Teclado sin la tecla Ñ")
    import tickets

    tickets.agregar_mensaje(t1, maria, "Hola, ya estoy revisando tu caso.")
    tickets.agregar_nota(t1, maria, "Revisar registros del servidor de correo.")
    db.session.commit()
    cast["carlos"].ingeniero.disponible = False
    db.session.commit()

    ana = people()
    ana.goto("/login")
    ana.shoot("login")
    ana.login("ana")
    ana.shoot("usuario-panel")
    ana.goto(f"/tickets/{t1.numero_ticket}")
    ana.shoot("usuario-detalle")
    ana.goto("/tickets/TKT-999999")
    ana.shoot("no-encontrado")
    ana.problems.clear()

    ing = people()
    ing.login("ing_maria")
    ing.shoot("ingeniero-panel")
    ing.goto(f"/tickets/{t1.numero_ticket}")
    ing.shoot("ingeniero-detalle")

    admin = people()
    admin.login("admin_b")
    admin.shoot("admin-panel")
    admin.page.click("[data-asignar]")
    admin.shoot("admin-dialogo-asignar")
    admin.page.keyboard.press("Escape")
    for path, name in (("/admin/ingenieros", "admin-ingenieros"), ("/admin/usuarios", "admin-usuarios"),
                       ("/admin/categorias", "admin-categorias"), (f"/tickets/{t1.numero_ticket}", "admin-detalle")):
        admin.goto(path)
        admin.shoot(name)
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 2 * 12
    assert db.session.execute(select(func.count(Ingeniero.id))).scalar_one() == 2


# --- statistics dashboard (reports, issue 5) ----------------------------------------------

@pytest.mark.parametrize("who, charts", [
    ("admin", {"serie", "estado", "prioridad", "backlog", "categoria", "ingeniero"}),
    ("engineer", {"serie", "estado", "prioridad", "backlog", "categoria"}),
    ("owner", {"serie", "estado", "prioridad"}),
])
def test_statistics_dashboard_draws_its_charts_at_phone_width(roles, make_ticket, people, who, charts):
    """The vendored Chart.js draws every chart of the role under the CSP (no console error),
    and nothing is wider than a 375px phone."""
    make_ticket(roles["owner"], roles["engineer"], "en_progreso", prioridad="alta")
    make_ticket(roles["owner"], None, "abierto", categoria="Redes")
    person = people()
    person.page.emulate_media(reduced_motion="reduce")  # drawn at once: screenshots show the final charts
    person.login(roles[who].username)
    person.goto("/estadisticas")
    drawn = person.page.evaluate(
        "Array.from(document.querySelectorAll('canvas[data-grafico]'))"
        ".filter(c => window.Chart.getChart(c) && c.width > 0).map(c => c.dataset.grafico)")
    assert set(drawn) == charts
    person.page.set_viewport_size({"width": 375, "height": 800})
    person.page.wait_for_timeout(300)  # charts resize on the next frame
    assert person.page.evaluate("document.documentElement.scrollWidth") <= 375
    assert person.page.evaluate("Array.from(document.querySelectorAll('canvas[data-grafico]'))"
                                ".every(c => c.getBoundingClientRect().width <= 375)")
    person.shoot(f"estadisticas-{who}")


# --- accessibility (axe-core, test-only, vendored in tests/vendor/axe-core) ------------------

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


def axe_violations(page) -> list[str]:
    """WCAG 2 A/AA violations of serious or critical impact on the current page.

    axe is evaluated through the DevTools protocol, which the page's CSP does not govern."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_panel_passes_axe_wcag_a_and_aa(people, cast, make_ticket, width):
    t1 = make_ticket(cast["ana"], ingeniero=cast["maria"], estado="en_progreso", titulo="Correo caído",
                     prioridad="critica", etiquetas=["correo"])
    import tickets

    tickets.agregar_mensaje(t1, cast["maria"], "Lo reviso ahora.")
    tickets.agregar_nota(t1, cast["maria"], "Nota interna.")
    db.session.commit()
    pages = {
        "ana": ["/tickets", f"/tickets/{t1.numero_ticket}", "/estadisticas"],
        "ing_maria": ["/tickets/ingeniero", f"/tickets/{t1.numero_ticket}"],
        "admin_b": ["/tickets/admin", "/admin/ingenieros", "/admin/usuarios", "/admin/categorias",
                    "/admin/configuracion/email", "/admin/correos", "/estadisticas"],
    }
    problems = {}
    anon = people()
    anon.page.set_viewport_size({"width": width, "height": 900})
    anon.goto("/login")
    problems["/login"] = axe_violations(anon.page)
    for username, paths in pages.items():
        person = people()
        person.page.set_viewport_size({"width": width, "height": 900})
        person.login(username)
        for path in paths:
            person.goto(path)
            found = axe_violations(person.page)
            if found:
                problems[f"{username} {path}"] = found
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, "\n".join(f"{k}: {x}" for k, v in problems.items() for x in v)


def test_a_reply_appears_in_the_open_thread_without_a_reload(people, cast, make_ticket):
    ticket = make_ticket(cast["ana"], ingeniero=cast["maria"], estado="en_progreso")
    ana = people()
    ana.login("ana")
    ana.goto(f"/tickets/{ticket.numero_ticket}")
    url_before = ana.page.url
    import tickets

    tickets.agregar_mensaje(ticket, cast["maria"], "Respuesta que llega sola")
    db.session.commit()
    ana.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # as when the tab is shown
    expect(ana.page.locator("#hilo")).to_contain_text("Respuesta que llega sola")
    assert ana.page.url == url_before


# --- issue 9: WhatsApp inbox and chat view at both widths (webhook over real HTTP) ---------------

from graph_fixture import graph  # noqa: E402,F401 - fixture: the local Graph API


def webhook(base: str, data: dict) -> int:
    import json
    import urllib.request

    from test_whatsapp_webhook import firmar

    cuerpo = json.dumps(data).encode()
    req = urllib.request.Request(base + "/webhooks/whatsapp", data=cuerpo, method="POST", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": firmar(cuerpo)})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def test_whatsapp_inbox_and_chat_at_both_widths_with_live_messages(graph, live_server, people, make_user):  # noqa: F811
    from test_whatsapp_webhook import payload, texto

    assert webhook(live_server, payload(texto("hola"))) == 200
    assert webhook(live_server, payload(texto("quiero hablar con un agente"))) == 200
    make_user("admin", username="admin_wa")
    person = people("es-ES")
    person.login("admin_wa")
    for ancho in (375, 1280):
        person.page.set_viewport_size({"width": ancho, "height": 900})
        person.goto("/conversaciones")
        expect(person.page.locator("h1")).to_have_text("Conversaciones de WhatsApp")
        fila = person.page.locator("[data-conversacion-id]").first
        expect(fila).to_contain_text("+34600111222")
        expect(fila).to_contain_text("Escalada")
        assert person.page.evaluate("document.documentElement.scrollWidth") <= ancho
        fila.locator("a").click()
        expect(person.page.locator("[data-direccion=entrante]").first).to_contain_text("hola")
        expect(person.page.locator("[data-direccion=saliente]").first).to_contain_text("Hola")
        expect(person.page.locator("[data-ventana=abierta]")).to_be_visible()
        assert person.page.evaluate("document.documentElement.scrollWidth") <= ancho
    person.shoot("whatsapp-chat")
    # a message arriving now appears in the open chat without a reload
    assert webhook(live_server, payload(texto("¿Alguien me lee?"))) == 200
    expect(person.page.locator(".wa-chat")).to_contain_text("¿Alguien me lee?", timeout=15_000)
    person.page.fill("#wa-texto", "Sí, te leo")
    person.submit("form[action$='/responder']")
    expect(person.page.locator(".flash")).to_contain_text("Respuesta en cola")
    expect(person.page.locator(".wa-chat")).to_contain_text("Sí, te leo")
