"""Email at every step of a ticket's life, through a persistent outbox.

* One function per kind of email (``correo_*``). Each renders ``templates/email/<kind>.html``
  and ``.txt`` in the recipient's language and writes a ``Envio`` row to the
  session: the row commits (or rolls back) with the change that caused it. The request
  never talks to SMTP, so SMTP being down never fails nor slows it.
* The receivers at the bottom connect those functions to the signals ``tickets.py`` sends.
* ``enviar_pendientes`` delivers: it claims rows with one conditional UPDATE (plus
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so any number of senders may run at once and
  each email leaves once. Failures retry with exponential backoff; after the last try the
  email is ``fallido`` and waits for an admin's "reintentar". The PDF report is generated
  here, at send time; if that fails the email still goes, saying so.
* Senders: a background thread under ``make run`` (OUTBOX_THREAD=1) and
  ``flask send-emails [--loop]`` for production.
* Configuración > Email: the ``ConfiguracionEmail`` row overrides .env (MAIL_*,
  TICKETS_NOTIFY_EMAIL); every change is audited in ``CambioConfiguracion``.
"""

from __future__ import annotations

import logging
import smtplib
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from typing import Annotated, Optional

import email_validator
from flask import Flask, current_app, g, render_template
from flask_mail import Attachment, Connection, Mail, Message
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator, model_validator
from sqlalchemy import select

import outbox
import tickets
from errors import DomainError, ValidationFailed
from informe_pdf import VALORES
from models import (
    CambioConfiguracion,
    ConfiguracionEmail,
    Envio,
    Ticket,
    Usuario,
    db,
    utcnow,
)

log = logging.getLogger(__name__)
mail = Mail()

AVISO_HTML = "<!--aviso-adjunto-->"
AVISO_TEXTO = "[[aviso-adjunto]]"
SECRETOS = ("password",)

# --- strings (es/en) ----------------------------------------------------------------------
# The panels translate with Flask-Babel by the *viewer's* locale; an email is read by its
# *recipient*, rendered in whatever request caused it, so it carries its own small table.

