"""`GET /object-query/{objects}` and `/object-query/{objects}/{key}`: two routes per catalogue
object (so an unknown object is the app's 404, and each key names one kind of object). The
parameters are read from the raw query string by `query/object_query.py` (case-insensitive
names, `+` kept); they are declared here for the OpenAPI document only."""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import Documented, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.query import object_query
from partnerbill.query.catalog import OBJECTS, QueryObject

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Object Query"])


class ObjectQueryPage(Documented):
    """A page of objects (camelCase fields; null fields left out unless includeNullFields);
    `nextPage` is the cursor of the next page, absent on the last."""

    data: list[dict[str, Any]]
    nextPage: str | None = None


class ObjectQueryObject(Documented):
    """One object, with the fields asked for."""


def _parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_TEXTS = {"type": "array", "items": {"type": "string"}}
_FIELDS = _parameter(
    "fields[]", _TEXTS, "Fields to answer (repeated or comma-separated); all by default."
)
_EXPAND = _parameter(
    "expand[]", _TEXTS, "Related objects to include, nested with dots (subscriptions.rateplans)."
)
_INCLUDE_NULLS = _parameter(
    "includeNullFields", {"type": "boolean"}, "Answer null fields too (default false)."
)
_PAGE_SIZE = _parameter(
    "pageSize",
    {"type": "integer", "minimum": 1, "maximum": object_query.MAX_PAGE_SIZE},
    "Objects per page (expanded lists are cut at it too); default 10.",
)
LIST_PARAMETERS = [
    _PAGE_SIZE,
    _parameter("cursor", {"type": "string"}, "The nextPage of the previous page."),
    _parameter("sort[]", _TEXTS, "One field.ASC or field.DESC; default updatedDate.DESC."),
    _parameter("filter[]", _TEXTS, "field.OP:value (EQ NE LT GT LE GE SW IN), all ANDed."),
    _FIELDS,
    _EXPAND,
    _INCLUDE_NULLS,
]
KEY_PARAMETERS = [_PAGE_SIZE, _FIELDS, _EXPAND, _INCLUDE_NULLS]


def _list(obj: QueryObject) -> Callable[..., Awaitable[Response]]:
    async def list_objects(request: Request, tenant: CurrentTenant) -> Response:
        return await object_query.query_list(tenant, obj, request.scope["query_string"])

    list_objects.__doc__ = f"{obj.display_label} objects, a page at a time."
    return list_objects


def _by_key(obj: QueryObject) -> Callable[..., Awaitable[Response]]:
    async def object_by_key(key: str, request: Request, tenant: CurrentTenant) -> Response:
        return await object_query.query_key(tenant, obj, key, request.scope["query_string"])

    by = f"Id or {obj.number}" if obj.number else "Id"
    object_by_key.__doc__ = f"One {obj.display_label} by its {by}."
    return object_by_key


for _obj in OBJECTS:
    router.add_api_route(
        f"/object-query/{_obj.path}",
        _list(_obj),
        methods=["GET"],
        name=f"query_{_obj.table}",
        responses=ok(ObjectQueryPage),
        openapi_extra={"parameters": LIST_PARAMETERS},
    )
    router.add_api_route(
        f"/object-query/{_obj.path}/{{key}}",
        _by_key(_obj),
        methods=["GET"],
        name=f"query_{_obj.table}_by_key",
        responses=ok(ObjectQueryObject),
        openapi_extra={"parameters": KEY_PARAMETERS},
    )
