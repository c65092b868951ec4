"""Mesa de Ayuda: the Flask application and all of its routes (no blueprints, by design).

Each route parses and validates, authorizes, calls a domain function, commits once, then
renders, redirects or returns JSON. Rules live in the domain modules (tickets.py,
usuarios.py); errors are DomainError subclasses turned into a response in one place.
"""

from __future__ import annotations

import io
import os

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
    send_file,
    session,
    url_for,
)
from flask_babel import Babel, format_datetime, format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFError, generate_csrf
from sqlalchemy import and_, func, select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

import email_manager
import paneles
import reports
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
from errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from forms import (
    AsignarForm,
    CategoriaForm,
    IngenieroForm,
    LoginForm,
    MensajeForm,
    NotaForm,
    TicketEditForm,
    TicketForm,
    UsuarioForm,
    etiquetas_lista,
)
from models import IDIOMAS, Categoria, Ingeniero, Usuario, db
from schemas import (
    MAX_ID,
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


class DbIdConverter(IntegerConverter):
    """``<int:...>`` in every route: ids beyond the database's 32-bit range are a 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


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
    app.url_map.converters["int"] = DbIdConverter
    for rule, view, options in _ROUTES:
        app.add_url_rule(rule, view_func=view, **options)
    register_panels(app)
    email_manager.init_app(app)  # outbox receivers, `flask send-emails`, the dev sender thread

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


def page_args(default_per_page: int = 50) -> tuple[int, int]:
    """``page`` and ``per_page`` from the query string, clamped to sane ranges (a huge page
    number would overflow the database's OFFSET)."""
    page = min(max(request.args.get("page", 1, type=int), 1), 100_000)
    per_page = min(max(request.args.get("per_page", default_per_page, type=int), 1), 100)
    return page, per_page


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


# --- panels (HTML) -------------------------------------------------------------------
# Server-rendered pages. Same shape as the API: parse (a Flask-WTF form), authorize, call the
# domain, commit, redirect; a form the domain refuses is shown again with its errors (422).

babel = Babel()

# Content-Security-Policy of every HTML page: scripts only from our static files.
# Inline styles stay allowed (Bootstrap utilities, charts); inline scripts never are.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")

# Domain errors whose English message carries values: the panels show these instead.
UI_MESSAGES_BY_CODE = {
    "invalid_transition": _l("That status change is not possible from the current status."),
    "engineer_unavailable": _l("That engineer is not available."),
}


def select_locale() -> str | None:
    """The account's language; before login, the one chosen here, else Accept-Language."""
    if not has_request_context():
        return None  # e.g. an email rendered by a worker: Flask-Babel's default (es)
    if current_user.is_authenticated:
        return current_user.idioma if current_user.idioma in IDIOMAS else "es"
    if session.get("idioma") in IDIOMAS:
        return session["idioma"]
    return request.accept_languages.best_match(IDIOMAS) or "es"


def ui_message(exc: DomainError) -> str:
    """A domain error as the person reading the page should see it (translated)."""
    return str(UI_MESSAGES_BY_CODE.get(exc.code) or _(exc.message))


def _security_headers(response):
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def page_url(page: int, **extra) -> str:
    """This page's URL with its filters kept and another page number."""
    args = {k: v for k, v in request.args.items() if k != "fragmento"}
    return url_for(request.endpoint, **(request.view_args or {}), **{**args, "page": page, **extra})


def register_panels(app: Flask) -> None:
    """Languages, template helpers and security headers of the HTML panels."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "es")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", os.environ.get("APP_TIMEZONE") or "UTC")
    babel.init_app(app, locale_selector=select_locale)
    app.after_request(_security_headers)
    # Globals, not a context processor: imported macros (``_macros.html as m``) see them too.
    app.jinja_env.globals.update(
        ESTADO_LABELS=paneles.ESTADO_LABELS, PRIORIDAD_LABELS=paneles.PRIORIDAD_LABELS,
        ROL_LABELS=paneles.ROL_LABELS, CANAL_LABELS=paneles.CANAL_LABELS,
        CAMPO_LABELS=paneles.CAMPO_LABELS, IDIOMA_LABELS=paneles.IDIOMA_LABELS,
        es_vencido=paneles.es_vencido, page_url=page_url, csrf_token=generate_csrf,
        current_user=current_user, has_endpoint=lambda name: name in current_app.view_functions,
    )
    app.context_processor(lambda: {"locale": str(get_locale() or "es")})
    app.jinja_env.filters["t"] = lambda s: _(s) if s else ""
    app.jinja_env.filters["fecha"] = lambda d, fmt="short": format_datetime(d, fmt) if d else ""


def home_for(user: Usuario) -> str:
    return {"admin": url_for("panel_admin"), "ingeniero": url_for("panel_ingeniero")}.get(
        user.rol, url_for("panel_usuario"))


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def form_submit(form, action):
    """Run ``action`` for a valid form and commit; a refused change puts its errors on the form.

    Returns what ``action`` returned (or True), or None when nothing was saved."""
    if not form.validate_on_submit():
        return None
    try:
        result = action()
        db.session.commit()
    except (ValidationFailed, Conflict) as exc:
        db.session.rollback()
        placed = False
        for name, message in exc.fields.items():
            field = getattr(form, name.split(".")[0], None)
            if field is not None and hasattr(field, "errors"):
                field.errors = [*field.errors, _(message)]
                placed = True
        if not placed:
            form.form_errors.append(ui_message(exc))
        return None
    return True if result is None else result


def _status(form_or_forms) -> int:
    """200 for a page shown, 422 when it comes back with field errors."""
    forms = form_or_forms if isinstance(form_or_forms, (list, tuple)) else [form_or_forms]
    return 422 if request.method == "POST" and any(f.errors for f in forms) else 200


def _filters(defaults: dict | None = None) -> tuple[TicketFilters, dict]:
    """The list filters of the query string, ignoring empty inputs; bad ones are reported."""
    args = {k: v for k, v in request.args.items() if v.strip() and k != "fragmento"}
    try:
        return parse(TicketFilters, {**(defaults or {}), **args}), {}
    except ValidationFailed as exc:
        return TicketFilters(**(defaults or {})), {k: _("This value is not valid.") for k in exc.fields}


def _categoria_choices(actual=None) -> list[tuple[str, str]]:
    rows = db.session.execute(select(Categoria).where(Categoria.activa.is_(True))
                              .order_by(Categoria.nombre)).scalars().all()
    nombres = [c.nombre for c in rows]
    if actual is None:
        return [("", _("Choose a category"))] + [(n, n) for n in nombres]
    if actual.nombre not in nombres:
        nombres.append(actual.nombre)
    return [(n, n) for n in nombres]


def _list_page(template: str, f: TicketFilters, base_scope=None, **context):
    if request.args.get("vencidos"):  # the "Overdue" counter's list, within the caller's scope
        scope = tickets.scope_clause(current_user) if base_scope is None else base_scope
        base_scope = and_(scope, paneles.vencido_clause())
    items, total = tickets.listar(current_user, f, base_scope)
    pagina = paneles.Pagina(items, total, f.page, f.per_page)
    if request.args.get("fragmento"):
        return render_template("_ticket_rows.html", pagina=pagina, **context)
    return render_template(template, pagina=pagina, filtros=f, **context)


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
            session.pop("idioma", None)  # from now on the account's language rules
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        g.login_failed = True
        form.password.errors.append(_("Wrong username or password."))
    status = 401 if g.get("login_failed") else _status(form)
    return render_template("login.html", form=form), status


@route("/logout", methods=["POST"])
def logout():
    """End the session."""
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
        raise ValidationFailed("Unknown language.", fields={"idioma": "Unknown language."})
    return redirect(_safe_next(request.form.get("next")) or url_for("index"))


@route("/tickets", methods=["GET", "POST"])
@role_required()
def panel_usuario():
    """Usuario panel: the new-ticket form and my tickets (their estado refreshes live)."""
    form = TicketForm()
    form.categoria.choices = _categoria_choices()
    created = form_submit(form, lambda: tickets.crear_ticket(parse(TicketCreate, {
        **form.data, "etiquetas": etiquetas_lista(form.etiquetas.data)}), usuario=current_user, canal="web"))
    if created:
        flash(_("Ticket %(numero)s created. We will keep you informed.", numero=created.numero_ticket), "success")
        return redirect(url_for("ticket_detalle", numero=created.numero_ticket))
    f, filter_errors = _filters()
    return _list_page("panel_usuario.html", f, tickets.Ticket.usuario_id == current_user.id,
                      form=form, filter_errors=filter_errors), _status(form)


@route("/tickets/ingeniero")
@role_required("ingeniero")
def panel_ingeniero():
    """Engineer dashboard: counters per estado, overdue, and the tickets assigned to me."""
    f, filter_errors = _filters()
    return _list_page("panel_ingeniero.html", f, contadores=paneles.contadores(current_user),
                      filter_errors=filter_errors)


@route("/tickets/admin")
@role_required("admin")
def panel_admin():
    """Admin panel: every ticket with filters, counters and the assign dialog."""
    f, filter_errors = _filters()
    return _list_page("panel_admin.html", f, contadores=paneles.contadores(current_user),
                      filter_errors=filter_errors, ingenieros=paneles.ingenieros_con_carga(),
                      categorias=[c for c in _categoria_choices() if c[0]], asignar_form=AsignarForm()), 400 if filter_errors else 200


def _detalle(ticket, status: int = 200, **forms):
    """The detail page of ``ticket`` for the current user (``forms`` replace the blank ones)."""
    hilo = tickets.mensajes(ticket, current_user)  # reading marks the other side's messages read
    db.session.commit()
    edit = forms.pop("edit_form", None) or TicketEditForm(
        formdata=None, obj=ticket, categoria=ticket.categoria.nombre,
        etiquetas=", ".join(e.nombre for e in ticket.etiquetas))
    edit.categoria.choices = _categoria_choices(ticket.categoria)
    context = {
        "ticket": ticket, "hilo": hilo, "eventos": tickets.history(ticket, current_user),
        "notas": ticket.notas if current_user.es_staff else [],
        "moves": tickets.allowed_moves(ticket, current_user),
        "puede_editar": tickets.can_edit(ticket, current_user),
        "puede_escribir": tickets.can_write(ticket, current_user),
        "puede_anotar": tickets.can_manage(ticket, current_user),
        "edit_form": edit, "mensaje_form": forms.pop("mensaje_form", None) or MensajeForm(formdata=None),
        "nota_form": forms.pop("nota_form", None) or NotaForm(formdata=None),
        "asignar_form": forms.pop("asignar_form", None) or AsignarForm(formdata=None),
        "ingenieros": paneles.ingenieros_con_carga() if current_user.rol == "admin" else [],
    }
    return render_template("ticket_detalle.html", **context), status


@route("/tickets/<numero>")
@role_required()
def ticket_detalle(numero: str):
    """One ticket; fields, thread, notes and buttons depend on who is looking.
    ``?fragmento=hilo`` returns the public thread alone (the page refreshes it live)."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    if request.args.get("fragmento") == "hilo":
        hilo = tickets.mensajes(ticket, current_user)  # seen on screen: the other side's become read
        db.session.commit()
        return render_template("_hilo.html", hilo=hilo)
    return _detalle(ticket)


@route("/tickets/<numero>/estado", methods=["POST"])
@role_required()
def ticket_estado(numero: str):
    """Move the ticket (the buttons are ``tickets.allowed_moves``)."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    nuevo = parse(EstadoChange, {"estado": request.form.get("estado")}).estado
    try:
        tickets.cambiar_estado(ticket, current_user, nuevo)
        db.session.commit()
        flash(_("Status changed to “%(estado)s”.", estado=paneles.ESTADO_LABELS[nuevo]), "success")
    except (Conflict, Forbidden) as exc:
        db.session.rollback()
        flash(ui_message(exc), "danger")
    return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket))


@route("/tickets/<numero>/mensajes", methods=["POST"])
@role_required()
def ticket_mensaje(numero: str):
    """Post a public reply on the thread."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    form = MensajeForm()
    if form_submit(form, lambda: tickets.agregar_mensaje(ticket, current_user, form.cuerpo.data.strip())):
        flash(_("Reply sent."), "success")
        return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket, _anchor="hilo"))
    return _detalle(ticket, _status(form), mensaje_form=form)


