"""The one domain exception, raised by domain code and turned into a response in app.py."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.fields = fields or {}

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


# Path prefix -> function wrapping the error body ({"error": {...}}) of responses under it
# (seed 003's API answers {"success": false, "error": ...}). app.py's one handler applies it.
ENVOLTORIOS: dict = {}


def envolver(path: str, body: dict) -> dict:
    for prefijo, envolver_ in ENVOLTORIOS.items():
        if path.startswith(prefijo):
            return envolver_(body)
    return body
