"""The outbox's email channel: SMTP delivery with the effective settings (one connection
per batch, a timeout), the PDF attachment built at send time (if that fails the email still
goes, saying so), and the settings page's "send a test email".
"""

from __future__ import annotations

import logging
import smtplib
from email.utils import parseaddr
from typing import Optional

from flask import Flask, current_app
from flask_babel import force_locale, gettext
from flask_mail import Attachment, Connection, Mail, Message
from sqlalchemy import select

import outbox
from ajustes_email import Ajustes, ajustes, separar_contactos
from email_manager import AVISO_HTML, AVISO_TEXTO, correo_prueba, renderizar
from errors import DomainError
from models import Comunicacion, Envio, Ticket, Usuario, db, idioma_de, utcnow

log = logging.getLogger(__name__)
mail = Mail()


class _Conexion(Connection):
    """Flask-Mail's connection with the effective settings and a timeout (a silent server must
    not hold a sender forever)."""

    def __init__(self, cfg: Ajustes, timeout: float):
        super().__init__(mail.init_mail({"MAIL_SUPPRESS_SEND": False}))
        self.cfg = cfg
        self.timeout = timeout

    def configure_host(self):
        cfg = self.cfg
        if cfg.usar_ssl:
            host = smtplib.SMTP_SSL(cfg.servidor, cfg.puerto, timeout=self.timeout)
        else:
            host = smtplib.SMTP(cfg.servidor, cfg.puerto, timeout=self.timeout)
        if cfg.usar_tls:
            host.starttls()
        if cfg.usuario and cfg.password:
            host.login(cfg.usuario, cfg.password)
        return host


def _adjuntar(correo: Envio) -> tuple[list[Attachment], list[str]]:
    """Build the attachments; return them and the notices for the ones that failed."""
    from informe_pdf import generar_informe_pdf

    adjuntos, avisos = [], []
    for spec in correo.adjuntos or []:
        idioma = idioma_de(spec.get("idioma"))
        try:
            if spec.get("tipo") != "informe_pdf":
                raise ValueError(f"unknown attachment {spec.get('tipo')!r}")
            ticket = db.session.get(Ticket, spec.get("ticket_id"))
            if ticket is None:
                raise LookupError(f"ticket {spec.get('ticket_id')} no longer exists")
            datos = generar_informe_pdf(ticket, incluir_notas=False, idioma=idioma)
            adjuntos.append(Attachment(filename=spec["nombre"], content_type="application/pdf", data=datos))
        except Exception:
            log.exception("Attachment %s of email %s could not be built; sending without it", spec, correo.id)
            with force_locale(idioma):
                avisos.append(gettext("The PDF report of this ticket could not be attached; you can see it in "
                                      "the application."))
    return adjuntos, avisos


def construir_mensaje(correo: Envio, cfg: Ajustes) -> Message:
    renderizar(correo)
    adjuntos, avisos = _adjuntar(correo)
    aviso_texto = "\n".join(avisos) + "\n\n" if avisos else ""
    aviso_html = "".join(
        f'<p style="margin:0 0 16px;padding:12px;border-radius:6px;background:#fff3cd;color:#664d03;">{a}</p>'
        for a in avisos)
    headers = {"Auto-Submitted": "auto-generated", "X-Mesa-Correo-Id": str(correo.id)}
    dominio = (parseaddr(cfg.remitente_email)[1].rpartition("@")[2] or "mesa-de-ayuda").strip() or "mesa-de-ayuda"
    if correo.ticket_id is not None and correo.ticket is not None:
        # Threads every email of one ticket together in the reader's client.
        headers["References"] = f"<{correo.ticket.numero_ticket}@{dominio}>"
    mensaje = Message(subject=correo.asunto, recipients=separar_contactos(correo.destinatarios),
                      body=correo.cuerpo_texto.replace(AVISO_TEXTO, aviso_texto, 1),
                      html=correo.cuerpo_html.replace(AVISO_HTML, aviso_html, 1),
                      sender=cfg.remitente, attachments=adjuntos, extra_headers=headers)
    mensaje.msgId = message_id(correo, dominio)  # replies name it in In-Reply-To (correo_entrante)
    return mensaje


def message_id(correo: Envio, dominio: str) -> str:
    """This outbox row's own Message-ID (the same on every retry): ``<envio-{id}.{numero}@{domain}>``."""
    numero = correo.ticket.numero_ticket if correo.ticket is not None else "mesa"
    return f"<envio-{correo.id}.{numero}@{dominio}>"


def registrar_comunicacion(correo: Envio, mensaje: Message, cfg: Ajustes) -> None:
    """A sent ticket email as an outbound ``Comunicacion`` (the Comunicaciones page shows both ways)."""
    if correo.ticket_id is None:
        return
    existe = db.session.execute(select(Comunicacion.id).where(Comunicacion.canal == "email",
                                                              Comunicacion.id_externo == mensaje.msgId)).first()
    if existe is None:
        db.session.add(Comunicacion(
            canal="email", direccion="saliente", id_externo=mensaje.msgId, de=cfg.remitente_email,
            para=correo.destinatarios, asunto=correo.asunto, tipo="text", cuerpo=mensaje.body or "",
            estado="enviado", ticket_id=correo.ticket_id, envio_id=correo.id,
            cliente_id=correo.ticket.cliente_id if correo.ticket is not None else None, fecha=utcnow()))


class AdaptadorSMTP:
    """The outbox's email channel: one SMTP connection per batch, opened on the first email."""

    def __init__(self):
        self.cfg = ajustes()
        self.timeout = float(current_app.config["MAIL_TIMEOUT"])
        self.conexion = None

    def enviar(self, envio: Envio) -> Optional[str]:
        mensaje = construir_mensaje(envio, self.cfg)
        if self.conexion is None:
            self.conexion = _Conexion(self.cfg, self.timeout).__enter__()
        self.conexion.send(mensaje)
        registrar_comunicacion(envio, mensaje, self.cfg)
        return mensaje.msgId

    def cerrar(self) -> None:
        if self.conexion is not None:
            self.conexion.host.quit()


def enviar_prueba(destinatario: Optional[str], actor: Usuario) -> str:
    """Send the test email now with the effective settings; a failure is a 502 with SMTP's words."""
    destino = destinatario or actor.email
    cfg = ajustes()
    try:
        with _Conexion(cfg, min(float(current_app.config["MAIL_TIMEOUT"]), 15.0)) as conexion:
            conexion.send(correo_prueba(destino, actor))
    except (OSError, smtplib.SMTPException) as exc:
        raise DomainError("The test email could not be sent: %(error)s", status=502, code="smtp_error",
                          error=f"{type(exc).__name__}: {exc}") from exc
    return destino



def init_app(app: Flask) -> None:
    """Flask-Mail and the email channel of the outbox."""
    mail.init_app(app)
    outbox.registrar_canal("email", AdaptadorSMTP)
