"""The one domain exception, raised by domain code and turned into a response in app.py.

A message is an English msgid of the Flask-Babel catalogs (``pybabel -k NotFound -k ...``
extracts the first argument of every raise), with its values passed separately so the
msgid stays constant: ``Conflict("A ticket cannot go from '%(antes)s' to '%(despues)s'.",
antes=a, despues=b)``. It is translated when rendered, in the reader's language.
"""

from __future__ import annotations

from flask import has_app_context
from flask_babel import gettext


def N_(message: str) -> str:
    """Mark a string for the catalogs without translating it here (``pybabel -k N_``)."""
    return message


def traducir(message: str, **params) -> str:
    """``message`` (a msgid) in the current locale, with ``params`` filled in."""
    if has_app_context():
        return gettext(message, **params)
    return message % params if params else message


class ErrorCampo(ValueError):
    """A field validator's refusal: a msgid and its values, translated when the 422 is built
    (``schemas.mensaje_de_campo``). ``str()`` is the English sentence."""

    def __init__(self, message: str, **params):
        super().__init__(message % params if params else message)
        self.msgid, self.params = message, params


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """THE JSON error body of every response: ``{"error": {"code", "message", "fields"?}}``.
    ``message`` and each field message are translated here."""
    body = {"code": code, "message": traducir(message)}
    if fields:
        body["fields"] = {k: traducir(v) for k, v in fields.items()}
    return {"error": body}


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 fields: dict[str, str] | None = None, **params):
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.fields = fields or {}

    def mensaje(self) -> str:
        """The message in the current locale (the reader's)."""
        return traducir(self.message, **self.params)

    def to_dict(self) -> dict:
        return error_body(self.code, self.mensaje(), self.fields)


def _subclase(nombre: str, status: int, code: str) -> type[DomainError]:
    return type(nombre, (DomainError,), {"status": status, "code": code, "__module__": __name__})


# The kinds of refusal: HTTP status and default code (a raise may give a more precise code).
ValidationFailed = _subclase("ValidationFailed", 422, "validation_error")
Unauthorized = _subclase("Unauthorized", 401, "unauthorized")
NotFound = _subclase("NotFound", 404, "not_found")
Forbidden = _subclase("Forbidden", 403, "forbidden")
Conflict = _subclase("Conflict", 409, "conflict")
Gone = _subclase("Gone", 410, "gone")  # e.g. an expired export file


# Messages of Flask-WTF and Werkzeug that reach our error page: marked for the catalogs.
MENSAJES_DE_TERCEROS = (
    N_("The CSRF token is missing."), N_("The CSRF token is invalid."),
    N_("The CSRF session token is missing."), N_("The CSRF tokens do not match."),
    N_("The CSRF token has expired."),
    N_("The requested URL was not found on the server. If you entered the URL manually please check "
       "your spelling and try again."),
    N_("The method is not allowed for the requested URL."),
    N_("You don't have the permission to access the requested resource. It is either read-protected "
       "or not readable by the server."),
)


# Path prefix -> function wrapping the error body ({"error": {...}}) of responses under it
# (seed 003's API answers {"success": false, "error": ...}). app.py's one handler applies it.
ENVOLTORIOS: dict = {}


def envolver(path: str, body: dict) -> dict:
    for prefijo, envolver_ in ENVOLTORIOS.items():
        if path.startswith(prefijo):
            return envolver_(body)
    return body
