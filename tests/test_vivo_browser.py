"""Live panels in a real browser (Playwright + Debian chromium), two sessions: the admin's
panel is open; a usuario creates a ticket in another context; the admin's list and counters
show it without a reload (no notification is written for the admin: the stream's ``cambio``
does it). Also screenshots of the preferences page and of the redistribute offer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import db
from tests.test_panels_browser import axe_violations, live_server, people  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def test_admin_list_shows_a_usuarios_new_ticket_without_reload(app, people, make_user):  # noqa: F811
    app.config.update(SSE_MAX_SECONDS=5, SSE_POLL_SECONDS=0.2)
    make_user("admin", username="admin_vivo")
    make_user("usuario", username="ana_vivo")

    admin = people()
    admin.login("admin_vivo")
    admin.goto("/tickets/admin")
    expect(admin.page.locator("html[data-vivo]")).to_have_count(1)  # its live stream is connected
    abiertos = admin.page.locator("[data-contador=abierto] .valor")
    expect(abiertos).to_have_text("0")
    cargas = []
    admin.page.on("request", lambda req: cargas.append(req.url) if req.resource_type == "document" else None)

    ana = people()
    ana.login("ana_vivo")
    ana.page.fill("#titulo", "La VPN no conecta desde casa")
    ana.page.fill("#descripcion", "Error 809 al conectar.")
    ana.page.select_option("#categoria", "Redes")
    ana.submit("#form-nuevo-ticket")

    # within a few seconds, in place: the row and the counter
    expect(admin.page.locator("tbody[data-refresh]")).to_contain_text("La VPN no conecta desde casa", timeout=5000)
    expect(abiertos).to_have_text("1", timeout=5000)
    assert cargas == []  # no navigation happened on the admin's page
    expect(admin.page.locator("[data-campana-contador]")).to_be_hidden()  # nothing was notified to them


def test_screenshots_preferences_and_redistribute_offer(app, people, make_user, make_ticket):  # noqa: F811
    make_user("admin", username="admin_pref", nombre="Admin Central")
    ausente = make_user("ingeniero", username="ing_ausente", nombre="Carlos Méndez")
    make_user("ingeniero", username="ing_presente", nombre="María López")
    for titulo in ("Switch planta 2", "Servidor de ficheros lento", "Impresora atascada"):
        make_ticket(make_user(), ingeniero=ausente, titulo=titulo)

    ing = people()
    ing.login("ing_ausente")
    ing.goto("/cuenta/preferencias")
    expect(ing.page.locator("h1")).to_have_text("Preferencias")
    ing.page.locator("#pref-alertas_sla").uncheck()
    ing.submit("#contenido form")
    assert "Preferencias guardadas." in ing.flash()
    expect(ing.page.locator("#pref-alertas_sla")).not_to_be_checked()
    expect(ing.page.locator("#pref-asignado")).to_be_checked()
    assert axe_violations(ing.page) == []
    ing.shoot("preferencias")

    admin = people()
    admin.login("admin_pref")
    admin.goto("/admin/ingenieros")
    fila = admin.page.locator("tr", has_text="Carlos Méndez")
    with admin.page.expect_navigation():
        fila.get_by_role("button", name="Marcar no disponible").click()
    oferta = admin.page.locator("tr", has_text="Carlos Méndez").get_by_role("button", name="Redistribuir 3 tickets abiertos")
    expect(oferta).to_be_visible()
    assert axe_violations(admin.page) == []
    admin.shoot("redistribuir-oferta")
    with admin.page.expect_navigation():
        oferta.click()
    assert "3 tickets reasignados, 0 sin asignar" in admin.flash()
    expect(admin.page.locator("tr", has_text="María López")).to_contain_text("3")


def test_a_live_region_whose_content_did_not_change_keeps_its_elements(app, people, make_user, make_ticket):  # noqa: F811
    """The ticket's thread refreshes live; when nothing in it changed, its elements (the
    attachments' images) are left in place instead of rebuilt and reloaded under the reader."""
    import tickets

    ana = make_user("usuario", username="ana_hilo")
    ticket = make_ticket(ana, titulo="Pantalla azul")
    ana_browser = people()
    ana_browser.login("ana_hilo")
    ana_browser.goto(f"/tickets/{ticket.numero_ticket}")
    page = ana_browser.page
    hilo = page.locator("#hilo [data-refresh]")
    page.evaluate("() => { document.querySelector('#hilo [data-refresh]').firstElementChild.marca = 'original'; }")

    def refrescar_y_esperar():
        with page.expect_response(lambda r: "fragmento=hilo" in r.url) as respuesta:
            page.evaluate("() => window.mesaRefrescar(document.querySelector('#hilo [data-refresh]'))")
        assert respuesta.value.ok
        page.wait_for_timeout(200)  # the response's body handled by the page's promise chain

    refrescar_y_esperar()
    assert page.evaluate("() => document.querySelector('#hilo [data-refresh]').firstElementChild.marca") == "original"

    tickets.agregar_mensaje(ticket, ana, "Sigue saliendo la pantalla azul al arrancar.")
    db.session.commit()
    refrescar_y_esperar()
    expect(hilo).to_contain_text("Sigue saliendo la pantalla azul al arrancar.")
    assert page.evaluate("() => document.querySelector('#hilo [data-refresh]').firstElementChild.marca") is None
