"""Attachments through the API: upload (multipart) on a ticket, a public message, an internal
note and seed 003's messages; refused files; the access-checked download."""

from __future__ import annotations

import io
import os
import time

import pytest
from sqlalchemy import func, select

from models import Adjunto, Mensaje, NotaInterna, db

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EXE = b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00"


@pytest.fixture
def store(app, tmp_path):
    app.config.update(UPLOAD_DIR=str(tmp_path / "up"), UPLOAD_MAX_BYTES=4096, UPLOAD_MAX_FILES=2)
    return tmp_path / "up"


@pytest.fixture
def cast(make_user, make_ticket):
    owner, other, ing = make_user("usuario"), make_user("usuario"), make_user("ingeniero")
    return {"owner": owner, "other": other, "ing": ing, "admin": make_user("admin"),
            "ticket": make_ticket(owner, ingeniero=ing, estado="en_progreso")}


def files(*pairs, **fields):
    data = {k: v for k, v in fields.items()}
    data["archivo"] = [(io.BytesIO(content), name) for name, content in pairs]
    return data


def upload(client, ticket_id, *pairs, **fields):
    return client.post(f"/api/tickets/{ticket_id}/adjuntos", data=files(*pairs, **fields),
                       content_type="multipart/form-data")


def count(model) -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def stored(store) -> list:
    return [p for p in store.rglob("*") if p.is_file()] if store.exists() else []


def test_requester_uploads_a_screenshot_with_a_message_and_staff_downloads_it(api, cast, store):
    t = cast["ticket"]
    r = upload(api(cast["owner"]).client, t.id, ("captura.png", PNG), cuerpo="Mira el error")
    assert r.status_code == 401  # the raw client has no token
    owner = api(cast["owner"])
    r = owner.client.post(f"/api/tickets/{t.id}/adjuntos", data=files(("captura.png", PNG), cuerpo="Mira el error"),
                          content_type="multipart/form-data", headers=owner.headers)
    assert r.status_code == 201, r.get_json()
    item = r.get_json()["items"][0]
    assert (item["nombre"], item["tipo_mime"], item["tamano"]) == ("captura.png", "image/png", len(PNG))
    assert item["mensaje_id"] == db.session.execute(select(Mensaje.id)).scalar_one()
    assert [p.name for p in stored(store)] == [db.session.get(Adjunto, item["id"]).sha256]  # never the user's name

    d = api(cast["ing"]).get(item["url"])
    assert d.status_code == 200 and d.data == PNG
    assert d.headers["Content-Type"] == "image/png" and d.headers["X-Content-Type-Options"] == "nosniff"
    assert d.headers["Content-Disposition"].startswith("inline")
    d = api(cast["ing"]).get(item["url"] + "?descargar=1")
    assert d.headers["Content-Disposition"] == "attachment; filename=captura.png"

    # seed 003's detail shows it as an image message with its file_url
    detail = api(cast["ing"]).get(f"/admin/api/support/tickets/{t.id}").get_json()["data"]
    assert (detail["messages"][0]["message_type"], detail["messages"][0]["file_url"]) == ("image", item["url"])


def test_pdf_downloads_as_attachment_never_inline(api, cast, store):
    owner = api(cast["owner"])
    r = owner.client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos", data=files(("factura.pdf", PDF)),
                          content_type="multipart/form-data", headers=owner.headers)
    assert r.status_code == 201
    d = owner.get(r.get_json()["items"][0]["url"])
    assert d.headers["Content-Disposition"] == "attachment; filename=factura.pdf"
    assert d.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name, content, code", [
    ("captura.png", EXE, "file_type_refused"),          # a disguised executable
    ("grande.png", PNG + b"\x00" * 5000, "file_too_large"),
])
def test_refused_uploads_are_422_and_leave_nothing(api, cast, store, name, content, code):
    owner = api(cast["owner"])
    before = (count(Mensaje), count(Adjunto))
    r = owner.client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos",
                          data=files(("ok.pdf", PDF), (name, content), cuerpo="dos archivos"),
                          content_type="multipart/form-data", headers=owner.headers)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == code
    assert (count(Mensaje), count(Adjunto)) == before
    assert stored(store) == []  # the first, accepted file was removed again: no orphan


