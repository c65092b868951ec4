"""Routes: SLA settings (office hours, holidays, thresholds, automatic assignment) and policies
(issue 12). Every edit recomputes the due times of open tickets in the same transaction."""

from __future__ import annotations

from datetime import date
from typing import Literal, Optional

from flask import jsonify, request
from pydantic import BaseModel, Field

import openapi
import sla
import tickets
from auth import role_required
from errors import ValidationFailed
from models import db
from rutas import route
from rutas.comun import json_body, rango_fechas
from schemas import Salida, SLAMetricasOut, parse

Dia = Literal["0", "1", "2", "3", "4", "5", "6"]


class ConfiguracionSLAUpdate(BaseModel):
    horario: Optional[dict[Dia, list[str]]] = Field(None, description='Weekday (0=Monday) → ["09:00", "18:00"]')
    feriados: Optional[list[date]] = None
    umbral_aviso_pct: Optional[int] = Field(None, ge=1, le=99)
    minutos_critico_sin_asignar: Optional[int] = Field(None, ge=1, le=10080)
    asignacion_automatica: Optional[bool] = None


class PoliticaSLAIn(BaseModel):
    prioridad: Literal["baja", "media", "alta", "critica"]
    categoria: Optional[str] = Field(None, max_length=80)
    primera_respuesta_min: int = Field(ge=1, le=525600)
    resolucion_min: int = Field(ge=1, le=525600)


class ConfiguracionSLAOut(Salida):
    horario: dict
    feriados: list
    umbral_aviso_pct: int
    minutos_critico_sin_asignar: int
    asignacion_automatica: bool


class PoliticaSLAOut(Salida):
    id: int
    prioridad: str
    categoria_id: Optional[int]
    primera_respuesta_min: int
    resolucion_min: int


@route("/api/sla/configuracion", doc=openapi.op(
    "SLA settings: office hours per weekday, holidays, alert thresholds, automatic assignment", "admin",
    schema=openapi.REF("ConfiguracionSLA"), tag="sla"))
@role_required("admin")
def api_sla_configuracion():
    """The SLA settings (defaults when never saved)."""
    return jsonify(openapi.dump(ConfiguracionSLAOut, sla.ajustes()))


@route("/api/sla/configuracion", methods=["PUT"], endpoint="api_sla_configuracion_put", doc=openapi.op(
    "Change SLA settings (recomputes open tickets' due times)", "admin", ConfiguracionSLAUpdate,
    schema=openapi.REF("ConfiguracionSLA"), tag="sla"))
@role_required("admin")
def api_sla_configuracion_put():
    """Save office hours, holidays, thresholds, automatic assignment."""
    data = parse(ConfiguracionSLAUpdate, json_body())
    cambios = data.model_dump(exclude_unset=True)
    if cambios.get("feriados") is not None:
        cambios["feriados"] = sorted({d.isoformat() for d in cambios["feriados"]})
    fila = sla.guardar_ajustes(cambios)
    db.session.commit()
    return jsonify(openapi.dump(ConfiguracionSLAOut, fila))


@route("/api/sla/politicas", doc=openapi.op(
    "SLA policies: targets in business minutes per prioridad (optionally per categoría)", "admin",
    schema={"type": "array", "items": openapi.REF("PoliticaSLA")}, tag="sla"))
@role_required("admin")
def api_sla_politicas():
    """Every policy (priorities without one use the built-in defaults)."""
    return jsonify([openapi.dump(PoliticaSLAOut, p) for p in sla.politicas()])


@route("/api/sla/politicas", methods=["PUT"], endpoint="api_sla_politicas_put", doc=openapi.op(
    "Create or replace the policy of a prioridad (and categoría); recomputes open tickets", "admin",
    PoliticaSLAIn, schema=openapi.REF("PoliticaSLA"), tag="sla"))
