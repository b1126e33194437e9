"""The web UI in a real browser (Playwright driving Debian's Chromium) against the live server:
one server and one browser for the module, a fresh browser context (cookies) per test.

Every page a test opens passes the axe-core audit (no serious or critical violation)."""

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from partnerbill.core.json import dumps, loads
from partnerbill.users.service import MAX_FAILED_SIGN_INS, Role
from tests.helpers import TenantCredentials, invoice_body, new_tenant_on_own_engine
from tests.ui_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    audit,
    csrf_token,
    new_ui_user,
    run_in_thread,
    sign_in,
)

INVOICES = 25  # more than one page of the invoices tab (20)


class Api:
    """The REST API of the live server, as one tenant's OAuth client."""

    def __init__(self, base_url: str, credentials: TenantCredentials) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        token = self.http.post(
            "/oauth/token",
            data={
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
                "grant_type": "client_credentials",
            },
        )
        assert token.status_code == 200, token.text
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.http.request(
            method,
            path,
            content=None if body is None else dumps(body),
            headers={"Content-Type": "application/json"},
        )
        payload: dict[str, Any] = loads(response.content)
        return payload

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        payload = self.call(method, path, body)
        assert payload.get("success") is True, payload
        return payload


@pytest.fixture(scope="module")
def browser(sdk_credentials: TenantCredentials) -> Iterator[Browser]:
    """Started after the module's tenant, which `asyncio.run` makes."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport={"width": 1280, "height": 900})
    fresh.set_default_timeout(15_000)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="module")
def api(live_server: str, sdk_credentials: TenantCredentials) -> Iterator[Api]:
    client = Api(live_server, sdk_credentials)
    yield client
    client.http.close()


@pytest.fixture(scope="module")
def admin(database_url: str, sdk_credentials: TenantCredentials) -> str:
    return new_ui_user(database_url, sdk_credentials.tenant, Role.ADMIN)


@pytest.fixture(scope="module")
def plain_user(database_url: str, sdk_credentials: TenantCredentials) -> str:
    return new_ui_user(database_url, sdk_credentials.tenant, Role.USER)


def test_home_leads_to_sign_in_which_links_the_api_docs(
    page: Page, live_server: str, admin: str
) -> None:
    page.goto(f"{live_server}/")
    expect(page).to_have_url(f"{live_server}/ui/sign-in")
    expect(page.get_by_role("link", name="API documentation").first).to_have_attribute(
        "href", "/docs"
    )
    audit(page, "sign-in")
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/")
    expect(page).to_have_url(f"{live_server}/ui/accounts")
    missing = page.goto(f"{live_server}/ui/accounts/A99999999")
    assert missing is not None and missing.status == 404
    expect(page.get_by_role("alert")).to_contain_text("Cannot find account by key: 'A99999999'")
    audit(page, "not-found")


def _text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def test_partner_account_from_the_check_box_to_refreshed_and_switched_off_metrics(
    page: Page, live_server: str, admin: str, api: Api
) -> None:
    sign_in(page, live_server, admin)
    expect(page.get_by_role("heading", name="Customer Accounts")).to_be_visible()
    page.get_by_role("link", name="New Customer Account").first.click()
    expect(page.get_by_role("heading", name="New Customer Account")).to_be_visible()
    expect(page.get_by_text("its metrics are refreshed in the background")).to_be_visible()
    audit(page, "new-account")

    page.get_by_label("Account name").fill("Reseller One")
    page.locator("#f-billToContact-firstName").fill("Ada")
    page.locator("#f-billToContact-lastName").fill("Lovelace")
    page.locator("#f-billToContact-workEmail").fill("ada@example.com")
    page.get_by_label("Payment term").fill("Net 30")
    page.get_by_label("CRM account ID").fill("CRM-1")
    page.get_by_label("Partner Account").check()
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("heading", name="Reseller One")).to_be_visible()
    expect(page.locator("#partner-flag")).to_have_text("Yes")
    account_id = page.url.rsplit("/", 1)[1]
    account = api.ok("GET", f"/v1/accounts/{account_id}")
    assert account["basicInfo"]["partnerAccount"] is True
    assert account["basicInfo"]["crmId"] == "CRM-1"
    assert account["billingAndPayment"]["paymentTerm"] == "Net 30"
    number = account["basicInfo"]["accountNumber"]
    created_at = _text(page, "#metrics-last-updated")
    assert created_at == account["basicInfo"]["lastMetricsUpdate"]

    # Found in the list by name and by number, among partner accounts only.
    page.get_by_role("link", name="Customer Accounts").click()
    page.get_by_label("Search by name or number").fill("reseller on")
    page.get_by_label("Partner accounts").select_option("partner")
    page.get_by_role("button", name="Search").click()
    row = page.locator("#accounts tbody tr", has_text="Reseller One")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(3)).to_have_text("Yes")
    audit(page, "accounts")
    page.get_by_label("Partner accounts").select_option("non-partner")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#accounts tbody tr", has_text="Reseller One")).to_have_count(0)
    page.goto(f"{live_server}/ui/accounts?q={number}")
    expect(page.locator("#accounts tbody tr", has_text=number)).to_have_count(1)

    # Invoices through the API: deferred, so pending until a refresh.
    invoices = [invoice_body(number, "100.00") for _ in range(INVOICES)]
    batch = api.ok("POST", "/v1/invoices/batch", {"invoices": invoices})
    assert len(batch["invoices"]) == INVOICES
    page.goto(f"{live_server}/ui/accounts/{account_id}")
    pending = int(_text(page, "#pending-changes"))
    assert pending >= 1
    assert _text(page, "#oldest-pending-change") != "none"
    expect(page.locator("#metric-balance")).to_have_text("0 USD")
    assert _text(page, "#metrics-last-updated") == created_at

    time.sleep(1.1)  # the timestamp has whole seconds
    page.get_by_role("button", name="Refresh metrics now").click()
    expect(page.locator("#refresh-result")).to_contain_text(f"folding {pending} pending change")
    expect(page.locator("#metric-balance")).to_have_text(f"{Decimal('100.00') * INVOICES} USD")
    expect(page.locator("#metric-lastInvoiceDate")).to_have_text("2026-11-01")
    expect(page.locator("#pending-changes")).to_have_text("0")
    refreshed_at = _text(page, "#metrics-last-updated")
    assert refreshed_at != created_at
    assert (
        refreshed_at
        == api.ok("GET", f"/v1/accounts/{account_id}")["basicInfo"]["lastMetricsUpdate"]
    )
    audit(page, "account")

    # The invoices tab pages by keyset: 20, then the rest.
    expect(page.locator("#documents tbody tr")).to_have_count(20)
    page.locator("#next-documents").click()
    expect(page.locator("#documents tbody tr")).to_have_count(INVOICES - 20)
    for tab in ("subscriptions", "payments", "credit-memos", "debit-memos"):
        page.goto(f"{live_server}/ui/accounts/{account_id}?tab={tab}")
        expect(page.locator("#documents tbody tr")).to_have_count(1)  # "none yet"
        audit(page, f"account-{tab}")

    # Switching the flag off: confirmed on a page that says what it does.
    page.goto(f"{live_server}/ui/accounts/{account_id}")
    page.get_by_role("link", name="Edit account").click()
    audit(page, "edit-account")
    page.get_by_label("Partner Account").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#switch-explanation")).to_contain_text("recomputed")
    audit(page, "confirm-switch")
    page.get_by_role("button", name="Confirm the switch").click()
    expect(page.locator("#partner-flag")).to_have_text("No")
    expect(page.locator("#metrics-current")).to_be_visible()
    expect(page.locator("#metrics-last-updated")).to_have_count(0)
    expect(page.locator("#metric-balance")).to_have_text(f"{Decimal('100.00') * INVOICES} USD")
    after = api.ok("GET", f"/v1/accounts/{account_id}")
    assert after["basicInfo"]["partnerAccount"] is False
    assert after["basicInfo"]["lastMetricsUpdate"] is None
    assert after["metrics"]["totalInvoiceBalance"] == Decimal("100.00") * INVOICES


def test_switching_an_account_to_partner_is_confirmed_and_starts_deferral(
    page: Page, live_server: str, admin: str, api: Api
) -> None:
    created = api.ok(
        "POST",
        "/v1/accounts",
        {
            "name": "Direct Co",
            "currency": "EUR",
            "billToContact": {"firstName": "Grace", "lastName": "Hopper"},
        },
    )
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/ui/accounts/{created['accountId']}")
    expect(page.locator("#metrics-current")).to_be_visible()
    page.get_by_role("link", name="Edit account").click()
    page.get_by_label("Sales rep").fill("Lin")
    page.get_by_label("Partner Account").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#switch-explanation")).to_contain_text("stay as they are")
    page.get_by_role("button", name="Confirm the switch").click()
    expect(page.locator("#partner-flag")).to_have_text("Yes")
    expect(page.locator("#metrics-last-updated")).to_be_visible()
    account = api.ok("GET", f"/v1/accounts/{created['accountId']}")["basicInfo"]
    assert (account["partnerAccount"], account["salesRep"]) == (True, "Lin")
    assert account["lastMetricsUpdate"] == _text(page, "#metrics-last-updated")


def _api_reason(api: Api, method: str, path: str, body: dict[str, Any], field: str) -> str:
    payload = api.call(method, path, body)
    assert payload["success"] is False, payload
    return next(r["message"] for r in payload["reasons"] if field in r["message"])


def test_new_account_errors_show_next_to_their_fields_as_the_api_words_them(
    page: Page, live_server: str, admin: str, api: Api
) -> None:
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/ui/accounts/new")
    page.get_by_label("Bill cycle day").fill("40")
    page.get_by_label("Payment term").fill("Net soon")
    page.locator("#f-billToContact-firstName").fill("Ada")
    page.get_by_label("Custom fields").fill("region__c = EMEA\nnot a field")
    page.get_by_role("button", name="Create account").click()

    expect(page.locator("#form-error")).to_be_visible()
    body = {
        "currency": "USD",
        "billCycleDay": 40,
        "paymentTerm": "Net soon",
        "billToContact": {"firstName": "Ada"},
    }
    for field, selector in (
        ("name", "#e-name"),
        ("billCycleDay", "#e-billCycleDay"),
        ("paymentTerm", "#e-paymentTerm"),
        ("billToContact.lastName", "#e-billToContact-lastName"),
    ):
        expect(page.locator(selector)).to_have_text(
            _api_reason(api, "POST", "/v1/accounts", body, field)
        )
    expect(page.locator("#e-customFields")).to_contain_text("line 2")
    expect(page.get_by_label("Bill cycle day")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-billToContact-firstName")).to_have_value("Ada")
    audit(page, "new-account-errors")


def test_a_user_who_is_not_an_admin_cannot_reach_features_or_settings(
    page: Page, context: BrowserContext, live_server: str, plain_user: str, api: Api
) -> None:
    sign_in(page, live_server, plain_user)
    expect(page.get_by_role("heading", name="Customer Accounts")).to_be_visible()
    expect(page.get_by_role("link", name="Manage Features")).to_have_count(0)
    expect(page.get_by_role("link", name="Billing Settings")).to_have_count(0)
    token = csrf_token(page.content())
    before = api.ok("GET", "/v1/partnerbill/settings")
    for path, form in (
        ("/ui/features", {"resellerAccountEnabled": ""}),
        ("/ui/settings", {"lockWaitMs": "1234", "metricsRefreshIntervalSeconds": "60"}),
    ):
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 403, path
        expect(page.locator("#forbidden")).to_contain_text("Only an admin")
        posted = context.request.post(
            f"{live_server}{path}", form={"csrf_token": token, **form}, max_redirects=0
        )
        assert posted.status == 403, (path, posted.text())
    audit(page, "forbidden")
    assert _same_settings(before, api.ok("GET", "/v1/partnerbill/settings"))


def _same_settings(before: dict[str, Any], after: dict[str, Any]) -> bool:
    keys = ("lockWaitMs", "metricsRefreshIntervalSeconds", "resellerAccountEnabled")
    return all(before[key] == after[key] for key in keys)


def test_a_form_post_without_the_csrf_token_is_refused(
    page: Page, context: BrowserContext, live_server: str, admin: str, api: Api
) -> None:
    sign_in(page, live_server, admin)
    before = api.ok("GET", "/v1/partnerbill/settings")
    for token in (None, "wrong-token"):
        form = {"lockWaitMs": "1234", "metricsRefreshIntervalSeconds": "120"}
        if token is not None:
            form["csrf_token"] = token
        for path in ("/ui/settings", "/ui/accounts"):
            posted = context.request.post(f"{live_server}{path}", form=form, max_redirects=0)
            assert posted.status == 403, (path, posted.status)
            assert "security token" in posted.text()
    after = api.ok("GET", "/v1/partnerbill/settings")
    assert _same_settings(before, after)
    # The sign-in form has its own token (before any session exists).
    signed_out = context.browser.new_context() if context.browser else None
    assert signed_out is not None
    try:
        refused = signed_out.request.post(
            f"{live_server}/ui/sign-in",
            form={"email": "a@example.com", "password": PASSWORD},
            max_redirects=0,
        )
        assert refused.status == 403
    finally:
        signed_out.close()


def test_billing_settings_are_validated_as_the_api_validates_them(
    page: Page, live_server: str, admin: str, api: Api
) -> None:
    sign_in(page, live_server, admin)
    page.get_by_role("link", name="Billing Settings").click()
    audit(page, "billing-settings")
    page.get_by_label("Lock-wait bound (milliseconds)").fill("0")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#e-lockWaitMs")).to_have_text(
        _api_reason(api, "PUT", "/v1/partnerbill/settings", {"lockWaitMs": 0}, "lockWaitMs")
    )
    audit(page, "billing-settings-errors")
    page.get_by_label("Lock-wait bound (milliseconds)").fill("2500")
    page.get_by_label("Metrics refresh interval (seconds)").fill("0")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#e-metricsRefreshIntervalSeconds")).to_have_text(
        _api_reason(
            api,
            "PUT",
            "/v1/partnerbill/settings",
            {"metricsRefreshIntervalSeconds": 0},
            "metricsRefreshIntervalSeconds",
        )
    )
    page.get_by_label("Metrics refresh interval (seconds)").fill("120")
    page.get_by_label("Invoice batch limit").fill("100")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#saved")).to_be_visible()
    settings = api.ok("GET", "/v1/partnerbill/settings")
    assert (
        settings["metricsRefreshIntervalSeconds"],
        settings["lockWaitMs"],
        settings["invoiceBatchLimit"],
    ) == (120, 2500, 100)


@pytest.fixture
def feature_tenant(database_url: str, live_server: str) -> Iterator[tuple[Api, str]]:
    """A tenant of its own (its feature switch is the test's) with an admin."""
    credentials = run_in_thread(lambda: new_tenant_on_own_engine(database_url))
    client = Api(live_server, credentials)
    yield client, new_ui_user(database_url, credentials.tenant, Role.ADMIN)
    client.http.close()


def _account(api: Api, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Feature Co",
        "currency": "USD",
        "billToContact": {"firstName": "Ada", "lastName": "Lovelace"},
        **fields,
    }
    return api.call("POST", "/v1/accounts", body)


def test_manage_features_switches_the_reseller_account_feature(
    page: Page, live_server: str, feature_tenant: tuple[Api, str]
) -> None:
    api, admin_email = feature_tenant
    partner = _account(api, partnerAccount=True)
    assert partner["success"] is True, partner
    sign_in(page, live_server, admin_email)
    page.get_by_role("link", name="Manage Features").click()
    expect(page.locator("#reseller-state")).to_contain_text("enabled")
    audit(page, "manage-features")

    # Refused while a partner account exists, with the service's message.
    page.get_by_label("Enable the Reseller Account feature").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#feature-refusal")).to_contain_text("cannot be disabled")
    expect(page.locator("#reseller-state")).to_contain_text("enabled")
    assert api.ok("GET", "/v1/partnerbill/settings")["resellerAccountEnabled"] is True

    api.ok("PUT", f"/v1/accounts/{partner['accountId']}", {"partnerAccount": False})
    page.get_by_label("Enable the Reseller Account feature").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#reseller-state")).to_contain_text("disabled")
    assert api.ok("GET", "/v1/partnerbill/settings")["resellerAccountEnabled"] is False

    page.get_by_role("link", name="New Customer Account").click()
    expect(page.get_by_role("heading", name="New Customer Account")).to_be_visible()
    expect(page.get_by_label("Partner Account")).to_have_count(0)
    audit(page, "new-account-feature-disabled")
    page.get_by_role("link", name="Customer Accounts").click()
    expect(page.get_by_role("columnheader", name="Partner")).to_have_count(0)
    expect(page.get_by_label("Partner accounts")).to_have_count(0)
    page.locator("#accounts tbody tr", has_text="Feature Co").get_by_role("link").click()
    expect(page.locator("#partner-flag")).to_have_count(0)
    expect(page.locator("#refresh-metrics")).to_have_count(0)

    # The API refuses partnerAccount while the feature is disabled, naming the feature.
    refused = _account(api, partnerAccount=True)
    assert refused["success"] is False, refused
    assert "Reseller Account" in refused["reasons"][0]["message"]

    page.get_by_role("link", name="Manage Features").click()
    page.get_by_label("Enable the Reseller Account feature").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#reseller-state")).to_contain_text("enabled")
    page.get_by_role("link", name="New Customer Account").click()
    expect(page.get_by_label("Partner Account")).to_have_count(1)


def test_failed_sign_ins_are_limited_even_for_the_right_password(
    page: Page, live_server: str, database_url: str, sdk_credentials: TenantCredentials
) -> None:
    email = new_ui_user(database_url, sdk_credentials.tenant, Role.USER)
    for _ in range(MAX_FAILED_SIGN_INS):
        sign_in(page, live_server, email, "not the password")
        expect(page.locator("#sign-in-refusal")).to_have_text("Wrong e-mail or password.")
    sign_in(page, live_server, email, PASSWORD)
    expect(page.locator("#sign-in-refusal")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    audit(page, "sign-in-limited")


def test_sign_out_ends_the_session_on_the_server(
    browser: Browser, page: Page, context: BrowserContext, live_server: str, admin: str
) -> None:
    sign_in(page, live_server, admin)
    expect(page.get_by_role("heading", name="Customer Accounts")).to_be_visible()
    cookies = context.cookies()
    session = next(c for c in cookies if c["name"] == "partnerbill_session")
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["secure"] is False  # served over plain http here
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server}/ui/sign-in")
    # The old cookie, replayed, no longer signs anyone in.
    replay = browser.new_context()
    try:
        replay.add_cookies([session])
        again = replay.new_page()
        again.goto(f"{live_server}/ui/accounts")
        expect(again).to_have_url(f"{live_server}/ui/sign-in")
    finally:
        replay.close()