@route("/tickets/<numero>/notas", methods=["POST"])
@role_required("ingeniero", "admin")
def ticket_nota(numero: str):
    """Add an internal note (staff only; never shown to the requester)."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    form = NotaForm()
    if form_submit(form, lambda: tickets.agregar_nota(ticket, current_user, form.nota.data.strip())):
        flash(_("Internal note added."), "success")
        return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket, _anchor="notas"))
    return _detalle(ticket, _status(form), nota_form=form)


@route("/tickets/<numero>/editar", methods=["POST"])
@role_required()
def ticket_editar(numero: str):
    """Edit fields and tags; only what changed is sent (and recorded in the history)."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    form = TicketEditForm()
    form.categoria.choices = _categoria_choices(ticket.categoria)

    def cambios():
        data = {**form.data, "etiquetas": etiquetas_lista(form.etiquetas.data)}
        actual = {"titulo": ticket.titulo, "descripcion": ticket.descripcion, "prioridad": ticket.prioridad,
                  "categoria": ticket.categoria.nombre, "etiquetas": [e.nombre for e in ticket.etiquetas]}
        changed = {k: data[k] for k in actual if data[k] != actual[k]}
        return tickets.actualizar_ticket(ticket, current_user, parse(TicketUpdate, changed))

    if form_submit(form, cambios):
        flash(_("Ticket updated."), "success")
        return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket))
    return _detalle(ticket, _status(form), edit_form=form)