STRINGS: dict[str, dict[str, str]] = {
    "es": {
        "hola": "Hola {nombre},", "ver_ticket": "Ver el ticket", "pie": "Mesa de Ayuda · mensaje automático del sistema de tickets.",
        "ticket": "Ticket", "titulo": "Título", "categoria": "Categoría", "prioridad": "Prioridad", "estado": "Estado",
        "solicitante": "Solicitante", "ingeniero": "Ingeniero", "sin_asignar": "Sin asignar", "descripcion": "Descripción",
        "etiquetas": "Etiquetas", "mensaje": "Mensaje", "canal": "Canal",
        "asunto_recibido": "Tu ticket fue recibido - #{numero}",
        "recibido_intro": "Recibimos tu ticket. Te avisaremos por correo de cada novedad.",
        "asunto_nuevo": "Nuevo ticket: {titulo}",
        "nuevo_intro": "{solicitante} creó un ticket nuevo.",
        "asunto_informe": "Nuevo ticket: {titulo} (informe PDF)",
        "informe_intro": "Se creó un ticket nuevo. El informe completo va adjunto en PDF.",
        "aviso_pdf": "No se pudo adjuntar el informe PDF de este ticket; puedes verlo en la aplicación.",
        "asunto_asignado": "Nuevo ticket asignado: {titulo}",
        "asignado_intro": "{actor} te asignó este ticket.",
        "asunto_estado": "Tu ticket cambió a {estado}",
        "asunto_estado_staff": "El ticket cambió a {estado}",
        "estado_intro": "{actor} cambió el estado de tu ticket.",
        "estado_intro_staff": "{actor} (solicitante) cambió el estado del ticket.",
        "asunto_cerrado": "Tu ticket fue CERRADO",
        "cerrado_intro": "Tu ticket se cerró. Si el problema vuelve, puedes reabrirlo desde la aplicación.",
        "asunto_mensaje": "Nueva respuesta en tu ticket",
        "asunto_mensaje_staff": "Nuevo mensaje del solicitante",
        "mensaje_intro": "{actor} escribió en el ticket:",
        "asunto_critico": "Ticket CRÍTICO: {titulo}",
        "asunto_critico_nuevo": "Nuevo ticket CRÍTICO: {titulo}",
        "critico_intro": "Este ticket tiene prioridad crítica y necesita atención inmediata.",
        "critico_intro_subida": "{actor} subió la prioridad de este ticket a crítica.",
        "asunto_prueba": "Correo de prueba de Mesa de Ayuda",
        "prueba_intro": "Si lees esto, la configuración de correo funciona.",
        "prueba_enviado_por": "Enviado por {actor} desde Configuración > Email.",
    },
    "en": {
        "hola": "Hello {nombre},", "ver_ticket": "View the ticket", "pie": "Mesa de Ayuda · automatic message from the ticket system.",
        "ticket": "Ticket", "titulo": "Title", "categoria": "Category", "prioridad": "Priority", "estado": "Status",
        "solicitante": "Requester", "ingeniero": "Engineer", "sin_asignar": "Unassigned", "descripcion": "Description",
        "etiquetas": "Tags", "mensaje": "Message", "canal": "Channel",
        "asunto_recibido": "Your ticket was received - #{numero}",
        "recibido_intro": "We received your ticket. We will email you about every change.",
        "asunto_nuevo": "New ticket: {titulo}",
        "nuevo_intro": "{solicitante} created a new ticket.",
        "asunto_informe": "New ticket: {titulo} (PDF report)",
        "informe_intro": "A new ticket was created. The full report is attached as a PDF.",
        "aviso_pdf": "The PDF report of this ticket could not be attached; you can see it in the application.",
        "asunto_asignado": "New ticket assigned: {titulo}",
        "asignado_intro": "{actor} assigned this ticket to you.",
        "asunto_estado": "Your ticket changed to {estado}",
        "asunto_estado_staff": "The ticket changed to {estado}",
        "estado_intro": "{actor} changed the status of your ticket.",
        "estado_intro_staff": "{actor} (requester) changed the status of the ticket.",
        "asunto_cerrado": "Your ticket was CLOSED",
        "cerrado_intro": "Your ticket was closed. If the problem comes back you can reopen it in the application.",
        "asunto_mensaje": "New reply on your ticket",
        "asunto_mensaje_staff": "New message from the requester",
        "mensaje_intro": "{actor} wrote on the ticket:",
        "asunto_critico": "CRITICAL ticket: {titulo}",
        "asunto_critico_nuevo": "New CRITICAL ticket: {titulo}",
        "critico_intro": "This ticket has critical priority and needs attention now.",
        "critico_intro_subida": "{actor} raised this ticket's priority to critical.",
        "asunto_prueba": "Mesa de Ayuda test email",
        "prueba_intro": "If you can read this, the email settings work.",
        "prueba_enviado_por": "Sent by {actor} from Configuración > Email.",
    },
}


@dataclass(frozen=True)
class Destinatario:
    email: str
    nombre: str
    idioma: str = "es"


def _de_usuario(usuario: Optional[Usuario]) -> Optional[Destinatario]:
    if usuario is None or not usuario.activo or not usuario.email:
        return None
    return Destinatario(usuario.email, usuario.nombre, usuario.idioma if usuario.idioma in STRINGS else "es")


def _solicitante(ticket: Ticket) -> Optional[Destinatario]:
    if ticket.usuario is not None:
        return _de_usuario(ticket.usuario)
    if ticket.cliente is not None and ticket.cliente.email:
        return Destinatario(ticket.cliente.email, ticket.cliente.nombre, "es")
    return None


