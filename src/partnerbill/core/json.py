"""JSON in and out with exact money.

In: JSON numbers are parsed straight to `Decimal` (never through float), so `0.1` and
`1.0000000000000000001` arrive exactly. Out: `Decimal` is written as a JSON number with its own
digits (Zuora returns numbers), dates as `yyyy-mm-dd`; v1 datetimes are formatted by
`v1_datetime` before they get here.
"""

import functools
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(content: object) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


# One decoder for the process: `json.loads(..., parse_float=...)` builds a new one per call.
_DECODER = json.JSONDecoder(parse_float=Decimal)


def loads(raw: bytes | str) -> Any:
    return _DECODER.decode(raw.decode() if isinstance(raw, bytes) else raw)


def v1_datetime(value: datetime | None) -> str | None:
    """Zuora v1 datetimes are `yyyy-mm-dd hh:mm:ss` (UTC here)."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class ZuoraJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return dumps(content)


class DecimalJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = (await self.body()).decode()
            body = loads(raw)
            # Every body of the API is an object (or null for an optional one): a bare number or
            # list would slip past an optional body as "no body".
            if body is not None and not isinstance(body, dict):
                raise json.JSONDecodeError("a request body is a JSON object", raw, 0)
            self._json = body
        return self._json


class DecimalJSONRoute(APIRoute):
    """Routes whose JSON bodies are parsed with `Decimal` numbers and whose returned content is
    rendered by `ZuoraJSONResponse` as it is. FastAPI would otherwise pass it through a response
    model (Decimal → string) or `jsonable_encoder` (Decimal → float)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        @functools.wraps(endpoint)
        async def render_exactly(*call_args: Any, **call_kwargs: Any) -> Response:
            content = await endpoint(*call_args, **call_kwargs)
            return content if isinstance(content, Response) else ZuoraJSONResponse(content)

        kwargs["response_model"] = None
        kwargs["response_class"] = ZuoraJSONResponse
        super().__init__(path, render_exactly, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decimal_json_handler(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return decimal_json_handler
