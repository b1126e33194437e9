"""The web UI's pages (`/ui/...`) and `GET /`: server-rendered, htmx for the metrics refresh.

Every page calls the services the API calls (accounts, metrics refresh, tenant settings) and
validates with the API's request models, so a rule and its wording exist once. A refusal is
shown next to the field it names. Only the list and the account page's tabs have reads of
their own (`ui.queries`).
"""

import contextlib
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from partnerbill.accounts import service as accounts
from partnerbill.accounts.schemas import BATCH, CreateAccountRequest, UpdateAccountRequest
from partnerbill.core import tenants
from partnerbill.core.db import transaction
from partnerbill.core.errors import ZuoraError
from partnerbill.core.json import v1_datetime
from partnerbill.core.money import CURRENCIES
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tenant_routes import TenantSettingsUpdate
from partnerbill.metrics.service import MetricsSnapshot, read_metrics
from partnerbill.ui import forms, queries
from partnerbill.ui.session import (
    SESSION_COOKIE,
    Forbidden,
    SignInRequired,
    checked_form,
    checked_sign_in_form,
    end_session,
    keep_sign_in_token,
    require_admin,
    sign_in_token,
    signed_in,
    start_session,
)
from partnerbill.users import service as users
from partnerbill.users.service import SignedIn

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# Amounts exactly as stored (Decimal, never float); times as the v1 API writes them (UTC).
templates.env.filters["amount"] = lambda value: "—" if value is None else format(value, "f")
templates.env.filters["when"] = lambda value: v1_datetime(value) or "never"
router = FeatureRouter(include_in_schema=False)
UI_PREFIX = "/ui/"
SIGN_IN = "/ui/sign-in"
ACCOUNTS = "/ui/accounts"
PAYMENT_TERMS = ("Due Upon Receipt", "Net 15", "Net 30", "Net 45", "Net 60", "Net 90")
BATCHES = tuple(f"Batch{n}" for n in range(1, 51))
SETTINGS_FIELDS = ("metricsRefreshIntervalSeconds", "lockWaitMs", "invoiceBatchLimit")
assert all(BATCH.match(batch) for batch in BATCHES)


def _page(
    request: Request, name: str, user: SignedIn | None, status: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": user, **context}, status_code=status)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/")
async def home(request: Request) -> Response:
    """The UI: its accounts when signed in, else its sign-in page (which links the API docs)."""
    try:
        await signed_in(request)
    except SignInRequired:
        return _see_other(SIGN_IN)
    return _see_other(ACCOUNTS)


def _sign_in_page(
    request: Request, status: int = 200, email: str = "", refusal: str | None = None
) -> Response:
    token = sign_in_token(request)
    response = _page(
        request, "sign_in.html", None, status, csrf_token=token, email=email, refusal=refusal
    )
    keep_sign_in_token(response, request, token)
    return response


@router.get(SIGN_IN)
async def sign_in_page(request: Request) -> Response:
    return _sign_in_page(request)


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    form = await checked_sign_in_form(request)
    email = str(form.get("email") or "")
    async with transaction() as conn:
        answer = await users.sign_in(conn, email, str(form.get("password") or ""))
    if answer.token is None:
        return _sign_in_page(request, 400, email, answer.refusal)
    response = _see_other(ACCOUNTS)
    start_session(response, request, answer.token)
    return response


@router.post("/ui/sign-out")
async def sign_out(request: Request) -> Response:
    user = await signed_in(request)
    await checked_form(request, user)
    async with transaction() as conn:
        await users.sign_out(conn, request.cookies[SESSION_COOKIE])
    response = _see_other(SIGN_IN)
    end_session(response)
    return response


def _partner_filter(value: str) -> bool | None:
    return {"partner": True, "non-partner": False}.get(value)


