"""Helpers shared by the route modules: request parsing, form handling, list pages, links."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, inspect, select

import busqueda
import paneles
import sla
import tickets
from errors import N_, Conflict, DomainError, ValidationFailed, traducir
from models import Categoria, Usuario, db
from schemas import (
    FiltroEnvios,
    TicketFilters,
    fila_dict,
    page_dict,
    parse,
    ticket_dict,
)


def page_args(default_per_page: int = 50) -> tuple[int, int]:
    """``page`` and ``per_page`` from the query string, clamped to sane ranges (a huge page
    number would overflow the database's OFFSET)."""
    page = min(max(request.args.get("page", 1, type=int), 1), 100_000)
    per_page = min(max(request.args.get("per_page", default_per_page, type=int), 1), 100)
    return page, per_page


def paginar(stmt, default_per_page: int = 50) -> paneles.Pagina:
    """One page of ``stmt`` from ``page``/``per_page`` in the query string (clamped): a
    ``paneles.Pagina`` (items, total, page, per_page), which ``m.pagination`` renders. Every
    paginated list goes through here."""
    return paneles.paginar(stmt, *page_args(default_per_page))


def rango_fechas() -> tuple:
    """``desde`` and ``hasta`` of the query string as ISO 8601 datetimes (None when absent; 422 when bad)."""
    def fecha(nombre):
        valor = request.args.get(nombre)
        if not valor:
            return None
        try:
            return datetime.fromisoformat(valor)
        except ValueError as exc:
            raise ValidationFailed("Some fields are not valid.", fields={nombre: N_("ISO 8601 date.")}) from exc

    return fecha("desde"), fecha("hasta")


def json_body() -> dict:
    """The request's JSON object, or a 400/415 that says what is wrong with it."""
    if not request.is_json:
        raise DomainError("Send a JSON body with Content-Type: application/json.",
                          status=415, code="unsupported_media_type")
    if (request.content_length or 0) > current_app.config["MAX_JSON_BYTES"]:
        raise DomainError("The JSON body is too large.", status=413, code="request_entity_too_large")
    data = request.get_json(silent=True)  # app.SafeJSONProvider: too deep a nesting is invalid
    if data is None:
        raise DomainError("The body is not valid JSON.", status=400, code="invalid_json")
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_body")
    return data


def ticket_response(ticket, status: int = 200, *, recargar: bool = True):
    """The ticket as stored after the commit (reloaded with what its JSON shows in one joined
    SELECT), with its version as the ``ETag`` (what ``If-Match`` sends back). ``recargar=False``:
    ``ticket`` already holds what its JSON shows (a creation's new ticket). A GET of one ticket
    answers through ``schemas.fila_dict`` instead (tests/test_listas.py holds the two equal)."""
    if recargar:
        ticket_id = inspect(ticket).identity[0]  # not ticket.id: that would refresh the expired row first
        ticket = tickets.uno(ticket_id, populate_existing=True)
    tickets.cargar_notas(ticket, current_user)
    return con_version(ticket_dict(ticket, current_user), ticket.version), status


def con_version(datos: dict, version: int):
    """A ticket's JSON with its version as the ``ETag`` (what ``If-Match`` sends back)."""
    response = jsonify(datos)
    response.set_etag(str(version))
    return response


def comprobar_version(ticket, version: int | None = None, *, anexo: bool = False) -> None:
    """Optimistic concurrency from the client: refuse the write when the client's read of
    ``ticket`` is stale. ``If-Match: "<version>"`` (the ETag of a GET) → 412; ``version`` in the
    body → 409. Neither: no check (older clients keep working; the write itself is still safe
    against concurrent ones, ``tickets.guardar``). ``anexo``: the write appends (a note), so
    compare with the row under its lock, as the append will see it."""
    if_match = request.if_match if request.if_match and not request.if_match.star_tag else None
    if if_match is None and version is None:
        return
    if anexo:
        tickets.bloquear(ticket)
    if if_match is not None:
        tickets.exigir_version(ticket, if_match.as_set(), status=412)  # strong comparison (RFC 9110)
    if version is not None:
        tickets.exigir_version(ticket, [version])


def contexto_lista() -> str:
    """What a keyset cursor is bound to: this list's path and filters (the viewer is added by
    ``tickets.listar``), never the page, its size or the cursor itself."""
    fuera = {"page", "per_page", "cursor", "fragmento"}
    return request.path + "?" + "&".join(f"{k}={v}" for k, v in sorted(request.args.items()) if k not in fuera)


def ticket_page(filters: TicketFilters, base_scope=None):
    """A ticket list as JSON: by ``page`` (exact ``total``, as always, except a search's capped
    count: ``total_exacto``) or by ``cursor`` (keyset; ``total`` and ``page`` as counted on the
    first page), with ``next_cursor``."""
    viewer = current_user._get_current_object()  # read per row: not through the proxy each time
    pagina = tickets.listar(viewer, filters, base_scope, with_notes=viewer.es_staff, contexto=contexto_lista())
    return jsonify({**page_dict([fila_dict(t, viewer) for t in pagina.items], pagina.total, pagina.page,
                                filters.per_page, total_exacto=pagina.total_exacto), "next_cursor": pagina.siguiente})


def al_fallar_volver_a(url: str) -> None:
    """From here on, a domain error in this HTML form route is flashed (translated) and the
    browser goes back to ``url``: app.py's one error handler does it, routes don't catch."""
    g.al_fallar_volver_a = url


# The query parameters a list page understands: links keep these and only these (an unknown
# one such as ``tipo`` or ``_method`` would collide with url_for's own arguments).
# Derived from the filter schemas, so a new filter is kept without touching this.
FILTER_PARAMS = (frozenset(TicketFilters.model_fields) | frozenset(FiltroEnvios.model_fields) | {"vencidos"}
                 # the WhatsApp inbox's and the Comunicaciones page's filters
                 | {"cliente_id", "numero", "direccion", "ticket", "cliente", "conversacion_id"})


def filter_args() -> dict[str, str]:
    """The known filter parameters of this request's query string."""
    return {k: v for k, v in request.args.items() if k in FILTER_PARAMS and k not in ("page", "cursor")}


def page_url(page: int, **extra) -> str:
    """This page's URL with its filters kept and another page number."""
    return url_for(request.endpoint, **(request.view_args or {}), **{**filter_args(), "page": page, **extra})


def home_for(user: Usuario) -> str:
    return {"admin": url_for("panel_admin"), "ingeniero": url_for("panel_ingeniero")}.get(
        user.rol, url_for("panel_usuario"))


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (the caller falls back to a home).

    Parsed, not pattern-matched, after normalising what browsers ignore or rewrite: control
    characters and whitespace are dropped and backslashes become slashes, so a tab or a
    backslash between two slashes is seen as the ``//evil.com`` a browser would follow; a
    target that needed normalising is refused outright."""
    if not target:
        return None
    limpio = "".join(ch for ch in target if ord(ch) > 0x20 and ord(ch) != 0x7F).replace("\\", "/")
    if limpio != target:
        return None  # a legitimate path of ours never carries these
    partes = urlsplit(limpio)
    if partes.scheme or partes.netloc or not limpio.startswith("/") or limpio.startswith("//"):
        return None
    return limpio


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
                field.errors = [*field.errors, traducir(message)]
                placed = True
        if not placed:
            form.form_errors.append(exc.mensaje())
        return None
    return True if result is None else result


def guardar_ajustes(guardar, volver: str, guardado: str):
    """The POST of a Configuración page (Email, WhatsApp): ``guardar()`` validates, changes the
    settings row and audits (it flushes and returns the changed fields); commit, flash ``guardado``
    (or "Nothing changed.") and go back to the page ``volver``. Returns ``(redirect, {})``; when
    the change is refused, rolls back and returns ``(None, errors)``: the translated message of
    each field (or ``__all__``), for the page to show the form again with a 422."""
    try:
        campos = guardar()
        db.session.commit()
    except ValidationFailed as exc:
        db.session.rollback()
        return None, {k: traducir(v) for k, v in exc.fields.items()} or {"__all__": exc.mensaje()}
    flash(guardado if campos else _("Nothing changed."), "success")
    return redirect(url_for(volver)), {}


def form_status(form_or_forms) -> int:
    """200 for a page shown, 422 when it comes back with field errors."""
    forms = form_or_forms if isinstance(form_or_forms, (list, tuple)) else [form_or_forms]
    return 422 if request.method == "POST" and any(f.errors for f in forms) else 200


def list_filters(defaults: dict | None = None) -> tuple[TicketFilters, dict]:
    """The list filters of the query string, ignoring empty inputs; bad ones are reported."""
    args = {k: v for k, v in request.args.items() if v.strip() and k != "fragmento"}
    try:
        return parse(TicketFilters, {**(defaults or {}), **args}), {}
    except ValidationFailed as exc:
        return TicketFilters(**(defaults or {})), {k: _("This value is not valid.") for k in exc.fields}


def categoria_choices(actual=None) -> list[tuple[str, str]]:
    rows = db.session.execute(select(Categoria).where(Categoria.activa.is_(True))
                              .order_by(Categoria.nombre)).scalars().all()
    nombres = [c.nombre for c in rows]
    if actual is None:
        return [("", _("Choose a category"))] + [(n, n) for n in nombres]
    if actual.nombre not in nombres:
        nombres.append(actual.nombre)
    return [(n, n) for n in nombres]


def list_page(template: str, f: TicketFilters, base_scope=None, **context):
    if request.args.get("vencidos"):  # the "Overdue" counter's list, within the caller's scope
        scope = tickets.scope_clause(current_user) if base_scope is None else base_scope
        base_scope = and_(scope, sla.vencido_clause())
    if request.args.get("fragmento") == "contadores":  # the counters' live region
        return render_template("_counters_items.html", filtros=f, **context)
    # "Next" follows the keyset cursor; the count stops at paneles.TOPE_CUENTA (the pager then
    # says "more than"): an exact COUNT of a million rows on every page view is most of its cost.
    pagina = tickets.listar(current_user, f, base_scope, contexto=contexto_lista(), tope=paneles.TOPE_CUENTA)
    context["fragmentos"] = busqueda.fragmentos([t.id for t in pagina.items], f.q) if f.q else {}
    if request.args.get("fragmento"):
        return render_template("_ticket_rows.html", pagina=pagina, **context)
    return render_template(template, pagina=pagina, filtros=f, **context)

