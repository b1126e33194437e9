"""Builds the FastAPI app: routers, error handlers in the Zuora envelope, middleware.

Every error, from any layer, is answered in the envelope with the request id, and no exception
reaches the server: uvicorn closes the connection of a request whose app raised, so a client's
next request on a keep-alive connection would be reset. Starlette's last-resort handler answers
and then re-raises; `RequestBoundary`, outside it, ends the exception there.
"""

import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from partnerbill import tasks
from partnerbill.accounts.routes import router as accounts_router
from partnerbill.billing.bill_run_routes import router as bill_runs_router
from partnerbill.billing.document_routes import router as billing_documents_router
from partnerbill.billing.routes import router as billing_router
from partnerbill.catalog.routes import router as catalog_router
from partnerbill.contacts.routes import router as contacts_router
from partnerbill.core import api_docs, auth, db, openapi, tenant_routes
from partnerbill.core.admission import WriteAdmission
from partnerbill.core.answers import error_answer
from partnerbill.core.errors import (
    Category,
    Resource,
    ZuoraError,
    database_failure,
)
from partnerbill.core.idempotency import IdempotencyMiddleware, mark_retryable
from partnerbill.core.input_policy import RefuseNulBytes
from partnerbill.core.json import ZuoraJSONResponse
from partnerbill.core.logging import configure_logging, process_started, process_stopped
from partnerbill.core.schemas import validation_reasons
from partnerbill.core.scrape import ScrapeTimeGauges
from partnerbill.memos.routes import router as memos_router
from partnerbill.orders.routes import router as orders_router
from partnerbill.orders.subscription_routes import router as subscriptions_router
from partnerbill.payment_methods.routes import router as payment_methods_router
from partnerbill.payments.part_routes import router as application_parts_router
from partnerbill.payments.routes import router as payments_router
from partnerbill.query.aqua_routes import router as aqua_router
from partnerbill.query.data_query_routes import router as data_query_router
from partnerbill.query.describe_routes import router as describe_router
from partnerbill.query.export_routes import router as export_router
from partnerbill.query.file_routes import router as files_router
from partnerbill.query.object_query_routes import router as object_query_router
from partnerbill.settings import get_settings
from partnerbill.ui.routes import install as install_ui
from partnerbill.unsupported.routes import refusals

log = structlog.get_logger("partnerbill.app")
access_log = structlog.get_logger("partnerbill.access")
MAX_TRACK_ID_LENGTH = 64
# A caller's X-Request-Id is kept when it is a plain token; anything else gets a fresh id.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
REQUESTS = Counter(
    "partnerbill_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "partnerbill_http_request_duration_seconds",
    "Time from a request's arrival to its last response byte, by route template and status.",
    ["route", "method", "status"],
)
SERVER_ERRORS = Counter(
    "partnerbill_http_server_errors_total",
    "Answers with a 5xx status, by route template.",
    ["route"],
)
_RETRYABLE = frozenset({Category.LOCK_COMPETITION, Category.INTERNAL, Category.TEMPORARY})


