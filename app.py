"""Mesa de Ayuda: the Flask application: configuration, extensions, errors, languages, and the
routes of ``rutas/`` registered on it (no blueprints, by design).

Each route parses and validates, authorizes, calls a domain function, commits once, then
renders, redirects or returns JSON. Rules live in the domain modules (tickets.py,
usuarios.py); errors are DomainError subclasses turned into a response in one place.
"""

from __future__ import annotations

import os

import orjson
from flask import (
    Flask,
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask.json.provider import DefaultJSONProvider
from flask_babel import Babel, get_locale, get_translations
from flask_babel import gettext as _
from flask_login import current_user
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFError, generate_csrf
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

import acumulados
import adjuntos
import correo_entrante
import email_manager
import envio_email
import exportaciones
import operaciones
import outbox
import paneles
import rutas
import sla
import soporte
import transacciones
import whatsapp
from auth import (
    SesionSalvoBearer,
    csrf,
    csrf_check,
    limiter,
    login_manager,
    wants_json,
)
from config import load_config
from errors import N_, DomainError, envolver, error_body, traducir
from models import IDIOMAS, db, idioma_de, incluir_en_migraciones
from rutas import comun
from schemas import (
    MAX_ID,
)

migrate = Migrate()


# What Flask's json.dumps(sort_keys=True, separators=(",", ":")) writes, from orjson: dates and
# dataclasses still go through Flask's ``default`` (HTTP dates, asdict), int keys become strings.
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME \
    | orjson.OPT_PASSTHROUGH_DATACLASS


class SafeJSONProvider(DefaultJSONProvider):
    """Every ``request.get_json`` in the app: a body nested too deeply for the parser is
    invalid JSON (a 400 through ``json_body``), not a RecursionError and a 500.

    Every JSON response (``jsonify``) and ``dumps`` without options is written by orjson: the
    standard encoder took 180 µs of a 25-ticket list's ~2 ms of CPU, orjson 15 (issue 13). The
    same document with the same key order; characters beyond ASCII are written as UTF-8 instead
    of ``\\u`` escapes (both are JSON for the same string). What orjson refuses (an integer beyond
    64 bits) falls back to the standard encoder. Debug mode's indented output and calls with
    options (Jinja's ``tojson``) keep the standard encoder."""

    def response(self, *args, **kwargs):
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        cuerpo = self._orjson(self._prepare_response_obj(args, kwargs))
        return self._app.response_class(cuerpo + b"\n", mimetype=self.mimetype)

    def dumps(self, obj, **kwargs) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        return self._orjson(obj).decode()

    def _orjson(self, obj) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=_ORJSON)
        except orjson.JSONEncodeError:
            return super().dumps(obj, separators=(",", ":")).encode()

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def _digitos_hasta(maximo: int) -> str:
    """A regex of the decimal numbers from 0 to ``maximo`` (up to its number of digits)."""
    cifras = str(maximo)
    partes = [rf"\d{{1,{len(cifras) - 1}}}"] if len(cifras) > 1 else []
    for i, cifra in enumerate(cifras):
        menor, resto = ("1" if i == 0 and len(cifras) > 1 else "0"), len(cifras) - i - 1
        if int(cifra) > int(menor):  # the numbers sharing the first i digits, smaller at digit i
            partes.append(rf"{cifras[:i]}[{menor}-{int(cifra) - 1}]\d{{{resto}}}")
    return "(?:" + "|".join([*partes, cifras]) + ")"


