"""The Reseller Account feature switched per tenant, over real HTTP against the live server.

Disabled: account answers (REST and Object Query) have no `partnerAccount`, `lastMetricsUpdate`
or `metricsFreshness`, and every request carrying `partnerAccount` is refused naming the feature
and writes nothing. Disabling is refused while a partner account exists, also against requests
racing it; the zuora-sdk still reads the shorter answers; `partnerbill settings` switches it.
"""

import asyncio
import random
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from zuora_sdk import CreateAccountContact, CreateAccountRequest
from zuora_sdk.zuora_client import ZuoraClient

from tests.catalog_fixtures import order_body, rate_plan
from tests.cli_support import _base_env, _cli, _failed, _ok
from tests.helpers import (
    ApiClient,
    account_body,
    assert_envelope,
    client_for,
    invoice_body,
    new_tenant,
    tenant_rows,
)

RESELLER_FIELDS = ("partnerAccount", "lastMetricsUpdate")
FEATURE = "Reseller Account feature"
PARALLEL = 24  # requests in flight in the race (the live_api client holds 64 connections)
RACE_ROUNDS = 6


async def set_feature(api: ApiClient, enabled: bool) -> dict[str, Any]:
    _, answer = await api.call(
        "PUT", "/v1/partnerbill/settings", {"resellerAccountEnabled": enabled}
    )
    return answer


async def feature_enabled(api: ApiClient) -> bool:
    return bool((await api.ok("GET", "/v1/partnerbill/settings"))["resellerAccountEnabled"])


def assert_refused_naming_the_feature(status: int, answer: dict[str, Any]) -> None:
    assert status == 200, answer
    (reason,) = assert_envelope(answer, 30)  # a business rule
    assert FEATURE in reason["message"] and "partnerAccount" in reason["message"], reason


async def object_query(api: ApiClient, path: str, expect: int = 200) -> dict[str, Any]:
    _, answer = await api.call("GET", path, expect=expect)
    return answer


async def rest_answers(api: ApiClient, key: str) -> dict[str, dict[str, Any]]:
    """Every REST answer about account `key` that could carry the feature's fields."""
    account = await api.ok("GET", f"/v1/accounts/{key}")
    summary = await api.ok("GET", f"/v1/accounts/{key}/summary")
    refreshed = await api.refresh(key)
    return {"account": account, "summary": summary, "refreshed": refreshed}


async def object_query_accounts(api: ApiClient, key: str) -> list[dict[str, Any]]:
    """The account as Object Query answers it: listed, by key, and expanded from others."""
    listed = await object_query(api, "/object-query/accounts?includeNullFields=true&pageSize=99")
    by_key = await object_query(api, f"/object-query/accounts/{key}?includeNullFields=true")
    contacts = await object_query(
        api, "/object-query/contacts?expand[]=account&includeNullFields=true"
    )
    invoices = await object_query(api, "/object-query/invoices?expand[]=account")
    # Two levels deep: invoice items' invoices' accounts.
    items = await object_query(api, "/object-query/invoice-items?expand[]=invoice.account")
    found = [*listed["data"], by_key]
    found += [contact["account"] for contact in contacts["data"]]
    found += [invoice["account"] for invoice in invoices["data"]]
    found += [item["invoice"]["account"] for item in items["data"]]
    assert len(found) >= 5 and all(a["id"] for a in found), found
    return found


async def test_new_tenants_have_the_feature_enabled(live_api: ApiClient) -> None:
    assert await feature_enabled(live_api)
    created = await live_api.ok("POST", "/v1/accounts", account_body(partnerAccount=True))
    basic = (await live_api.ok("GET", f"/v1/accounts/{created['accountId']}"))["basicInfo"]
    assert basic["partnerAccount"] is True


