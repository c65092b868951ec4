"""The outbox: SMTP down never fails a request, nothing is lost, each email leaves exactly once,
retries back off, failed emails can be retried by an admin, and the PDF step cannot block mail."""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from datetime import timedelta
from io import BytesIO

import pytest
from conftest import BACKEND
from pypdf import PdfReader
from smtp_fixture import parts
from sqlalchemy import select

import email_manager
import informe_pdf
import outbox
from models import Envio, Ticket, db, utcnow


def _crear(api, user, **overrides):
    body = {"titulo": "Sin acceso al ERP", "descripcion": "Error 401 al entrar.", "categoria": "Software", **overrides}
    resp = api(user).post("/api/tickets", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _correos(**filtros):
    db.session.expire_all()
    stmt = select(Envio).order_by(Envio.id)
    for campo, valor in filtros.items():
        stmt = stmt.where(getattr(Envio, campo) == valor)
    return list(db.session.execute(stmt).scalars())


def _ids_recibidos(smtp_server):
    return Counter(int(m["X-Mesa-Correo-Id"]) for m in smtp_server.messages)


def test_new_ticket_report_goes_to_the_notify_contacts_with_the_pdf(app, api, make_user, smtp_server, deliver):
    app.config["TICKETS_NOTIFY_EMAIL"] = "soporte@empresa.test, gerencia@empresa.test"
    owner = make_user("usuario", nombre="José Núñez")
    ticket = _crear(api, owner, titulo="Factura con € y ñ — 打印机 🔥", etiquetas=["erp", "urgente"])
    deliver()

    report, = smtp_server.to("soporte@empresa.test")
    envelope = next(e for e in smtp_server.envelopes if "soporte@empresa.test" in e.rcpt_tos)
    assert sorted(envelope.rcpt_tos) == ["gerencia@empresa.test", "soporte@empresa.test"]
    assert report["Subject"].startswith(f"[{ticket['numero_ticket']}] Nuevo ticket: Factura con € y ñ")
    text, html = parts(report)
    assert "informe completo va adjunto" in text and "No se pudo adjuntar" not in text
    attachment, = list(report.iter_attachments())
    assert attachment.get_filename() == f"informe_ticket_{ticket['id']}.pdf"
    assert attachment.get_content_type() == "application/pdf"
    pdf = PdfReader(BytesIO(attachment.get_content()))
    content = "\n".join(page.extract_text() for page in pdf.pages)
    assert ticket["numero_ticket"] in content
    assert "Factura con € y ñ" in content
    assert "José Núñez" in content and "Software" in content and "erp, urgente" in content


def test_the_sender_renders_the_email_from_the_ticket_as_it_was_when_queued(app, api, make_user, smtp_server,
                                                                          deliver):
    owner = make_user("usuario", email="ana@empresa.test", nombre="Ana Pérez")
    ticket = _crear(api, owner, titulo="Impresora atascada", descripcion="Papel atascado en la bandeja 2.")
    fila, = _correos(tipo="ticket_recibido")
    assert fila.cuerpo_html is None and fila.datos["plantilla"] == "ticket_recibido"  # no Jinja in the request
    assert fila.asunto == f"[{ticket['numero_ticket']}] Tu ticket fue recibido - #{ticket['numero_ticket']}"
    t = db.session.get(Ticket, ticket["id"])
    t.titulo, t.descripcion, t.estado = "Otro título", "Otra descripción.", "en_progreso"
    db.session.commit()

    deliver()
    recibo, = smtp_server.to("ana@empresa.test")
    text, html = parts(recibo)
    assert "Impresora atascada" in text and "Papel atascado en la bandeja 2." in text and "Abierto" in text
    assert "Otro título" not in text + html and "Otra descripción." not in text + html
    fila, = _correos(tipo="ticket_recibido")
    assert fila.estado == "enviado" and "Impresora atascada" in fila.cuerpo_html + fila.cuerpo_texto


def test_every_email_renders_from_its_snapshot_exactly_as_from_the_ticket(app, make_user, make_ticket):
    """A template that starts reading another attribute of the ticket, a person or a message
    must find it in the outbox row's snapshot (email_manager._foto_ticket / _foto_valor)."""
    from email_manager import Destinatario, _Foto, _foto_ticket, _foto_valor, _render
    from models import Mensaje

    ana, ing, adm = make_user(nombre="Ana"), make_user("ingeniero", nombre="Inés"), make_user("admin", nombre="Adm")
    t = make_ticket(ana, ingeniero=ing, prioridad="critica", estado="en_progreso")
    mensaje = Mensaje(ticket_id=t.id, autor_id=ing.id, cuerpo="Hola <b>x</b>", es_staff=True)
    casos = [("ticket_recibido", {}), ("nuevo_ticket", {}), ("informe_contactos", {}),
             ("ticket_asignado", {"actor": adm}), ("ticket_asignado", {"actor": None}),
             ("estado_cambiado", {"actor": adm, "antes": "abierto", "despues": "en_progreso", "para_staff": True}),
             ("ticket_cerrado", {"actor": adm, "despues": "cerrado", "valorar": "http://x/valorar/abc"}),
             ("prioridad_critica", {"actor": adm, "nuevo": False}), ("alerta_sla", {"texto": "Vence <pronto>"}),
             ("mensaje_nuevo", {"actor": ing, "mensaje": mensaje, "para_staff": False})]
    for idioma in ("es", "en"):
        d = Destinatario("ana@empresa.test", "Ana", idioma)
        for kind, contexto in casos:
            guardado = {k: _foto_valor(v) for k, v in contexto.items()}
            foto = {k: _Foto(v) if isinstance(v, dict) else v for k, v in guardado.items()}
            assert _render(kind, d, _Foto(_foto_ticket(t, etiquetas=True)), **foto) == _render(kind, d, t, **contexto)


def test_pdf_failure_still_sends_the_email_saying_the_report_is_missing(app, api, make_user, smtp_server, deliver,
                                                                       monkeypatch):
    app.config["TICKETS_NOTIFY_EMAIL"] = "soporte@empresa.test"

    def broken(*args, **kwargs):
        raise RuntimeError("fpdf exploded")

    monkeypatch.setattr(informe_pdf, "generar_informe_pdf", broken)
    _crear(api, make_user("usuario"))
    assert deliver() == {"enviado": 2, "pendiente": 0, "fallido": 0}
    report, = smtp_server.to("soporte@empresa.test")
    assert list(report.iter_attachments()) == []
    text, html = parts(report)
    assert "No se pudo adjuntar el informe PDF" in text
    assert "No se pudo adjuntar el informe PDF" in html


def test_smtp_down_the_request_succeeds_and_emails_wait_then_each_is_delivered_once(
        app, api, make_user, smtp_server, closed_port, deliver, monkeypatch):
    app.config.update(MAIL_PORT=closed_port, TICKETS_NOTIFY_EMAIL="soporte@empresa.test")
    owner = make_user("usuario")
    make_user("admin")
    # Record every SMTP connection attempt (the real connect still runs): the request must
    # make none, so SMTP being down can neither fail nor slow it.
    attempts = []
    real_connect = smtplib.SMTP.connect
    monkeypatch.setattr(smtplib.SMTP, "connect",
                        lambda self, *a, **kw: attempts.append(a) or real_connect(self, *a, **kw))
    ticket = _crear(api, owner)
    assert attempts == []  # the request only wrote rows

    assert deliver() == {"enviado": 0, "pendiente": 3, "fallido": 0}
    assert attempts  # the sender, not the request, talks to SMTP
    waiting = _correos(estado="pendiente")
    assert len(waiting) == 3 and all(c.ticket_id == ticket["id"] for c in waiting)
    assert all(c.intentos == 1 and "ConnectionRefused" in c.ultimo_error for c in waiting)
    assert all(c.proximo_intento > utcnow() for c in waiting)  # backing off: not due yet
    assert deliver() == {"enviado": 0, "pendiente": 0, "fallido": 0}
    assert smtp_server.messages == []

    app.config["MAIL_PORT"] = smtp_server.port  # SMTP is back
    later = utcnow() + timedelta(hours=2)
    assert deliver(ahora=later)["enviado"] == 3
    assert deliver(ahora=later)["enviado"] == 0
    received = _ids_recibidos(smtp_server)
    assert sorted(received) == [c.id for c in waiting] and set(received.values()) == {1}
    assert all(c.estado == "enviado" and c.fecha_envio and c.ultimo_error is None for c in _correos())


def test_retries_back_off_exponentially(app, make_user, make_ticket, closed_port, deliver):
    app.config.update(MAIL_PORT=closed_port, OUTBOX_BACKOFF_SECONDS=10, OUTBOX_MAX_INTENTOS=10)
    make_ticket(make_user("usuario"))
    correo, = _correos()
    now = utcnow()
    waits = []
    for _ in range(4):
        deliver(ahora=now)
        db.session.refresh(correo)
        waits.append(round((correo.proximo_intento - now).total_seconds()))
        now = correo.proximo_intento
    assert [w // 10 * 10 for w in waits] == [10, 20, 40, 80]


def test_after_the_last_try_the_email_is_failed_shown_to_the_admin_and_can_be_retried(
        app, make_user, make_ticket, login, smtp_server, closed_port, deliver):
    app.config.update(MAIL_PORT=closed_port, OUTBOX_MAX_INTENTOS=2, OUTBOX_BACKOFF_SECONDS=0)
    admin = make_user("admin", email="jefa@empresa.test")
    make_ticket(make_user("usuario", email="ana@empresa.test"))
    deliver()
    assert deliver()["fallido"] == 2
    failed = _correos(estado="fallido")
    assert {c.destinatarios for c in failed} == {"ana@empresa.test", "jefa@empresa.test"}
    assert deliver() == {"enviado": 0, "pendiente": 0, "fallido": 0}  # failed for good: no more tries

    client, csrf = login(admin)
    page = client.get("/admin/correos")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "ConnectionRefusedError" in html and failed[0].asunto in html
    assert f'action="/admin/correos/{failed[0].id}/reintentar"' in html
    listed = client.get("/api/correos?estado=fallido").get_json()
    assert listed["total"] == 2 and "ConnectionRefusedError" in listed["items"][0]["ultimo_error"]

    app.config["MAIL_PORT"] = smtp_server.port
    resp = client.post(f"/admin/correos/{failed[0].id}/reintentar", data={"csrf_token": csrf})
    assert resp.status_code == 302
    resp = client.post(f"/api/correos/{failed[1].id}/reintentar", headers={"X-CSRFToken": csrf})
    assert resp.status_code == 200 and resp.get_json()["estado"] == "pendiente"
    assert deliver()["enviado"] == 2
    assert sorted(_ids_recibidos(smtp_server)) == sorted(c.id for c in failed)
    again = client.post(f"/api/correos/{failed[1].id}/reintentar", headers={"X-CSRFToken": csrf})
    assert again.status_code == 409


def test_only_admins_see_the_outbox(make_user, login, api):
    usuario = make_user("usuario")
    assert api(usuario).get("/api/correos").status_code == 403
    client, _ = login(usuario)
    assert client.get("/admin/correos").status_code == 403


def test_two_concurrent_senders_deliver_each_email_exactly_once(app, api, make_user, smtp_server):
    app.config["TICKETS_NOTIFY_EMAIL"] = "soporte@empresa.test"
    owner = make_user("usuario")
    make_user("admin")
    for n in range(8):
        _crear(api, owner, titulo=f"Ticket {n}")
    queued = [c.id for c in _correos()]
    assert len(queued) == 24

    smtp_server.handler.delay = 0.05  # each batch of 3 takes long enough for the other sender to claim
    barrier = threading.Barrier(2)
    errors, sent = [], Counter()

    def sender(name):
        try:
            with app.app_context():
                barrier.wait()
                while n := outbox.enviar_pendientes(limite=3, trabajador=name)["enviado"]:
                    sent[name] += n
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(f"worker-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(sent.values()) == 24 and len(sent) == 2  # both really worked the same queue
    received = _ids_recibidos(smtp_server)
    assert sorted(received) == queued
    assert set(received.values()) == {1}
    rows = _correos()
    assert all(c.estado == "enviado" and c.intentos == 1 for c in rows)
    assert {c.reclamado_por for c in rows} == {None}


def test_a_claim_left_by_a_dead_sender_is_released_and_sent(app, make_user, make_ticket, smtp_server, deliver):
    make_ticket(make_user("usuario"))
    correo, = _correos()
    correo.estado, correo.reclamado_por, correo.reclamado_en = "enviando", "dead:1", utcnow() - timedelta(hours=1)
    db.session.commit()
    assert deliver()["enviado"] == 1
    assert len(smtp_server.messages) == 1


def test_send_emails_cli_delivers_the_queue(app, make_user, make_ticket, smtp_server):
    make_ticket(make_user("usuario"))
    make_ticket(make_user("usuario"))
    result = app.test_cli_runner().invoke(args=["send-emails"])
    assert result.exit_code == 0, result.output
    assert "sent: 2, to retry: 0, failed: 0" in result.output
    assert len(smtp_server.messages) == 2


@pytest.mark.parametrize("silenced", [True, False])
def test_sin_correos_queues_nothing(make_user, silenced):
    import tickets
    from schemas import TicketCreate

    owner = make_user("usuario")
    data = TicketCreate(titulo="x", descripcion="y", categoria="General")
    if silenced:
        with email_manager.sin_correos():
            tickets.crear_ticket(data, usuario=owner)
    else:
        tickets.crear_ticket(data, usuario=owner)
    db.session.commit()
    assert len(_correos()) == (0 if silenced else 1)


def test_a_claim_takes_at_most_its_limit(app, api, make_user, smtp_server):
    # PostgreSQL once claimed the whole queue here (LIMIT inside UPDATE ... IN (subquery)).
    app.config["TICKETS_NOTIFY_EMAIL"] = "soporte@empresa.test"
    owner = make_user("usuario")
    for n in range(4):
        _crear(api, owner, titulo=f"Ticket {n}")
    lote = outbox.reclamar(3, "w-test")
    assert len(lote) == 3
    db.session.expire_all()
    assert sum(1 for c in _correos() if c.estado == "enviando") == 3


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's one write lock")
def test_a_slow_smtp_send_does_not_hold_the_database_write_lock(app, api, make_user, smtp_server):
    """The sender renders a queued email while sending it; that write waits for the commit after
    the send, so another writer (a request creating a ticket) is not blocked for the SMTP time."""
    import sqlite3

    owner = make_user("usuario")
    _crear(api, owner)
    smtp_server.handler.delay = 1.5
    resultado = {}

    def sender():
        with app.app_context():
            resultado.update(outbox.enviar_pendientes(limite=1))
            db.session.remove()

    hilo = threading.Thread(target=sender)
    hilo.start()
    deadline = time.monotonic() + 10
    while not smtp_server.handler.recibiendo and time.monotonic() < deadline:
        time.sleep(0.01)
    assert smtp_server.handler.recibiendo, "the send never reached the SMTP server"
    otra = sqlite3.connect(db.engine.url.database, timeout=0.2)
    try:
        otra.execute("UPDATE usuarios SET nombre = nombre WHERE id = ?", (owner.id,))
        otra.commit()  # would raise "database is locked" while the sender held the lock
    finally:
        otra.close()
    hilo.join(30)
    assert resultado["enviado"] == 1