def _ingeniero(ticket: Ticket) -> Optional[Destinatario]:
    return _de_usuario(ticket.ingeniero.usuario) if ticket.ingeniero is not None else None


def _admins() -> list[Destinatario]:
    rows = db.session.execute(select(Usuario).where(Usuario.rol == "admin", Usuario.activo.is_(True))
                              .order_by(Usuario.id)).scalars()
    return [d for d in map(_de_usuario, rows) if d is not None]


def _sin(destinatarios, actor: Optional[Usuario]) -> list[Destinatario]:
    """Recipients minus the one who acted (nobody gets mail about their own action), once each."""
    actor_email = actor.email.lower() if actor is not None and actor.email else None
    vistos, out = set(), []
    for d in destinatarios:
        if d is None or d.email.lower() == actor_email or d.email.lower() in vistos:
            continue
        vistos.add(d.email.lower())
        out.append(d)
    return out


# --- rendering and enqueueing --------------------------------------------------------------

def enlace_ticket(ticket: Ticket) -> str:
    return f"{current_app.config['APP_BASE_URL'].rstrip('/')}/tickets/{ticket.numero_ticket}"


def _asunto(ticket: Optional[Ticket], texto: str) -> str:
    asunto = f"[{ticket.numero_ticket}] {texto}" if ticket is not None else texto
    asunto = " ".join(asunto.split())  # no CR/LF: a title must not become a header
    return asunto if len(asunto) <= 200 else asunto[:199] + "…"


def _titulo_corto(ticket: Ticket) -> str:
    titulo = " ".join(ticket.titulo.split())
    return titulo if len(titulo) <= 90 else titulo[:89] + "…"


def _render(kind: str, d: Destinatario, ticket: Optional[Ticket] = None, **context) -> tuple[str, str]:
    t = STRINGS[d.idioma]
    context = {"t": t, "lang": d.idioma, "destinatario": d, "ticket": ticket, "valores": VALORES[d.idioma],
               "url": enlace_ticket(ticket) if ticket is not None else current_app.config["APP_BASE_URL"],
               "AVISO_HTML": AVISO_HTML, "AVISO_TEXTO": AVISO_TEXTO, **context}
    return render_template(f"email/{kind}.html", **context), render_template(f"email/{kind}.txt", **context)


def encolar(tipo: str, para: list[str], asunto: str, html: str, texto: str, *, ticket: Optional[Ticket] = None,
            adjuntos: Optional[list[dict]] = None) -> Optional[Envio]:
    """Add one email to the outbox, in the caller's transaction (nothing is sent here)."""
    if not para or g.get("correos_silenciados"):
        return None
    return outbox.encolar("email", tipo, ", ".join(para), ticket=ticket, asunto=asunto, cuerpo_html=html,
                          cuerpo_texto=texto, adjuntos=adjuntos)


def _a_cada(kind: str, destinatarios: list[Destinatario], ticket: Ticket, asunto_clave: str,
            **context) -> list[Envio]:
    """One email per recipient, each in their own language."""
    out = []
    for d in destinatarios:
        t = STRINGS[d.idioma]
        estado = VALORES[d.idioma].get(context.get("despues") or "", "")
        asunto = _asunto(ticket, t[asunto_clave].format(numero=ticket.numero_ticket, titulo=_titulo_corto(ticket),
                                                        estado=estado))
        html, texto = _render(kind, d, ticket, **context)
        correo = encolar(kind, [d.email], asunto, html, texto, ticket=ticket)
        if correo is not None:
            out.append(correo)
    return out


@contextmanager
def sin_correos():
    """Within this block nothing is queued (demo seeding, bulk imports)."""
    previo = g.get("correos_silenciados", False)
    g.correos_silenciados = True
    try:
        yield
    finally:
        g.correos_silenciados = previo


# --- one function per kind -------------------------------------------------------------------