@route("/tickets/<numero>/asignar", methods=["POST"])
@role_required("admin")
def ticket_asignar(numero: str):
    """Assign an engineer (empty: unassign); back to where the admin came from."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    form = AsignarForm()
    valor = (form.ingeniero_id.data or "").strip()
    if valor and not valor.isdigit():
        form.ingeniero_id.errors = [_("Choose an engineer from the list.")]
    elif form_submit(form, lambda: tickets.asignar(ticket, current_user, int(valor) if valor else None)):
        nombre = ticket.ingeniero.usuario.nombre if ticket.ingeniero else None
        flash(_("%(numero)s assigned to %(nombre)s.", numero=ticket.numero_ticket, nombre=nombre) if nombre
              else _("%(numero)s is unassigned.", numero=ticket.numero_ticket), "success")
        return redirect(_safe_next(request.form.get("next")) or url_for("ticket_detalle", numero=ticket.numero_ticket))
    return _detalle(ticket, 422, asignar_form=form)


@route("/admin/ingenieros", methods=["GET", "POST"])
@role_required("admin")
def admin_ingenieros():
    """Engineers: specialty, availability, open load; add one."""
    form = IngenieroForm()
    if form_submit(form, lambda: usuarios.crear_ingeniero(parse(IngenieroCreate, form.data))):
        flash(_("Engineer %(nombre)s added.", nombre=form.nombre.data), "success")
        return redirect(url_for("admin_ingenieros"))
    return render_template("admin_ingenieros.html", form=form,
                           ingenieros=paneles.ingenieros_con_carga()), _status(form)


@route("/admin/ingenieros/<int:ingeniero_id>", methods=["POST"])
@role_required("admin")
def admin_ingeniero_cambiar(ingeniero_id: int):
    """Toggle an engineer's availability or account (``campo`` = disponible | activo)."""
    ingeniero = db.get_or_404(Ingeniero, ingeniero_id)
    campo = request.form.get("campo")
    if campo not in ("disponible", "activo"):
        raise ValidationFailed("Some fields are not valid.", fields={"campo": "disponible or activo"})
    if campo == "activo" and ingeniero.usuario_id == current_user.id:
        raise Conflict("You cannot deactivate your own account.")
    usuarios.actualizar_ingeniero(ingeniero, IngenieroUpdate(**{campo: request.form.get("valor") == "1"}))
    db.session.commit()
    flash(_("%(nombre)s updated.", nombre=ingeniero.usuario.nombre), "success")
    return redirect(url_for("admin_ingenieros"))