class RequestBoundary:
    """The outermost layer of every request. Gives it an id (the caller's `X-Request-Id` when
    it sent a plain one, else a fresh one; echoed as `X-Request-Id` and `Zuora-Request-Id`, and
    the log lines' `request_id`), echoes the caller's `Zuora-Track-Id`, writes its access log
    line (request id, tenant id once authenticated, route template, method, status,
    duration_ms) and counts it in Prometheus, and ends its exceptions: one
    answered already is dropped, one not yet is answered here (500 in the envelope). Only a
    response cut off halfway still closes the connection: nothing else can end it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given.decode() if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        began = time.perf_counter()
        status = 500
        track_id = next((v for k, v in scope["headers"] if k == b"zuora-track-id"), b"")[
            :MAX_TRACK_ID_LENGTH
        ]
        started = complete = False

        async def send_with_ids(message: Message) -> None:
            nonlocal started, complete, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"zuora-request-id", request_id.encode()))
                headers.append((b"x-request-id", request_id.encode()))
                if track_id:
                    headers.append((b"zuora-track-id", track_id))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_ids)
        except Exception:
            if complete:
                return  # answered and logged by the app's last-resort handler
            if started:
                raise
            log.exception("unhandled_error_unanswered", path=scope.get("path"))
            answer = error_answer(scope["path"], request_id, _internal_error())
            await answer(scope, receive, send_with_ids)
        finally:
            self._account(scope, state, status, time.perf_counter() - began)
            structlog.contextvars.unbind_contextvars("request_id")

    @staticmethod
    def _account(scope: Scope, state: dict[str, object], status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope["method"]
        REQUESTS.labels(route, method, str(status)).inc()
        REQUEST_SECONDS.labels(route, method, str(status)).observe(seconds)
        if status >= 500:
            SERVER_ERRORS.labels(route).inc()
        access_log.info(
            "request",
            tenant=state.get("tenant_id"),
            route=route,
            method=method,
            status=status,
            duration_ms=round(seconds * 1000, 2),
        )


class PartnerbillAPI(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware, which re-raises after answering.
        return RequestBoundary(super().build_middleware_stack())


def _internal_error() -> ZuoraError:
    return ZuoraError(Resource.GENERIC, Category.INTERNAL, "Internal error; please retry.")


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def _error_response(request: Request, error: ZuoraError) -> ZuoraJSONResponse:
    if error.category in _RETRYABLE:
        mark_retryable(request.scope.setdefault("state", {}))
    return error_answer(request.url.path, _request_id(request), error)


def _methods_serving(app: FastAPI, path: str) -> list[str]:
    """The methods of the resource at `path`: Starlette's 405 names only the first route that
    matched, though one route per method may serve it. The templates with the fewest
    parameters are the resource (`/v1/invoices/batch`, not `/v1/invoices/{invoice_key}`)."""
    matching = [
        (route.path.count("{"), route.methods)
        for route in iter_route_contexts(app.routes)
        if route.methods and route.path and compile_path(route.path)[0].match(path)
    ]
    fewest = min((parameters for parameters, _ in matching), default=0)
    return sorted({m for parameters, methods in matching if parameters == fewest for m in methods})


@asynccontextmanager
async def _process_lines(app: FastAPI) -> AsyncIterator[None]:
    process_started("api")
    try:
        yield
    finally:
        process_stopped("api")


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    db.bound_statements(settings.statement_timeout_ms)
    tasks.register()  # the jobs requests defer
    app = PartnerbillAPI(
        title="partnerbill",
        version="0.1.0",
        summary="Zuora-compatible billing where partner accounts take parallel writes.",
        default_response_class=ZuoraJSONResponse,
        # Metrics are Prometheus (`/metrics`); FastAPI's OpenTelemetry probe ran on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # `api_docs` serves /docs from vendored assets; there is no /redoc
        redoc_url=None,
        lifespan=_process_lines,
    )
    features = (
        accounts_router,
        contacts_router,
        billing_router,
        billing_documents_router,
        catalog_router,
        orders_router,
        subscriptions_router,
        bill_runs_router,
        payments_router,
        payment_methods_router,
        application_parts_router,
        memos_router,
        files_router,
        describe_router,
        object_query_router,
        data_query_router,
        aqua_router,
        export_router,
        tenant_routes.router,
    )
    paths = [r.path for router in features for r in iter_route_contexts(router.routes) if r.path]
    # The refusals before the features: `/v1/invoices/pdf-status` is not an invoice key.
    for router in (auth.router, *refusals(paths), *features):
        app.include_router(router)
    openapi.install(app)
    api_docs.install(app)
    install_ui(app)

    _install_error_handlers(app)
    _install_probes(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RefuseNulBytes)  # before the idempotency record stores the path
    # Added last: runs first, so a write waiting for its turn has cost nothing yet.
    app.add_middleware(
        WriteAdmission,
        limit=settings.write_concurrency,
        adaptive=settings.write_admission == "adaptive",
        read_target_ms=settings.read_target_ms,
    )
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every failure answers in the Zuora envelope, whichever layer raised it."""

    @app.exception_handler(ZuoraError)
    async def zuora_error(request: Request, exc: ZuoraError) -> Response:
        return _error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error_response(
            request, ZuoraError.of_reasons(validation_reasons(exc.errors()), 400)
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        category = Category.NOT_FOUND if exc.status_code == 404 else Category.INVALID_VALUE
        message = (
            f"No such resource: {request.method} {request.url.path}"
            if exc.status_code == 404
            else str(exc.detail)
        )
        response = _error_response(
            request, ZuoraError(Resource.GENERIC, category, message, http_status=exc.status_code)
        )
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_methods_serving(app, request.url.path))
        return response

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        """The last resort, for an exception from any layer (routes, middleware, auth): a
        database that cannot serve is a retryable 503 (or the lock-competition error), anything
        else a 500 logged with its traceback."""
        if isinstance(exc, ZuoraError):  # raised outside a route (by a middleware)
            return _error_response(request, exc)
        failure = database_failure(exc)
        if failure is not None:
            log.warning("database_unavailable", path=request.url.path, error=str(exc))
            return _error_response(request, failure)
        log.exception("unhandled_error", path=request.url.path)
        return _error_response(request, _internal_error())


def _install_probes(app: FastAPI) -> None:
    """`/metrics` (Prometheus) and `/health`, outside the OpenAPI document."""

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        answer = generate_latest(registry) + generate_latest(await ScrapeTimeGauges.read())
        return Response(answer, media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, bool]:
        return {"success": True}