@role_required("admin")
def api_sla_politicas_put():
    """Upsert one policy."""
    data = parse(PoliticaSLAIn, json_body())
    categoria_id = tickets.categoria_por_nombre(data.categoria).id if data.categoria else None
    fila = sla.guardar_politica(data.prioridad, categoria_id, data.primera_respuesta_min, data.resolucion_min)
    db.session.commit()
    return jsonify(openapi.dump(PoliticaSLAOut, fila))


@route("/api/sla/metricas", doc=openapi.op(
    "SLA metrics of the tickets created in a period: compliance %, median and p90 business minutes to "
    "first response and resolution, breaches; overall and per engineer, prioridad, categoría and period "
    "(?agrupacion=dia|semana|mes, office time zone)", "admin",
    schema=openapi.REF("SLAMetricas"), tag="sla", params=[
        {"name": "desde", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "hasta", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "agrupacion", "in": "query", "schema": {"enum": list(sla.AGRUPACIONES)}}]))
@role_required("admin")
def api_sla_metricas():
    """SLA metrics (also in /api/estadisticas)."""
    agrupacion = request.args.get("agrupacion") or None
    if agrupacion not in (None, *sla.AGRUPACIONES):
        raise ValidationFailed("Some fields are not valid.", fields={"agrupacion": "dia, semana or mes."})
    return jsonify(openapi.dump(SLAMetricasOut, sla.metricas(*rango_fechas(), agrupacion=agrupacion)))


class EspecialidadIn(BaseModel):
    especialidad: Optional[str] = Field(None, max_length=100)


class IngenieroCargaIn(BaseModel):
    max_abiertos: Optional[int] = Field(None, ge=0, le=10000)
    disponible: Optional[bool] = None


@route("/api/sla/categorias/<int:categoria_id>/especialidad", methods=["PUT"], doc=openapi.op(
    "Map a categoría to the especialidad automatic assignment prefers (null clears it)", "admin",
    EspecialidadIn, schema={"type": "object"}, tag="sla", params=[openapi.ID("categoria_id")]))
@role_required("admin")
def api_sla_especialidad(categoria_id: int):
    """categoría → especialidad."""
    import asignacion

    data = parse(EspecialidadIn, json_body())
    categoria = asignacion.mapear_especialidad(categoria_id, data.especialidad)
    db.session.commit()
    return jsonify({"id": categoria.id, "nombre": categoria.nombre, "especialidad": categoria.especialidad})


@route("/api/sla/ingenieros/<int:ingeniero_id>", methods=["PUT"], doc=openapi.op(
    "An engineer's maximum open load (admin) and availability switch (the engineer or an admin); when they "
    "cannot take work and hold open tickets, the answer offers to redistribute them",
    "admin, ingeniero (own availability)", IngenieroCargaIn, schema=openapi.REF("IngenieroCarga"), tag="sla",
    params=[openapi.ID("ingeniero_id")]))
@role_required("admin", "ingeniero")
def api_sla_ingeniero(ingeniero_id: int):
    """Cap and availability used by automatic assignment."""
    from flask_login import current_user

    import asignacion

    data = parse(IngenieroCargaIn, json_body())
    ing = asignacion.ajustar_ingeniero(ingeniero_id, current_user, data.max_abiertos, data.disponible)
    db.session.commit()
    return jsonify(openapi.dump(IngenieroCargaOut, IngenieroCargaOut.de(ing, current_user)))


class IngenieroCargaOut(Salida):
    """An engineer's assignment settings; ``redistribuir`` (admins) offers to move their open
    tickets when they cannot take work and still hold some."""

    id: int
    max_abiertos: int
    disponible: bool
    abiertos_por_redistribuir: int
    redistribuir: Optional[str]

    @classmethod
    def de(cls, ing, actor) -> dict:
        import asignacion

        n = asignacion.oferta_redistribuir(ing)
        return {"id": ing.id, "max_abiertos": ing.max_abiertos, "disponible": ing.disponible,
                "abiertos_por_redistribuir": n,
                "redistribuir": f"/api/ingenieros/{ing.id}/redistribuir" if n and actor.rol == "admin" else None}