@route("/admin/usuarios", methods=["GET", "POST"])
@role_required("admin")
def admin_usuarios():
    """Accounts with their role and language; add one."""
    form = UsuarioForm()
    if form_submit(form, lambda: usuarios.crear_usuario(parse(UsuarioCreate, {
            **form.data, "especialidad": form.especialidad.data or None}))):
        flash(_("Account %(username)s created.", username=form.username.data), "success")
        return redirect(url_for("admin_usuarios"))
    page = page_args()[0]
    return render_template("admin_usuarios.html", form=form, pagina=paneles.usuarios_pagina(page)), _status(form)


@route("/admin/usuarios/<int:usuario_id>/activo", methods=["POST"])
@role_required("admin")
def admin_usuario_activo(usuario_id: int):
    """Deactivate (after confirmation) or reactivate an account."""
    usuario = db.get_or_404(Usuario, usuario_id)
    try:
        usuarios.cambiar_activo(usuario, current_user, request.form.get("valor") == "1")
        db.session.commit()
        flash(_("%(nombre)s updated.", nombre=usuario.nombre), "success")
    except Conflict as exc:
        db.session.rollback()
        flash(ui_message(exc), "danger")
    return redirect(_safe_next(request.form.get("next")) or url_for("admin_usuarios"))


@route("/admin/categorias", methods=["GET", "POST"])
@role_required("admin")
def admin_categorias():
    """Categories of new tickets; add or retire one."""
    form = CategoriaForm()
    if form_submit(form, lambda: tickets.crear_categoria(form.nombre.data.strip(),
                                                         (form.descripcion.data or "").strip() or None)):
        flash(_("Category %(nombre)s added.", nombre=form.nombre.data.strip()), "success")
        return redirect(url_for("admin_categorias"))
    categorias = db.session.execute(select(Categoria).order_by(Categoria.nombre)).scalars().all()
    return render_template("admin_categorias.html", form=form, categorias=categorias), _status(form)