def correo_ticket_recibido(ticket: Ticket) -> list[Envio]:
    """Receipt to the requester: "Tu ticket fue recibido - #TKT-…" (even though they acted)."""
    return _a_cada("ticket_recibido", _sin([_solicitante(ticket)], None), ticket, "asunto_recibido")


def correo_nuevo_ticket(ticket: Ticket, actor: Optional[Usuario]) -> list[Envio]:
    """"Nuevo ticket" to every admin (but the one who created it)."""
    return _a_cada("nuevo_ticket", _sin(_admins(), actor), ticket, "asunto_nuevo")


def correo_informe_contactos(ticket: Ticket) -> Optional[Envio]:
    """One email to the notification contacts with ``informe_ticket_{id}.pdf`` (built at send time)."""
    contactos = ajustes().contactos
    if not contactos:
        return None
    d = Destinatario(contactos[0], "", "es")
    html, texto = _render("informe_contactos", d, ticket)
    asunto = _asunto(ticket, STRINGS["es"]["asunto_informe"].format(titulo=_titulo_corto(ticket)))
    adjunto = {"tipo": "informe_pdf", "ticket_id": ticket.id, "nombre": f"informe_ticket_{ticket.id}.pdf",
               "idioma": "es"}
    return encolar("informe_contactos", contactos, asunto, html, texto, ticket=ticket, adjuntos=[adjunto])


def correo_ticket_asignado(ticket: Ticket, actor: Optional[Usuario], ingeniero) -> list[Envio]:
    """"Nuevo ticket asignado" to the engineer (unless they assigned it to themselves)."""
    return _a_cada("ticket_asignado", _sin([_de_usuario(ingeniero.usuario)], actor), ticket, "asunto_asignado",
                   actor=actor)


def correo_estado_cambiado(ticket: Ticket, actor: Optional[Usuario], antes: str, despues: str) -> list[Envio]:
    """"Tu ticket cambió a …" to the requester. When the requester moved it (reopen, accept),
    the staff side hears instead: the assigned engineer, or the admins if nobody is."""
    solicitante = _solicitante(ticket)
    if actor is not None and tickets.is_requester(ticket, actor):
        staff = [_ingeniero(ticket)] if ticket.ingeniero is not None else _admins()
        return _a_cada("estado_cambiado", _sin(staff, actor), ticket, "asunto_estado_staff", actor=actor,
                       antes=antes, despues=despues, para_staff=True)
    return _a_cada("estado_cambiado", _sin([solicitante], actor), ticket, "asunto_estado", actor=actor,
                   antes=antes, despues=despues, para_staff=False)


def correo_ticket_cerrado(ticket: Ticket, actor: Optional[Usuario]) -> list[Envio]:
    """"Tu ticket fue CERRADO" to the requester (unless they closed it themselves)."""
    return _a_cada("ticket_cerrado", _sin([_solicitante(ticket)], actor), ticket, "asunto_cerrado", actor=actor,
                   despues="cerrado")


def correo_mensaje_nuevo(ticket: Ticket, actor: Optional[Usuario], mensaje) -> list[Envio]:
    """A public message to the other side: staff wrote → requester; requester wrote → the
    assigned engineer, or the admins while the ticket is unassigned."""
    if mensaje.es_staff:
        return _a_cada("mensaje_nuevo", _sin([_solicitante(ticket)], actor), ticket, "asunto_mensaje",
                       actor=actor, mensaje=mensaje, para_staff=False)
    staff = [_ingeniero(ticket)] if ticket.ingeniero is not None else _admins()
    return _a_cada("mensaje_nuevo", _sin(staff, actor), ticket, "asunto_mensaje_staff", actor=actor,
                   mensaje=mensaje, para_staff=True)


