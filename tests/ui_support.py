"""For the web UI tests: Debian's Chromium driven by Playwright (no browser download), UI users
made with the service, sign-in over plain HTTP, and an accessibility audit with axe-core run in
the page.

Screenshots of the pages are written to the directory `PARTNERBILL_UI_SCREENSHOTS` names
(the README's come from `PARTNERBILL_UI_SCREENSHOTS=docs/ui`); unset, none are written."""

import asyncio
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from playwright.sync_api import Page

from partnerbill.core import db
from partnerbill.core.tenants import Tenant
from partnerbill.users.service import Role, create_user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
AXE = Path(__file__).parent / "axe" / "axe.min.js"
SCREENSHOTS = os.environ.get("PARTNERBILL_UI_SCREENSHOTS")
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
T = TypeVar("T")


def run_in_thread(work: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run(work())` on a thread of its own: Playwright's synchronous API keeps an event
    loop running on the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()  # type: ignore[arg-type]


def new_ui_user(database_url: str, tenant: Tenant, role: Role) -> str:
    """A UI user of `tenant` with the password `PASSWORD`; returns the e-mail."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"

    async def work() -> None:
        engine = db.create_engine(database_url)
        try:
            async with engine.begin() as conn:
                await create_user(conn, tenant, email, role, PASSWORD)
        finally:
            await engine.dispose()

    run_in_thread(work)
    return email


def csrf_token(html: str) -> str:
    """The CSRF token a page's forms carry."""
    match = _CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


def sign_in_over_http(http: httpx.Client, email: str, password: str) -> httpx.Response:
    """The sign-in form posted as a browser posts it (its token cookie included)."""
    page = http.get("/ui/sign-in")
    assert page.status_code == 200, page.text
    return http.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
    )


def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/ui/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def audit(page: Page, name: str) -> None:
    """No serious or critical axe-core violation on the page as shown; its screenshot saved
    as `name`.png when screenshots are asked for."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    serious = [
        (violation["id"], violation["help"], [node["target"] for node in violation["nodes"]])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not serious, (name, page.url, serious)
    assert result["passes"], "axe ran no check"
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
