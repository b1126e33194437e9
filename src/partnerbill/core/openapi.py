"""The OpenAPI document as the server really answers.

FastAPI documents a 422 `HTTPValidationError` and no authentication; the server answers request
errors with 400 and the Zuora envelope, and wants a bearer token from `POST /oauth/token`. So
every operation gets, on top of its own answer model (`core.responses.ok`):

- `security`: an OAuth 2 client-credentials token, sent as `Authorization: Bearer` (the token
  route itself is unauthenticated);
- its HTTP 200 answer as "the model, or the failure envelope" (Zuora answers business-rule and
  lock-competition errors with HTTP 200 and `success: false`);
- 400 when it takes any input, 401, 404 when it takes a key or a body naming other objects, and
  503 (retryable), each with the envelope. The CRUD object API (`/v1/object/...`) answers its
  failures in its own PascalCase shape and an unknown id with an empty query result.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from partnerbill.core.answers import OBJECT_API_PREFIX
from partnerbill.core.responses import ErrorEnvelope, ObjectApiError, ObjectApiNotFound

TOKEN_PATH = "/oauth/token"
SECURITY_SCHEMES: dict[str, Any] = {
    "oauth2": {
        "type": "oauth2",
        "description": "Client credentials (`client_id`, `client_secret`) for a 1-hour token.",
        "flows": {"clientCredentials": {"tokenUrl": TOKEN_PATH, "scopes": {}}},
    },
    "bearer": {"type": "http", "scheme": "bearer"},
}
_METHODS = ("get", "put", "post", "delete", "patch")
_DESCRIPTIONS = {
    "400": "Bad request: a field is missing or invalid (each named in `reasons`).",
    "401": "No valid bearer token (for `/oauth/token`: unknown client or wrong secret).",
    "404": "A key names nothing of this tenant.",
    "503": "The database is unavailable right now; retry.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _add_schema(components: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[model.__name__] = schema


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


def _names_objects(operation: dict[str, Any]) -> bool:
    in_path = any(p.get("in") == "path" for p in operation.get("parameters", []))
    return in_path or "requestBody" in operation


def _document_operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    for answer in responses.values():
        media = answer.get("content", {}).get("application/json")
        if media and "$ref" in media.get("schema", {}):
            media["schema"] = {"$ref": media["schema"]["$ref"]}  # FastAPI adds a stray `type`
    object_api = path.startswith(OBJECT_API_PREFIX)
    success = responses.get("200", {}).get("content", {}).get("application/json")
    if success and not object_api and path != TOKEN_PATH:
        success["schema"] = {"anyOf": [success["schema"], _ref("ErrorEnvelope")]}
    failure = "ObjectApiError" if object_api else "ErrorEnvelope"
    if _takes_input(operation):
        responses["400"] = _answer(failure, _DESCRIPTIONS["400"])
    responses["401"] = _answer("ErrorEnvelope", _DESCRIPTIONS["401"])
    if path == TOKEN_PATH:
        operation["security"] = []
        return
    operation["security"] = [{"oauth2": []}, {"bearer": []}]
    if _names_objects(operation):
        not_found = "ObjectApiNotFound" if object_api else "ErrorEnvelope"
        responses["404"] = _answer(not_found, _DESCRIPTIONS["404"])
    responses["503"] = _answer(failure, _DESCRIPTIONS["503"])


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The document FastAPI generated, completed in place (idempotent)."""
    components = schema.setdefault("components", {})
    if "securitySchemes" in components:
        return schema
    components["securitySchemes"] = SECURITY_SCHEMES
    models = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        models.pop(name, None)
    for model in (ErrorEnvelope, ObjectApiError, ObjectApiNotFound):
        _add_schema(models, model)
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _document_operation(path, item[method])
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document at `/openapi.json` (and `/docs`)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def completed() -> dict[str, Any]:
        return document(generate())

    app.openapi = completed  # type: ignore[method-assign]
