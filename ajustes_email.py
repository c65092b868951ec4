"""Configuración > Email: the ``ConfiguracionEmail`` row overrides .env (MAIL_*,
TICKETS_NOTIFY_EMAIL, and for email in IMAP_*, INBOUND_UNKNOWN_SENDER, INBOUND_MAX_BYTES, read
in config.py); every change is audited in ``CambioConfiguracion``. The request bodies, the
settings form's adapter and what the page shows live here. Both passwords (SMTP and IMAP) are
write-only and encrypted at rest (``models.EncryptedText``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from typing import Annotated, Literal, Optional

import email_validator
from flask import current_app
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator, model_validator
from sqlalchemy import select

import generacion
from errors import N_, ErrorCampo, ValidationFailed
from models import CambioConfiguracion, ConfiguracionEmail, Usuario, db, leer, utcnow

SECRETOS = ("password", "imap_password")
MB = 1024 * 1024


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


@dataclass(frozen=True)
class AjustesEntrada:
    """Email in: the IMAP mailbox ``flask fetch-email`` polls, unknown senders, the size limit."""

    servidor: str  # empty: no mailbox to poll
    puerto: int
    ssl: bool
    usuario: Optional[str]
    password: Optional[str]
    carpeta: str
    desconocidos: str  # crear | ignorar
    max_bytes: int


CAMPOS = ("servidor", "puerto", "usuario", "password", "usar_tls", "usar_ssl", "remitente_nombre",
          "remitente_email", "contactos_notificacion",
          "imap_servidor", "imap_puerto", "imap_ssl", "imap_usuario", "imap_password", "imap_carpeta",
          "entrante_desconocidos", "entrante_max_mb")


def _fila() -> Optional[ConfiguracionEmail]:
    return db.session.get(ConfiguracionEmail, 1)


def _desde_env() -> dict:
    c = current_app.config
    nombre, direccion = parseaddr(c.get("MAIL_DEFAULT_SENDER") or "")
    return {"servidor": c.get("MAIL_SERVER") or "localhost", "puerto": int(c.get("MAIL_PORT") or 25),
            "usuario": c.get("MAIL_USERNAME") or None, "password": c.get("MAIL_PASSWORD") or None,
            "usar_tls": bool(c.get("MAIL_USE_TLS")), "usar_ssl": bool(c.get("MAIL_USE_SSL")),
            "remitente_nombre": nombre or "Mesa de Ayuda", "remitente_email": direccion or "soporte@localhost",
            "contactos_notificacion": c.get("TICKETS_NOTIFY_EMAIL") or "",
            "imap_servidor": c.get("IMAP_HOST") or "", "imap_puerto": int(c.get("IMAP_PORT") or 993),
            "imap_ssl": bool(c.get("IMAP_SSL")), "imap_usuario": c.get("IMAP_USER") or None,
            "imap_password": c.get("IMAP_PASSWORD") or None, "imap_carpeta": c.get("IMAP_FOLDER") or "INBOX",
            "entrante_desconocidos": c.get("INBOUND_UNKNOWN_SENDER") or "crear",
            "entrante_max_mb": _en_mb(int(c.get("INBOUND_MAX_BYTES") or 25 * MB))}


def _en_mb(octetos: int) -> float | int:
    """INBOUND_MAX_BYTES in MB: dividing by a power of two is exact, so ajustes_entrada() gets the
    same bytes back."""
    mb = octetos / MB
    return int(mb) if mb.is_integer() else mb


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


def contactos() -> list[str]:
    """The notification contacts alone (every creation asks): one column, not the whole row with
    its secrets to decrypt. The same value as ``ajustes().contactos``."""
    por_defecto = current_app.config.get("TICKETS_NOTIFY_EMAIL") or ""
    guardado = generacion.memo("contactos", lambda: leer(_CONTACTOS).scalar())  # every creation asks
    return separar_contactos(guardado if guardado is not None else por_defecto)


_CONTACTOS = select(ConfiguracionEmail.contactos_notificacion).where(ConfiguracionEmail.id == 1)


def ajustes_entrada() -> AjustesEntrada:
    v, _ = _valores()
    return AjustesEntrada(v["imap_servidor"] or "", int(v["imap_puerto"]), bool(v["imap_ssl"]), v["imap_usuario"] or None,
                          v["imap_password"] or None, v["imap_carpeta"] or "INBOX", v["entrante_desconocidos"],
                          int(v["entrante_max_mb"] * MB))


Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.\-\[\]:]+$")]


REMITENTE_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                             r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")


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
    remitente_email: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]] = None
    contactos_notificacion: Optional[Annotated[str, StringConstraints(max_length=4000)]] = None
    # Email in. ``imap_password`` is write-only like ``password``.
    imap_servidor: Optional[Host] = None
    imap_puerto: Optional[int] = Field(default=None, ge=1, le=65535)
    imap_ssl: Optional[bool] = None
    imap_usuario: Optional[Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]] = None
    imap_password: Optional[Annotated[str, StringConstraints(max_length=255)]] = None
    imap_carpeta: Optional[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]] = None
    entrante_desconocidos: Optional[Literal["crear", "ignorar"]] = None
    entrante_max_mb: Optional[int] = Field(default=None, ge=1, le=1024)

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
            raise ErrorCampo("Not valid email addresses: %(direcciones)s", direcciones=", ".join(malos))
        return ", ".join(dict.fromkeys(validos))

    @field_validator("remitente_email")
    @classmethod
    def _remitente(cls, value: Optional[str]) -> Optional[str]:
        """A sender for the office's own relay may be local (the default soporte@localhost, a
        .local host): email-validator refuses special-use domains, the relay does not."""
        if value is None:
            return None
        try:
            return email_validator.validate_email(value, check_deliverability=False).normalized
        except email_validator.EmailNotValidError:
            if REMITENTE_LOCAL.fullmatch(value):
                return value
            raise ErrorCampo("Not a valid email address.") from None

    @model_validator(mode="after")
    def _tls_o_ssl(self):
        if self.usar_tls and self.usar_ssl:
            raise ErrorCampo("Choose STARTTLS or SSL, not both.")
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
    if "imap_servidor" in form:  # the "Correo entrante (IMAP)" fieldset was on the page
        datos["imap_servidor"] = (form.get("imap_servidor") or "").strip() or None  # empty: back to .env
        datos["imap_usuario"] = form.get("imap_usuario", "")
        datos["imap_ssl"] = bool(form.get("imap_ssl"))
        for campo in ("imap_puerto", "imap_carpeta", "entrante_desconocidos", "entrante_max_mb"):
            if (form.get(campo) or "").strip():
                datos[campo] = form.get(campo).strip()
    for secreto in SECRETOS:
        if form.get(f"borrar_{secreto}"):
            datos[secreto] = None
        elif form.get(secreto):
            datos[secreto] = form.get(secreto)
    return datos


def configuracion_dict() -> dict:
    """What the settings page and GET show: effective values, never the password."""
    valores, origen = _valores()
    fila = _fila()
    out = {c: valores[c] for c in CAMPOS if c not in SECRETOS}
    out["password_configurada"] = bool(valores["password"])
    out["imap_password_configurado"] = bool(valores["imap_password"])
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
    for secreto in SECRETOS:
        if dados.get(secreto) == "":
            dados.pop(secreto)  # an empty password box means "keep it"
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
        raise ValidationFailed("Choose STARTTLS or SSL, not both.", fields={"usar_ssl": N_("Choose STARTTLS or SSL, not both.")})
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