def correo_prioridad_critica(ticket: Ticket, actor: Optional[Usuario], nuevo: bool = False) -> list[Envio]:
    """Critical priority (created so, or raised to it) → the admins and the assigned engineer.
    On creation this replaces the admins' "Nuevo ticket": one email that says both."""
    return _a_cada("prioridad_critica", _sin([*_admins(), _ingeniero(ticket)], actor), ticket,
                   "asunto_critico_nuevo" if nuevo else "asunto_critico", actor=actor, nuevo=nuevo)


def correo_prueba(destinatario: str, actor: Usuario) -> Message:
    """The "Enviar correo de prueba" message (sent at once, not queued: the admin waits for the result)."""
    d = Destinatario(destinatario, actor.nombre, actor.idioma if actor.idioma in STRINGS else "es")
    html, texto = _render("prueba", d, None, actor=actor)
    cfg = ajustes()
    return Message(subject=STRINGS[d.idioma]["asunto_prueba"], recipients=[destinatario], body=texto, html=html,
                   sender=cfg.remitente, extra_headers={"Auto-Submitted": "auto-generated"})


# --- signal receivers --------------------------------------------------------------------------

def _on_creado(ticket, actor=None, **_):
    correo_ticket_recibido(ticket)
    if ticket.prioridad == "critica":
        correo_prioridad_critica(ticket, actor, nuevo=True)
    else:
        correo_nuevo_ticket(ticket, actor)
    correo_informe_contactos(ticket)


def _on_asignado(ticket, actor=None, ingeniero=None, **_):
    if ingeniero is not None:
        correo_ticket_asignado(ticket, actor, ingeniero)


def _on_estado(ticket, actor=None, antes=None, despues=None, **_):
    if despues == "cerrado" and not (actor is not None and tickets.is_requester(ticket, actor)):
        correo_ticket_cerrado(ticket, actor)
    else:
        correo_estado_cambiado(ticket, actor, antes, despues)


def _on_mensaje(ticket, actor=None, mensaje=None, **_):
    if mensaje is not None:
        correo_mensaje_nuevo(ticket, actor, mensaje)


def _on_prioridad(ticket, actor=None, antes=None, despues=None, **_):
    if despues == "critica" and antes != "critica":
        correo_prioridad_critica(ticket, actor)


def conectar_senales() -> None:
    """Idempotent: blinker keeps one connection per receiver."""
    tickets.ticket_creado.connect(_on_creado)
    tickets.ticket_asignado.connect(_on_asignado)
    tickets.estado_cambiado.connect(_on_estado)
    tickets.mensaje_publicado.connect(_on_mensaje)
    tickets.prioridad_cambiada.connect(_on_prioridad)


# --- Configuración > Email ---------------------------------------------------------------------

@dataclass(frozen=True)
class Ajustes:
    servidor: str
    puerto: int
    usuario: Optional[str]
    password: Optional[str]
    usar_tls: bool
    usar_ssl: bool
    remitente_nombre: str
    remitente_email: str
    contactos: list[str]

    @property
    def remitente(self) -> str:
        return formataddr((self.remitente_nombre, self.remitente_email)) if self.remitente_nombre else self.remitente_email


CAMPOS = ("servidor", "puerto", "usuario", "password", "usar_tls", "usar_ssl", "remitente_nombre",
          "remitente_email", "contactos_notificacion")


def _fila() -> Optional[ConfiguracionEmail]:
    return db.session.get(ConfiguracionEmail, 1)


def _desde_env() -> dict:
    c = current_app.config
    nombre, direccion = parseaddr(c.get("MAIL_DEFAULT_SENDER") or "")
    return {"servidor": c.get("MAIL_SERVER") or "localhost", "puerto": int(c.get("MAIL_PORT") or 25),
            "usuario": c.get("MAIL_USERNAME") or None, "password": c.get("MAIL_PASSWORD") or None,
            "usar_tls": bool(c.get("MAIL_USE_TLS")), "usar_ssl": bool(c.get("MAIL_USE_SSL")),
            "remitente_nombre": nombre or "Mesa de Ayuda", "remitente_email": direccion or "soporte@localhost",
            "contactos_notificacion": c.get("TICKETS_NOTIFY_EMAIL") or ""}