class ReasignadoOut(Salida):
    ticket_id: int
    numero_ticket: str
    ingeniero_id: int
    motivo: str


class SinAsignarOut(Salida):
    ticket_id: int
    numero_ticket: str


class RedistribucionOut(Salida):
    reasignados: list[ReasignadoOut]
    sin_asignar: list[SinAsignarOut]

    @classmethod
    def de(cls, r) -> dict:
        return openapi.dump(cls, {
            "reasignados": [{"ticket_id": t.id, "numero_ticket": t.numero_ticket, "ingeniero_id": i.id, "motivo": m}
                            for t, i, m in r.reasignados],
            "sin_asignar": [{"ticket_id": t.id, "numero_ticket": t.numero_ticket} for t in r.sin_asignar]})


@route("/api/ingenieros/<int:ingeniero_id>/redistribuir", methods=["POST"], doc=openapi.op(
    "Redistribute an engineer's open tickets through the automatic assignment rules (never back to them); "
    "those nobody fits are left unassigned and the admins alerted", "admin",
    schema=openapi.REF("Redistribucion"), tag="sla", params=[openapi.ID("ingeniero_id")]))
@role_required("admin")
def api_redistribuir(ingeniero_id: int):
    """Move an unavailable engineer's open tickets to others."""
    from flask_login import current_user

    import asignacion

    resultado = asignacion.redistribuir(ingeniero_id, current_user)
    db.session.commit()
    return jsonify(RedistribucionOut.de(resultado))


# --- admin page ----------------------------------------------------------------------------------------

@route("/admin/sla", methods=["GET", "POST"])
@role_required("admin")
def admin_sla():
    """Configuración > SLA: office hours, holidays, targets per prioridad, alerts, auto-assignment."""
    from flask import current_app, flash, redirect, render_template, request, url_for
    from flask_babel import gettext as _

    from errors import ValidationFailed
    from models import PRIORIDADES

    error = None
    if request.method == "POST":
        f = request.form
        try:
            horario = {str(d): [f[f"inicio{d}"], f[f"fin{d}"] if f[f"fin{d}"] != "00:00" else "24:00"]
                       for d in range(7) if f.get(f"inicio{d}") and f.get(f"fin{d}")}
            feriados = sorted({date.fromisoformat(x.strip()).isoformat() for x in f.get("feriados", "").split()
                               if x.strip()})
            datos = ConfiguracionSLAUpdate(
                horario=horario, feriados=feriados, umbral_aviso_pct=int(f.get("umbral_aviso_pct") or 80),
                minutos_critico_sin_asignar=int(f.get("minutos_critico_sin_asignar") or 15),
                asignacion_automatica=bool(f.get("asignacion_automatica")))
            objetivos = {p: (int(f[f"primera_{p}"]), int(f[f"resolucion_{p}"])) for p in PRIORIDADES}
        except (ValueError, KeyError) as exc:
            datos, error = None, _("Some data is not valid") + f": {exc}"
        if datos is not None:
            try:
                cambios = datos.model_dump()
                cambios["feriados"] = [d.isoformat() for d in datos.feriados]
                sla.guardar_ajustes(cambios)
                for p, (primera, resolucion) in objetivos.items():
                    if min(primera, resolucion) < 1:
                        raise ValidationFailed("Some fields are not valid.")
                    if (primera, resolucion) != sla.objetivos(p, None):
                        sla.guardar_politica(p, None, primera, resolucion)
                db.session.commit()
                flash(_("SLA settings saved."), "success")
                return redirect(url_for("admin_sla"))
            except ValidationFailed as exc:
                db.session.rollback()
                error = _("Some data is not valid") + f": {exc.fields or exc.message}"
    dias = [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")]
    return render_template("admin_sla.html", cfg=sla.ajustes(), dias=dias, error=error,
                           objetivos={p: sla.objetivos(p, None) for p in PRIORIDADES},
                           zona=current_app.config.get("APP_TIMEZONE", "UTC")), 422 if error else 200
