"""Response models for the OpenAPI document only: routes return Zuora-shaped dicts rendered as they
are (`ZuoraJSONResponse`), so these models are never used to validate or serialize an answer.
They name the fields a client can rely on and their JSON types (money is a JSON number, v1
datetimes are `yyyy-mm-dd hh:mm:ss` strings); answers carry more fields than listed.

`ok(Model)` is what a route decorator passes as `responses=`; the error answers (the envelope on
400/401/404/503, business-rule and lock errors as HTTP 200 with `success: false`) are added to
every operation by `core.openapi`.
"""

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

# A JSON number with the amount's own digits (never a float on our side).
Money = Annotated[Decimal, WithJsonSchema({"type": "number"})]


class Documented(BaseModel):
    """A documented answer: the listed fields, and possibly more."""

    model_config = ConfigDict(extra="allow")


class Succeeded(Documented):
    success: bool


class ReasonModel(Documented):
    code: int = Field(ge=10_000_000, le=99_999_999)
    message: str


class ErrorEnvelope(BaseModel):
    """Zuora's failure envelope; 401 answers also carry `message`."""

    success: Literal[False]
    processId: str
    requestId: str
    reasons: list[ReasonModel] = Field(min_length=1)
    message: str | None = None


class ObjectApiErrorModel(Documented):
    Code: str
    Message: str


class ObjectApiError(BaseModel):
    """The CRUD object API's failure (`/v1/object/...`, HTTP 400 or more but 404)."""

    Success: Literal[False]
    Errors: list[ObjectApiErrorModel] = Field(min_length=1)


class ObjectApiNotFound(BaseModel):
    """The CRUD object API's answer for an unknown id (HTTP 404)."""

    done: Literal[True]
    records: list[Any] = Field(max_length=0)
    size: Literal[0]


class TokenResponse(Documented):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    scope: str
    jti: str


class TenantSettingsResponse(Succeeded):
    metricsRefreshIntervalSeconds: int
    lockWaitMs: int
    invoiceBatchLimit: int
    orderSyncLimit: int
    orderAsyncLimit: int
    resellerAccountEnabled: bool


def ok(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route answering `model`."""
    return {status: {"model": model}}
