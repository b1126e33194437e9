"""Errors in the Zuora envelope.

A code has 8 digits: a 6-digit resource code (which object or field) and a 2-digit category
(the part clients branch on: 20 invalid value, 22 missing field, 30 business rule, 40 not found,
50 lock competition, 70 limit exceeded). Business-rule and lock errors answer HTTP 200 with
`success: false` as Zuora does; request-shape errors answer 400, unknown keys 404.

A database that cannot serve a request (down, out of pooled connections, not answering within the
statement timeout) is a retryable 503 (category 61) from whichever layer met it; a lock conflict
the database itself reported is the lock-competition error. Every error answer is counted in
Prometheus by category (`partnerbill_error_answers_total`).
"""

from enum import IntEnum

import psycopg
import psycopg_pool
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc


class Category(IntEnum):
    PERMISSION_DENIED = 10
    AUTHENTICATION_FAILED = 11
    INVALID_VALUE = 20
    UNKNOWN_FIELD = 21
    MISSING_FIELD = 22
    BUSINESS_RULE = 30
    NOT_FOUND = 40
    LOCK_COMPETITION = 50
    INTERNAL = 60
    TEMPORARY = 61
    LIMIT_EXCEEDED = 70


class Resource(IntEnum):
    """The resource part of an error code."""

    GENERIC = 500000
    AUTH = 900000
    ACCOUNT = 500100
    CONTACT = 500110
    INVOICE = 590100
    SUBSCRIPTION = 531000
    ORDER = 532000
    BILL_RUN = 591000
    CATALOG = 540000
    PAYMENT = 570000
    INVOICE_ITEM = 590110
    CREDIT_MEMO = 590200
    DEBIT_MEMO = 590300
    TENANT = 500900
    IDEMPOTENCY = 500950


LOCK_COMPETITION_MESSAGE = "Operation failed due to a lock competition, please retry later."

_DEFAULT_HTTP_STATUS = {
    Category.PERMISSION_DENIED: 403,
    Category.AUTHENTICATION_FAILED: 401,
    Category.INVALID_VALUE: 400,
    Category.UNKNOWN_FIELD: 400,
    Category.MISSING_FIELD: 400,
    Category.BUSINESS_RULE: 200,
    Category.NOT_FOUND: 404,
    Category.LOCK_COMPETITION: 200,
    Category.INTERNAL: 500,
    Category.TEMPORARY: 503,
    Category.LIMIT_EXCEEDED: 400,
}


def error_code(resource: Resource, category: Category) -> int:
    return int(resource) * 100 + int(category)


class Reason:
    __slots__ = ("code", "message")

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message

    def as_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


class ZuoraError(Exception):
    """An error the client can act on; rendered in the envelope by the app's handler."""

    def __init__(
        self,
        resource: Resource,
        category: Category,
        message: str,
        *,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.reasons = [Reason(error_code(resource, category), message)]
        self.http_status = (
            http_status if http_status is not None else _DEFAULT_HTTP_STATUS[category]
        )

    @classmethod
    def of_reasons(cls, reasons: list[Reason], http_status: int) -> "ZuoraError":
        """Several problems found at once (validation reports every bad field)."""
        first = reasons[0]
        error = cls(Resource.GENERIC, Category(first.code % 100), first.message)
        error.reasons = reasons
        error.http_status = http_status
        return error


def not_found(resource: Resource, kind: str, key: str) -> ZuoraError:
    return ZuoraError(resource, Category.NOT_FOUND, f"Cannot find {kind} by key: '{key}'.")


def invalid_value(resource: Resource, field: str, message: str) -> ZuoraError:
    return ZuoraError(resource, Category.INVALID_VALUE, f"'{field}': {message}")


def missing_field(resource: Resource, field: str) -> ZuoraError:
    return ZuoraError(resource, Category.MISSING_FIELD, f"'{field}' is required.")


def business_rule(resource: Resource, message: str) -> ZuoraError:
    return ZuoraError(resource, Category.BUSINESS_RULE, message)


def lock_competition(resource: Resource = Resource.ACCOUNT) -> ZuoraError:
    return ZuoraError(resource, Category.LOCK_COMPETITION, LOCK_COMPETITION_MESSAGE)


# SQLSTATEs of a lock conflict: lock_timeout or NOWAIT, deadlock, serialization failure.
_LOCK_CONFLICT_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
_STATEMENT_TIMEOUT_SQLSTATE = "57014"
_UNAVAILABLE_WRAPPED = (sa_exc.OperationalError, sa_exc.InterfaceError)
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable right now; please retry."
DATABASE_TOO_SLOW_MESSAGE = "The database did not answer in time; please retry."

ERROR_ANSWERS = Counter(
    "partnerbill_error_answers_total",
    "Error answers sent, by the category of their first reason.",
    ["category"],
)


def count_error_answer(error: ZuoraError) -> None:
    ERROR_ANSWERS.labels(category=error.category.name.lower()).inc()


def database_failure(exc: BaseException) -> ZuoraError | None:
    """The retryable answer for a failure of the database itself, None for any other error.

    Pool waits, lost or refused connections, a statement cut by the timeout, and lock conflicts
    the database reported are all answered so the client retries; a wrong statement (a bug) is not
    one of them.
    """
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        if not (exc.connection_invalidated or isinstance(exc, _UNAVAILABLE_WRAPPED)):
            return None
        exc = exc.orig
    elif isinstance(exc, sa_exc.TimeoutError | psycopg_pool.PoolTimeout):
        return ZuoraError(Resource.GENERIC, Category.TEMPORARY, DATABASE_UNAVAILABLE_MESSAGE)
    elif not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return None
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in _LOCK_CONFLICT_SQLSTATES:
        return lock_competition(Resource.GENERIC)
    if sqlstate == _STATEMENT_TIMEOUT_SQLSTATE:
        return ZuoraError(Resource.GENERIC, Category.TEMPORARY, DATABASE_TOO_SLOW_MESSAGE)
    return ZuoraError(Resource.GENERIC, Category.TEMPORARY, DATABASE_UNAVAILABLE_MESSAGE)


def envelope(reasons: list[Reason], request_id: str) -> dict[str, object]:
    return {
        "success": False,
        "processId": request_id[:16].upper(),
        "requestId": request_id,
        "reasons": [reason.as_json() for reason in reasons],
    }
