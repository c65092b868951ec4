"""The OpenAPI 3.1 document of the JSON API, served at /api/openapi.json.

Request bodies come from the pydantic models in schemas.py, so the document cannot drift
from what the API validates; tests check that every /api route is documented here.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

import schemas

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}},
}
PERSONA = {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "nombre": {"type": "string"}}}
DATE = {"type": ["string", "null"], "format": "date-time"}
TICKET = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "numero_ticket": {"type": "string", "example": "TKT-000123"},
        "titulo": {"type": "string"}, "descripcion": {"type": "string"},
        "prioridad": {"enum": ["baja", "media", "alta", "critica"]},
        "estado": {"enum": ["abierto", "en_progreso", "en_espera", "resuelto", "cerrado"]},
        "categoria": {"type": "string"}, "etiquetas": {"type": "array", "items": {"type": "string"}},
        "usuario": PERSONA, "cliente": PERSONA, "ingeniero": PERSONA,
        "usuario_id": {"type": ["integer", "null"]}, "ingeniero_id": {"type": ["integer", "null"]},
        "canal": {"enum": ["web", "api", "whatsapp", "email"]},
        "fecha_creacion": DATE, "fecha_actualizacion": DATE, "fecha_primera_respuesta": DATE,
        "fecha_resolucion": DATE, "fecha_cierre": DATE,
        "conversacion_whatsapp_id": {"type": ["integer", "null"]},
        "comunicacion_email_id": {"type": ["integer", "null"]},
        "notas_internas": {"type": "array", "description": "Staff only; never present for usuario.",
                           "items": {"$ref": "#/components/schemas/NotaInterna"}},
    },
}
NOTA = {"type": "object", "properties": {"id": {"type": "integer"}, "autor": PERSONA, "texto": {"type": "string"},
                                         "fecha": DATE}}
MENSAJE = {"type": "object", "properties": {
    "id": {"type": "integer"}, "autor": PERSONA, "es_staff": {"type": "boolean"}, "cuerpo": {"type": "string"},
    "leido": {"type": "boolean"}, "fecha_lectura": DATE, "fecha": DATE}}
EVENTO = {"type": "object", "properties": {
    "id": {"type": "integer"}, "tipo": {"type": "string"}, "campo": {"type": ["string", "null"]},
    "antes": {"type": ["string", "null"]}, "despues": {"type": ["string", "null"]}, "actor": PERSONA, "fecha": DATE}}
USUARIO = {"type": "object", "properties": {k: {"type": "string"} for k in ("username", "nombre", "email", "rol", "idioma")}
           | {"id": {"type": "integer"}, "activo": {"type": "boolean"}}}
INGENIERO = {"type": "object", "properties": {
    "id": {"type": "integer"}, "usuario_id": {"type": "integer"}, "username": {"type": "string"},
    "nombre": {"type": "string"}, "email": {"type": "string"}, "especialidad": {"type": "string"},
    "telefono": {"type": ["string", "null"]}, "disponible": {"type": "boolean"}, "activo": {"type": "boolean"},
    "tickets_abiertos": {"type": "integer"}, "fecha_creacion": DATE}}
CATEGORIA = {"type": "object", "properties": {"id": {"type": "integer"}, "nombre": {"type": "string"},
                                              "descripcion": {"type": ["string", "null"]}, "activa": {"type": "boolean"}}}


def page_of(ref: str) -> dict:
    return {"type": "object", "properties": {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}},
        "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}}


LIST_PARAMS = [
    {"name": "estado", "in": "query", "schema": {"type": "string"}, "description": "One or more, comma-separated"},
    {"name": "prioridad", "in": "query", "schema": {"type": "string"}, "description": "One or more, comma-separated"},
    {"name": "categoria", "in": "query", "schema": {"type": "string"}, "description": "Category name"},
    {"name": "ingeniero_id", "in": "query", "schema": {"type": "string"}, "description": "Engineer id or `ninguno`"},
    {"name": "etiqueta", "in": "query", "schema": {"type": "string"}},
    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Number, title or requester name"},
    {"name": "desde", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "hasta", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "orden", "in": "query", "schema": {"type": "string", "default": "-fecha_creacion"},
     "description": "One of " + ", ".join(schemas.ORDENABLES) + "; prefix - for descending"},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
]
PAGE_PARAMS = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
               {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}]
ID = lambda name: {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}  # noqa: E731


def op(summary: str, roles: str, body: type[BaseModel] | None = None, ok: int = 200, schema: dict | None = None,
       params: list | None = None, public: bool = False, tag: str = "tickets", content_type: str = "application/json") -> dict:
    operation = {"summary": summary, "description": f"Roles: {roles}.", "tags": [tag],
                 "responses": {str(ok): {"description": "OK", **(
                     {"content": {content_type: {"schema": schema}}} if schema else {})}}}
    for code in ("400", "401", "403", "404", "409", "422"):
        operation["responses"][code] = {"$ref": "#/components/responses/Error"}
    if public:
        operation["security"] = []
    if body is not None:
        operation["_body"] = body  # document() lists its schema under components
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}}
    if params:
        operation["parameters"] = params
    return operation


REF = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
ANY = "usuario, ingeniero, admin"

# (path, method) -> operation. Keep in step with app.py (tests/test_openapi.py checks it).
OPERATIONS: dict[tuple[str, str], dict] = {
    ("/api/auth/token", "post"): op("Exchange username and password for a Bearer token", "anyone",
                                    schemas.TokenRequest, 201, {"type": "object"}, public=True, tag="auth"),
    ("/api/auth/token", "delete"): op("Revoke the Bearer token of this request", ANY, ok=204, tag="auth"),
    ("/api/auth/csrf", "get"): op("CSRF token for session-authenticated JavaScript (send as X-CSRFToken)",
                                  "anyone", schema={"type": "object"}, public=True, tag="auth"),
    ("/api/me", "get"): op("The caller", ANY, schema=REF("Usuario"), tag="auth"),
    ("/api/tickets", "post"): op("Create a ticket (the caller is the requester)", ANY, schemas.TicketCreate, 201,
                                 REF("Ticket")),
    ("/api/mis-tickets", "get"): op("Tickets the caller requested", ANY, schema=page_of("Ticket"), params=LIST_PARAMS),
    ("/api/tickets-ingeniero", "get"): op("Tickets assigned to the calling engineer", "ingeniero",
                                          schema=page_of("Ticket"), params=LIST_PARAMS),
    ("/api/todos-tickets", "get"): op("All tickets", "admin", schema=page_of("Ticket"), params=LIST_PARAMS),
    ("/api/tickets/{ticket_id}", "get"): op("One ticket (404 outside the caller's scope)", ANY, schema=REF("Ticket"),
                                            params=[ID("ticket_id")]),
    ("/api/tickets/{ticket_id}", "put"): op("Edit fields (requester only while abierto)", ANY, schemas.TicketUpdate,
                                            schema=REF("Ticket"), params=[ID("ticket_id")]),
    ("/api/tickets/{ticket_id}/estado", "put"): op(
        "Change estado: abierto→en_progreso⇄en_espera→resuelto→cerrado; resuelto/cerrado→abierto (staff); "
        "requester may move resuelto→abierto|cerrado. Refused moves are 409.", ANY, schemas.EstadoChange,
        schema=REF("Ticket"), params=[ID("ticket_id")]),
    ("/api/tickets/{ticket_id}/notas", "put"): op("Append an internal note", "assigned ingeniero, admin",
                                                  schemas.NotaCreate, schema=REF("Ticket"), params=[ID("ticket_id")]),
    ("/api/tickets/{ticket_id}/asignar", "put"): op("Assign an engineer (null unassigns)", "admin", schemas.Asignacion,
                                                    schema=REF("Ticket"), params=[ID("ticket_id")]),
    ("/api/tickets/{ticket_id}/mensajes", "get"): op("Public thread; marks the other side's messages read", ANY,
                                                     schema={"type": "object", "properties": {
                                                         "items": {"type": "array", "items": REF("Mensaje")}}},
                                                     params=[ID("ticket_id")]),
    ("/api/tickets/{ticket_id}/mensajes", "post"): op("Post a public message", ANY, schemas.MensajeCreate, 201,
                                                      REF("Mensaje"), params=[ID("ticket_id")]),
    ("/api/tickets/{ticket_id}/historial", "get"): op("History of every change", ANY, schema={
        "type": "object", "properties": {"items": {"type": "array", "items": REF("Evento")}}}, params=[ID("ticket_id")]),
    ("/api/categorias", "get"): op("Active categories", ANY, schema={"type": "object", "properties": {
        "items": {"type": "array", "items": REF("Categoria")}}}, tag="catalogue"),
    ("/api/categorias", "post"): op("Add a category", "admin", schemas.CategoriaCreate, 201, REF("Categoria"),
                                    tag="catalogue"),
    ("/api/ingenieros", "get"): op("Engineers with open load", "ingeniero, admin", schema={
        "type": "object", "properties": {"items": {"type": "array", "items": REF("Ingeniero")}}}, tag="people"),
    ("/api/ingenieros", "post"): op("Create an engineer", "admin", schemas.IngenieroCreate, 201, REF("Ingeniero"),
                                    tag="people"),
    ("/api/ingenieros/{ingeniero_id}", "put"): op("Update an engineer", "admin", schemas.IngenieroUpdate,
                                                  schema=REF("Ingeniero"), params=[ID("ingeniero_id")], tag="people"),
    ("/api/usuarios", "get"): op("All accounts", "admin", schema=page_of("Usuario"), tag="people", params=[
        {"name": "page", "in": "query", "schema": {"type": "integer"}},
        {"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": 100}}]),
    ("/api/usuarios", "post"): op("Create an account", "admin", schemas.UsuarioCreate, 201, REF("Usuario"), tag="people"),
    ("/api/openapi.json", "get"): op("This document", "anyone", schema={"type": "object"}, public=True, tag="meta"),
}

BODIES = [schemas.TokenRequest, schemas.TicketCreate, schemas.TicketUpdate, schemas.EstadoChange, schemas.NotaCreate,
          schemas.Asignacion, schemas.MensajeCreate, schemas.CategoriaCreate, schemas.IngenieroCreate,
          schemas.IngenieroUpdate, schemas.UsuarioCreate]


def register(path: str, method: str, operation: dict, *bodies: type[BaseModel]) -> None:
    """Other modules document their routes here (path uses {name} for URL variables)."""
    OPERATIONS[(path, method)] = operation
    BODIES.extend(b for b in bodies if b not in BODIES)


def _salidas(base: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_salidas(sub)]
    return found


def dump(model: type[BaseModel], obj) -> dict:
    """``obj`` (a model row or a dict) in the declared output shape ``model``, as JSON values."""
    return model.model_validate(obj).model_dump(mode="json")


def openapi_path(rule: str) -> str:
    """``/api/tickets/<int:ticket_id>`` → ``/api/tickets/{ticket_id}``."""
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)


def operations() -> dict[tuple[str, str], dict]:
    """Every documented operation: the ``doc=`` of each route in ``rutas`` (and the table above)."""
    import rutas

    ops = dict(OPERATIONS)
    for ruta in rutas.RUTAS:
        if ruta.doc is not None:
            for method in ruta.options.get("methods", ["GET"]):
                ops[(openapi_path(ruta.rule), method.lower())] = ruta.doc
    return ops


def document() -> dict:
    components = {"Ticket": TICKET, "NotaInterna": NOTA, "Mensaje": MENSAJE, "Evento": EVENTO, "Usuario": USUARIO,
                  "Ingeniero": INGENIERO, "Categoria": CATEGORIA, "Error": ERROR}
    paths: dict = {}
    bodies = list(BODIES)
    for (path, method), operation in sorted(operations().items()):
        operation = dict(operation)
        body = operation.pop("_body", None)
        if body is not None and body not in bodies:
            bodies.append(body)
        paths.setdefault(path, {})[method] = operation
    for model in bodies:
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for model in _salidas(schemas.Salida):
        components[model.__name__.removesuffix("Out")] = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mesa de Ayuda API", "version": "1.0.0",
                 "description": "Helpdesk API. Authenticate with `Authorization: Bearer <token>` from "
                                "POST /api/auth/token, or with the panel session plus an `X-CSRFToken` header "
                                "on writes. Errors: {\"error\": {\"code\", \"message\", \"fields\"}}."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": REF("Error")}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "session"}},
        },
    }
