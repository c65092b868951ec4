"""The kinds of email a ticket's life sends, who gets each, and the signal receivers.

* One function per kind of email (``correo_*``). Each queues it in the outbox
  (``outbox.encolar``): the row commits (or rolls back) with the change that caused it; the
  request never talks to SMTP. The row holds the subject and what the body needs (``datos``:
  the template, the recipient, a snapshot of the ticket as it was then, the kind's values);
  the sender renders ``templates/email/<kind>.html`` and ``.txt`` under
  ``force_locale(<recipient>.idioma)`` (``renderizar``), so a request does not pay for Jinja.
* The receivers at the bottom connect those functions to the signals ``tickets.py`` sends.
* Delivery is the outbox's email channel (``envio_email.py``); the settings of
  Configuración > Email are ``ajustes_email.py``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from flask import Flask, current_app, g, render_template
from flask_babel import force_locale, gettext
from flask_mail import Mail, Message
from sqlalchemy import inspect, select

import generacion
import notificaciones
import outbox
import tickets
from ajustes_email import ajustes, contactos
from errors import N_
from models import (
    Envio,
    Mensaje,
    Ticket,
    Usuario,
    idioma_de,
    leer,
)
from paneles import VALOR_LABELS

log = logging.getLogger(__name__)
mail = Mail()

AVISO_HTML = "<!--aviso-adjunto-->"
AVISO_TEXTO = "[[aviso-adjunto]]"
SECRETOS = ("password",)

# Every text is an English msgid of the Flask-Babel catalogs, rendered under
# ``force_locale(<recipient>.idioma)``: an email is read by its recipient, not by whoever
# caused it. Subjects are marked with N_ here and translated in ``_a_cada``.

@dataclass(frozen=True)
class Destinatario:
    email: str
    nombre: str
    idioma: str = "es"
    usuario_id: Optional[int] = None  # an account (its email preferences apply), not a client or contact


def _de_usuario(usuario: Optional[Usuario]) -> Optional[Destinatario]:
    if usuario is None or not usuario.activo or not usuario.email:
        return None
    return Destinatario(usuario.email, usuario.nombre, idioma_de(usuario.idioma),
                        usuario.id)


def _solicitante(ticket: Ticket) -> Optional[Destinatario]:
    if ticket.usuario is not None:
        return _de_usuario(ticket.usuario)
    if ticket.cliente is not None and ticket.cliente.email:
        return Destinatario(ticket.cliente.email, ticket.cliente.nombre, "es")
    return None


def _ingeniero(ticket: Ticket) -> Optional[Destinatario]:
    return _de_usuario(ticket.ingeniero.usuario) if ticket.ingeniero is not None else None


def _admins() -> tuple[Destinatario, ...]:
    """The active admins as recipients; every creation asks (kept under ``generacion``)."""
    return generacion.memo("admins", lambda: tuple(
        Destinatario(email, nombre, idioma_de(lengua), usuario_id)
        for usuario_id, email, nombre, lengua in leer(_ADMINS) if email))


# The active admins as recipients (``_de_usuario``'s fields), built once: every creation asks.
_ADMINS = (select(Usuario.id, Usuario.email, Usuario.nombre, Usuario.idioma)
           .where(Usuario.rol == "admin", Usuario.activo.is_(True)).order_by(Usuario.id))


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

def url_externa(endpoint: str, **values) -> str:
    """``url_for(endpoint, _external=True)`` against APP_BASE_URL (not the request's host): an
    email is read outside this request, and the sender thread or CLI has no request at all."""
    base = urlsplit(current_app.config["APP_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path.rstrip("/") or "/",
                                       url_scheme=base.scheme or "http")
    return adapter.build(endpoint, values, force_external=True)


def enlace_ticket(ticket: Ticket) -> str:
    return url_externa("ticket_detalle", numero=ticket.numero_ticket)


def _asunto(ticket: Optional[Ticket], texto: str) -> str:
    asunto = f"[{ticket.numero_ticket}] {texto}" if ticket is not None else texto
    asunto = " ".join(asunto.split())  # no CR/LF: a title must not become a header
    return asunto if len(asunto) <= 200 else asunto[:199] + "…"


def _titulo_corto(ticket: Ticket) -> str:
    titulo = " ".join(ticket.titulo.split())
    return titulo if len(titulo) <= 90 else titulo[:89] + "…"


def _render(kind: str, d: Destinatario, ticket=None, **context) -> tuple[str, str]:
    context = {"lang": d.idioma, "destinatario": d, "ticket": ticket, "valores": VALOR_LABELS,
               "url": enlace_ticket(ticket) if ticket is not None else url_externa("index"),
               "AVISO_HTML": AVISO_HTML, "AVISO_TEXTO": AVISO_TEXTO, **context}
    with force_locale(d.idioma):
        return render_template(f"email/{kind}.html", **context), render_template(f"email/{kind}.txt", **context)


class _Foto:
    """A snapshot read by the email templates the way they read the models (``ticket.titulo``,
    ``ticket.categoria.nombre``, ``actor.nombre``): built from the JSON an outbox row keeps."""

    def __init__(self, valores: dict):
        for clave, valor in valores.items():
            if isinstance(valor, dict):
                valor = _Foto(valor)
            elif isinstance(valor, list):
                valor = [_Foto(v) if isinstance(v, dict) else v for v in valor]
            setattr(self, clave, valor)


def _foto_ticket(ticket: Ticket, etiquetas: bool = False) -> dict:
    """The ticket's values that the templates show, as they are now: an email says what happened
    when it was caused (the receipt of a ticket assigned a second later still says unassigned;
    a later edit of the title does not rewrite an email already queued)."""
    ingeniero = ticket.ingeniero
    foto = {"numero_ticket": ticket.numero_ticket, "titulo": ticket.titulo, "descripcion": ticket.descripcion,
            "estado": ticket.estado, "prioridad": ticket.prioridad,
            "categoria": {"nombre": ticket.categoria.nombre if ticket.categoria is not None else None},
            "solicitante_nombre": ticket.solicitante_nombre,
            "ingeniero": {"usuario": {"nombre": ingeniero.usuario.nombre}} if ingeniero is not None else None}
    if etiquetas:
        foto["etiquetas"] = [{"nombre": e.nombre} for e in ticket.etiquetas]
    return foto


def _foto_valor(valor):
    """A template value as JSON: a person or a message by the attributes the templates read."""
    if isinstance(valor, Usuario):
        return {"nombre": valor.nombre}
    if isinstance(valor, Mensaje):
        return {"cuerpo": valor.cuerpo, "autor_nombre": valor.autor_nombre}
    return valor


def encolar(kind: str, d: Destinatario, asunto: str, ticket: Ticket, *, para: Optional[list[str]] = None,
            tipo: Optional[str] = None, adjuntos: Optional[list[dict]] = None, etiquetas: bool = False,
            **context) -> Optional[Envio]:
    """Queue the email ``kind`` for ``d`` with what rendering it needs; the sender renders it
    (``renderizar``). ``context``: the template's values (people and messages kept by the
    attributes the templates read)."""
    para = para if para is not None else [d.email]
    if not para or g.get("correos_silenciados"):
        return None
    datos = {"plantilla": kind, "destinatario": {"email": d.email, "nombre": d.nombre, "idioma": d.idioma},
             "ticket": _foto_ticket(ticket, etiquetas),
             "contexto": {clave: _foto_valor(valor) for clave, valor in context.items()}}
    return outbox.encolar("email", tipo or kind, ", ".join(para), ticket=ticket, asunto=asunto, cuerpo_html=None,
                          cuerpo_texto="", adjuntos=adjuntos, datos=datos)


def renderizar(envio: Envio) -> None:
    """Render the bodies of an email queued by ``encolar`` onto its row (once: a retry
    sends what the first try rendered, and the admin's outbox page shows it)."""
    datos = envio.datos or {}
    if envio.cuerpo_html is not None or "plantilla" not in datos:
        return
    para = datos["destinatario"]
    d = Destinatario(para["email"], para["nombre"], idioma_de(para["idioma"]))
    contexto = {clave: _Foto(v) if isinstance(v, dict) else v for clave, v in datos["contexto"].items()}
    envio.cuerpo_html, envio.cuerpo_texto = _render(datos["plantilla"], d, _Foto(datos["ticket"]), **contexto)


def _asunto_en(idioma: str, ticket: Ticket, msgid: str, despues: str | None = None) -> str:
    """The subject ``msgid`` (marked with N_) in ``idioma``, with the ticket's values."""
    with force_locale(idioma):
        estado = str(VALOR_LABELS.get(despues or "", ""))
        return _asunto(ticket, gettext(msgid, numero=ticket.numero_ticket, titulo=_titulo_corto(ticket),
                                       estado=estado))


def _apagados(kind: str, destinatarios: list[Destinatario]) -> set[int]:
    """Of ``destinatarios``, the users who turned the emails of ``kind`` off (notificaciones)."""
    clave = notificaciones.CLAVE_DE_TIPO.get(kind)
    return notificaciones.no_quieren_email([d.usuario_id for d in destinatarios], clave) if clave else set()


def _a_cada(kind: str, destinatarios: list[Destinatario], ticket: Ticket, asunto_msgid: str,
            apagados: Optional[set[int]] = None, **context) -> list[Envio]:
    """One email per recipient who wants this kind (notificaciones.quiere_email), each in their
    own language. ``apagados``: ``_apagados`` of these recipients when already read."""
    out = []
    if apagados is None:
        apagados = _apagados(kind, destinatarios)
    for d in destinatarios:
        if d.usuario_id is not None and d.usuario_id in apagados:
            continue
        asunto = _asunto_en(d.idioma, ticket, asunto_msgid, context.get("despues"))
        correo = encolar(kind, d, asunto, ticket, **context)
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
    return _a_cada("ticket_recibido", _sin([_solicitante(ticket)], None), ticket, N_("Your ticket was received - #%(numero)s"))


def correo_nuevo_ticket(ticket: Ticket, actor: Optional[Usuario], lectura: Optional[Lectura] = None) -> list[Envio]:
    """"Nuevo ticket" to every admin (but the one who created it)."""
    lectura = lectura or leer_creacion(ticket, actor)
    return _a_cada("nuevo_ticket", lectura.admins, ticket, N_("New ticket: %(titulo)s"), apagados=lectura.apagados)


def correo_informe_contactos(ticket: Ticket, contactos: Optional[list[str]] = None) -> Optional[Envio]:
    """One email to the notification contacts with ``informe_ticket_{id}.pdf`` (built at send time)."""
    contactos = ajustes().contactos if contactos is None else contactos
    if not contactos:
        return None
    d = Destinatario(contactos[0], "", "es")
    asunto = _asunto_en(d.idioma, ticket, N_("New ticket: %(titulo)s (PDF report)"))
    adjunto = {"tipo": "informe_pdf", "ticket_id": ticket.id, "nombre": f"informe_ticket_{ticket.id}.pdf",
               "idioma": "es"}
    return encolar("informe_contactos", d, asunto, ticket, para=contactos, adjuntos=[adjunto], etiquetas=True)


def correo_ticket_asignado(ticket: Ticket, actor: Optional[Usuario], ingeniero) -> list[Envio]:
    """"Nuevo ticket asignado" to the engineer (unless they assigned it to themselves)."""
    return _a_cada("ticket_asignado", _sin([_de_usuario(ingeniero.usuario)], actor), ticket, N_("New ticket assigned: %(titulo)s"),
                   actor=actor)


def correo_estado_cambiado(ticket: Ticket, actor: Optional[Usuario], antes: str, despues: str) -> list[Envio]:
    """"Tu ticket cambió a …" to the requester. When the requester moved it (reopen, accept),
    the staff side hears instead: the assigned engineer, or the admins if nobody is."""
    solicitante = _solicitante(ticket)
    if actor is not None and tickets.is_requester(ticket, actor):
        staff = [_ingeniero(ticket)] if ticket.ingeniero is not None else _admins()
        return _a_cada("estado_cambiado", _sin(staff, actor), ticket, N_("The ticket changed to %(estado)s"), actor=actor,
                       antes=antes, despues=despues, para_staff=True)
    return _a_cada("estado_cambiado", _sin([solicitante], actor), ticket, N_("Your ticket changed to %(estado)s"), actor=actor,
                   antes=antes, despues=despues, para_staff=False)


def correo_ticket_cerrado(ticket: Ticket, actor: Optional[Usuario]) -> list[Envio]:
    """"Tu ticket fue CERRADO" to the requester (unless they closed it themselves), with the
    one-click rating links (CSAT, csat.py) while the ticket has no rating."""
    import csat

    valorar = None if csat.valoracion(ticket) else url_externa("valorar_enlace", firma=csat.token(ticket))
    return _a_cada("ticket_cerrado", _sin([_solicitante(ticket)], actor), ticket, N_("Your ticket was CLOSED"), actor=actor,
                   despues="cerrado", valorar=valorar)


def correo_mensaje_nuevo(ticket: Ticket, actor: Optional[Usuario], mensaje) -> list[Envio]:
    """A public message to the other side: staff wrote → requester; requester wrote → the
    assigned engineer, or the admins while the ticket is unassigned."""
    if mensaje.es_staff:
        return _a_cada("mensaje_nuevo", _sin([_solicitante(ticket)], actor), ticket, N_("New reply on your ticket"),
                       actor=actor, mensaje=mensaje, para_staff=False)
    staff = [_ingeniero(ticket)] if ticket.ingeniero is not None else _admins()
    return _a_cada("mensaje_nuevo", _sin(staff, actor), ticket, N_("New message from the requester"), actor=actor,
                   mensaje=mensaje, para_staff=True)


def correo_prioridad_critica(ticket: Ticket, actor: Optional[Usuario], nuevo: bool = False,
                             lectura: Optional[Lectura] = None) -> list[Envio]:
    """Critical priority (created so, or raised to it) → the admins and the assigned engineer.
    On creation this replaces the admins' "Nuevo ticket": one email that says both."""
    destinatarios = _sin([*(lectura.admins if lectura else _admins()), _ingeniero(ticket)], actor)
    apagados = lectura.apagados if lectura and ticket.ingeniero is None else None  # the engineer's: not read yet
    return _a_cada("prioridad_critica", destinatarios, ticket,
                   N_("New CRITICAL ticket: %(titulo)s") if nuevo else N_("CRITICAL ticket: %(titulo)s"),
                   apagados=apagados, actor=actor, nuevo=nuevo)


def correo_alerta_sla(ticket: Ticket, usuario: Usuario, tipo: str, texto: str) -> Optional[Envio]:
    """An SLA alert (alertas.py) to one engineer or admin; ``texto`` is already in their language."""
    d = _de_usuario(usuario)
    if d is None:
        return None
    return encolar("alerta_sla", d, _asunto(ticket, texto), ticket, tipo=f"sla_{tipo}", texto=texto)


def correo_prueba(destinatario: str, actor: Usuario) -> Message:
    """The "Enviar correo de prueba" message (sent at once, not queued: the admin waits for the result)."""
    d = Destinatario(destinatario, actor.nombre, idioma_de(actor.idioma))
    html, texto = _render("prueba", d, None, actor=actor)
    cfg = ajustes()
    with force_locale(d.idioma):
        asunto = gettext("Mesa de Ayuda test email")
    return Message(subject=asunto, recipients=[destinatario], body=texto, html=html,
                   sender=cfg.remitente, extra_headers={"Auto-Submitted": "auto-generated"})


# --- signal receivers --------------------------------------------------------------------------

@dataclass(frozen=True)
class Lectura:
    """What the creation's emails read of the database: the admins who hear of it (not the one
    who created it), those of them who turned that kind off, the notification contacts."""
    admins: list[Destinatario]
    apagados: set[int]
    contactos: list[str]


def leer_creacion(ticket: Ticket, actor: Optional[Usuario]) -> Lectura:
    admins = _sin(_admins(), actor)
    kind = "prioridad_critica" if ticket.prioridad == "critica" else "nuevo_ticket"
    return Lectura(admins, _apagados(kind, admins), contactos())


_LECTURA = "email_manager.lectura"  # the creation's reads, kept on the new ticket's instance state


def _on_por_crear(ticket, actor=None, **_):
    # Before the INSERT: on SQLite no other writer waits for these reads (after it, the rows
    # are only added). Like asignacion's decision, kept on the ticket for ``_on_creado``.
    if not g.get("correos_silenciados"):
        inspect(ticket).info[_LECTURA] = leer_creacion(ticket, actor)


def _on_creado(ticket, actor=None, **_):
    lectura = inspect(ticket).info.pop(_LECTURA, None)
    correo_ticket_recibido(ticket)
    if ticket.prioridad == "critica":
        correo_prioridad_critica(ticket, actor, nuevo=True, lectura=lectura)
    else:
        correo_nuevo_ticket(ticket, actor, lectura)
    correo_informe_contactos(ticket, lectura.contactos if lectura else None)


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
    tickets.ticket_por_crear.connect(_on_por_crear)
    tickets.ticket_creado.connect(_on_creado)
    tickets.ticket_asignado.connect(_on_asignado)
    tickets.estado_cambiado.connect(_on_estado)
    tickets.mensaje_publicado.connect(_on_mensaje)
    tickets.prioridad_cambiada.connect(_on_prioridad)


def init_app(app: Flask) -> None:
    """The signal receivers: every kind of email follows the ticket's lifecycle."""
    conectar_senales()
