"""Mesa de Ayuda: the Flask application and all of its routes (no blueprints, by design).

Each route parses and validates, authorizes, calls a domain function, commits once, then
renders, redirects or returns JSON. Rules live in the domain modules (tickets.py,
usuarios.py); errors are DomainError subclasses turned into a response in one place.
"""

from __future__ import annotations

import os

from flask import Flask, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_migrate import Migrate
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

import tickets
import usuarios
from auth import (
    csrf,
    csrf_check,
    csrf_exempt,
    limiter,
    login_failed_deduct,
    login_limit,
    login_manager,
    role_required,
    wants_json,
)
from config import load_config
from errors import DomainError, NotFound, ValidationFailed
from models import Categoria, Ingeniero, Usuario, db
from schemas import (
    Asignacion,
    CategoriaCreate,
    EstadoChange,
    IngenieroCreate,
    IngenieroUpdate,
    MensajeCreate,
    NotaCreate,
    TicketCreate,
    TicketFilters,
    TicketUpdate,
    TokenRequest,
    UsuarioCreate,
    categoria_dict,
    evento_dict,
    ingeniero_dict,
    mensaje_dict,
    page_dict,
    parse,
    parse_query,
    ticket_dict,
    usuario_dict,
)

migrate = Migrate()
_ROUTES: list[tuple[str, object, dict]] = []


