"""Authentication plumbing: Flask-Login sessions, Bearer tokens, CSRF, login throttling.

A request that carries ``Authorization: Bearer`` is authenticated by that token only (the
session cookie is ignored), and only such requests skip CSRF: a browser cannot attach a
Bearer header cross-site, a cookie it attaches on its own.
"""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, redirect, request, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from errors import DomainError, Forbidden
from models import Usuario, db
from usuarios import usuario_por_token

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
API_PREFIXES = ("/api/", "/admin/api/")


def wants_json() -> bool:
    if request.path.startswith(API_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


@login_manager.user_loader
def load_user(user_id: str):
    if bearer_token() is not None:
        return None  # token requests are judged by the token alone
    usuario = db.session.get(Usuario, int(user_id))
    return usuario if usuario is not None and usuario.activo else None


@login_manager.request_loader
def load_user_from_token(req):
    token = bearer_token()
    if token is None:
        return None
    usuario = usuario_por_token(token)
    if usuario is not None:
        g.via_token = True
    return usuario


@login_manager.unauthorized_handler
def unauthorized():
    if wants_json():  # rendered by app.py's one error handler (and its envelopes)
        raise DomainError("Authentication required.", status=401, code="unauthorized")
    return redirect(url_for("login", next=request.full_path if request.query_string else request.path))


def csrf_check() -> None:
    """before_request: CSRF on every session-authenticated write (forms and JSON alike)."""
    if request.method not in UNSAFE_METHODS or bearer_token() is not None:
        return
    # An anonymous API write has no session to ride on: let it reach the 401.
    if request.path.startswith(API_PREFIXES) and not current_user.is_authenticated:
        return
    view = current_app.view_functions.get(request.endpoint)
    if view is not None and getattr(view, "csrf_exempt", False):
        return
    csrf.protect()


def csrf_exempt(view):
    view.csrf_exempt = True
    return view


def role_required(*roles: str):
    """Login required, and one of ``roles`` (403 otherwise)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if roles and current_user.rol not in roles:
                raise Forbidden("Your role may not do this.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def login_failed_deduct(response) -> bool:
    """Only failed attempts count toward the login limit."""
    return bool(g.get("login_failed"))
