"""Routes: Configuración > Email and the outbox the admin watches."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

import ajustes_email
import correo_entrante
import envio_email
import openapi
import outbox
from auth import role_required
from models import CANALES_SALIDA, ESTADOS_SALIDA, db
from rutas import route
from rutas.comun import al_fallar_volver_a, guardar_ajustes, json_body, paginar
from schemas import (
    EnvioOut,
    FiltroEnvios,
    page_dict,
    parse,
    parse_query,
)

# --- email: configuration and outbox ---------------------------------------------------
# Configuración > Email (settings stored in the database over .env, audited; SMTP out, IMAP in) and the outbox
# the admin watches: failed emails with their error and a "reintentar" button.

@route("/admin/configuracion/email", methods=["GET", "POST"])
@role_required("admin")
def admin_config_email():
    """Configuración > Email: SMTP, sender, notification contacts, email in (IMAP); the passwords are write-only."""
    errores = {}
    if request.method == "POST":
        hecho, errores = guardar_ajustes(lambda: ajustes_email.actualizar_configuracion(
            parse(ajustes_email.ConfiguracionEmailUpdate, ajustes_email.datos_de_formulario(request.form)), current_user),
            "admin_config_email", _("Email settings saved."))
        if hecho is not None:
            return hecho
    return render_template("admin_config_email.html", cfg=ajustes_email.configuracion_dict(), errores=errores,
                           enviado=request.form if errores else None, auditoria=ajustes_email.auditoria(),
                           contadores=outbox.contadores("email")), 422 if errores else 200


@route("/admin/configuracion/email/prueba", methods=["POST"])
@role_required("admin")
def admin_config_email_prueba():
    """Send the test email now and say whether the SMTP server took it."""
    al_fallar_volver_a(url_for("admin_config_email"))
    data = parse(ajustes_email.CorreoPrueba, {"destinatario": request.form.get("destinatario") or None})
    destino = envio_email.enviar_prueba(data.destinatario, current_user)
    flash(_("Test email sent to %(email)s.", email=destino), "success")
    return redirect(url_for("admin_config_email"))


@route("/admin/configuracion/email/imap/prueba", methods=["POST"])
@role_required("admin")
def admin_config_email_imap_prueba():
    """Log in to the IMAP mailbox with the saved settings and say whether it worked."""
    al_fallar_volver_a(url_for("admin_config_email"))
    r = correo_entrante.probar_imap()
    flash(_("IMAP connection works: folder %(carpeta)s on %(servidor)s holds %(mensajes)s messages.", **r), "success")
    return redirect(url_for("admin_config_email"))


@route("/admin/correos")
@role_required("admin")
def admin_correos():
    """The outbox of every channel: failed messages first, with their last error and a retry button."""
    q = parse_query(FiltroEnvios, {"estado": "fallido", **request.args})
    pagina = paginar(outbox.consulta(q.estado_o_nada, q.canal))
    return render_template("admin_correos.html", correos=pagina.items, pagina=pagina, estado=q.estado, canal=q.canal,
                           canales=CANALES_SALIDA, contadores=outbox.contadores(q.canal))


@route("/admin/correos/<int:correo_id>/reintentar", methods=["POST"])
@role_required("admin")
def admin_correo_reintentar(correo_id: int):
    """Put a failed message back in the queue."""
    outbox.reintentar(correo_id)
    db.session.commit()
    flash(_("The message is queued again."), "success")
    return redirect(url_for("admin_correos", estado=request.form.get("estado", "fallido"),
                            canal=request.form.get("canal") or None))


@route("/api/configuracion/email", doc=openapi.op(
    "Configuración > Email: effective SMTP settings, sender, notification contacts and email in (IMAP mailbox, "
    "unknown senders, size limit), database over .env; the passwords are never returned, only "
    "password_configurada and imap_password_configurado", "admin", schema={"type": "object"}, tag="email"))
@role_required("admin")
def api_config_email():
    """Effective email settings (database over .env); the password is never returned."""
    return jsonify({**ajustes_email.configuracion_dict(),
                    "auditoria": [ajustes_email.cambio_dict(c) for c in ajustes_email.auditoria()]})


@route("/api/configuracion/email", methods=["PUT"], endpoint="api_config_email_put", doc=openapi.op(
    "Change email settings (fields left out stay; null goes back to .env; password and imap_password are "
    "write-only). "
    "Each contact is validated (422). Every change is audited", "admin", ajustes_email.ConfiguracionEmailUpdate,
    schema={"type": "object"}, tag="email"))
@role_required("admin")
def api_config_email_put():
    """Change email settings; every change is audited (which fields, never the password)."""
    campos = ajustes_email.actualizar_configuracion(parse(ajustes_email.ConfiguracionEmailUpdate, json_body()),
                                                    current_user)
    db.session.commit()
    return jsonify({**ajustes_email.configuracion_dict(), "cambiados": campos})


@route("/api/configuracion/email/prueba", methods=["POST"], doc=openapi.op(
    "Send a test email now with the effective settings (502 smtp_error when the server refuses)", "admin",
    ajustes_email.CorreoPrueba, schema={"type": "object"}, tag="email"))
@role_required("admin")
def api_config_email_prueba():
    """Send a test email now (502 with the SMTP error when it cannot)."""
    data = parse(ajustes_email.CorreoPrueba, request.get_json(silent=True) or {})
    return jsonify({"enviado": True, "destinatario": envio_email.enviar_prueba(data.destinatario, current_user)})


@route("/api/configuracion/email/imap/prueba", methods=["POST"], doc=openapi.op(
    "Log in to the IMAP mailbox with the effective settings and open the folder (502 imap_error with the "
    "server's words when it cannot, 409 imap_not_configured without a server)", "admin",
    schema={"type": "object"}, tag="email"))
@role_required("admin")
def api_config_email_imap_prueba():
    """Test the IMAP login now: the server, the folder and how many messages it holds."""
    return jsonify({"conectado": True, **correo_entrante.probar_imap()})


@route("/api/correos", doc=openapi.op(
    "Outbox of every channel (email, whatsapp): queued, sent and failed messages, newest first", "admin",
    schema=openapi.page_of("Envio"), tag="outbox", params=[
        {"name": "estado", "in": "query", "schema": {"enum": list(ESTADOS_SALIDA)}},
        {"name": "canal", "in": "query", "schema": {"enum": list(CANALES_SALIDA)}},
        *openapi.PAGE_PARAMS]))
@role_required("admin")
def api_correos():
    """Outbox rows, newest first (``estado`` and ``canal`` filter)."""
    q = parse_query(FiltroEnvios, request.args)
    p = paginar(outbox.consulta(q.estado_o_nada, q.canal))
    return jsonify(page_dict([openapi.dump(EnvioOut, e) for e in p.items], p.total, p.page, p.per_page))


@route("/api/correos/<int:correo_id>/reintentar", methods=["POST"], doc=openapi.op(
    "Queue a failed message again with a fresh set of tries (409 when it has not failed)", "admin",
    schema=openapi.REF("Envio"), tag="outbox", params=[openapi.ID("correo_id")]))
@role_required("admin")
def api_correo_reintentar(correo_id: int):
    """Queue a failed message again (409 if it has not failed)."""
    envio = outbox.reintentar(correo_id)
    db.session.commit()
    return jsonify(openapi.dump(EnvioOut, envio))