async def test_disabled_answers_leave_out_the_feature_fields(live_api: ApiClient) -> None:
    assert (await set_feature(live_api, False))["resellerAccountEnabled"] is False
    created = await live_api.ok("POST", "/v1/accounts", account_body())
    assert set(created) == {
        "success",
        "accountId",
        "accountNumber",
        "billToContactId",
        "soldToContactId",
    }
    key = created["accountNumber"]
    updated = await live_api.ok("PUT", f"/v1/accounts/{key}", {"name": "Renamed Co"})
    assert updated == {"success": True}
    await live_api.ok("POST", "/v1/invoices", invoice_body(key, "12.50"))

    answers = await rest_answers(live_api, key)
    for name in ("account", "summary"):
        answer = answers[name]
        assert not set(RESELLER_FIELDS) & set(answer["basicInfo"]), (name, answer)
        assert "metricsFreshness" not in answer, (name, answer)
    assert answers["account"]["basicInfo"]["name"] == "Renamed Co"
    # No partner account can exist, so metrics are current without any refresh.
    assert answers["account"]["metrics"]["balance"] == Decimal("12.50")
    assert answers["summary"]["basicInfo"]["balance"] == "12.50"
    assert "lastMetricsUpdate" not in answers["refreshed"]
    assert answers["refreshed"]["foldedChanges"] == 0

    for account in await object_query_accounts(live_api, created["accountId"]):
        assert not set(RESELLER_FIELDS) & set(account), account
        assert account["name"] == "Renamed Co"
    # Naming a field of the feature is refused, saying why.
    for parameters in (
        "fields[]=name,partnerAccount",
        "filter[]=partnerAccount.EQ:false",
        "sort[]=lastMetricsUpdate.DESC",
        "expand[]=billto&billto.fields[]=id&fields[]=lastMetricsUpdate",
    ):
        refused = await object_query(live_api, f"/object-query/accounts?{parameters}", expect=400)
        assert FEATURE in refused["reasons"][0]["message"], (parameters, refused)
    refused = await object_query(
        live_api, "/object-query/contacts?expand[]=account&account.fields[]=partnerAccount", 400
    )
    assert FEATURE in refused["reasons"][0]["message"], refused


async def test_enabled_answers_carry_the_feature_fields(live_api: ApiClient) -> None:
    """The same answers as above, for a tenant with the feature: the fields are there."""
    created = await live_api.ok("POST", "/v1/accounts", account_body(partnerAccount=True))
    key = created["accountNumber"]
    await live_api.ok("POST", "/v1/invoices", invoice_body(key, "12.50"))
    answers = await rest_answers(live_api, key)
    for name in ("account", "summary"):
        assert answers[name]["basicInfo"]["partnerAccount"] is True
        assert answers[name]["basicInfo"]["lastMetricsUpdate"] is not None
        assert "metricsFreshness" in answers[name]
    assert answers["refreshed"]["lastMetricsUpdate"] is not None
    for account in await object_query_accounts(live_api, created["accountId"]):
        assert account["partnerAccount"] is True and account["lastMetricsUpdate"], account


async def _order_rows(engine: AsyncEngine, tenant_id: str) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id}
                )
                or 0
            )
            for table in ("orders", "subscriptions", "async_jobs")
        }


def new_account_order(plan_id: str, **new_account: Any) -> dict[str, Any]:
    body = order_body("unused", plan_id, "2026-11-01")
    del body["existingAccountNumber"]
    body["newAccount"] = {**account_body(billCycleDay=1), **new_account}
    return body