def _valores() -> tuple[dict, dict]:
    """Effective values and where each comes from ("bd" or "env")."""
    valores, origen = _desde_env(), {}
    fila = _fila()
    for campo in CAMPOS:
        guardado = getattr(fila, campo) if fila is not None else None
        if guardado is not None:
            valores[campo] = guardado
        origen[campo] = "bd" if guardado is not None else "env"
    return valores, origen


def separar_contactos(texto: Optional[str]) -> list[str]:
    partes = (texto or "").replace(";", ",").replace("\n", ",").split(",")
    return [p.strip() for p in partes if p.strip()]


def ajustes() -> Ajustes:
    v, _ = _valores()
    return Ajustes(v["servidor"], int(v["puerto"]), v["usuario"] or None, v["password"] or None, bool(v["usar_tls"]),
                   bool(v["usar_ssl"]), v["remitente_nombre"] or "", v["remitente_email"],
                   separar_contactos(v["contactos_notificacion"]))


Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.\-\[\]:]+$")]


class ConfiguracionEmailUpdate(BaseModel):
    """PUT /api/configuracion/email. A field left out stays as it is; ``null`` goes back to the
    .env value. ``password`` is write-only: "" keeps the stored one, ``null`` removes it."""

    model_config = ConfigDict(extra="forbid")

    servidor: Optional[Host] = None
    puerto: Optional[int] = Field(default=None, ge=1, le=65535)
    usuario: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]] = None
    password: Optional[Annotated[str, StringConstraints(max_length=255)]] = None
    usar_tls: Optional[bool] = None
    usar_ssl: Optional[bool] = None
    remitente_nombre: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)]] = None
    remitente_email: Optional[EmailStr] = None
    contactos_notificacion: Optional[Annotated[str, StringConstraints(max_length=4000)]] = None

    @field_validator("contactos_notificacion")
    @classmethod
    def _contactos(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        validos, malos = [], []
        for direccion in separar_contactos(value):
            try:
                validos.append(email_validator.validate_email(direccion, check_deliverability=False).normalized)
            except email_validator.EmailNotValidError:
                malos.append(direccion)
        if malos:
            raise ValueError(f"Not valid email addresses: {', '.join(malos)}")
        return ", ".join(dict.fromkeys(validos))

    @model_validator(mode="after")
    def _tls_o_ssl(self):
        if self.usar_tls and self.usar_ssl:
            raise ValueError("Choose STARTTLS or SSL, not both.")
        return self


class CorreoPrueba(BaseModel):
    """POST /api/configuracion/email/prueba: where to send it (default: the admin's own address)."""

    model_config = ConfigDict(extra="forbid")
    destinatario: Optional[EmailStr] = None


def datos_de_formulario(form) -> dict:
    """The settings form as a ConfiguracionEmailUpdate body. Saving the form stores every
    field (so the page's values win over .env); an empty password box keeps the password."""
    datos = {c: form.get(c, "") for c in ("usuario", "remitente_nombre", "contactos_notificacion")}
    for campo in ("servidor", "puerto", "remitente_email"):
        if (form.get(campo) or "").strip():
            datos[campo] = form.get(campo).strip()
    seguridad = form.get("seguridad", "ninguna")
    datos["usar_tls"], datos["usar_ssl"] = seguridad == "tls", seguridad == "ssl"
    if form.get("borrar_password"):
        datos["password"] = None
    elif form.get("password"):
        datos["password"] = form.get("password")
    return datos


def configuracion_dict() -> dict:
    """What the settings page and GET show: effective values, never the password."""
    valores, origen = _valores()
    fila = _fila()
    out = {c: valores[c] for c in CAMPOS if c not in SECRETOS}
    out["password_configurada"] = bool(valores["password"])
    out["origen"] = {c: o for c, o in origen.items()}
    out["actualizado"] = fila.fecha_actualizacion.isoformat() if fila is not None and fila.fecha_actualizacion else None
    return out


def actualizar_configuracion(data: ConfiguracionEmailUpdate, actor: Usuario) -> list[str]:
    """Store the given fields (they now override .env) and audit which changed. Flushes."""
    efectivos, _ = _valores()
    fila = _fila()
    if fila is None:
        fila = ConfiguracionEmail(id=1)
        db.session.add(fila)
    dados = data.model_dump(include=data.model_fields_set)
    if dados.get("password") == "":
        dados.pop("password")  # an empty password box means "keep it"
    if dados.get("usar_tls"):  # choosing one of STARTTLS / SSL turns the other off
        dados.setdefault("usar_ssl", False)
    if dados.get("usar_ssl"):
        dados.setdefault("usar_tls", False)
    campos, detalle = [], {}
    for campo, nuevo in dados.items():
        if getattr(fila, campo) == nuevo:
            continue
        setattr(fila, campo, nuevo)
        campos.append(campo)
        detalle[campo] = {"cambiado": True} if campo in SECRETOS else {"antes": efectivos[campo], "despues": nuevo}
    final = ajustes_de(fila)
    if final["usar_tls"] and final["usar_ssl"]:
        raise ValidationFailed("Choose STARTTLS or SSL, not both.", fields={"usar_ssl": "Choose STARTTLS or SSL, not both."})
    if campos:
        fila.fecha_actualizacion = utcnow()
        fila.actualizado_por_id = actor.id
        db.session.add(CambioConfiguracion(seccion="email", usuario_id=actor.id, campos=campos, detalle=detalle,
                                           fecha=utcnow()))
    db.session.flush()
    return campos


def ajustes_de(fila: ConfiguracionEmail) -> dict:
    env = _desde_env()
    return {c: getattr(fila, c) if getattr(fila, c) is not None else env[c] for c in CAMPOS}


def auditoria(limite: int = 20) -> list[CambioConfiguracion]:
    return list(db.session.execute(
        select(CambioConfiguracion).where(CambioConfiguracion.seccion == "email")
        .order_by(CambioConfiguracion.id.desc()).limit(limite)).scalars())


def cambio_dict(c: CambioConfiguracion) -> dict:
    return {"id": c.id, "fecha": c.fecha.isoformat(), "usuario": c.usuario.username if c.usuario else None,
            "campos": c.campos}


# --- sending -------------------------------------------------------------------------------------

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
        idioma = spec.get("idioma", "es") if spec.get("idioma") in STRINGS else "es"
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
            avisos.append(STRINGS[idioma]["aviso_pdf"])
    return adjuntos, avisos


def construir_mensaje(correo: Envio, cfg: Ajustes) -> Message:
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
    from models import Comunicacion

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
        raise DomainError(f"The test email could not be sent: {type(exc).__name__}: {exc}", status=502,
                          code="smtp_error") from exc
    return destino


def correo_dict(c: Envio) -> dict:
    return {"id": c.id, "tipo": c.tipo, "ticket_id": c.ticket_id, "destinatarios": separar_contactos(c.destinatarios),
            "asunto": c.asunto, "estado": c.estado, "intentos": c.intentos,
            "proximo_intento": c.proximo_intento.isoformat() if c.proximo_intento else None,
            "ultimo_error": c.ultimo_error, "adjuntos": [a.get("nombre") for a in c.adjuntos or []],
            "fecha_creacion": c.fecha_creacion.isoformat(),
            "fecha_envio": c.fecha_envio.isoformat() if c.fecha_envio else None}


def init_app(app: Flask) -> None:
    """Flask-Mail, the signal receivers and the email channel of the outbox."""
    mail.init_app(app)
    conectar_senales()
    outbox.registrar_canal("email", AdaptadorSMTP)
