"""Attachments in the panels, in a real browser: a usuario attaches a photo (preview before
sending, then drag-and-drop of a second file) and the engineer sees the preview in the thread."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_panels_browser import Person, live_server  # noqa: F401  (fixture reused)

from models import Adjunto, db

pytestmark = pytest.mark.browser

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def people(browser, live_server):  # noqa: F811
    opened: list[Person] = []

    def open_person() -> Person:
        person = Person(browser, live_server)
        opened.append(person)
        return person

    yield open_person
    for person in opened:
        person.close()


def test_usuario_attaches_a_photo_and_the_engineer_sees_its_preview(app, tmp_path, people, make_user, make_ticket):
    app.config.update(UPLOAD_DIR=str(tmp_path / "up"))
    owner = make_user("usuario", username="ana_foto")
    engineer = make_user("ingeniero", username="ing_foto")
    ticket = make_ticket(owner, ingeniero=engineer, estado="en_progreso")
    url = f"/tickets/{ticket.numero_ticket}"

    ana = people()
    ana.login("ana_foto")
    ana.goto(url)
    ana.page.fill("#cuerpo", "Adjunto la captura del error")
    ana.page.set_input_files("#adjuntos-respuesta", files=[
        {"name": "captura.png", "mimeType": "image/png", "buffer": PNG}])
    preview = ana.page.locator("#form-respuesta .previsualizaciones img")
    assert preview.count() == 1
    ana.page.wait_for_function(
        "() => document.querySelector('#form-respuesta .previsualizaciones img').naturalWidth > 0")
    response = ana.submit("#form-respuesta")
    assert response.status == 200 and "/login" not in ana.page.url
    db.session.expire_all()
    stored = db.session.execute(select(Adjunto)).scalars().all()
    assert [(a.nombre, a.tipo_mime, a.mensaje_id is not None) for a in stored] == [("captura.png", "image/png", True)]

    ing = people()
    ing.login("ing_foto")
    ing.goto(url)
    img = ing.page.locator("#hilo img.adjunto-preview")
    assert img.count() == 1 and img.get_attribute("alt") == "captura.png"
    ing.page.wait_for_function("() => document.querySelector('#hilo img.adjunto-preview').naturalWidth > 0")
    link = ing.page.locator("#hilo a[download]")
    assert "captura.png" in link.inner_text()

    # drag-and-drop onto the internal-note zone: the dropped file lands in the input, previewed
    ing.page.evaluate("""(bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'nota.png', {type: 'image/png'}));
        const zone = document.querySelector('#form-nota [data-adjuntos]');
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", list(PNG))
    assert ing.page.locator("#adjuntos-nota").evaluate("i => i.files.length") == 1
    ing.page.fill("#nota", "Captura del servidor")
    ing.submit("#form-nota")
    assert ing.page.locator("#notas img.adjunto-preview").count() == 1

    # the requester does not see the note's file, and its URL is a 404 for her
    db.session.expire_all()
    note_file = db.session.execute(select(Adjunto).where(Adjunto.nota_id.is_not(None))).scalar_one()
    ana.goto(url)
    assert ana.page.locator("img.adjunto-preview").count() == 1
    assert ana.goto(f"/adjuntos/{note_file.id}").status == 404
    ana.problems.clear()  # the 404 page logs a failed resource load on purpose