@route("/admin/categorias/<int:categoria_id>", methods=["POST"])
@role_required("admin")
def admin_categoria_activa(categoria_id: int):
    """Retire a category from new tickets (after confirmation) or bring it back."""
    categoria = db.get_or_404(Categoria, categoria_id)
    tickets.cambiar_categoria_activa(categoria, request.form.get("valor") == "1")
    db.session.commit()
    flash(_("Category %(nombre)s updated.", nombre=categoria.nombre), "success")
    return redirect(url_for("admin_categorias"))


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
    page, per_page = page_args()
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


# --- reports: excel, pdf, statistics ---------------------------------------------------

@route("/api/tickets/descargar/excel")
@role_required()
def api_descargar_excel():
    """Excel of mis|ingeniero|todos tickets with the list filters (403 when the role may not)."""
    f = parse_query(reports.ExcelQuery, request.args)
    archivo = reports.exportar_excel(current_user, f)
    return send_file(archivo, mimetype=reports.XLSX_MIMETYPE, as_attachment=True,
                     download_name=reports.excel_filename(f.tipo), max_age=0)


@route("/api/tickets/<int:ticket_id>/pdf")
@role_required()
def api_ticket_pdf(ticket_id: int):
    """PDF report of one ticket (a usuario's copy has no internal notes)."""
    contenido, nombre = reports.ticket_pdf(ticket_id, current_user)
    return send_file(io.BytesIO(contenido), mimetype="application/pdf", as_attachment=True,
                     download_name=nombre, max_age=0)


@route("/api/estadisticas")
@role_required()
def api_estadisticas():
    """Statistics of the tickets the caller may see."""
    return jsonify(reports.estadisticas(current_user, parse_query(reports.Periodo, request.args)))


@route("/estadisticas")
@role_required()
def pagina_estadisticas():
    """Statistics dashboard for the caller's role."""
    periodo = parse_query(reports.Periodo, request.args)
    return render_template("estadisticas.html", stats=reports.estadisticas(current_user, periodo), periodo=periodo,
                           numero=format_decimal)


# --- email: configuration and outbox ---------------------------------------------------
# Configuración > Email (settings stored in the database over .env, audited) and the outbox
# the admin watches: failed emails with their error and a "reintentar" button.

