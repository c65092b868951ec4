"""Email in: replies thread onto tickets once, auto-replies change nothing, unknown senders,
charsets, HTML, forged references, malformed mail. Real parts: Mesa's own emails go through
the outbox to a real SMTP server on loopback and the replies quote what it received."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import func, select

import correo_entrante
import tickets
from models import Cliente, Comunicacion, Envio, Mensaje, Ticket, db


def eml(de: str, asunto: str, cuerpo: str = "Hola", *, para: str = "soporte@mesa.test", msgid: str | None = "auto",
        cabeceras: dict | None = None, html: str | None = None, adjuntos=()) -> bytes:
    m = EmailMessage()
    m["From"] = de
    m["To"] = para
    m["Subject"] = asunto
    if msgid == "auto":
        m["Message-ID"] = make_msgid(domain="cliente.test")
    elif msgid:
        m["Message-ID"] = msgid
    for k, v in (cabeceras or {}).items():
        m[k] = v
    if cuerpo is not None:
        m.set_content(cuerpo)
        if html:
            m.add_alternative(html, subtype="html")
    elif html:
        m.set_content(html, subtype="html")
    for nombre, datos, tipo in adjuntos:
        mt, st = tipo.split("/")
        m.add_attachment(datos, maintype=mt, subtype=st, filename=nombre)
    return m.as_bytes()


def ingest(raw: bytes):
    r = correo_entrante.ingerir_y_confirmar(raw)
    db.session.expire_all()
    return r


def envios_a(direccion: str) -> list[Envio]:
    return list(db.session.execute(select(Envio).where(Envio.destinatarios == direccion)).scalars())


@pytest.fixture
def escena(make_user, make_ticket):
    admin = make_user("admin", email="jefa@mesa.test")
    requester = make_user("usuario", email="ana@cliente.test", nombre="Ana")
    engineer = make_user("ingeniero", email="ing@mesa.test")
    ticket = make_ticket(requester, engineer, estado="en_espera")
    return {"admin": admin, "requester": requester, "engineer": engineer, "ticket": ticket}


def test_reply_to_a_mesa_email_lands_on_the_thread_once_and_notifies_the_engineer(
        app, escena, smtp_server, deliver):
    ticket, engineer = escena["ticket"], escena["engineer"]
    tickets.agregar_mensaje(ticket, engineer, "¿Puedes probar otra vez?")
    db.session.commit()
    deliver()
    enviado = smtp_server.to("ana@cliente.test")[-1]
    mid = enviado["Message-ID"]
    assert mid.startswith("<envio-") and ticket.numero_ticket in mid
    # The outbox row keeps it and the sent email is an outbound communication.
    assert db.session.execute(select(Envio).where(Envio.id_externo == mid)).scalar_one().ticket_id == ticket.id
    saliente = db.session.execute(select(Comunicacion).where(Comunicacion.id_externo == mid)).scalar_one()
    assert saliente.direccion == "saliente" and saliente.ticket_id == ticket.id

    respuesta = eml("Ana <ana@cliente.test>", "Re: " + str(enviado["Subject"]).replace(f"[{ticket.numero_ticket}]", ""),
                    "Ya funciona, gracias.\n\nEl lun, 1 dic 2025, Mesa escribió:\n> ¿Puedes probar otra vez?\n",
                    cabeceras={"In-Reply-To": mid, "References": mid})
    antes_ing = len(envios_a("ing@mesa.test"))
    r1 = ingest(respuesta)
    r2 = ingest(respuesta)
    assert (r1.estado, r2.estado) == ("respuesta", "duplicado")
    ms = db.session.execute(select(Mensaje).where(Mensaje.ticket_id == ticket.id).order_by(Mensaje.id)).scalars().all()
    assert [m.cuerpo for m in ms] == ["¿Puedes probar otra vez?", "Ya funciona, gracias."]
    assert not ms[-1].es_staff and ms[-1].autor_id == escena["requester"].id
    com = db.session.get(Comunicacion, r1.comunicacion.id)
    assert com.ticket_id == ticket.id and "escribió" in com.original and com.estado == "procesado"
    nuevos = envios_a("ing@mesa.test")[antes_ing:]
    assert [e.tipo for e in nuevos] == ["mensaje_nuevo"]


def test_reply_by_subject_tag_reopens_a_resolved_ticket(app, make_user, make_ticket):
    requester = make_user("usuario", email="luis@cliente.test")
    engineer = make_user("ingeniero")
    ticket = make_ticket(requester, engineer, estado="resuelto")
    r = ingest(eml("luis@cliente.test", f"Re: [{ticket.numero_ticket}] Tu ticket cambió a resuelto",
                   "Sigue fallando."))
    assert r.estado == "respuesta"
    assert db.session.get(Ticket, ticket.id).estado == "abierto"


@pytest.mark.parametrize("cabeceras,de", [
    ({"Auto-Submitted": "auto-replied"}, "ana@cliente.test"),
    ({"Precedence": "bulk"}, "ana@cliente.test"),
    ({"X-Autoreply": "yes"}, "ana@cliente.test"),
    ({}, "MAILER-DAEMON@mx.cliente.test"),
])
def test_auto_replies_and_bounces_change_nothing(app, escena, cabeceras, de):
    ticket = escena["ticket"]
    envios = db.session.scalar(select(func.count()).select_from(Envio))
    r = ingest(eml(de, f"Fuera de la oficina: [{ticket.numero_ticket}]", "Estoy de vacaciones.", cabeceras=cabeceras))
    assert r.estado == "ignorado"
    assert db.session.scalar(select(func.count()).select_from(Mensaje)) == 0
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert db.session.scalar(select(func.count()).select_from(Envio)) == envios
    assert db.session.get(Comunicacion, r.comunicacion.id).estado == "ignorado"


def test_a_dsn_multipart_report_is_ignored(app, escena):
    m = EmailMessage()
    m["From"] = "postmaster@cliente.test"
    m["To"] = "soporte@mesa.test"
    m["Subject"] = "Undelivered Mail Returned to Sender"
    m["Message-ID"] = make_msgid()
    m.set_content("Delivery failed")
    m.make_mixed()
    m.set_type("multipart/report")
    m.set_param("report-type", "delivery-status")
    r = ingest(m.as_bytes())
    assert r.estado == "ignorado" and "report" in r.motivo or "automatic" in r.motivo
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_unknown_sender_becomes_a_client_and_ticket_when_enabled(app, make_user):
    make_user("admin")
    app.config["INBOUND_UNKNOWN_SENDER"] = "crear"
    r = ingest(eml("Pedro Gómez <Pedro@Nuevo.test>", "No puedo entrar al ERP", "Me da error 500."))
    assert r.estado == "creado"
    ticket = db.session.get(Ticket, r.ticket.id)
    assert ticket.canal == "email" and ticket.titulo == "No puedo entrar al ERP"
    assert ticket.descripcion == "Me da error 500."
    assert ticket.cliente.email == "pedro@nuevo.test" and ticket.cliente.nombre == "Pedro Gómez"
    assert ticket.comunicacion_email_id == r.comunicacion.id
    # the creation receipt follows
    assert [e.tipo for e in envios_a("pedro@nuevo.test")] == ["ticket_recibido"]
    # and the client's later reply by subject lands on the thread
    r2 = ingest(eml("pedro@nuevo.test", f"Re: [{ticket.numero_ticket}] Tu ticket fue recibido", "Más datos"))
    assert r2.estado == "respuesta"
    m, = db.session.execute(select(Mensaje).where(Mensaje.ticket_id == ticket.id)).scalars()
    assert m.cliente_id == ticket.cliente_id and m.cuerpo == "Más datos"


def test_unknown_sender_is_ignored_when_disabled(app):
    app.config["INBOUND_UNKNOWN_SENDER"] = "ignorar"
    r = ingest(eml("x@spam.test", "Oferta", "Compra ya"))
    assert r.estado == "ignorado"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert db.session.scalar(select(func.count()).select_from(Cliente)) == 0


def test_known_user_email_creates_ticket_as_that_user(app, make_user):
    u = make_user("usuario", email="marta@cliente.test")
    r = ingest(eml("MARTA@cliente.test", "Impresora", None, html="<p>La <b>impresora</b> &amp; el escáner</p>"
                   "<script>alert(1)</script>"))
    assert r.estado == "creado"
    t = db.session.get(Ticket, r.ticket.id)
    assert t.usuario_id == u.id and t.descripcion == "La impresora & el escáner"


def test_forged_ticket_reference_opens_nothing(app, escena, make_user):
    intruso = make_user("usuario", email="malo@cliente.test")
    ticket = escena["ticket"]
    envios = db.session.scalar(select(func.count()).select_from(Envio))
    r = ingest(eml(intruso.email, f"Re: [{ticket.numero_ticket}] hola", "Dame los datos",
                   cabeceras={"In-Reply-To": f"<envio-1.{ticket.numero_ticket}@mesa.test>"}))
    assert r.estado == "rechazado" and r.ticket is None
    assert db.session.scalar(select(func.count()).select_from(Mensaje)) == 0
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert db.session.scalar(select(func.count()).select_from(Envio)) == envios


def test_staff_who_may_see_the_ticket_may_reply(app, escena):
    ticket = escena["ticket"]
    r = ingest(eml("ing@mesa.test", f"Re: [{ticket.numero_ticket}] x", "Lo reviso"))
    assert r.estado == "respuesta"
    m, = db.session.execute(select(Mensaje).where(Mensaje.ticket_id == ticket.id)).scalars()
    assert m.es_staff


def test_charsets_and_encoded_words(app, make_user):
    make_user("usuario", email="jose@cliente.test")
    latin = (b"From: jose@cliente.test\r\nTo: soporte@mesa.test\r\nMessage-ID: <l1@x>\r\n"
             b"Subject: =?ISO-8859-1?Q?Configuraci=F3n_del_correo?=\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             b"No s\xe9 qu\xe9 pas\xf3 con la contrase\xf1a.\r\n")
    r = ingest(latin)
    t = db.session.get(Ticket, r.ticket.id)
    assert t.titulo == "Configuración del correo"
    assert t.descripcion == "No sé qué pasó con la contraseña."
    cp = (b"From: jose@cliente.test\r\nTo: soporte@mesa.test\r\nMessage-ID: <w1@x>\r\n"
          b"Subject: =?windows-1252?B?k0ZhY3R1cmGUIGRlIDEwMIA=?=\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
          b"Son 100\x80 \x93exactos\x94.\r\n")
    r = ingest(cp)
    t = db.session.get(Ticket, r.ticket.id)
    assert t.titulo == "\u201cFactura\u201d de 100\u20ac"
    assert t.descripcion == "Son 100\u20ac \u201cexactos\u201d."


def test_no_message_id_dedupes_by_hash(app, make_user):
    make_user("usuario", email="sin@cliente.test")
    raw = eml("sin@cliente.test", "Sin id", "cuerpo", msgid=None)
    assert ingest(raw).estado == "creado"
    assert ingest(raw).estado == "duplicado"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_attachments_are_stored(app, make_user, tmp_path):
    app.config["UPLOAD_DIR"] = str(tmp_path)
    make_user("usuario", email="adj@cliente.test")
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 20
    r = ingest(eml("adj@cliente.test", "Con captura", "Adjunto captura",
                   adjuntos=[("captura.png", png, "image/png"), ("virus.exe", b"MZ\x90\x00" + b"\x00" * 60,
                                                                 "application/octet-stream")]))
    com = db.session.get(Comunicacion, r.comunicacion.id)
    assert len(com.datos["adjuntos"]) == 1 and len(com.datos["adjuntos_rechazados"]) == 1


def test_signature_and_forwarded_quote_trimmed_for_display(app, escena):
    ticket = escena["ticket"]
    cuerpo = "Respuesta nueva\n\n-- \nAna Pérez\nTel 600\n\n---------- Forwarded message ---------\nFrom: x"
    r = ingest(eml("ana@cliente.test", f"Fwd: [{ticket.numero_ticket}] algo", cuerpo))
    com = db.session.get(Comunicacion, r.comunicacion.id)
    assert com.cuerpo == "Respuesta nueva" and "Tel 600" in com.original


def test_malformed_and_oversized_messages_are_stored_as_failed(app):
    r = ingest(b"\x00\x01garbage without headers")
    assert r.estado == "fallido" and r.comunicacion.error
    app.config["INBOUND_MAX_BYTES"] = 100
    r = ingest(eml("a@b.test", "grande", "x" * 500))
    com = db.session.get(Comunicacion, r.comunicacion.id)
    assert com.estado == "fallido" and "too large" in com.error
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_comunicaciones_page_shows_both_directions_within_scope(app, escena, smtp_server, deliver, login, make_user):
    ticket, engineer = escena["ticket"], escena["engineer"]
    tickets.agregar_mensaje(ticket, engineer, "¿Puedes probar otra vez?")
    db.session.commit()
    deliver()
    mid = smtp_server.to("ana@cliente.test")[-1]["Message-ID"]
    r = ingest(eml("ana@cliente.test", "Re: algo", "Ya va", cabeceras={"In-Reply-To": mid}))
    assert r.estado == "respuesta"
    c, _ = login(engineer)
    html = c.get(f"/comunicaciones?ticket={ticket.numero_ticket}").get_data(as_text=True)
    assert 'data-direccion="saliente"' in html and 'data-direccion="entrante"' in html and "Ya va" in html
    solo = c.get("/comunicaciones?direccion=entrante").get_data(as_text=True)
    assert 'data-direccion="saliente"' not in solo and "Ya va" in solo
    hilo = c.get(f"/comunicaciones?conversacion_id={r.comunicacion.conversacion_id}")
    assert hilo.status_code == 200 and "Ya va" in hilo.get_data(as_text=True)
    # the ticket page links to its communications
    assert "/comunicaciones?ticket=" in c.get(f"/tickets/{ticket.numero_ticket}").get_data(as_text=True)
    # another engineer sees none of it; a requester may not open the page; bad filters are a 4xx
    otro, _ = login(make_user("ingeniero"))
    assert "Ya va" not in otro.get("/comunicaciones").get_data(as_text=True)
    assert otro.get(f"/comunicaciones?conversacion_id={r.comunicacion.conversacion_id}").status_code == 404
    requester, _ = login(escena["requester"])
    assert requester.get("/comunicaciones").status_code == 403
    assert c.get("/comunicaciones?direccion=arriba").status_code in (400, 422)


def test_reply_to_a_closed_ticket_opens_a_new_one(app, make_user, make_ticket):
    requester = make_user("usuario", email="eva@cliente.test")
    engineer = make_user("ingeniero")
    cerrado = make_ticket(requester, engineer, estado="cerrado")
    r = ingest(eml("eva@cliente.test", f"Re: [{cerrado.numero_ticket}] Tu ticket fue CERRADO", "Ha vuelto a pasar"))
    assert r.estado == "creado" and r.ticket.id != cerrado.id
    nuevo = db.session.get(Ticket, r.ticket.id)
    assert nuevo.titulo == "Tu ticket fue CERRADO" and nuevo.usuario_id == requester.id
    assert db.session.get(Ticket, cerrado.id).estado == "cerrado"
