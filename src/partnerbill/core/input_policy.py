"""The input policy: what any request may carry, checked where requests are parsed, never route
by route. A value outside it is a 400 in the Zuora envelope naming the field, and writes nothing.

- Text never holds a NUL byte (PostgreSQL text cannot store one): JSON strings are checked by
  the request models (`core.schemas.CamelModel`), path, query and form values by
  `RefuseNulBytes` before anything reads them.
- Every business date lies in `FIRST_DATE`..`LAST_DATE`, and so does every date the server
  derives from one and stores (a term end, a due date, a resume date): `derived_date` refuses
  the rest. Periods are bounded (`Periods`) so the arithmetic itself never overflows.
- Every JSON integer fits a PostgreSQL `integer`; fields have their own, narrower ranges.
- Every JSON decimal is finite, below 10^15 in absolute value and has at most 9 decimal places
  (`core.money.decimal_problem`); amounts are further held to their currency's scale.
"""

import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from pydantic import Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from partnerbill.core.answers import error_answer
from partnerbill.core.errors import (
    Category,
    Reason,
    Resource,
    ZuoraError,
    error_code,
    invalid_value,
)
from partnerbill.core.money import decimal_problem

FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2099, 12, 31)
MAX_INTEGER = 2_147_483_647  # PostgreSQL integer
MAX_PERIODS = 10_000
"""Term, renewal, suspend, resume and up-to periods: 10,000 days is 27 years, 10,000 months
833; a longer term ends after `LAST_DATE` anyway."""

MAX_KEY_LENGTH = 100  # the longest key column (subscription, order and catalog numbers)
MAX_WORD_LENGTH = 64  # a value of a fixed vocabulary (billing periods, charge models, ...)

Periods = Annotated[int, Field(ge=1, le=MAX_PERIODS)]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
"""An id or number naming an object (an account, a subscription, a rate plan, ...)."""
Word = Annotated[str, Field(max_length=MAX_WORD_LENGTH)]
"""A value the service parses from a fixed vocabulary; an unknown one is refused there."""
NUL = "\x00"
NUL_MESSAGE = "must not contain a NUL byte"
DATE_RANGE_MESSAGE = f"must be between {FIRST_DATE} and {LAST_DATE}"
INTEGER_MESSAGE = f"must be at most {MAX_INTEGER} in absolute value"
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def value_problem(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The first place in a parsed JSON value (relative location, message) that breaks the
    policy, or None. Request models are not entered: they check themselves. Dispatches on the
    exact type, cheapest first: it runs on every value of every request."""
    kind = type(value)
    if kind is str:
        return ((), NUL_MESSAGE) if NUL in value else None
    if value is None or kind is bool:
        return None
    if kind is int:
        return ((), INTEGER_MESSAGE) if abs(value) > MAX_INTEGER else None
    if kind is Decimal:
        problem = decimal_problem(value)
        return None if problem is None else ((), problem)
    if kind is date or kind is datetime:
        day = value.date() if kind is datetime else value
        return None if FIRST_DATE <= day <= LAST_DATE else ((), DATE_RANGE_MESSAGE)
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            if found := value_problem(item):
                return (index, *found[0]), found[1]
    elif kind is dict:
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return (), f"has a key with a NUL byte ({printable(key)})"
            if found := value_problem(item):
                return (str(key), *found[0]), found[1]
    return None


def derived_date(day: date, resource: Resource, field: str, what: str) -> date:
    """`day`, a date computed from the request (a term end, a due date), if it lies in the
    range; else the request is refused naming the field that led to it."""
    if not FIRST_DATE <= day <= LAST_DATE:
        raise invalid_value(
            resource, field, f"{what} would be {day}, outside {FIRST_DATE} to {LAST_DATE}."
        )
    return day


def printable(text: str) -> str:
    return text.replace(NUL, "\\x00")


@cache
def _path_templates(paths: tuple[str, ...]) -> list[re.Pattern[str]]:
    return [compile_path(path)[0] for path in paths]


def _nul_in_path(scope: Scope) -> str | None:
    path: str = scope["path"]
    if NUL not in path:
        return None
    app = scope.get("app")
    paths = tuple(app.openapi()["paths"]) if isinstance(app, FastAPI) else ()
    for template in _path_templates(paths):
        match = template.match(path)
        if match:
            return next(name for name, value in match.groupdict().items() if NUL in value)
    return "path"


def _nul_in_pairs(pairs: Iterator[tuple[str, Any]]) -> str | None:
    for key, value in pairs:
        if NUL in key or (isinstance(value, str) and NUL in value):
            return printable(key)
    return None


async def _whole_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class RefuseNulBytes:
    """Refuses a request whose path, query or form holds a NUL byte, before the idempotency
    record stores its path or a route looks a key up; names the parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field = _nul_in_path(scope) or _nul_in_pairs(
            iter(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        )
        message = None if field is None else f"'{field}': {NUL_MESSAGE}."
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if message is None and content_type.startswith(_FORM_TYPES):
            body = await _whole_body(receive)
            try:
                form = await Request(scope, _replay(body)).form()
            except HTTPException as error:  # a malformed form (a multipart without a boundary)
                message = f"'body': {error.detail}"
            else:
                if (field := _nul_in_pairs(iter(form.multi_items()))) is not None:
                    message = f"'{field}': {NUL_MESSAGE}."
            receive = _replay(body)
        if message is None:
            await self.app(scope, receive, send)
            return
        reason = Reason(error_code(Resource.GENERIC, Category.INVALID_VALUE), message)
        request_id = str(scope.get("state", {}).get("request_id", ""))
        response = error_answer(scope["path"], request_id, ZuoraError.of_reasons([reason], 400))
        await response(scope, receive, send)
