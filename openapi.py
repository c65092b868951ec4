"""The OpenAPI 3.1 document of the JSON API, served at /api/openapi.json.

Request bodies come from the pydantic models in schemas.py, so the document cannot drift
from what the API validates; tests check that every /api route is documented here.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel

import schemas

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}},
}
def page_of(ref: str, cursor: bool = False) -> dict:
    """A page of ``ref``; ``cursor``: the ticket lists, which also page by keyset (``next_cursor``)."""
    page = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}},
        "total": {"type": "integer"},
        "total_exacto": {"type": "boolean", "description": (
            "false when more than `total` match: a text search (`q`) counts its matches up to 1,000 "
            "(or up to the page asked, when it lies beyond)")},
        "page": {"type": "integer"}, "per_page": {"type": "integer"}}}
    if cursor:
        page["properties"]["next_cursor"] = {
            "type": ["string", "null"],
            "description": "Send it back as `cursor` for the next page (same filters and `orden`); null on the last page."}
    return page


LIST_PARAMS = [
    {"name": "estado", "in": "query", "schema": {"type": "string"}, "description": "One or more, comma-separated"},
    {"name": "prioridad", "in": "query", "schema": {"type": "string"}, "description": "One or more, comma-separated"},
    {"name": "categoria", "in": "query", "schema": {"type": "string"}, "description": "Category name"},
    {"name": "ingeniero_id", "in": "query", "schema": {"type": "string"}, "description": "Engineer id or `ninguno`"},
    {"name": "etiqueta", "in": "query", "schema": {"type": "string"}},
    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": (
        "Full text: number, title, description, requester, public thread (every word a prefix)")},
    {"name": "desde", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "hasta", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "orden", "in": "query", "schema": {"type": "string", "default": "-fecha_creacion"},
     "description": "One of " + ", ".join(schemas.ORDENABLES) + "; prefix - for descending"},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 2000},
     "description": "Keyset paging: the `next_cursor` of the previous page, with the same filters and `orden` "
                    "(`page` is then ignored; `total` and `page` are those of the walk's first page). Opaque and "
                    "signed: one issued for another list or caller, or altered, is a 400 `invalid_cursor`. "
                    "Rows inserted meanwhile never repeat or skip a row; a relevance-ranked search (`q` "
                    "without `orden`) pages by position."},
]
PAGE_PARAMS = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
               {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}]
ID = lambda name: {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}  # noqa: E731


# Optimistic concurrency of a ticket's writes: the ETag of its answers is its version; a write may
# send it back as If-Match (a stale one is a 412 and nothing is written; absent: no check).
ETAG = {"description": "The ticket's version (`\"7\"`): send it back as `If-Match` on a write.", "required": True,
        "schema": {"type": "string", "pattern": r'^"[0-9]+"$'}}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "The `ETag` of the ticket as you read it (`\"7\"`). If the ticket has changed since, "
                           "nothing is written: 412 `precondition_failed`, whose `fields.version` is the current "
                           "version. Without it the write is not checked against your read."}


def op(summary: str, roles: str, body: type[BaseModel] | None = None, ok: int = 200, schema: dict | None = None,
       params: list | None = None, public: bool = False, tag: str = "tickets", content_type: str = "application/json",
       etag: bool = False, if_match: bool = False) -> dict:
    """One operation. ``etag``: the answer carries the ticket's version as ``ETag``; ``if_match``:
    a ticket write that takes ``If-Match`` (412 when stale), answering with the ``ETag`` too."""
    operation = {"summary": summary, "description": f"Roles: {roles}.", "tags": [tag],
                 "responses": {str(ok): {"description": "OK", **(
                     {"content": {content_type: {"schema": schema}}} if schema else {})}}}
    if etag or if_match:
        operation["responses"][str(ok)]["headers"] = {"ETag": ETAG}
    for code in ("400", "401", "403", "404", "409", "422") + (("412",) if if_match else ()):
        operation["responses"][code] = {"$ref": "#/components/responses/Error"}
    if if_match:
        params = [*(params or []), IF_MATCH]
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


def _salidas(base: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_salidas(sub)]
    return found


def _nombre(clase: str) -> str:
    return clase.removesuffix("Out")


def dump(model: type[BaseModel], obj) -> dict:
    """``obj`` (a model row or a dict) in the declared output shape ``model``, as JSON values."""
    return model.model_validate(obj).model_dump(mode="json")


def openapi_path(rule: str) -> str:
    """``/api/tickets/<int:ticket_id>`` → ``/api/tickets/{ticket_id}``."""
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)


def operations() -> dict[tuple[str, str], dict]:
    """Every documented operation: the ``doc=`` of each route in ``rutas``."""
    import rutas

    ops = {}
    for ruta in rutas.RUTAS:
        if ruta.doc is not None:
            for method in ruta.options.get("methods", ["GET"]):
                ops[(openapi_path(ruta.rule), method.lower())] = ruta.doc
    return ops


def document() -> dict:
    components: dict = {"Error": ERROR}
    paths: dict = {}
    bodies: list[type[BaseModel]] = []
    for (path, method), operation in sorted(operations().items()):
        operation = dict(operation)
        body = operation.pop("_body", None)
        if body is not None and body not in bodies:
            bodies.append(body)
        paths.setdefault(path, {})[method] = operation
    for model in bodies:
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for model in _salidas(schemas.Salida):  # output shapes: "TicketOut" is listed as "Ticket"
        esquema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        esquema.pop("$defs", None)  # nested Salida models are listed on their own
        components[_nombre(model.__name__)] = esquema
    components = json.loads(re.sub(r'(#/components/schemas/\w+?)Out"', r'\1"', json.dumps(components)))
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
