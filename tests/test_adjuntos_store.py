"""The attachment store: content sniffing, size limit, content-addressed files outside the web root."""

from __future__ import annotations

import pytest

import adjuntos
from errors import ValidationFailed
from models import Adjunto, db

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def store(app, tmp_path):
    app.config.update(UPLOAD_DIR=str(tmp_path / "up"), UPLOAD_MAX_BYTES=1024)
    return tmp_path / "up"


def test_a_png_is_stored_by_its_hash_with_the_sniffed_type_and_a_safe_name(store):
    adjunto = adjuntos.guardar(PNG, "../../etc/pass\x00wd.exe")
    db.session.commit()
    assert adjunto.tipo_mime == "image/png" and adjunto.tamano == len(PNG)
    assert adjunto.nombre == "passwd.exe"
    assert adjuntos.ruta(adjunto.sha256).read_bytes() == PNG
    assert adjuntos.ruta(adjunto.sha256).is_relative_to(store)
    again = adjuntos.guardar(PNG, "copy.png")
    assert again.sha256 == adjunto.sha256 and len(list(store.rglob("*"))) == 3  # ab/, ab/cd/, file


@pytest.mark.parametrize("datos, code", [
    (b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00", "file_type_refused"),  # a Windows executable named .png
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 40, "file_type_refused"),
    (b"x" * 2000, "file_too_large"),
    (b"", "empty_file"),
])
def test_refused_files_are_422_and_store_nothing(store, datos, code):
    with pytest.raises(ValidationFailed) as exc:
        adjuntos.guardar(datos, "captura.png")
    assert exc.value.code == code
    assert db.session.execute(db.select(Adjunto)).first() is None
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


def test_plain_text_is_accepted_as_text(store):
    assert adjuntos.guardar("registro de errores: impresión".encode(), "log.txt").tipo_mime == "text/plain"


def test_an_email_is_sniffed_as_message_rfc822_even_with_latin1_bytes(store):
    eml = (b"From: Pedro <pedro@proveedor.test>\r\nSubject: Factura\r\n  vencida\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=ISO-8859-1\r\n\r\nGracias, se\xf1ora.\r\n")
    assert adjuntos.guardar(eml, "reenviado.eml").tipo_mime == "message/rfc822"
    # text that merely starts like a header is still text, and a header block without From is not an email
    assert adjuntos.guardar(b"Nota: la impresora falla\n\nmas texto", "nota.txt").tipo_mime == "text/plain"
    assert adjuntos.guardar(b"Subject: x\nTo: y\n\nz", "a.txt").tipo_mime == "text/plain"
