"""Web UI users and sessions without a browser: the failed sign-in limit across API processes
and its window, session expiry and sign-out, the cookie's flags over https, and `GET /`."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.tables.users import ui_sessions, ui_sign_in_failures
from partnerbill.users.service import (
    FAILURE_WINDOW,
    MAX_FAILED_SIGN_INS,
    Role,
    create_user,
    session_user,
    sign_in,
)
from tests.helpers import ApiClient, TenantCredentials, new_tenant
from tests.ui_support import PASSWORD, csrf_token, sign_in_over_http


async def _user(engine: AsyncEngine, credentials: TenantCredentials, role: Role) -> str:
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    async with engine.begin() as conn:
        await create_user(conn, credentials.tenant, email, role, PASSWORD)
    return email


def _attempt(base_url: str, email: str, password: str) -> httpx.Response:
    # A client (and connection) per attempt: the attempts spread over the server's processes.
    with httpx.Client(base_url=base_url, timeout=30) as http:
        return sign_in_over_http(http, email, password)


async def test_failed_sign_ins_are_counted_by_every_api_process(
    engine: AsyncEngine, tenant_credentials: TenantCredentials, live_server: str
) -> None:
    email = await _user(engine, tenant_credentials, Role.USER)
    for _ in range(MAX_FAILED_SIGN_INS - 1):
        wrong = await asyncio.to_thread(_attempt, live_server, email, "not the password")
        assert wrong.status_code == 400 and "Wrong e-mail or password." in wrong.text
    # Under the limit the right password still works, and clears the count.
    assert (await asyncio.to_thread(_attempt, live_server, email, PASSWORD)).status_code == 303
    for _ in range(MAX_FAILED_SIGN_INS):
        await asyncio.to_thread(_attempt, live_server, email, "not the password")
    refused = await asyncio.to_thread(_attempt, live_server, email.upper(), PASSWORD)
    assert refused.status_code == 400
    assert f"Too many failed sign-ins for {email}" in refused.text
    assert "partnerbill_session" not in refused.headers.get("set-cookie", "")


async def test_failures_leave_the_window_and_unknown_e_mails_count_too(
    engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    email = await _user(engine, tenant_credentials, Role.USER)
    async with engine.begin() as conn:
        for _ in range(MAX_FAILED_SIGN_INS):
            assert (await sign_in(conn, email, "wrong")).refusal == "Wrong e-mail or password."
    async with engine.begin() as conn:
        assert "Too many" in str((await sign_in(conn, email, PASSWORD)).refusal)
        await conn.execute(
            update(ui_sign_in_failures)
            .where(ui_sign_in_failures.c.email == email)
            .values(failed_at=func.now() - FAILURE_WINDOW)
        )
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with engine.begin() as conn:
        # Anyone's sign-in purges failures out of the window.
        assert (await sign_in(conn, nobody, "x")).token is None
        left = await conn.scalar(select(func.count()).where(ui_sign_in_failures.c.email == email))
        assert left == 0
        assert (await sign_in(conn, email, PASSWORD)).token is not None

    async with engine.begin() as conn:
        answer = await sign_in(conn, nobody, PASSWORD)
        assert (answer.token, answer.refusal) == (None, "Wrong e-mail or password.")
        counted = await conn.scalar(
            select(func.count()).where(ui_sign_in_failures.c.email == nobody)
        )
    assert counted == 2


async def test_a_session_ends_at_its_expiry_and_at_sign_out(
    engine: AsyncEngine, tenant_credentials: TenantCredentials, app: Any
) -> None:
    email = await _user(engine, tenant_credentials, Role.ADMIN)
    async with engine.begin() as conn:
        token = (await sign_in(conn, email, PASSWORD)).token
        assert token is not None
        user = await session_user(conn, token)
        assert user is not None and user.is_admin and user.tenant == tenant_credentials.tenant
        stored = await conn.scalar(select(ui_sessions.c.token_sha256).limit(1))
        assert token not in str(stored)  # only its hash is kept
    async with engine.begin() as conn:
        await conn.execute(
            update(ui_sessions).values(expires_at=func.now()).where(ui_sessions.c.email == email)
        )
        assert await session_user(conn, token) is None

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://partnerbill.test"
    ) as http:
        page = await http.get("/ui/sign-in")
        signed_in = await http.post(
            "/ui/sign-in",
            data={"csrf_token": csrf_token(page.text), "email": email, "password": PASSWORD},
        )
        assert signed_in.status_code == 303, signed_in.text
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
        accounts = await http.get("/ui/accounts")
        assert accounts.status_code == 200
        # Signing in dropped the expired session: only the new one is left.
        assert await _sessions(engine, email) == 1
        signed_out = await http.post("/ui/sign-out", data={"csrf_token": csrf_token(accounts.text)})
        assert signed_out.status_code == 303
        assert (await http.get("/ui/accounts")).headers["location"] == "/ui/sign-in"
    assert await _sessions(engine, email) == 0


async def _sessions(engine: AsyncEngine, email: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).where(ui_sessions.c.email == email)) or 0)


@pytest.fixture
async def browserless(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://partnerbill.test"
    ) as http:
        yield http


async def test_home_and_pages_send_a_signed_out_browser_to_sign_in(
    browserless: httpx.AsyncClient,
) -> None:
    for path in ("/", "/ui/accounts", "/ui/accounts/new", "/ui/features", "/ui/settings"):
        answer = await browserless.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/ui/sign-in"), path
    htmx = await browserless.post("/ui/accounts/x/refresh-metrics", headers={"HX-Request": "1"})
    assert (htmx.status_code, htmx.headers["hx-redirect"]) == (204, "/ui/sign-in")
    sign_in_page = await browserless.get("/ui/sign-in")
    assert 'href="/docs"' in sign_in_page.text
    assert (await browserless.get("/ui/static/htmx.min.js")).status_code == 200


def _another_tenants_pages(base_url: str, email: str, keys: list[str], name: str) -> None:
    """Every UI route keyed by an account, called by a user of another tenant with the
    account's id and number, answers 404; the account is not in that user's list."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert sign_in_over_http(http, email, PASSWORD).status_code == 303
        token = csrf_token(http.get("/ui/accounts").text)
        for key in keys:
            for answer in (
                http.get(f"/ui/accounts/{key}"),
                http.get(f"/ui/accounts/{key}?tab=payments"),
                http.get(f"/ui/accounts/{key}/edit"),
                http.post(f"/ui/accounts/{key}/edit", data={"csrf_token": token, "name": "X"}),
                http.post(f"/ui/accounts/{key}/refresh-metrics", headers={"X-CSRF-Token": token}),
            ):
                assert answer.status_code == 404, (answer.request.url, answer.status_code)
        listed = http.get("/ui/accounts", params={"q": name})
        assert f"<td>{name}</td>" not in listed.text and "No accounts match." in listed.text


async def test_another_tenants_ui_user_gets_404_for_every_account_page(
    api: ApiClient, engine: AsyncEngine, live_server: str
) -> None:
    name = f"Owner {uuid.uuid4().hex[:8]}"
    account = await api.create_account(partner=True, name=name)
    email = await _user(engine, await new_tenant(engine), Role.ADMIN)
    keys = [account["accountId"], account["accountNumber"]]
    await asyncio.to_thread(_another_tenants_pages, live_server, email, keys, name)
    after = await api.ok("GET", f"/v1/accounts/{account['accountId']}")
    assert after["basicInfo"]["name"] == name
