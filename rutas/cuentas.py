"""Routes: home, login, logout, language, and the API's authentication (tokens, CSRF, me, OpenAPI)."""

from __future__ import annotations

from flask import (
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_wtf.csrf import generate_csrf

import openapi
import schemas
import usuarios
from auth import (
    csrf_exempt,
    iniciar_sesion,
    limiter,
    login_failed_deduct,
    login_limit,
    role_required,
)
from errors import N_, ValidationFailed, error_body
from forms import (
    LoginForm,
)
from models import IDIOMAS, db
from rutas import route
from rutas.comun import (
    form_status,
    home_for,
    json_body,
    safe_next,
)
from schemas import (
    TokenRequest,
    parse,
    usuario_dict,
)


@route("/")

def index():
    """Send people to their panel, or to the login page."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("login"))


@route("/login", methods=["GET", "POST"])

@limiter.limit(login_limit, methods=["POST"], deduct_when=login_failed_deduct)
def login():
    """Log in with username and password (failed attempts are rate limited)."""
    form = LoginForm()
    if form.validate_on_submit():
        user = usuarios.autenticar(form.username.data, form.password.data)
        if user is not None:
            iniciar_sesion(user)
            session.pop("idioma", None)  # from now on the account's language rules
            return redirect(safe_next(request.args.get("next")) or home_for(user))
        g.login_failed = True
        form.password.errors.append(_("Wrong username or password."))
    status = 401 if g.get("login_failed") else form_status(form)
    return render_template("login.html", form=form), status


@route("/logout", methods=["POST"])

def logout():
    """End the session, here and on every device (the session version moves on)."""
    if current_user.is_authenticated:
        usuarios.cerrar_sesiones(current_user)
        db.session.commit()
    logout_user()
    flash(_("You have logged out."), "info")
    return redirect(url_for("login"))


@route("/idioma", methods=["POST"])

def cambiar_idioma():
    """Switch the interface language: saved on the account, or in the session before login."""
    idioma = request.form.get("idioma", "")
    if current_user.is_authenticated:
        usuarios.cambiar_idioma(current_user, idioma)
        db.session.commit()
    elif idioma in IDIOMAS:
        session["idioma"] = idioma
    else:
        raise ValidationFailed("Unknown language.", fields={"idioma": N_("Unknown language.")})
    return redirect(safe_next(request.form.get("next")) or url_for("index"))


# --- API: auth -------------------------------------------------------------------------

@route("/api/auth/token", methods=["POST"], doc=openapi.op(
    "Exchange username and password for a Bearer token", "anyone",
    schemas.TokenRequest, 201, {"type": "object"}, public=True, tag="auth"))
@csrf_exempt
@limiter.limit(login_limit, deduct_when=login_failed_deduct)
def api_token():
    """Exchange username + password for a Bearer token (shown once)."""
    data = parse(TokenRequest, json_body())
    user = usuarios.autenticar(data.username, data.password)
    if user is None:
        g.login_failed = True
        # Answered, not raised: the login limiter counts this response as a failed attempt.
        return jsonify(error_body("invalid_credentials", N_("Invalid username or password."))), 401
    token, clear = usuarios.emitir_token(user, data.nombre)
    db.session.commit()
    return jsonify({"token": clear, "token_type": "Bearer", "usuario": usuario_dict(user)}), 201


@route("/api/auth/token", methods=["DELETE"], endpoint="api_token_revoke", doc=openapi.op(
    "Revoke the Bearer token of this request", openapi.ANY, ok=204, tag="auth"))
@role_required()
def api_token_revoke():
    """Revoke the Bearer token this request was made with."""
    from auth import bearer_token

    clear = bearer_token()
    if clear is None or not usuarios.revocar_token(clear):
        raise ValidationFailed("Call this with the Bearer token to revoke.", code="no_token")
    db.session.commit()
    return "", 204


@route("/api/auth/csrf", doc=openapi.op(
    "CSRF token for session-authenticated JavaScript (send as X-CSRFToken)",
    "anyone", schema={"type": "object"}, public=True, tag="auth"))
def api_csrf():
    """A CSRF token for session-authenticated JavaScript clients (send it as X-CSRFToken)."""
    return jsonify({"csrf_token": generate_csrf()})


@route("/api/openapi.json", doc=openapi.op(
    "This document", "anyone", schema={"type": "object"}, public=True, tag="meta"))
def api_openapi():
    """The OpenAPI document of this API."""
    import openapi

    return jsonify(openapi.document())


@route("/api/me", doc=openapi.op("The caller", openapi.ANY, schema=openapi.REF("Usuario"), tag="auth"))
@role_required()
def api_me():
    """Who is calling."""
    return jsonify(usuario_dict(current_user))