class DbIdConverter(IntegerConverter):
    """``<int:...>`` in every route: ids beyond the database's 32-bit range are a 404.

    The range is in the regex, not only in ``max``: werkzeug checks a rule's methods before its
    converters, so a too-large id on a URL that also has a rule for other methods would answer
    405 (``POST /api/tickets/99999999999/mensajes``) instead of 404."""

    regex = _digitos_hasta(MAX_ID)

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.json = SafeJSONProvider(app)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # csrf_check decides (Bearer requests skip it)
    if test_config:
        app.config.update(test_config)

    db.init_app(app)
    transacciones.init_app(app)  # GETs read in autocommit on PostgreSQL; idle connections pinged
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"),
                     include_object=incluir_en_migraciones)
    csrf.init_app(app)
    app.session_interface = SesionSalvoBearer()
    login_manager.init_app(app)
    login_manager.login_view = "login"
    app.config["RATELIMIT_STORAGE_URI"] = app.config.get("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)

    app.before_request(csrf_check)
    _register_errors(app)
    app.url_map.converters["int"] = DbIdConverter
    rutas.registrar(app)
    register_panels(app)
    email_manager.init_app(app)  # the email kinds follow the lifecycle's signals
    envio_email.init_app(app)  # the outbox's email channel (SMTP)
    correo_entrante.init_app(app)  # `flask ingest-email` (MTA pipe), `flask fetch-email` (IMAP)
    whatsapp.init_app(app)  # ticket replies on WhatsApp and the outbox's whatsapp channel
    acumulados.init_app(app)  # the statistics rollup, kept on every ticket flush (issue 13)
    sla.init_app(app)  # SLA due times, automatic assignment, `flask sla-tick` (issue 12)
    outbox.init_app(app)  # `flask send-outbox` (alias send-emails), the dev sender thread
    exportaciones.init_app(app)  # `flask export-worker` (Excel jobs, issue 13), the dev worker thread
    operaciones.init_app(app)  # `flask backup DEST`, `flask restore SRC`
    soporte.init_app(app)  # `flask cerrar-resueltos` (auto-close)
    adjuntos.init_app(app)  # `flask limpiar-adjuntos` (orphan files)

    @app.context_processor
    def _inject():
        return {"csrf_token": generate_csrf}

    return app


# --- errors ------------------------------------------------------------------------

def _error_response(status: int, code: str, message: str, fields: dict | None = None):
    """Every error response: ``errors.error_body`` as JSON, or the error page; translated."""
    if wants_json():
        return jsonify(envolver(request.path, error_body(code, message, fields))), status
    return render_template("error.html", status=status, message=traducir(message)), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        db.session.rollback()
        volver = g.get("al_fallar_volver_a")
        if volver is not None and not wants_json():
            # An HTML form refused by the domain: its message as a flash, back to the page.
            detalle = "; ".join(traducir(v) for v in exc.fields.values())
            flash(f"{exc.mensaje()} {detalle}".strip(), "danger")
            return redirect(volver)
        if wants_json():
            return jsonify(envolver(request.path, exc.to_dict())), exc.status
        return _error_response(exc.status, exc.code, exc.mensaje())

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        db.session.rollback()
        return _error_response(400, "csrf_failed", exc.description)

    # Safety nets behind the domain's own checks (tickets.guardar, usuarios, categories turn
    # these into a Conflict naming what clashed): a race lost at commit time is a 409, never a 500.
    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError):
        db.session.rollback()
        return _error_response(409, "stale", "Someone else changed this meanwhile; reload and try again.")

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError):
        db.session.rollback()
        app.logger.warning("Integrity error: %s", type(exc.orig).__name__)  # never the parameters
        return _error_response(409, "conflict", "This clashes with existing data; nothing was saved.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        db.session.rollback()
        code = (exc.name or "error").lower().replace(" ", "_")
        return _error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        app.logger.exception("Unhandled error")
        return _error_response(500, "internal_error", N_("Unexpected error; nothing was saved."))


# --- panels (HTML) -------------------------------------------------------------------
# Server-rendered pages. Same shape as the API: parse (a Flask-WTF form), authorize, call the
# domain, commit, redirect; a form the domain refuses is shown again with its errors (422).

babel = Babel()

# Content-Security-Policy of every HTML page: scripts only from our static files.
# Inline styles stay allowed (Bootstrap utilities, charts); inline scripts never are.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

def select_locale() -> str | None:
    """The account's language; before login, the one chosen here, else Accept-Language."""
    if not has_request_context():
        return None  # e.g. an email rendered by a worker: Flask-Babel's default (es)
    if current_user.is_authenticated:
        return idioma_de(current_user.idioma)
    if session.get("idioma") in IDIOMAS:
        return session["idioma"]
    return request.accept_languages.best_match(IDIOMAS) or "es"



def _security_headers(response):
    """Every response: no MIME sniffing, no framing; HTML pages also get the CSP."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
    return response



def register_panels(app: Flask) -> None:
    """Languages, template helpers and security headers of the HTML panels."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "es")
    babel.init_app(app, locale_selector=select_locale)
    app.after_request(_security_headers)
    # Globals, not a context processor: imported macros (``_macros.html as m``) see them too.
    app.jinja_env.globals.update(
        ESTADO_LABELS=paneles.ESTADO_LABELS, PRIORIDAD_LABELS=paneles.PRIORIDAD_LABELS,
        ROL_LABELS=paneles.ROL_LABELS, CANAL_LABELS=paneles.CANAL_LABELS,
        CAMPO_LABELS=paneles.CAMPO_LABELS, IDIOMA_LABELS=paneles.IDIOMA_LABELS,
        es_vencido=sla.es_vencido, page_url=comun.page_url, filter_args=comun.filter_args,
        csrf_token=generate_csrf,
        current_user=current_user, has_endpoint=lambda name: name in current_app.view_functions,
    )
    app.context_processor(lambda: {"locale": str(get_locale() or "es")})
    app.jinja_env.filters["t"] = lambda s: _(s) if s else ""
    app.jinja_env.filters["fecha"] = paneles.fecha
    # Flask-Babel's own callables (babel.init_app), but gettext through paneles.traducir's memo.
    app.jinja_env.install_gettext_callables(
        gettext=paneles.traducir,
        ngettext=lambda s, p, n: get_translations().ungettext(s, p, n),
        pgettext=lambda c, s: get_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: get_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