@router.get(ACCOUNTS)
async def account_list(
    request: Request, q: str = "", partner: str = "all", after: str | None = None
) -> Response:
    user = await signed_in(request)
    async with transaction() as conn:
        settings = await tenants.get_settings(conn, user.tenant)
        page = await queries.account_page(
            conn, user.tenant, search=q, partner=_partner_filter(partner), after=after
        )
    return _page(
        request,
        "accounts.html",
        user,
        page=page,
        q=q,
        partner=partner if _partner_filter(partner) is not None else "all",
        reseller=settings.reseller_account_enabled,
    )


def _account_form(
    request: Request,
    user: SignedIn,
    *,
    reseller: bool,
    values: dict[str, Any],
    errors: dict[str, str],
    account: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return _page(
        request,
        "account_form.html",
        user,
        status,
        reseller=reseller,
        values=values,
        errors=errors,
        account=account,
        currencies=sorted(CURRENCIES),
        payment_terms=PAYMENT_TERMS,
        batches=BATCHES,
    )


@router.get(f"{ACCOUNTS}/new")
async def new_account_page(request: Request) -> Response:
    user = await signed_in(request)
    async with transaction() as conn:
        settings = await tenants.get_settings(conn, user.tenant)
    defaults = {
        "currency": "USD",
        "paymentTerm": "Due Upon Receipt",
        "batch": "Batch1",
        "billCycleDay": "1",
        "soldToSameAsBillTo": "on",
    }
    return _account_form(
        request, user, reseller=settings.reseller_account_enabled, values=defaults, errors={}
    )


def _values(form: FormData) -> dict[str, Any]:
    """The form as typed, to show it again with its errors."""
    return {name: value for name, value in form.items() if isinstance(value, str)}


@router.post(ACCOUNTS)
async def create_account(request: Request) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user)
    async with transaction() as conn:
        settings = await tenants.get_settings(conn, user.tenant)
    reseller = settings.reseller_account_enabled
    body, errors = forms.account_body(form, creating=True, reseller_account_enabled=reseller)
    created: dict[str, Any] | None = None
    try:
        request_model = CreateAccountRequest.model_validate(body)
    except ValidationError as error:
        errors = {**forms.validation_errors(error), **errors}
    if not errors:
        try:
            async with transaction() as conn:
                created = await accounts.create_account(conn, user.tenant, request_model)
        except ZuoraError as error:
            errors = forms.refusal_errors(error, set(form.keys()) | set(body))
    if created is None:
        return _account_form(
            request, user, reseller=reseller, values=_values(form), errors=errors, status=400
        )
    return _see_other(f"{ACCOUNTS}/{created['accountId']}")


async def _account_view(
    conn: AsyncConnection, user: SignedIn, key: str
) -> tuple[dict[str, Any], tenants.TenantSettings, MetricsSnapshot]:
    """The account as `GET /v1/accounts/{key}` answers it, the tenant's settings, and the
    metrics snapshot (the eight metrics with their freshness)."""
    account = await accounts.get_account(conn, user.tenant, key)
    settings = await tenants.get_settings(conn, user.tenant)
    snapshot = await read_metrics(conn, user.tenant, account["basicInfo"]["id"])
    return account, settings, snapshot


def _metrics_context(
    account: dict[str, Any], settings: tenants.TenantSettings, snapshot: MetricsSnapshot
) -> dict[str, Any]:
    basic = account["basicInfo"]
    reseller = settings.reseller_account_enabled
    return {
        "account": account,
        "basic": basic,
        "snapshot": snapshot,
        "freshness": snapshot.freshness_json(),
        "reseller": reseller,
        "partner": reseller and bool(basic.get("partnerAccount")),
    }


