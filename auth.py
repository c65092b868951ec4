"""Authentication plumbing: Flask-Login sessions, Bearer tokens, CSRF, login throttling.

A request that carries ``Authorization: Bearer`` is authenticated by that token only (the
session cookie is ignored), and only such requests skip CSRF: a browser cannot attach a
Bearer header cross-site, a cookie it attaches on its own.
"""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user
from flask_login.signals import user_accessed
from flask_wtf.csrf import CSRFProtect

from errors import Forbidden, Unauthorized
from models import Usuario, db
from usuarios import usuario_por_token


class GestorDeSesiones(LoginManager):
    """Flask-Login, except that a Bearer request goes straight to its token (the request loader):
    it has no session whose cookie's origin to check (``SesionSalvoBearer``) and no remember
    cookie to read, whose checks Flask-Login made on every API request first (issue 13)."""

    def _load_user(self):
        if bearer_token() is None:
            return super()._load_user()
        user_accessed.send(current_app._get_current_object())
        return self._update_request_context_with_user(self._load_user_from_request(request))


login_manager = GestorDeSesiones()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


@limiter.request_filter
def _lectura() -> bool:
    """A read skips resolving rate limits while only the credential POSTs carry one (brute
    force: config.py sets no default or application-wide limit); with such a limit set, reads
    are counted like every request."""
    return request.method in ("GET", "HEAD") and not (
        current_app.config.get("RATELIMIT_DEFAULT") or current_app.config.get("RATELIMIT_APPLICATION"))

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
API_PREFIXES = ("/api/", "/admin/api/")


def wants_json() -> bool:
    if request.path.startswith(API_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def bearer_token(req=None) -> str | None:
    """The Bearer token of ``req`` (the current request by default), if it carries one."""
    header = (req or request).headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


class SesionSalvoBearer(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except on a Bearer request: that one is judged by its token
    alone, so it gets an empty session that is never saved. Its cookie is neither verified nor
    re-signed, it answers no Set-Cookie, and its response does not vary by Cookie (issue 13: the
    per-request work an API call does not need)."""

    def open_session(self, app, request):
        if bearer_token(request) is not None:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if bearer_token() is None:
            super().save_session(app, session, response)


@login_manager.user_loader
def load_user(user_id: str):
    if bearer_token() is not None:
        return None  # token requests are judged by the token alone
    usuario = db.session.get(Usuario, int(user_id))
    if usuario is None or not usuario.activo:
        return None
    # Server-side invalidation: the cookie names the session version it was issued with;
    # logout, a password change or a deactivation bump it (usuarios.cerrar_sesiones).
    if session.get("sv") != usuario.sesion_version:
        return None
    return usuario


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
    if wants_json():
        raise Unauthorized("Authentication required.")
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


def iniciar_sesion(usuario: Usuario) -> None:
    """Log ``usuario`` in on this browser, bound to their current session version."""
    login_user(usuario)
    session["sv"] = usuario.sesion_version


def login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def login_failed_deduct(response) -> bool:
    """Only failed attempts count toward the login limit."""
    return bool(g.get("login_failed"))
