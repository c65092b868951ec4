"""The HTML forms of the panels (Flask-WTF: CSRF token, inline field errors, translated labels).

Forms only check what a person typed; the domain (through the pydantic schemas) decides
the rest, and its field errors are copied back onto the form by ``app.form_errors``.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, Regexp, ValidationError

from models import IDIOMAS, PRIORIDADES, ROLES
from paneles import IDIOMA_LABELS, PRIORIDAD_LABELS, ROL_LABELS
from schemas import _no_nul

MAX_ETIQUETAS = 10


def etiquetas_lista(texto: str | None) -> list[str]:
    """``"red, vpn"`` -> ``["red", "vpn"]`` (what the tags input holds)."""
    return [t.strip().lower() for t in (texto or "").split(",") if t.strip()]


def _etiquetas_validas(form, field) -> None:
    nombres = etiquetas_lista(field.data)
    if len(nombres) > MAX_ETIQUETAS:
        raise ValidationError(_l("At most %(n)s tags.", n=MAX_ETIQUETAS))
    if any(len(n) > 50 for n in nombres):
        raise ValidationError(_l("Each tag may have at most 50 characters."))


def _prioridad_choices():
    return [(p, PRIORIDAD_LABELS[p]) for p in PRIORIDADES]


class Formulario(FlaskForm):
    """Base of every panel form: the API's input rules that hold for any text apply here too
    (``schemas._no_nul``: one validation path), so a NUL typed into a form is a field error
    (422) and nothing is stored, as in the API."""

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        for field in self:
            try:
                _no_nul(field.data)
            except ValueError:
                field.errors = [*field.errors, _l("This text contains a character that is not allowed.")]
                ok = False
        return ok


class LoginForm(Formulario):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class TicketForm(Formulario):
    """New ticket (the requester is the caller). ``categoria`` choices are set per request."""

    titulo = StringField(_l("Title"), validators=[DataRequired(), Length(max=255)])
    descripcion = TextAreaField(_l("Description"), validators=[DataRequired(), Length(max=20000)])
    categoria = SelectField(_l("Category"), validators=[InputRequired()])
    prioridad = SelectField(_l("Priority"), choices=_prioridad_choices, default="media")
    etiquetas = StringField(_l("Tags"), validators=[Optional(), Length(max=600), _etiquetas_validas],
                            description=_l("Optional, separated by commas."))


class TicketEditForm(TicketForm):
    """Same fields as a new ticket; only what changed is sent to the domain."""


class MensajeForm(Formulario):
    cuerpo = TextAreaField(_l("Reply"), validators=[DataRequired(), Length(max=20000)])


class NotaForm(Formulario):
    nota = TextAreaField(_l("Internal note"), validators=[DataRequired(), Length(max=20000)])


class AsignarForm(Formulario):
    """``ingeniero_id`` is an engineer's id, or empty to unassign."""

    ingeniero_id = RadioField(_l("Engineer"), validators=[Optional()], validate_choice=False)


class UsuarioForm(Formulario):
    username = StringField(_l("Username"), validators=[
        DataRequired(), Regexp(r"^[A-Za-z0-9_.-]{3,80}$",
                               message=_l("3 to 80 letters, digits, dots, dashes or underscores."))])
    nombre = StringField(_l("Full name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=8, max=200)])
    rol = SelectField(_l("Role"), choices=lambda: [(r, ROL_LABELS[r]) for r in ROLES], default="usuario")
    idioma = SelectField(_l("Language"), choices=lambda: [(i, IDIOMA_LABELS[i]) for i in IDIOMAS], default="es")
    especialidad = StringField(_l("Specialty (engineers)"), validators=[Optional(), Length(max=120)])


class IngenieroForm(Formulario):
    username = UsuarioForm.username
    nombre = UsuarioForm.nombre
    email = UsuarioForm.email
    password = UsuarioForm.password
    especialidad = StringField(_l("Specialty"), validators=[DataRequired(), Length(max=120)])
    telefono = StringField(_l("Phone"), validators=[Optional(), Length(max=20)])
    disponible = BooleanField(_l("Available for new tickets"), default=True)


class CategoriaForm(Formulario):
    nombre = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    descripcion = StringField(_l("Description"), validators=[Optional(), Length(max=255)])