@router.get(ACCOUNTS + "/{key}")
async def account_page(
    request: Request, key: str, tab: str = "invoices", after: str | None = None
) -> Response:
    user = await signed_in(request)
    document_tab = queries.document_tab(tab)
    try:
        async with transaction() as conn:
            account, settings, snapshot = await _account_view(conn, user, key)
            documents = await queries.document_page(
                conn, user.tenant, account["basicInfo"]["id"], document_tab, after
            )
    except ZuoraError as error:
        return _page(request, "not_found.html", user, 404, message=error.reasons[0].message)
    return _page(
        request,
        "account.html",
        user,
        **_metrics_context(account, settings, snapshot),
        tabs=queries.TAB_NAMES,
        tab=tab if tab in queries.TAB_NAMES else "invoices",
        document_tab=document_tab,
        documents=documents,
        refreshed=None,
    )


@router.post(ACCOUNTS + "/{key}/refresh-metrics")
async def refresh_metrics(request: Request, key: str) -> Response:
    """htmx: refresh now (as `POST /v1/partnerbill/accounts/{key}/refresh-metrics`), answer
    the Key Metrics panel with the refresh's duration and folded changes, or its refusal."""
    user = await signed_in(request)
    await checked_form(request, user)
    refreshed, refusal = None, None
    try:
        async with transaction() as conn:
            refreshed = await accounts.refresh_metrics(conn, user.tenant, key)
    except ZuoraError as error:
        if error.http_status == 404:
            return _page(request, "not_found.html", user, 404, message=error.reasons[0].message)
        refusal = error.reasons[0].message
    async with transaction() as conn:
        account, settings, snapshot = await _account_view(conn, user, key)
    return _page(
        request,
        "_metrics.html",
        user,
        **_metrics_context(account, settings, snapshot),
        refreshed=refreshed,
        refusal=refusal,
    )


def _edit_values(account: dict[str, Any]) -> dict[str, Any]:
    basic, billing = account["basicInfo"], account["billingAndPayment"]
    values: dict[str, Any] = {
        "name": basic["name"],
        "paymentTerm": billing["paymentTerm"],
        "billCycleDay": str(billing["billCycleDay"]),
        "batch": basic["batch"],
        "crmId": basic.get("crmId") or "",
        "salesRep": basic.get("salesRep") or "",
        "purchaseOrderNumber": basic.get("purchaseOrderNumber") or "",
        "notes": basic.get("notes") or "",
        "autoPay": "on" if billing["autoPay"] else "",
        "partnerAccount": "on" if basic.get("partnerAccount") else "",
        "partnerAccountWas": "on" if basic.get("partnerAccount") else "",
        "soldToSameAsBillTo": (
            "on" if account["billToContact"]["id"] == account["soldToContact"]["id"] else ""
        ),
        "customFields": "\n".join(
            f"{name} = {value}" for name, value in basic.items() if name.endswith("__c")
        ),
    }
    for prefix in ("billToContact", "soldToContact"):
        for field in forms.CONTACT_FIELDS:
            values[f"{prefix}.{field}"] = account[prefix].get(field) or ""
    return values


@router.get(ACCOUNTS + "/{key}/edit")
async def edit_account_page(request: Request, key: str) -> Response:
    user = await signed_in(request)
    try:
        async with transaction() as conn:
            account, settings, _ = await _account_view(conn, user, key)
    except ZuoraError as error:
        return _page(request, "not_found.html", user, 404, message=error.reasons[0].message)
    return _account_form(
        request,
        user,
        reseller=settings.reseller_account_enabled,
        values=_edit_values(account),
        errors={},
        account=account,
    )


