"""Error answers as each API family writes them, from any layer (a route's handler, a middleware,
the outermost boundary): the v1 envelope, or the CRUD object API's own shapes under `/v1/object/`;
under `/object-query/` the envelope also carries its first reason's `code` and `message` at its
top level (the SDK's CommonErrorResponse), and under `/query/` (Data Query) the HTTP status as
`code` and the message (the SDK's DataQueryErrorResponse).
Every answer is counted by category (`partnerbill_error_answers_total`)."""

from typing import Any

from partnerbill.core.errors import Category, ZuoraError, count_error_answer, envelope
from partnerbill.core.json import ZuoraJSONResponse

OBJECT_API_PREFIX = "/v1/object/"
OBJECT_QUERY_PREFIX = "/object-query/"
DATA_QUERY_PREFIX = "/query/"
_OBJECT_API_CODES: dict[int, str] = {
    Category.PERMISSION_DENIED: "API_DISABLED",
    Category.UNKNOWN_FIELD: "INVALID_FIELD",
    Category.MISSING_FIELD: "MISSING_REQUIRED_VALUE",
    Category.NOT_FOUND: "INVALID_ID",
    Category.LOCK_COMPETITION: "LOCK_COMPETITION",
    Category.INTERNAL: "UNKNOWN_ERROR",
    Category.LIMIT_EXCEEDED: "MAX_RECORDS_EXCEEDED",
}


def _object_api_error(error: ZuoraError) -> ZuoraJSONResponse:
    """The CRUD object API's envelopes: the SDK's ProxyNoDataResponse for an unknown object,
    ProxyBadRequestResponse (`Errors[{Code, Message}]`, HTTP 400 or more) for the rest."""
    if error.http_status == 404:
        return ZuoraJSONResponse({"done": True, "records": [], "size": 0}, status_code=404)
    errors = [
        {
            "Code": _OBJECT_API_CODES.get(reason.code % 100, "INVALID_VALUE"),
            "Message": reason.message,
        }
        for reason in error.reasons
    ]
    return ZuoraJSONResponse(
        {"Success": False, "Errors": errors}, status_code=max(error.http_status, 400)
    )


def error_answer(path: str, request_id: str, error: ZuoraError) -> ZuoraJSONResponse:
    """The answer to a request for `path` that failed with `error`."""
    count_error_answer(error)
    if path.startswith(OBJECT_API_PREFIX) and error.http_status != 401:
        return _object_api_error(error)
    body: dict[str, Any] = envelope(error.reasons, request_id)
    if error.http_status == 401:
        body["message"] = error.reasons[0].message  # the SDK's ProxyUnauthorizedResponse
    elif path.startswith(OBJECT_QUERY_PREFIX):
        body["code"] = error.reasons[0].code
        body["message"] = error.reasons[0].message
    elif path.startswith(DATA_QUERY_PREFIX):
        body["code"] = error.http_status
        body["message"] = error.reasons[0].message
    return ZuoraJSONResponse(body, status_code=error.http_status)
