"""Routes: the HTML panels (usuario, ingeniero, admin), the ticket page and its forms, admin pages."""

from __future__ import annotations

from flask import (
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

import adjuntos
import asignacion
import paneles
import tickets
import usuarios
from auth import (
    role_required,
)
from errors import ValidationFailed
from forms import (
    AsignarForm,
    CategoriaForm,
    IngenieroForm,
    MensajeForm,
    NotaForm,
    TicketEditForm,
    TicketForm,
    UsuarioForm,
    etiquetas_lista,
)
from models import Categoria, Ingeniero, Usuario, db
from rutas import route
from rutas.adjuntos import archivos_de_la_peticion
from rutas.comun import (
    al_fallar_volver_a,
    categoria_choices,
    form_status,
    form_submit,
    list_filters,
    list_page,
    paginar,
    safe_next,
)
from schemas import (
    EstadoChange,
    IngenieroCreate,
    IngenieroUpdate,
    TicketCreate,
    TicketUpdate,
    UsuarioCreate,
    parse,
)


@route("/tickets", methods=["GET", "POST"])
@role_required()
def panel_usuario():
    """Usuario panel: the new-ticket form and my tickets (their estado refreshes live)."""
    form = TicketForm()
    form.categoria.choices = categoria_choices()

    def crear():
        ticket = tickets.crear_ticket(parse(TicketCreate, {**form.data, "etiquetas": etiquetas_lista(form.etiquetas.data)}),
                                      usuario=current_user, canal="web")
        adjuntos.guardar_varios(archivos_de_la_peticion(), ticket_id=ticket.id, subido_por_id=current_user.id)
        return ticket

    created = form_submit(form, crear)
    if created:
        flash(_("Ticket %(numero)s created. We will keep you informed.", numero=created.numero_ticket), "success")
        return redirect(url_for("ticket_detalle", numero=created.numero_ticket))
    f, filter_errors = list_filters()
    return list_page("panel_usuario.html", f, tickets.Ticket.usuario_id == current_user.id,
                      form=form, filter_errors=filter_errors), form_status(form)


@route("/tickets/ingeniero")
@role_required("ingeniero")
def panel_ingeniero():
    """Engineer dashboard: counters per estado, overdue, and the tickets assigned to me."""
    f, filter_errors = list_filters()
    return list_page("panel_ingeniero.html", f, contadores=paneles.contadores(current_user),
                      filter_errors=filter_errors)


@route("/tickets/admin")
@role_required("admin")
def panel_admin():
    """Admin panel: every ticket with filters, counters and the assign dialog."""
    f, filter_errors = list_filters()
    return list_page("panel_admin.html", f, contadores=paneles.contadores(current_user),
                      filter_errors=filter_errors, ingenieros=paneles.ingenieros_con_carga(),
                      categorias=[c for c in categoria_choices() if c[0]], asignar_form=AsignarForm()), 400 if filter_errors else 200


def _detalle(ticket, status: int = 200, **forms):
    """The detail page of ``ticket`` for the current user (``forms`` replace the blank ones)."""
    ticket_id = ticket.id
    hilo = tickets.marcar_leidos(ticket, current_user)  # reading marks the other side's messages read
    db.session.commit()
    # The commit expired the ticket: read it again with its people and tags in two statements
    # (lazy loads took five).
    ticket = tickets.uno(ticket_id)
    edit = forms.pop("edit_form", None) or TicketEditForm(
        formdata=None, obj=ticket, categoria=ticket.categoria.nombre,
        etiquetas=", ".join(e.nombre for e in ticket.etiquetas))
    edit.categoria.choices = categoria_choices(ticket.categoria)
    context = {
        "ticket": ticket, "hilo": hilo, "eventos": tickets.history(ticket, current_user),
        "notas": tickets.notas_visibles(ticket, current_user),
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
        hilo = tickets.marcar_leidos(ticket, current_user)  # seen on screen: the other side's become read
        db.session.commit()
        return render_template("_hilo.html", hilo=hilo)
    return _detalle(ticket)


def _leido_antes_de_otro_cambio(ticket, volver: str | None = None):
    """The ticket page's forms (estado, edit, assign) carry the ``version`` they were rendered
    from: a submit based on an older one is refused, nothing saved, with a flash, back to
    ``volver`` (default: the ticket as it is now). None when the form is current (or has no version)."""
    enviada = request.form.get("version")
    if not enviada or tickets.es_version_actual(ticket, [enviada]):
        return None
    volver = volver or url_for("ticket_detalle", numero=ticket.numero_ticket)
    flash(_("Someone else changed this ticket while you had it open; nothing was saved. "
            "Check it as it is now and try again."), "danger")
    return redirect(volver)


@route("/tickets/<numero>/estado", methods=["POST"])
@role_required()
def ticket_estado(numero: str):
    """Move the ticket (the buttons are ``tickets.allowed_moves``)."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    if obsoleto := _leido_antes_de_otro_cambio(ticket):
        return obsoleto
    nuevo = parse(EstadoChange, {"estado": request.form.get("estado")}).estado
    al_fallar_volver_a(url_for("ticket_detalle", numero=ticket.numero_ticket))
    tickets.cambiar_estado(ticket, current_user, nuevo)
    db.session.commit()
    flash(_("Status changed to “%(estado)s”.", estado=paneles.ESTADO_LABELS[nuevo]), "success")
    return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket))


def _escribir(numero: str, form, texto: str, accion, aviso: str, ancla: str, form_kw: str, adjunto_de: str):
    """A reply or a note (with its attached files): the form's ``texto`` to the domain ``accion``,
    back to its place."""
    ticket = tickets.get_visible_by_numero(numero, current_user)

    def escribir():
        escrito = accion(ticket, current_user, getattr(form, texto).data.strip())
        adjuntos.guardar_varios(archivos_de_la_peticion(), ticket_id=ticket.id, subido_por_id=current_user.id,
                                **{adjunto_de: escrito.id})

    if form_submit(form, escribir):
        flash(aviso, "success")
        return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket, _anchor=ancla))
    return _detalle(ticket, form_status(form), **{form_kw: form})


@route("/tickets/<numero>/mensajes", methods=["POST"])
@role_required()
def ticket_mensaje(numero: str):
    """Post a public reply on the thread."""
    return _escribir(numero, MensajeForm(), "cuerpo", tickets.agregar_mensaje, _("Reply sent."), "hilo",
                     "mensaje_form", "mensaje_id")


@route("/tickets/<numero>/notas", methods=["POST"])
@role_required("ingeniero", "admin")
def ticket_nota(numero: str):
    """Add an internal note (staff only; never shown to the requester)."""
    return _escribir(numero, NotaForm(), "nota", tickets.agregar_nota, _("Internal note added."), "notas",
                     "nota_form", "nota_id")


@route("/tickets/<numero>/editar", methods=["POST"])
@role_required()
def ticket_editar(numero: str):
    """Edit fields and tags; only what changed is sent (and recorded in the history)."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    if obsoleto := _leido_antes_de_otro_cambio(ticket):
        return obsoleto
    form = TicketEditForm()
    form.categoria.choices = categoria_choices(ticket.categoria)

    def cambios():
        data = {**form.data, "etiquetas": etiquetas_lista(form.etiquetas.data)}
        actual = {"titulo": ticket.titulo, "descripcion": ticket.descripcion, "prioridad": ticket.prioridad,
                  "categoria": ticket.categoria.nombre, "etiquetas": [e.nombre for e in ticket.etiquetas]}
        changed = {k: data[k] for k in actual if data[k] != actual[k]}
        return tickets.actualizar_ticket(ticket, current_user, parse(TicketUpdate, changed))

    if form_submit(form, cambios):
        flash(_("Ticket updated."), "success")
        return redirect(url_for("ticket_detalle", numero=ticket.numero_ticket))
    return _detalle(ticket, form_status(form), edit_form=form)


@route("/tickets/<numero>/asignar", methods=["POST"])
@role_required("admin")
def ticket_asignar(numero: str):
    """Assign an engineer (empty: unassign); back to where the admin came from."""
    ticket = tickets.get_visible_by_numero(numero, current_user)
    volver = safe_next(request.form.get("next")) or url_for("ticket_detalle", numero=ticket.numero_ticket)
    if obsoleto := _leido_antes_de_otro_cambio(ticket, volver):
        return obsoleto
    form = AsignarForm()
    valor = (form.ingeniero_id.data or "").strip()
    if valor and not valor.isdigit():
        form.ingeniero_id.errors = [_("Choose an engineer from the list.")]
    elif form_submit(form, lambda: tickets.asignar(ticket, current_user, int(valor) if valor else None)):
        nombre = ticket.ingeniero.usuario.nombre if ticket.ingeniero else None
        flash(_("%(numero)s assigned to %(nombre)s.", numero=ticket.numero_ticket, nombre=nombre) if nombre
              else _("%(numero)s is unassigned.", numero=ticket.numero_ticket), "success")
        return redirect(volver)
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
                           ingenieros=paneles.ingenieros_con_carga()), form_status(form)


@route("/admin/ingenieros/<int:ingeniero_id>", methods=["POST"])
@role_required("admin")
def admin_ingeniero_cambiar(ingeniero_id: int):
    """Toggle an engineer's availability or account (``campo`` = disponible | activo)."""
    ingeniero = db.get_or_404(Ingeniero, ingeniero_id)
    campo = request.form.get("campo")
    if campo not in ("disponible", "activo"):
        raise ValidationFailed("Some fields are not valid.", fields={"campo": "disponible or activo"})
    al_fallar_volver_a(url_for("admin_ingenieros"))
    usuarios.actualizar_ingeniero(ingeniero, IngenieroUpdate(**{campo: request.form.get("valor") == "1"}),
                                  current_user)
    db.session.commit()
    flash(_("%(nombre)s updated.", nombre=ingeniero.usuario.nombre), "success")
    n = asignacion.oferta_redistribuir(ingeniero)
    if n:
        flash(_("%(nombre)s cannot take work and still has %(n)s open tickets: use “Redistribute” on their row "
                "to reassign them automatically.", nombre=ingeniero.usuario.nombre, n=n), "warning")
    return redirect(url_for("admin_ingenieros"))


@route("/admin/ingenieros/<int:ingeniero_id>/redistribuir", methods=["POST"])
@role_required("admin")
def admin_ingeniero_redistribuir(ingeniero_id: int):
    """Reassign an unavailable engineer's open tickets through the automatic assignment rules."""
    al_fallar_volver_a(url_for("admin_ingenieros"))
    resultado = asignacion.redistribuir(ingeniero_id, current_user)
    db.session.commit()
    flash(_("%(reasignados)s tickets reassigned, %(sin)s left unassigned (the admins were alerted).",
            reasignados=len(resultado.reasignados), sin=len(resultado.sin_asignar)),
          "warning" if resultado.sin_asignar else "success")
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
    pagina = paginar(select(Usuario).order_by(Usuario.nombre, Usuario.id), 25)
    return render_template("admin_usuarios.html", form=form, pagina=pagina), form_status(form)


@route("/admin/usuarios/<int:usuario_id>/activo", methods=["POST"])
@role_required("admin")
def admin_usuario_activo(usuario_id: int):
    """Deactivate (after confirmation) or reactivate an account."""
    usuario = db.get_or_404(Usuario, usuario_id)
    volver = safe_next(request.form.get("next")) or url_for("admin_usuarios")
    al_fallar_volver_a(volver)
    usuarios.cambiar_activo(usuario, current_user, request.form.get("valor") == "1")
    db.session.commit()
    flash(_("%(nombre)s updated.", nombre=usuario.nombre), "success")
    return redirect(volver)


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
    return render_template("admin_categorias.html", form=form, categorias=categorias), form_status(form)


@route("/admin/categorias/<int:categoria_id>", methods=["POST"])
@role_required("admin")
def admin_categoria_activa(categoria_id: int):
    """Retire a category from new tickets (after confirmation) or bring it back."""
    categoria = db.get_or_404(Categoria, categoria_id)
    tickets.cambiar_categoria_activa(categoria, request.form.get("valor") == "1")
    db.session.commit()
    flash(_("Category %(nombre)s updated.", nombre=categoria.nombre), "success")
    return redirect(url_for("admin_categorias"))
