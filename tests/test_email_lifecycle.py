"""Who gets which email at every step of a ticket's life, as a real SMTP server receives it."""

from __future__ import annotations

from smtp_fixture import parts
from sqlalchemy import func, select

from models import Envio, db


def _crear(api, user, **overrides):
    body = {"titulo": "La impresora no imprime", "descripcion": "Sale la hoja en blanco.", "categoria": "Hardware",
            **overrides}
    resp = api(user).post("/api/tickets", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _subjects(smtp_server, address):
    return [m["Subject"] for m in smtp_server.to(address)]


def test_created_ticket_sends_receipt_to_requester_and_new_ticket_to_each_admin(
        app, api, make_user, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test", nombre="Ana Pérez")
    admin_es = make_user("admin", email="jefa@empresa.test")
    admin_en = make_user("admin", email="boss@empresa.test", idioma="en")
    ticket = _crear(api, owner)
    numero = ticket["numero_ticket"]

    assert deliver()["enviado"] == 3
    receipt, = smtp_server.to("ana@empresa.test")
    assert receipt["Subject"] == f"[{numero}] Tu ticket fue recibido - #{numero}"
    assert receipt["To"] == "ana@empresa.test"
    assert receipt["From"] == "Mesa de Ayuda <soporte@mesa.test>"
    text, html = parts(receipt)
    link = f"http://127.0.0.1:5000/tickets/{numero}"
    assert "Hola Ana Pérez," in text and "Sale la hoja en blanco." in text and link in text
    assert f'href="{link}"' in html and "La impresora no imprime" in html and "style=" in html
    assert "[[aviso-adjunto]]" not in text and "aviso-adjunto" not in html

    nuevo_es, = smtp_server.to(admin_es.email)
    assert nuevo_es["Subject"] == f"[{numero}] Nuevo ticket: La impresora no imprime"
    assert "Ana Pérez creó un ticket nuevo." in parts(nuevo_es)[0]
    nuevo_en, = smtp_server.to(admin_en.email)
    assert nuevo_en["Subject"] == f"[{numero}] New ticket: La impresora no imprime"
    text_en, html_en = parts(nuevo_en)
    assert "Ana Pérez created a new ticket." in text_en and 'lang="en"' in html_en


def test_an_admin_creating_a_ticket_gets_the_receipt_but_not_the_new_ticket_alert(api, make_user, smtp_server, deliver):
    admin = make_user("admin", email="jefa@empresa.test")
    other = make_user("admin", email="otra@empresa.test")
    numero = _crear(api, admin)["numero_ticket"]
    deliver()
    assert _subjects(smtp_server, admin.email) == [f"[{numero}] Tu ticket fue recibido - #{numero}"]
    assert _subjects(smtp_server, other.email) == [f"[{numero}] Nuevo ticket: La impresora no imprime"]


def test_assignment_emails_the_engineer_and_not_the_admin_who_assigned(api, make_user, make_ticket, smtp_server, deliver):
    owner, admin = make_user("usuario"), make_user("admin")
    engineer = make_user("ingeniero", email="carlos@empresa.test", nombre="Carlos")
    ticket = make_ticket(owner)
    deliver()
    smtp_server.clear()

    resp = api(admin).put(f"/api/tickets/{ticket.id}/asignar", json={"ingeniero_id": engineer.ingeniero.id})
    assert resp.status_code == 200
    assert deliver()["enviado"] == 1
    msg, = smtp_server.messages
    assert msg["To"] == "carlos@empresa.test"
    assert msg["Subject"] == f"[{ticket.numero_ticket}] Nuevo ticket asignado: Impresora no imprime"
    text, html = parts(msg)
    assert f"{admin.nombre} te asignó este ticket." in text and "Sale en blanco." in html


def test_state_change_emails_the_requester_not_the_engineer_who_moved_it(api, make_user, make_ticket, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test")
    engineer = make_user("ingeniero")
    ticket = make_ticket(owner, ingeniero=engineer)
    deliver()
    smtp_server.clear()

    assert api(engineer).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "en_progreso"}).status_code == 200
    deliver()
    msg, = smtp_server.messages
    assert msg["To"] == "ana@empresa.test"
    assert msg["Subject"] == f"[{ticket.numero_ticket}] Tu ticket cambió a En progreso"
    text, html = parts(msg)
    assert "Abierto -> En progreso" in text and "En progreso</strong>" in html


def test_closing_sends_the_closed_email(api, make_user, make_ticket, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test")
    engineer = make_user("ingeniero")
    ticket = make_ticket(owner, ingeniero=engineer, estado="resuelto")
    deliver()
    smtp_server.clear()

    assert api(engineer).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "cerrado"}).status_code == 200
    deliver()
    msg, = smtp_server.messages
    assert msg["To"] == "ana@empresa.test"
    assert msg["Subject"] == f"[{ticket.numero_ticket}] Tu ticket fue CERRADO"
    assert "puedes reabrirlo" in parts(msg)[0]