@route("/admin/configuracion/email", methods=["GET", "POST"])
@role_required("admin")
def admin_config_email():
    """Configuración > Email: SMTP, sender, notification contacts; the password is write-only."""
    errores = {}
    if request.method == "POST":
        try:
            data = parse(email_manager.ConfiguracionEmailUpdate, email_manager.datos_de_formulario(request.form))
            campos = email_manager.actualizar_configuracion(data, current_user)
            db.session.commit()
            flash(_("Email settings saved.") if campos else _("Nothing changed."), "success")
            return redirect(url_for("admin_config_email"))
        except ValidationFailed as exc:
            db.session.rollback()
            errores = exc.fields or {"__all__": exc.message}
    return render_template("admin_config_email.html", cfg=email_manager.configuracion_dict(), errores=errores,
                           enviado=request.form if errores else None, auditoria=email_manager.auditoria(),
                           contadores=email_manager.contadores_correos()), 422 if errores else 200


@route("/admin/configuracion/email/prueba", methods=["POST"])
@role_required("admin")
def admin_config_email_prueba():
    """Send the test email now and say whether the SMTP server took it."""
    try:
        data = parse(email_manager.CorreoPrueba, {"destinatario": request.form.get("destinatario") or None})
        destino = email_manager.enviar_prueba(data.destinatario, current_user)
        flash(_("Test email sent to %(email)s.", email=destino), "success")
    except DomainError as exc:
        flash(exc.message, "danger")
    return redirect(url_for("admin_config_email"))


@route("/admin/correos")
@role_required("admin")
def admin_correos():
    """The outbox: failed emails first, with their last error and a retry button."""
    estado = request.args.get("estado", "fallido")
    estado = estado if estado in ("pendiente", "enviando", "enviado", "fallido", "todos") else "fallido"
    page = page_args()[0]
    items, total = email_manager.listar_correos(None if estado == "todos" else estado, page)
    return render_template("admin_correos.html", correos=items, total=total, estado=estado, page=page,
                           contadores=email_manager.contadores_correos())


@route("/admin/correos/<int:correo_id>/reintentar", methods=["POST"])
@role_required("admin")
def admin_correo_reintentar(correo_id: int):
    """Put a failed email back in the queue."""
    try:
        email_manager.reintentar(correo_id)
        db.session.commit()
        flash(_("The email is queued again."), "success")
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "danger")
    return redirect(url_for("admin_correos", estado=request.form.get("estado", "fallido")))


@route("/api/configuracion/email")
@role_required("admin")
def api_config_email():
    """Effective email settings (database over .env); the password is never returned."""
    return jsonify({**email_manager.configuracion_dict(),
                    "auditoria": [email_manager.cambio_dict(c) for c in email_manager.auditoria()]})


@route("/api/configuracion/email", methods=["PUT"], endpoint="api_config_email_put")
@role_required("admin")
def api_config_email_put():
    """Change email settings; every change is audited (which fields, never the password)."""
    campos = email_manager.actualizar_configuracion(parse(email_manager.ConfiguracionEmailUpdate, json_body()),
                                                    current_user)
    db.session.commit()
    return jsonify({**email_manager.configuracion_dict(), "cambiados": campos})


@route("/api/configuracion/email/prueba", methods=["POST"])
@role_required("admin")
def api_config_email_prueba():
    """Send a test email now (502 with the SMTP error when it cannot)."""
    data = parse(email_manager.CorreoPrueba, request.get_json(silent=True) or {})
    return jsonify({"enviado": True, "destinatario": email_manager.enviar_prueba(data.destinatario, current_user)})


@route("/api/correos")
@role_required("admin")
def api_correos():
    """Outbox rows, newest first (``estado`` filters)."""
    estado = request.args.get("estado") or None
    if estado is not None and estado not in ("pendiente", "enviando", "enviado", "fallido"):
        raise ValidationFailed("Unknown estado.", fields={"estado": "pendiente, enviando, enviado or fallido"})
    page, per_page = page_args()
    items, total = email_manager.listar_correos(estado, page, per_page)
    return jsonify(page_dict([email_manager.correo_dict(c) for c in items], total, page, per_page))


@route("/api/correos/<int:correo_id>/reintentar", methods=["POST"])
@role_required("admin")
def api_correo_reintentar(correo_id: int):
    """Queue a failed email again (409 if it has not failed)."""
    correo = email_manager.reintentar(correo_id)
    db.session.commit()
    return jsonify(email_manager.correo_dict(correo))