@router.post(ACCOUNTS + "/{key}/edit")
async def edit_account(request: Request, key: str) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user)
    try:
        async with transaction() as conn:
            account, settings, _ = await _account_view(conn, user, key)
    except ZuoraError as error:
        return _page(request, "not_found.html", user, 404, message=error.reasons[0].message)
    reseller = settings.reseller_account_enabled
    body, errors = forms.account_body(form, creating=False, reseller_account_enabled=reseller)
    try:
        update = UpdateAccountRequest.model_validate(body)
    except ValidationError as error:
        errors = {**forms.validation_errors(error), **errors}
    if not errors and "partnerAccount" in body and form.get("confirmed") != "yes":
        # A switch is confirmed first, on a page that says what it does.
        return _page(
            request,
            "confirm_switch.html",
            user,
            account=account,
            values=_values(form),
            switching_on=body["partnerAccount"],
        )
    if not errors:
        try:
            async with transaction() as conn:
                await accounts.update_account(conn, user.tenant, account["basicInfo"]["id"], update)
            return _see_other(f"{ACCOUNTS}/{account['basicInfo']['id']}")
        except ZuoraError as error:
            errors = forms.refusal_errors(error, set(form.keys()) | set(body))
    return _account_form(
        request,
        user,
        reseller=reseller,
        values=_values(form),
        errors=errors,
        account=account,
        status=400,
    )


@router.get("/ui/features")
async def features_page(request: Request) -> Response:
    user = await signed_in(request)
    require_admin(user)
    async with transaction() as conn:
        settings = await tenants.get_settings(conn, user.tenant)
    return _page(request, "features.html", user, settings=settings, refusal=None, saved=False)


@router.post("/ui/features")
async def change_features(request: Request) -> Response:
    user = await signed_in(request)
    require_admin(user)
    form = await checked_form(request, user)
    refusal = None
    try:
        async with transaction() as conn:
            await tenants.update_settings(
                conn,
                user.tenant,
                reseller_account_enabled=form.get("resellerAccountEnabled") == "on",
            )
    except ZuoraError as error:
        refusal = error.reasons[0].message
    async with transaction() as conn:
        settings = await tenants.get_settings(conn, user.tenant)
    return _page(
        request,
        "features.html",
        user,
        200 if refusal is None else 400,
        settings=settings,
        refusal=refusal,
        saved=refusal is None,
    )


def _settings_values(settings: tenants.TenantSettings) -> dict[str, str]:
    shown = settings.as_json()
    return {name: str(shown[name]) for name in SETTINGS_FIELDS}


@router.get("/ui/settings")
async def settings_page(request: Request) -> Response:
    user = await signed_in(request)
    require_admin(user)
    async with transaction() as conn:
        settings = await tenants.get_settings(conn, user.tenant)
    return _page(
        request, "settings.html", user, values=_settings_values(settings), errors={}, saved=False
    )


@router.post("/ui/settings")
async def change_settings(request: Request) -> Response:
    user = await signed_in(request)
    require_admin(user)
    form = await checked_form(request, user)
    body: dict[str, Any] = {}
    for name in SETTINGS_FIELDS:
        typed = str(form.get(name) or "").strip()
        body[name] = int(typed) if typed.isdigit() else typed
    errors: dict[str, str] = {}
    try:
        update = TenantSettingsUpdate.model_validate(body)
        async with transaction() as conn:
            await tenants.update_settings(
                conn,
                user.tenant,
                metrics_refresh_interval_seconds=update.metrics_refresh_interval_seconds,
                lock_wait_ms=update.lock_wait_ms,
                invoice_batch_limit=update.invoice_batch_limit,
            )
    except ValidationError as error:
        errors = forms.validation_errors(error)
    except ZuoraError as error:
        errors = forms.refusal_errors(error, set(SETTINGS_FIELDS))
    return _page(
        request,
        "settings.html",
        user,
        400 if errors else 200,
        values=_values(form) if errors else {name: str(body[name]) for name in SETTINGS_FIELDS},
        errors=errors,
        saved=not errors,
    )


def install(app: FastAPI) -> None:
    """The UI's pages, its static files, and its answers to a missing session (the sign-in
    page; htmx is told to go there) and to a refused request (a 403 page)."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": SIGN_IN})
        return _see_other(SIGN_IN)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        user = None
        with contextlib.suppress(SignInRequired):
            user = await signed_in(request)
        return _page(request, "forbidden.html", user, 403, message=exc.message)