def test_too_many_files(api, cast, store):
    owner = api(cast["owner"])
    r = owner.client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos",
                          data=files(("a.png", PNG), ("b.pdf", PDF), ("c.txt", b"hola")),
                          content_type="multipart/form-data", headers=owner.headers)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "too_many_files"
    assert count(Adjunto) == 0 and stored(store) == []


def test_path_traversal_name_is_only_a_display_name(api, cast, store):
    owner = api(cast["owner"])
    r = owner.client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos", data=files(("../../../etc/cron.d/x.txt", b"hola")),
                          content_type="multipart/form-data", headers=owner.headers)
    assert r.status_code == 201
    assert r.get_json()["items"][0]["nombre"] == "x.txt"
    assert all(p.is_relative_to(store) for p in stored(store)) and len(stored(store)) == 1


def test_another_users_attachment_url_is_404(api, cast, store, make_ticket):
    owner = api(cast["owner"])
    r = owner.client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos", data=files(("captura.png", PNG)),
                          content_type="multipart/form-data", headers=owner.headers)
    url = r.get_json()["items"][0]["url"]
    assert api(cast["other"]).get(url).status_code == 404
    assert api(cast["other"]).get("/adjuntos/999999").status_code == 404
    assert api(cast["ing"]).get(url).status_code == 200  # the assigned engineer sees it
    r = api(cast["other"]).client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos", data=files(("x.png", PNG)),
                                       content_type="multipart/form-data", headers=api(cast["other"]).headers)
    assert r.status_code == 404


def test_internal_note_attachment_is_hidden_from_the_requester(api, cast, store):
    ing = api(cast["ing"])
    r = ing.client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos", data=files(("log.txt", b"clave interna"),
                                                                                   nota="log del servidor"),
                        content_type="multipart/form-data", headers=ing.headers)
    assert r.status_code == 201, r.get_json()
    item = r.get_json()["items"][0]
    assert item["nota_id"] == db.session.execute(select(NotaInterna.id)).scalar_one()
    assert ing.get(item["url"]).status_code == 200
    assert api(cast["owner"]).get(item["url"]).status_code == 404
    assert api(cast["owner"]).get(f"/api/tickets/{cast['ticket'].id}/adjuntos").get_json()["items"] == []
    assert len(ing.get(f"/api/tickets/{cast['ticket'].id}/adjuntos").get_json()["items"]) == 1
    # a requester cannot write a note with files
    owner = api(cast["owner"])
    r = owner.client.post(f"/api/tickets/{cast['ticket'].id}/adjuntos", data=files(("a.txt", b"x"), nota="n"),
                          content_type="multipart/form-data", headers=owner.headers)
    assert r.status_code == 403 and count(NotaInterna) == 1


def test_seed003_user_message_with_a_photo(api, cast, store):
    owner = api(cast["owner"])
    r = owner.client.post(f"/admin/api/support/tickets/{cast['ticket'].id}/user-message",
                          data={"user_id": str(cast["owner"].id), "message": "foto", "message_type": "image",
                                "file": (io.BytesIO(PNG), "foto.png")},
                          content_type="multipart/form-data", headers=owner.headers)
    assert r.status_code == 200, r.get_json()
    data = r.get_json()["data"]
    assert data["message_type"] == "image" and data["file_url"].startswith("/adjuntos/")
    assert api(cast["other"]).get(data["file_url"]).status_code == 404


def test_limpiar_adjuntos_removes_only_old_orphans(app, cast, store):
    import adjuntos

    kept = adjuntos.guardar(PNG, "a.png", ticket_id=cast["ticket"].id)
    db.session.commit()
    orphan = adjuntos.ruta("ab" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left over")
    fresh = adjuntos.ruta("cd" * 32)
    fresh.parent.mkdir(parents=True, exist_ok=True)
    fresh.write_bytes(b"upload in flight")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    os.utime(adjuntos.ruta(kept.sha256), (old, old))
    result = app.test_cli_runner().invoke(args=["limpiar-adjuntos"])
    assert result.exit_code == 0 and "1 orphan" in result.output
    assert not orphan.exists() and fresh.exists() and adjuntos.ruta(kept.sha256).exists()