async def test_requests_carrying_partner_account_are_refused_and_write_nothing(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    plan_id = await rate_plan(live_api)
    # While enabled, an order's new account may be a partner.
    order = await live_api.ok("POST", "/v1/orders", new_account_order(plan_id, partnerAccount=True))
    partner = order["accountNumber"]
    assert (await live_api.ok("GET", f"/v1/accounts/{partner}"))["basicInfo"]["partnerAccount"]
    existing = (await live_api.ok("POST", "/v1/accounts", account_body()))["accountNumber"]
    assert (await set_feature(live_api, False))["success"] is False  # a partner account exists
    await live_api.ok("PUT", f"/v1/accounts/{partner}", {"partnerAccount": False})
    assert (await set_feature(live_api, False))["resellerAccountEnabled"] is False

    before = {**await tenant_rows(live_api), **await _order_rows(engine, live_api.tenant.id)}
    for flag in (True, False):
        refused = [
            await live_api.call("POST", "/v1/accounts", account_body(partnerAccount=flag)),
            await live_api.call(
                "PUT", f"/v1/accounts/{existing}", {"name": "Changed", "partnerAccount": flag}
            ),
            await live_api.call(
                "POST", "/v1/orders", new_account_order(plan_id, partnerAccount=flag)
            ),
            await live_api.call(
                "POST", "/v1/async/orders", new_account_order(plan_id, partnerAccount=flag)
            ),
        ]
        for status, answer in refused:
            assert_refused_naming_the_feature(status, answer)
    after = {**await tenant_rows(live_api), **await _order_rows(engine, live_api.tenant.id)}
    assert after == before
    assert (await live_api.ok("GET", f"/v1/accounts/{existing}"))["basicInfo"]["name"] == (
        "Test Account"
    )
    # Without the flag the same requests go through.
    await live_api.ok("POST", "/v1/accounts", account_body())
    await live_api.ok("PUT", f"/v1/accounts/{existing}", {"name": "Changed"})
    await live_api.ok("POST", "/v1/orders", new_account_order(plan_id))
    status, accepted = await live_api.call(
        "POST", "/v1/async/orders", new_account_order(plan_id), expect=202
    )
    assert accepted["success"] is True, (status, accepted)


async def test_disabling_waits_for_partner_accounts_to_be_switched_off(
    live_api: ApiClient,
) -> None:
    partner = (await live_api.ok("POST", "/v1/accounts", account_body(partnerAccount=True)))[
        "accountNumber"
    ]
    refused = await set_feature(live_api, False)
    assert refused["success"] is False, refused
    assert "partner account" in refused["reasons"][0]["message"], refused
    assert await feature_enabled(live_api)

    await live_api.ok("PUT", f"/v1/accounts/{partner}", {"partnerAccount": False})
    assert (await set_feature(live_api, False))["resellerAccountEnabled"] is False
    assert not await feature_enabled(live_api)
    basic = (await live_api.ok("GET", f"/v1/accounts/{partner}"))["basicInfo"]
    assert not set(RESELLER_FIELDS) & set(basic), basic

    # Enabled again: the fields come back, and partner accounts may be flagged again.
    assert (await set_feature(live_api, True))["resellerAccountEnabled"] is True
    account = await live_api.ok("GET", f"/v1/accounts/{partner}")
    assert account["basicInfo"]["partnerAccount"] is False
    assert account["basicInfo"]["lastMetricsUpdate"] is None
    assert account["metricsFreshness"]["pendingChanges"] == 0
    await live_api.ok("PUT", f"/v1/accounts/{partner}", {"partnerAccount": True})
    assert (await live_api.ok("GET", f"/v1/accounts/{partner}"))["basicInfo"]["partnerAccount"]


async def _partner_accounts(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM accounts WHERE tenant_id = :t AND partner_account"),
            {"t": tenant_id},
        )
    return int(count or 0)


async def _flag(api: ApiClient, method: str, path: str, body: dict[str, Any]) -> bool:
    """Whether the request flagged a partner account; else it was refused for the feature."""
    status, answer = await api.call(method, path, body, expect=None)
    if answer.get("success") is True:
        return True
    assert_refused_naming_the_feature(status, answer)
    return False


async def _disable(api: ApiClient) -> bool:
    answer = await set_feature(api, False)
    if answer["success"]:
        return True
    assert "partner account" in answer["reasons"][0]["message"], answer
    return False


async def test_partner_writes_racing_a_disabling_never_leave_a_partner_account_behind(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    """Each round: a fresh tenant, non-partner accounts to switch, then PARALLEL requests that
    create or switch partner accounts, and one disabling placed earlier or later among them.
    Whatever wins, afterwards the feature is not disabled while a partner account exists, and
    every flagging answered success is a partner account in the database."""
    outcomes = set()
    for round_number in range(RACE_ROUNDS):
        api = await client_for(live_api.http, await new_tenant(engine))
        to_switch = [
            (await api.ok("POST", "/v1/accounts", account_body()))["accountNumber"]
            for _ in range(PARALLEL // 2)
        ]
        requests = [
            *(("PUT", f"/v1/accounts/{key}", {"partnerAccount": True}) for key in to_switch),
            *(
                ("POST", "/v1/accounts", account_body(partnerAccount=True))
                for _ in range(PARALLEL - len(to_switch))
            ),
        ]
        random.Random(round_number).shuffle(requests)
        # The disabling goes first in some rounds, in the middle or last in others.
        position = round_number * len(requests) // (RACE_ROUNDS - 1)
        calls = [_flag(api, *request) for request in requests]
        calls.insert(position, _disable(api))
        results = await asyncio.gather(*calls)
        disabled = results.pop(position)
        flagged = sum(results)
        partners = await _partner_accounts(engine, api.tenant.id)
        assert partners == flagged, (round_number, partners, flagged)
        assert await feature_enabled(api) is not disabled
        assert not (disabled and partners), (round_number, partners)
        outcomes.add(disabled)
    # The disabling lost at least once (it goes last in the last round); when it wins (it may
    # when it goes first) every flagging after it was refused: `partners == flagged == 0`.
    assert False in outcomes, outcomes


# --- the zuora-sdk on a tenant with the feature disabled -------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")
def test_sdk_reads_accounts_of_a_disabled_tenant(zc: ZuoraClient, live_server: str) -> None:
    token = zc.token["access_token"]
    disabled = httpx.put(
        f"{live_server}/v1/partnerbill/settings",
        json={"resellerAccountEnabled": False},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert disabled.json()["resellerAccountEnabled"] is False, disabled.text
    accounts = zc.accounts_api()
    contact = CreateAccountContact(first_name="Ada", last_name="Lovelace")
    created = accounts.create_account(
        CreateAccountRequest(name="SDK Co", currency="USD", bill_to_contact=contact)
    )
    assert created.success is True and created.account_number, created
    account = accounts.get_account(created.account_number)
    assert account.success is True
    assert account.basic_info.name == "SDK Co"
    assert account.basic_info.partner_account is None
    assert account.basic_info.last_metrics_update is None
    assert account.metrics.balance == 0
    raw = httpx.get(
        f"{live_server}/v1/accounts/{created.account_number}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert "partnerAccount" not in raw["basicInfo"], raw  # absent, not null

    refused = accounts.create_account(
        CreateAccountRequest(
            name="SDK Partner", currency="USD", bill_to_contact=contact, partner_account=True
        )
    )
    assert refused.success is False
    assert FEATURE in refused.reasons[0].message, refused


# --- `partnerbill settings --reseller-account / --no-reseller-account` ----------------------


def _shown(output: str) -> str:
    match = re.search(r"resellerAccountEnabled\W+(True|False)", output)
    assert match, output
    return match.group(1)


async def test_cli_switches_the_feature(
    database_url: str, live_api: ApiClient, engine: AsyncEngine
) -> None:
    env = _base_env(DATABASE_URL=database_url)
    async with engine.connect() as conn:
        name = await conn.scalar(
            text("SELECT name FROM tenants WHERE id = :t"), {"t": live_api.tenant.id}
        )
    assert _shown(_ok(await _cli(["settings", "--tenant", name], env))) == "True"
    partner = (await live_api.ok("POST", "/v1/accounts", account_body(partnerAccount=True)))[
        "accountNumber"
    ]
    refused = _failed(await _cli(["settings", "--tenant", name, "--no-reseller-account"], env))
    assert "partner account" in refused, refused
    assert await feature_enabled(live_api)

    await live_api.ok("PUT", f"/v1/accounts/{partner}", {"partnerAccount": False})
    off = _ok(await _cli(["settings", "--tenant", name, "--no-reseller-account"], env))
    assert _shown(off) == "False"
    assert "lockWaitMs" in off  # shown with the other settings
    assert not await feature_enabled(live_api)
    assert _shown(_ok(await _cli(["settings", "--tenant", name, "--reseller-account"], env))) == (
        "True"
    )
    assert await feature_enabled(live_api)
