"""Live notifications in a real browser (Playwright + Debian chromium): two sessions; the
admin assigns a ticket in one, the engineer's bell counts it in the other without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.test_panels_browser import live_server, people  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def test_assignment_rings_the_engineers_bell_without_reload(app, people, make_user, make_ticket):  # noqa: F811
    app.config.update(SSE_MAX_SECONDS=5, SSE_POLL_SECONDS=0.2)
    make_user("admin", username="admin_sse")
    ing = make_user("ingeniero", username="ing_sse")
    t = make_ticket(make_user(), titulo="Router caído")

    ingeniero = people()
    ingeniero.login("ing_sse")
    contador = ingeniero.page.locator("[data-campana-contador]")
    expect(contador).to_be_hidden()

    admin = people()
    admin.login("admin_sse")
    status = admin.page.evaluate(
        """([id, ing]) => fetch('/api/tickets/' + id + '/asignar', {method: 'PUT', credentials: 'same-origin',
             headers: {'Content-Type': 'application/json', 'Accept': 'application/json',
                       'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content},
             body: JSON.stringify({ingeniero_id: ing})}).then(r => r.status)""", [t.id, ing.ingeniero.id])
    assert status == 200

    expect(contador).to_have_text("1", timeout=2000)
    ingeniero.page.locator("[data-campana] button[data-bs-toggle]").click()
    enlace = ingeniero.page.locator("[data-campana-lista] a").first
    expect(enlace).to_contain_text(t.numero_ticket)
    ingeniero.page.locator("[data-campana-todas]").click()
    expect(contador).to_be_hidden()
