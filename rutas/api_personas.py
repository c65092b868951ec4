"""Routes: the JSON API of catalogues and people (categories, engineers, accounts)."""

from __future__ import annotations

from flask import (
    jsonify,
)
from flask_login import current_user
from sqlalchemy import select

import openapi
import schemas
import tickets
import usuarios
from auth import (
    role_required,
)
from errors import NotFound
from models import Categoria, Ingeniero, Usuario, db
from rutas import route
from rutas.comun import (
    json_body,
    paginar,
)
from schemas import (
    CategoriaCreate,
    IngenieroCreate,
    IngenieroUpdate,
    UsuarioCreate,
    categoria_dict,
    ingeniero_dict,
    page_dict,
    parse,
    usuario_dict,
)

# --- API: catalogues and people ------------------------------------------------------------

@route("/api/categorias", doc=openapi.op(
    "Active categories", openapi.ANY, schema={"type": "object", "properties": {
    "items": {"type": "array", "items": openapi.REF("Categoria")}}}, tag="catalogue"))
@role_required()
def api_categorias():
    """Active categories."""
    rows = db.session.execute(select(Categoria).where(Categoria.activa.is_(True))
                              .order_by(Categoria.nombre)).scalars()
    return jsonify({"items": [categoria_dict(c) for c in rows]})


@route("/api/categorias", methods=["POST"], endpoint="api_crear_categoria", doc=openapi.op(
    "Add a category", "admin", schemas.CategoriaCreate, 201, openapi.REF("Categoria"),
    tag="catalogue"))
@role_required("admin")
def api_crear_categoria():
    """Add a category (admin)."""
    data = parse(CategoriaCreate, json_body())
    categoria = tickets.crear_categoria(data.nombre, data.descripcion)
    db.session.commit()
    return jsonify(categoria_dict(categoria)), 201


@route("/api/ingenieros", doc=openapi.op("Engineers with open load", "ingeniero, admin", schema={
    "type": "object", "properties": {"items": {"type": "array", "items": openapi.REF("Ingeniero")}}}, tag="people"))
@role_required("admin", "ingeniero")
def api_ingenieros():
    """Engineers with specialty, availability and current open load."""
    lista = usuarios.ingenieros()
    carga = tickets.carga_abierta()
    return jsonify({"items": [ingeniero_dict(i, carga.get(i.id, 0)) for i in lista]})


@route("/api/ingenieros", methods=["POST"], endpoint="api_crear_ingeniero", doc=openapi.op(
    "Create an engineer", "admin", schemas.IngenieroCreate, 201, openapi.REF("Ingeniero"),
    tag="people"))
@role_required("admin")
def api_crear_ingeniero():
    """Create an engineer account and profile (admin)."""
    ingeniero = usuarios.crear_ingeniero(parse(IngenieroCreate, json_body()))
    db.session.commit()
    return jsonify(ingeniero_dict(ingeniero)), 201


@route("/api/ingenieros/<int:ingeniero_id>", methods=["PUT"], doc=openapi.op(
    "Update an engineer", "admin", schemas.IngenieroUpdate,
    schema=openapi.REF("Ingeniero"), params=[openapi.ID("ingeniero_id")], tag="people"))
@role_required("admin")
def api_actualizar_ingeniero(ingeniero_id: int):
    """Update an engineer's profile or availability (admin)."""
    ingeniero = db.session.get(Ingeniero, ingeniero_id)
    if ingeniero is None:
        raise NotFound("Engineer not found.")
    usuarios.actualizar_ingeniero(ingeniero, parse(IngenieroUpdate, json_body()), current_user)
    db.session.commit()
    return jsonify(ingeniero_dict(ingeniero, tickets.carga_abierta([ingeniero.id]).get(ingeniero.id, 0)))


@route("/api/usuarios", doc=openapi.op(
    "All accounts", "admin", schema=openapi.page_of("Usuario"), tag="people", params=[
    {"name": "page", "in": "query", "schema": {"type": "integer"}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": 100}}]))
@role_required("admin")
def api_usuarios():
    """All accounts (admin), paginated."""
    p = paginar(select(Usuario).order_by(Usuario.id))
    return jsonify(page_dict([usuario_dict(u) for u in p.items], p.total, p.page, p.per_page))


@route("/api/usuarios", methods=["POST"], endpoint="api_crear_usuario", doc=openapi.op(
    "Create an account", "admin", schemas.UsuarioCreate, 201, openapi.REF("Usuario"), tag="people"))
@role_required("admin")
def api_crear_usuario():
    """Create an account with a role (admin)."""
    usuario = usuarios.crear_usuario(parse(UsuarioCreate, json_body()))
    db.session.commit()
    return jsonify(usuario_dict(usuario)), 201