def route(rule: str, **options):
    """Record a view; ``create_app`` registers every recorded view on the app."""

    def decorator(view):
        _ROUTES.append((rule, view, options))
        return view

    return decorator


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # csrf_check decides (Bearer requests skip it)
    if test_config:
        app.config.update(test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "login"
    app.config["RATELIMIT_STORAGE_URI"] = app.config.get("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)

    app.before_request(csrf_check)
    _register_errors(app)
    for rule, view, options in _ROUTES:
        app.add_url_rule(rule, view_func=view, **options)

    @app.context_processor
    def _inject():
        return {"csrf_token": generate_csrf}

    return app


# --- errors ------------------------------------------------------------------------

def _error_response(status: int, code: str, message: str, fields: dict | None = None):
    if wants_json():
        body = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        return jsonify({"error": body}), status
    return render_template("error.html", status=status, message=message), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        db.session.rollback()
        return _error_response(exc.status, exc.code, exc.message, exc.fields)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        db.session.rollback()
        return _error_response(400, "csrf_failed", exc.description)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        db.session.rollback()
        code = (exc.name or "error").lower().replace(" ", "_")
        return _error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        app.logger.exception("Unhandled error")
        return _error_response(500, "internal_error", "Unexpected error; nothing was saved.")


def json_body() -> dict:
    """The request's JSON object, or a 400/415 that says what is wrong with it."""
    if not request.is_json:
        raise DomainError("Send a JSON body with Content-Type: application/json.",
                          status=415, code="unsupported_media_type")
    data = request.get_json(silent=True)
    if data is None:
        raise DomainError("The body is not valid JSON.", status=400, code="invalid_json")
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_body")
    return data


def _ticket_response(ticket, status: int = 200):
    db.session.refresh(ticket)
    return jsonify(ticket_dict(ticket, current_user)), status


def _ticket_page(filters: TicketFilters, base_scope=None):
    items, total = tickets.listar(current_user, filters, base_scope, with_notes=current_user.es_staff)
    return jsonify(page_dict([ticket_dict(t, current_user) for t in items], total, filters.page,
                             filters.per_page))


# --- session auth (HTML) -----------------------------------------------------------

class LoginForm(FlaskForm):
    username = StringField("Usuario", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Contraseña", validators=[DataRequired(), Length(max=200)])


def home_for(user: Usuario) -> str:
    return {"admin": url_for("panel_admin"), "ingeniero": url_for("panel_ingeniero")}.get(
        user.rol, url_for("panel_usuario"))


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


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
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        g.login_failed = True
        form.password.errors.append("Usuario o contraseña incorrectos.")
    return render_template("login.html", form=form), 200 if request.method == "GET" or not g.get("login_failed") else 401


@route("/logout", methods=["POST"])
def logout():
    """End the session."""
    logout_user()
    flash("Sesión cerrada.", "info")
    return redirect(url_for("login"))


# --- pages (the full panels come with the panels issue) ------------------------------

@route("/tickets")
@role_required()
def panel_usuario():
    """Usuario panel: my tickets."""
    items, total = tickets.listar(current_user, TicketFilters(per_page=50),
                                  base_scope=tickets.Ticket.usuario_id == current_user.id)
    return render_template("tickets.html", tickets=items, total=total)


@route("/tickets/ingeniero")
@role_required("ingeniero")
def panel_ingeniero():
    """Engineer panel: assigned tickets."""
    items, total = tickets.listar(current_user, TicketFilters(per_page=50))
    return render_template("tickets.html", tickets=items, total=total)


@route("/tickets/admin")
@role_required("admin")
def panel_admin():
    """Admin panel: all tickets."""
    items, total = tickets.listar(current_user, TicketFilters(per_page=50))
    return render_template("tickets.html", tickets=items, total=total)


# --- API: auth -------------------------------------------------------------------------

@route("/api/auth/token", methods=["POST"])
@csrf_exempt
@limiter.limit(login_limit, deduct_when=login_failed_deduct)
def api_token():
    """Exchange username + password for a Bearer token (shown once)."""
    data = parse(TokenRequest, json_body())
    user = usuarios.autenticar(data.username, data.password)
    if user is None:
        g.login_failed = True
        return jsonify({"error": {"code": "invalid_credentials", "message": "Invalid username or password."}}), 401
    token, clear = usuarios.emitir_token(user, data.nombre)
    db.session.commit()
    return jsonify({"token": clear, "token_type": "Bearer", "usuario": usuario_dict(user)}), 201


@route("/api/auth/token", methods=["DELETE"], endpoint="api_token_revoke")
@role_required()
def api_token_revoke():
    """Revoke the Bearer token this request was made with."""
    from auth import bearer_token

    clear = bearer_token()
    if clear is None or not usuarios.revocar_token(clear):
        raise ValidationFailed("Call this with the Bearer token to revoke.", code="no_token")
    db.session.commit()
    return "", 204


@route("/api/auth/csrf")
def api_csrf():
    """A CSRF token for session-authenticated JavaScript clients (send it as X-CSRFToken)."""
    return jsonify({"csrf_token": generate_csrf()})


@route("/api/openapi.json")
def api_openapi():
    """The OpenAPI document of this API."""
    import openapi

    return jsonify(openapi.document())


@route("/api/me")
@role_required()
def api_me():
    """Who is calling."""
    return jsonify(usuario_dict(current_user))


# --- API: tickets ------------------------------------------------------------------------

@route("/api/tickets", methods=["POST"])
@role_required()
def api_crear_ticket():
    """Create a ticket as the caller (requester). 201 with the ticket."""
    data = parse(TicketCreate, json_body())
    canal = "api" if g.get("via_token") else "web"
    ticket = tickets.crear_ticket(data, usuario=current_user, canal=canal)
    db.session.commit()
    return _ticket_response(ticket, 201)


@route("/api/mis-tickets")
@role_required()
def api_mis_tickets():
    """Tickets the caller requested."""
    f = parse_query(TicketFilters, request.args)
    return _ticket_page(f, base_scope=tickets.Ticket.usuario_id == current_user.id)


@route("/api/tickets-ingeniero")
@role_required("ingeniero")
def api_tickets_ingeniero():
    """Tickets assigned to the calling engineer."""
    return _ticket_page(parse_query(TicketFilters, request.args))


@route("/api/todos-tickets")
@role_required("admin")
def api_todos_tickets():
    """Every ticket (admin)."""
    return _ticket_page(parse_query(TicketFilters, request.args))


@route("/api/tickets/<int:ticket_id>")
@role_required()
def api_ticket(ticket_id: int):
    """One ticket the caller may see."""
    return jsonify(ticket_dict(tickets.get_visible(ticket_id, current_user), current_user))


@route("/api/tickets/<int:ticket_id>", methods=["PUT"], endpoint="api_actualizar_ticket")
@role_required()
def api_actualizar_ticket(ticket_id: int):
    """Edit titulo, descripcion, categoria, prioridad, etiquetas or links."""
    ticket = tickets.get_visible(ticket_id, current_user)
    tickets.actualizar_ticket(ticket, current_user, parse(TicketUpdate, json_body()))
    db.session.commit()
    return _ticket_response(ticket)


@route("/api/tickets/<int:ticket_id>/estado", methods=["PUT"])
@role_required()
def api_cambiar_estado(ticket_id: int):
    """Move the ticket through its lifecycle (refused moves are 409)."""
    ticket = tickets.get_visible(ticket_id, current_user)
    data = parse(EstadoChange, json_body())
    tickets.cambiar_estado(ticket, current_user, data.estado)
    db.session.commit()
    return _ticket_response(ticket)


@route("/api/tickets/<int:ticket_id>/notas", methods=["PUT"])
@role_required("ingeniero", "admin")
def api_agregar_nota(ticket_id: int):
    """Append an internal note (staff only)."""
    ticket = tickets.get_visible(ticket_id, current_user)
    tickets.agregar_nota(ticket, current_user, parse(NotaCreate, json_body()).nota)
    db.session.commit()
    return _ticket_response(ticket)


@route("/api/tickets/<int:ticket_id>/asignar", methods=["PUT"])
@role_required("admin")
def api_asignar(ticket_id: int):
    """Assign (or, with null, unassign) an engineer."""
    ticket = tickets.get_visible(ticket_id, current_user)
    tickets.asignar(ticket, current_user, parse(Asignacion, json_body()).ingeniero_id)
    db.session.commit()
    return _ticket_response(ticket)


@route("/api/tickets/<int:ticket_id>/mensajes")
@role_required()
def api_mensajes(ticket_id: int):
    """The public thread; reading marks the other side's messages as read."""
    ticket = tickets.get_visible(ticket_id, current_user)
    lista = tickets.mensajes(ticket, current_user)
    db.session.commit()
    return jsonify({"items": [mensaje_dict(m) for m in lista], "total": len(lista)})


@route("/api/tickets/<int:ticket_id>/mensajes", methods=["POST"], endpoint="api_nuevo_mensaje")
@role_required()
def api_nuevo_mensaje(ticket_id: int):
    """Post a public message on the ticket."""
    ticket = tickets.get_visible(ticket_id, current_user)
    mensaje = tickets.agregar_mensaje(ticket, current_user, parse(MensajeCreate, json_body()).cuerpo)
    db.session.commit()
    return jsonify(mensaje_dict(mensaje)), 201


@route("/api/tickets/<int:ticket_id>/historial")
@role_required()
def api_historial(ticket_id: int):
    """Every change of the ticket (internal-note events only for staff)."""
    ticket = tickets.get_visible(ticket_id, current_user)
    eventos = tickets.history(ticket, current_user)
    return jsonify({"items": [evento_dict(e) for e in eventos], "total": len(eventos)})


# --- API: catalogues and people ------------------------------------------------------------

@route("/api/categorias")
@role_required()
def api_categorias():
    """Active categories."""
    rows = db.session.execute(select(Categoria).where(Categoria.activa.is_(True))
                              .order_by(Categoria.nombre)).scalars()
    return jsonify({"items": [categoria_dict(c) for c in rows]})


@route("/api/categorias", methods=["POST"], endpoint="api_crear_categoria")
@role_required("admin")
def api_crear_categoria():
    """Add a category (admin)."""
    data = parse(CategoriaCreate, json_body())
    categoria = tickets.crear_categoria(data.nombre, data.descripcion)
    db.session.commit()
    return jsonify(categoria_dict(categoria)), 201


@route("/api/ingenieros")
@role_required("admin", "ingeniero")
def api_ingenieros():
    """Engineers with specialty, availability and current open load."""
    lista = usuarios.ingenieros()
    carga = tickets.carga_abierta()
    return jsonify({"items": [ingeniero_dict(i, carga.get(i.id, 0)) for i in lista]})


@route("/api/ingenieros", methods=["POST"], endpoint="api_crear_ingeniero")
@role_required("admin")
def api_crear_ingeniero():
    """Create an engineer account and profile (admin)."""
    ingeniero = usuarios.crear_ingeniero(parse(IngenieroCreate, json_body()))
    db.session.commit()
    return jsonify(ingeniero_dict(ingeniero)), 201


@route("/api/ingenieros/<int:ingeniero_id>", methods=["PUT"])
@role_required("admin")
def api_actualizar_ingeniero(ingeniero_id: int):
    """Update an engineer's profile or availability (admin)."""
    ingeniero = db.session.get(Ingeniero, ingeniero_id)
    if ingeniero is None:
        raise NotFound("Engineer not found.")
    usuarios.actualizar_ingeniero(ingeniero, parse(IngenieroUpdate, json_body()))
    db.session.commit()
    return jsonify(ingeniero_dict(ingeniero, tickets.carga_abierta([ingeniero.id]).get(ingeniero.id, 0)))


@route("/api/usuarios")
@role_required("admin")
def api_usuarios():
    """All accounts (admin), paginated."""
    page = max(request.args.get("page", 1, type=int), 1)
    per_page = min(max(request.args.get("per_page", 50, type=int), 1), 100)
    total = db.session.execute(select(func.count(Usuario.id))).scalar_one()
    rows = db.session.execute(select(Usuario).order_by(Usuario.id).limit(per_page)
                              .offset((page - 1) * per_page)).scalars()
    return jsonify(page_dict([usuario_dict(u) for u in rows], total, page, per_page))


@route("/api/usuarios", methods=["POST"], endpoint="api_crear_usuario")
@role_required("admin")
def api_crear_usuario():
    """Create an account with a role (admin)."""
    usuario = usuarios.crear_usuario(parse(UsuarioCreate, json_body()))
    db.session.commit()
    return jsonify(usuario_dict(usuario)), 201
