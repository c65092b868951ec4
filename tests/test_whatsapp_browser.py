# ruff: noqa: F811 - fixtures are imported, then requested by name
"""WhatsApp inbox and chat view in a real browser at 375 px and 1280 px (issue 9); the webhook is
reached over real HTTP on the live server, and a new message shows without a reload."""

from __future__ import annotations

import json
import urllib.request

import pytest
from graph_fixture import graph  # noqa: F401 - fixture
from playwright.sync_api import expect
from test_panels_browser import browser, live_server, people  # noqa: F401 - fixtures
from test_whatsapp_webhook import firmar, payload, texto

pytestmark = pytest.mark.browser


def webhook(base: str, data: dict) -> int:
    cuerpo = json.dumps(data).encode()
    req = urllib.request.Request(base + "/webhooks/whatsapp", data=cuerpo, method="POST", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": firmar(cuerpo)})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def test_inbox_and_chat_at_both_widths_with_live_messages(graph, live_server, people, make_user):
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
