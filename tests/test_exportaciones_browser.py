"""The Excel button of a long list in a real browser: it starts a job, the bar follows the rows
the worker writes, then the file downloads (Debian chromium driven by Playwright)."""

from __future__ import annotations

import io
import threading

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from test_panels_browser import Person, live_server  # noqa: F401 - the live server fixture

import exportaciones
import reports
from models import db

pytestmark = pytest.mark.browser


def test_long_list_shows_progress_then_the_download(app, browser, live_server, roles, make_ticket,  # noqa: F811
                                                    monkeypatch, tmp_path):
    app.config.update(EXPORT_SYNC_MAX_ROWS=5, EXPORT_PROGRESS_ROWS=2, EXPORT_DIR=str(tmp_path))
    monkeypatch.setattr(reports, "CHUNK", 2)
    for i in range(7):
        make_ticket(roles["owner"], titulo=f"Ticket {i}")

    # The worker stops after writing 4 of the 7 rows until the test has looked at the page.
    mitad, seguir = threading.Event(), threading.Event()
    marcar = exportaciones._marcar

    def marcar_y_esperar(job_id, token, **valores):
        hecho = marcar(job_id, token, **valores)
        if valores.get("filas_escritas") == 4:
            mitad.set()
            seguir.wait(30)
        return hecho

    monkeypatch.setattr(exportaciones, "_marcar", marcar_y_esperar)

    def worker():
        with app.app_context():
            while not exportaciones.ronda("browser-test-worker"):
                if seguir.wait(0.2):
                    return
            db.session.remove()

    admin = Person(browser, live_server)
    hilo = threading.Thread(target=worker, daemon=True)
    try:
        admin.login(roles["admin"].username)
        admin.goto("/tickets/admin")
        root = admin.page.locator("[data-exportacion]")
        expect(root.locator(".exportacion-progreso")).to_be_hidden()
        root.locator("[data-iniciar]").click()
        expect(root.locator("[data-mensaje]")).to_have_text("Preparando el archivo Excel…")
        admin.shoot("exportacion-pendiente")

        hilo.start()
        assert mitad.wait(15), "the worker did not reach half the rows"
        expect(root.locator("[data-mensaje]")).to_have_text("4 de 7 filas")
        expect(root.locator(".progress")).to_have_attribute("aria-valuenow", "57")
        expect(root.locator("[data-descargar]")).to_be_hidden()
        admin.shoot("exportacion-progreso")

        seguir.set()
        enlace = root.locator("[data-descargar]")
        expect(enlace).to_be_visible()
        expect(root.locator("[data-mensaje]")).to_have_text("El archivo Excel está listo. 7 de 7 filas")
        admin.shoot("exportacion-lista")
        with admin.page.expect_download() as descarga:
            enlace.click()
        with open(descarga.value.path(), "rb") as f:
            hoja = load_workbook(io.BytesIO(f.read()))["Tickets"]
        assert hoja.max_row == 8  # header + 7
    finally:
        seguir.set()
        if hilo.is_alive():
            hilo.join(timeout=15)
        admin.close()