def test_requester_reopening_tells_the_assigned_engineer_only(api, make_user, make_ticket, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test")
    engineer = make_user("ingeniero", email="carlos@empresa.test", idioma="en")
    make_user("admin", email="jefa@empresa.test")
    ticket = make_ticket(owner, ingeniero=engineer, estado="resuelto")
    deliver()
    smtp_server.clear()

    assert api(owner).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "abierto"}).status_code == 200
    deliver()
    msg, = smtp_server.messages
    assert msg["To"] == "carlos@empresa.test"
    assert msg["Subject"] == f"[{ticket.numero_ticket}] The ticket changed to Open"


def test_public_message_goes_to_the_other_side_and_internal_notes_to_nobody(
        api, make_user, make_ticket, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test")
    engineer = make_user("ingeniero", email="carlos@empresa.test")
    make_user("admin", email="jefa@empresa.test")
    ticket = make_ticket(owner, ingeniero=engineer)
    deliver()
    smtp_server.clear()

    api(engineer).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "¿Puedes reiniciarla?"})
    api(engineer).put(f"/api/tickets/{ticket.id}/notas", json={"nota": "Tóner agotado, no decirlo aún"})
    deliver()
    msg, = smtp_server.messages
    assert msg["To"] == "ana@empresa.test"
    assert msg["Subject"] == f"[{ticket.numero_ticket}] Nueva respuesta en tu ticket"
    text, html = parts(msg)
    assert "¿Puedes reiniciarla?" in text and "¿Puedes reiniciarla?" in html
    assert "Tóner" not in text and "Tóner" not in html
    smtp_server.clear()

    api(owner).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "Ya la reinicié <b>y nada</b>"})
    deliver()
    msg, = smtp_server.messages
    assert msg["To"] == "carlos@empresa.test"
    assert msg["Subject"] == f"[{ticket.numero_ticket}] Nuevo mensaje del solicitante"
    assert "Ya la reinicié &lt;b&gt;y nada&lt;/b&gt;" in parts(msg)[1]  # user text is escaped in HTML


def test_requester_message_on_unassigned_ticket_goes_to_the_admins(api, make_user, make_ticket, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test")
    admin = make_user("admin", email="jefa@empresa.test")
    ticket = make_ticket(owner)
    deliver()
    smtp_server.clear()

    api(owner).post(f"/api/tickets/{ticket.id}/mensajes", json={"cuerpo": "¿Alguien lo mira?"})
    deliver()
    assert _subjects(smtp_server, admin.email) == [f"[{ticket.numero_ticket}] Nuevo mensaje del solicitante"]
    assert smtp_server.to(owner.email) == []


def test_critical_ticket_alerts_admins_once_and_raising_to_critical_alerts_admins_and_engineer(
        api, make_user, make_ticket, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test")
    admin = make_user("admin", email="jefa@empresa.test")
    engineer = make_user("ingeniero", email="carlos@empresa.test")
    numero = _crear(api, owner, prioridad="critica", titulo="Servidor caído")["numero_ticket"]
    deliver()
    assert _subjects(smtp_server, admin.email) == [f"[{numero}] Nuevo ticket CRÍTICO: Servidor caído"]
    assert "prioridad crítica" in parts(smtp_server.to(admin.email)[0])[0]
    smtp_server.clear()

    ticket = make_ticket(owner, ingeniero=engineer)
    deliver()
    smtp_server.clear()
    assert api(owner).put(f"/api/tickets/{ticket.id}", json={"prioridad": "critica"}).status_code == 200
    deliver()
    expected = f"[{ticket.numero_ticket}] Ticket CRÍTICO: Impresora no imprime"
    assert _subjects(smtp_server, admin.email) == [expected]
    assert _subjects(smtp_server, engineer.email) == [expected]
    assert smtp_server.to(owner.email) == []  # the requester raised it: no mail about their own action


def test_a_refused_change_writes_no_email(api, make_user, make_ticket, deliver):
    owner, engineer = make_user("usuario"), make_user("ingeniero")
    ticket = make_ticket(owner, ingeniero=engineer)
    before = db.session.execute(select(func.count(Envio.id))).scalar_one()
    resp = api(engineer).put(f"/api/tickets/{ticket.id}/estado", json={"estado": "cerrado"})
    assert resp.status_code == 409
    db.session.expire_all()
    assert db.session.execute(select(func.count(Envio.id))).scalar_one() == before


def test_subject_cannot_be_used_for_header_injection(api, make_user, smtp_server, deliver):
    owner = make_user("usuario", email="ana@empresa.test")
    _crear(api, owner, titulo="Hola\r\nBcc: victima@otra.test")
    deliver()
    assert all("victima@otra.test" not in e.rcpt_tos for e in smtp_server.envelopes)
    receipt, = smtp_server.to(owner.email)
    assert receipt["Bcc"] is None
