"""Object Query (`/object-query/...`): the official zuora-sdk over real HTTP, and the parameters'
rules through the in-process app: keyset paging, every filter operator, sort, fields, expand,
null fields, exact values, 400s naming the parameter, and tenant isolation."""

import asyncio
import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from zuora_sdk.exceptions import BadRequestException, NotFoundException
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill.query import object_query
from tests.helpers import ApiClient, TenantCredentials, client_for, invoice_body, new_tenant
from tests.tenant_seed import SeededKeys, seed_tenant

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


# The official SDK -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_seed(live_server: str, sdk_credentials: TenantCredentials) -> Iterator[dict[str, Any]]:
    """The SDK tenant's objects (every kind, by the API) plus a refreshed partner account."""

    async def work() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
            api = await client_for(http, sdk_credentials)
            keys = await seed_tenant(api)
            partner = await api.create_account(partner=True, name="Reseller")
            await api.ok("POST", "/v1/invoices", invoice_body(partner["accountNumber"], "10.10"))
            await api.refresh(partner["accountId"])
            return {"keys": keys, "partner": partner}

    yield asyncio.run(work())


def test_sdk_lists_accounts_with_partner_fields(zc: ZuoraClient, sdk_seed: dict[str, Any]) -> None:
    api = zc.object_queries_api()
    partner = sdk_seed["partner"]
    plain = sdk_seed["keys"].of("account")[0]
    page = api.query_accounts(
        fields=["id", "accountNumber", "partnerAccount", "lastMetricsUpdate", "balance"],
        page_size=50,
    )
    by_id = {account.id: account for account in page.data}
    assert page.next_page is None
    assert set(by_id) == {partner["accountId"], plain}
    reseller = by_id[partner["accountId"]]
    assert reseller.partner_account is True
    assert reseller.account_number == partner["accountNumber"]
    assert reseller.last_metrics_update and reseller.last_metrics_update.endswith("Z")
    assert Decimal(str(reseller.balance)) == Decimal("10.10")
    assert reseller.name is None  # not asked for
    other = by_id[plain]
    assert other.partner_account is False
    assert "lastMetricsUpdate" not in other.to_dict()  # null, so left out

    raw = api.query_accounts_with_http_info(
        fields=["id", "lastMetricsUpdate"], include_null_fields=True, filter=[f"id.EQ:{plain}"]
    )
    assert json.loads(raw.raw_data) == {"data": [{"id": plain, "lastMetricsUpdate": None}]}


def test_sdk_account_by_id_and_by_number(zc: ZuoraClient, sdk_seed: dict[str, Any]) -> None:
    api = zc.object_queries_api()
    partner = sdk_seed["partner"]
    for key in (partner["accountId"], partner["accountNumber"]):
        account = api.query_account_by_key(key, fields=["id", "partnerAccount", "name"])
        assert account.id == partner["accountId"]
        assert account.partner_account is True
        assert account.name == "Reseller"
    with pytest.raises(NotFoundException) as missing:
        api.query_account_by_key("A-no-such-account")
    assert missing.value.status == 404


def test_sdk_orders_expand_account(zc: ZuoraClient, sdk_seed: dict[str, Any]) -> None:
    api = zc.object_queries_api()
    number, order_id = sdk_seed["keys"].of("order")[:2]
    page = api.query_orderss(expand=["account"], filter=[f"orderNumber.EQ:{number}"])
    assert len(page.data) == 1
    order = page.data[0]
    assert order.id == order_id and order.order_number == number
    assert order.account.id == order.account_id == sdk_seed["keys"].of("account")[0]
    assert order.account.partner_account is False
    by_key = api.query_orders_by_key(number, expand=["account"], fields=["id", "orderNumber"])
    assert by_key.id == order_id and by_key.account.id == order.account_id
    assert by_key.account_id is None  # not in fields[]


def test_sdk_invoices_filtered_by_account(zc: ZuoraClient, sdk_seed: dict[str, Any]) -> None:
    api = zc.object_queries_api()
    partner = sdk_seed["partner"]
    page = api.query_invoices(filter=[f"accountId.EQ:{partner['accountId']}"])
    assert [invoice.account_id for invoice in page.data] == [partner["accountId"]]
    assert Decimal(str(page.data[0].amount)) == Decimal("10.10")
    assert page.data[0].status == "Posted"
    other = sdk_seed["keys"].of("account")[0]
    theirs = api.query_invoices(filter=[f"accountid.EQ:{other}"], page_size=50)
    assert theirs.data and all(invoice.account_id == other for invoice in theirs.data)


def test_sdk_bad_parameter_is_a_400_it_reads(zc: ZuoraClient, sdk_seed: dict[str, Any]) -> None:
    api = zc.object_queries_api()
    with pytest.raises(BadRequestException) as bad:
        api.query_invoices(filter=["amount.SW:1"])
    assert bad.value.status == 400
    assert bad.value.data.code == 50000020
    assert "filter[]" in bad.value.data.message and "amount" in bad.value.data.message


# Through the app ----------------------------------------------------------------------------


async def get(api: ApiClient, url: str, expect: int = 200) -> dict[str, Any]:
    _, payload = await api.call("GET", url, expect=expect)
    return payload


async def bad(api: ApiClient, url: str, *named: str) -> str:
    """A 400 whose message names each of `named`."""
    payload = await get(api, url, expect=400)
    assert payload["success"] is False and payload["code"] == 50000020, payload
    assert payload["reasons"][0]["message"] == payload["message"]
    for name in named:
        assert name in payload["message"], (name, payload)
    return str(payload["message"])


async def invoices(api: ApiClient, account_number: str, amounts: list[str], **fields: Any) -> None:
    for amount in amounts:
        await api.ok("POST", "/v1/invoices", invoice_body(account_number, amount, **fields))


async def walk(api: ApiClient, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every row of a list, page after page by its cursors, and the number of pages."""
    rows: list[dict[str, Any]] = []
    page = await get(api, url)
    pages = 1
    while True:
        rows += page["data"]
        if "nextPage" not in page:
            return rows, pages
        page = await get(api, f"{url}&cursor={quote(page['nextPage'], safe='')}")
        pages += 1


async def test_paging_returns_every_row_once_in_order(api: ApiClient) -> None:
    account = await api.create_account()
    amounts = [f"{n}.25" for n in range(1, 24)]
    await invoices(api, account["accountNumber"], amounts)
    base = f"/object-query/invoices?filter[]=accountId.EQ:{account['accountId']}&pageSize=5"

    rows, pages = await walk(api, base)
    assert pages == 5 and len(rows) == 23
    assert len({row["id"] for row in rows}) == 23
    keys = [(row["updatedDate"], row["id"]) for row in rows]
    assert keys == sorted(keys, reverse=True)  # UpdatedDate DESC, Id DESC (UTC ISO sorts)

    rows, pages = await walk(api, f"{base}&sort[]=amount.ASC&fields[]=id,amount")
    assert [row["amount"] for row in rows] == [Decimal(a) for a in amounts]
    assert all(set(row) == {"id", "amount"} for row in rows)
    rows, _ = await walk(api, f"{base}&sort[]=invoiceNumber.DESC")
    numbers = [row["invoiceNumber"] for row in rows]
    assert numbers == sorted(numbers, reverse=True) and len(set(numbers)) == 23

    cursor = (await get(api, base))["nextPage"]
    keyset = json.loads(base64.b64decode(cursor))
    assert [key["orderBy"] for key in keyset] == [
        {"field": "UpdatedDate", "order": "DESC"},
        {"field": "Id", "order": "DESC"},
    ]
    last = await get(api, base.replace("pageSize=5", "pageSize=23"))
    assert "nextPage" not in last and len(last["data"]) == 23
    assert await get(api, "/object-query/invoices?filter[]=status.EQ:Draft") == {"data": []}


async def test_paging_on_a_field_with_nulls(api: ApiClient) -> None:
    """Sorting on lastMetricsUpdate (null for non-partner accounts) both ways: nulls last
    ascending, first descending, every account once."""
    ids = set()
    for n in range(7):
        account = await api.create_account(partner=n % 2 == 0, name=f"Acct {n}")
        ids.add(account["accountId"])
        if n % 2 == 0:
            await api.refresh(account["accountId"])
    for order in ("ASC", "DESC"):
        url = f"/object-query/accounts?sort[]=lastMetricsUpdate.{order}&pageSize=2"
        rows, pages = await walk(api, f"{url}&includeNullFields=true")
        assert pages == 4 and {row["id"] for row in rows} == ids and len(rows) == 7
        stamps = [row["lastMetricsUpdate"] for row in rows]
        present = [s for s in stamps if s is not None]
        assert len(present) == 4
        if order == "ASC":
            assert stamps == sorted(present) + [None] * 3
        else:
            assert stamps == [None] * 3 + sorted(present, reverse=True)
        assert all(row["partnerAccount"] is (row["lastMetricsUpdate"] is not None) for row in rows)


async def test_every_filter_operator(api: ApiClient) -> None:
    account = await api.create_account(name="Filters")
    await invoices(api, account["accountNumber"], ["10.00", "20.50", "30.00"])
    await invoices(
        api, account["accountNumber"], ["40.00"], invoice_date="2026-10-15", status="Draft"
    )
    base = f"/object-query/invoices?filter[]=accountId.EQ:{account['accountId'].upper()}"
    all_rows = (await get(api, f"{base}&sort[]=amount.ASC"))["data"]
    assert [row["amount"] for row in all_rows] == [
        Decimal("10.00"),
        Decimal("20.50"),
        Decimal("30.00"),
        Decimal("40.00"),
    ]
    numbers = [row["invoiceNumber"] for row in all_rows]

    async def amounts(*filters: str) -> list[str]:
        url = f"{base}&sort[]=amount.ASC&" + "&".join(f"filter[]={quote(f)}" for f in filters)
        return [str(row["amount"]) for row in (await get(api, url))["data"]]

    assert await amounts("amount.EQ:20.5") == ["20.50"]
    assert await amounts("amount.NE:20.50") == ["10.00", "30.00", "40.00"]
    assert await amounts("amount.LT:20.50") == ["10.00"]
    assert await amounts("amount.LE:20.50") == ["10.00", "20.50"]
    assert await amounts("amount.GT:20.50") == ["30.00", "40.00"]
    assert await amounts("amount.GE:20.50", "amount.LT:40") == ["20.50", "30.00"]
    assert await amounts("status.EQ:draft") == ["40.00"]  # case-insensitive
    assert await amounts("status.NE:POSTED") == ["40.00"]
    assert await amounts("status.IN:[Draft,nothing]") == ["40.00"]
    assert await amounts(f"invoiceNumber.IN:[{numbers[0].lower()},{numbers[2]}]") == [
        "10.00",
        "30.00",
    ]
    assert await amounts(f"invoiceNumber.SW:{numbers[1][:-1].lower()}") == sorted(
        str(row["amount"]) for row in all_rows if row["invoiceNumber"][:-1] == numbers[1][:-1]
    )
    assert await amounts("invoiceDate.LT:2026-11-01") == ["40.00"]
    assert await amounts("invoiceDate.EQ:2026-11-01") == ["10.00", "20.50", "30.00"]
    updated = all_rows[1]["updatedDate"]
    assert await amounts(f"updatedDate.EQ:{updated}") == ["20.50"]
    assert await amounts(f"updatedDate.LE:{updated}") == ["10.00", "20.50"]
    assert await amounts("updatedDate.GT:2000-01-01T00:00:00+01:00") == await amounts()
    assert await amounts("updatedDate.LT:2000-01-01") == []
    assert await amounts("invoiceNumber.EQ:null") == []
    assert await amounts("invoiceNumber.NE:null", "amount.IN:[10,40.0]") == ["10.00", "40.00"]

    partner = await api.create_account(partner=True, name="Partner", billCycleDay=5)
    accounts = "/object-query/accounts?fields[]=id&filter[]="
    found = await get(api, accounts + "partnerAccount.EQ:TRUE")
    assert found["data"] == [{"id": partner["accountId"]}]
    found = await get(api, accounts + "partnerAccount.NE:true")
    assert found["data"] == [{"id": account["accountId"]}]
    found = await get(api, accounts + "lastMetricsUpdate.EQ:null&filter[]=name.SW:fil")
    assert found["data"] == [{"id": account["accountId"]}]
    found = await get(api, accounts + "billCycleDay.GE:5&filter[]=name.IN:[partner,x]")
    assert found["data"] == [{"id": partner["accountId"]}]


async def test_fields_expand_and_null_fields(api: ApiClient) -> None:
    keys: SeededKeys = await seed_tenant(api)
    account_id, account_number = keys.of("account")
    url = (
        f"/object-query/accounts/{account_number}?expand[]=subscriptions.rateplans.rateplancharges"
        "&expand[]=billto&fields[]=id,name&subscriptions.fields[]=id,name"
        "&rateplancharges.fields[]=chargeNumber&billTo.fields[]=firstName"
    )
    account = await get(api, url)
    assert set(account) == {"id", "name", "subscriptions", "billTo"}
    assert account["id"] == account_id
    assert account["billTo"] == {"firstName": "Ada"}
    [subscription] = account["subscriptions"]
    assert subscription["id"] == keys.of("subscription")[0]
    assert subscription["name"] == keys.of("subscription")[1]
    [plan] = subscription["ratePlans"]
    assert plan["id"] == keys.of("rate_plan")[0] and plan["name"] == "Monthly"
    assert [set(c) for c in plan["ratePlanCharges"]] == [{"chargeNumber"}]

    deep = await get(
        api, "/object-query/orders?expand[]=orderactions.subscription.rateplans.rateplancharges"
    )
    [action] = deep["data"][0]["orderActions"]
    assert action["type"] == "CreateSubscription"
    assert action["subscription"]["id"] == keys.of("subscription")[0]
    [charge] = action["subscription"]["ratePlans"][0]["ratePlanCharges"]
    assert charge["id"] == keys.of("rate_plan_charge")[0] and charge["name"] == "Seat fee"

    order = await get(api, f"/object-query/orders/{keys.of('order')[0]}?expand[]=account")
    assert order["account"]["id"] == account_id and order["accountId"] == account_id
    assert order["account"]["partnerAccount"] is False
    assert "lastMetricsUpdate" not in order["account"]
    assert "description" not in order  # null, left out
    with_nulls = await get(
        api, f"/object-query/orders/{keys.of('order')[1]}?includeNullFields=true"
    )
    assert with_nulls["description"] is None and with_nulls["id"] == keys.of("order")[1]

    # Expanded lists are cut at pageSize per parent, for the whole page in one query.
    await invoices(api, account_number, ["1.00", "2.00", "3.00"])
    second = await api.create_account(name="Second")
    await invoices(api, second["accountNumber"], ["4.00", "5.00"])
    page = await get(api, "/object-query/accounts?expand[]=invoices&pageSize=2&fields[]=id")
    assert len(page["data"]) == 2
    counts = {row["id"]: len(row["invoices"]) for row in page["data"]}
    assert counts == {account_id: 2, second["accountId"]: 2}

    invoice = await get(
        api, f"/object-query/invoices/{keys.of('invoice')[1]}?expand[]=invoiceitems"
    )
    assert invoice["amount"] == Decimal("150.00") and invoice["invoiceDate"] == "2026-11-01"
    assert [item["chargeAmount"] for item in invoice["invoiceItems"]] == [
        Decimal("50.00"),
        Decimal("100.00"),
    ] or [item["chargeAmount"] for item in invoice["invoiceItems"]] == [
        Decimal("100.00"),
        Decimal("50.00"),
    ]
    raw = await api.http.get(
        f"/object-query/invoices/{keys.of('invoice')[0]}?fields[]=amount,balance",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert raw.content.startswith(b'{"amount":150.00,"balance":'), raw.content


async def test_every_object_lists_and_answers_by_key(api: ApiClient) -> None:
    keys = await seed_tenant(api)
    kinds = {
        "accounts": "account",
        "contacts": "contact",
        "subscriptions": "subscription",
        "rate-plans": "rate_plan",
        "rate-plan-charges": "rate_plan_charge",
        "orders": "order",
        "order-actions": "order_action",
        "invoices": "invoice",
        "invoice-items": "invoice_item",
        "credit-memos": "credit_memo",
        "debit-memos": "debit_memo",
        "payments": "payment",
        "refunds": "refund",
        "payment-applications": "payment_application",
        "credit-memo-applications": "credit_memo_application",
        "products": "product",
        "product-rate-plans": "product_rate_plan",
        "product-rate-plan-charges": "product_rate_plan_charge",
        "billing-runs": "bill_run",
    }
    for path, kind in kinds.items():
        page = await get(api, f"/object-query/{path}?pageSize=99")
        assert page["data"], path
        for key in keys.of(kind):
            found = await get(api, f"/object-query/{path}/{key}")
            assert found["id"] in {row["id"] for row in page["data"]}, (path, key)
    missing = await get(api, "/object-query/invoices/INV-none", expect=404)
    assert (
        missing["reasons"][0]["code"] % 100 == 40
        and missing["code"] == missing["reasons"][0]["code"]
    )
    assert "INV-none" in missing["message"]
    unknown = await get(api, "/object-query/widgets", expect=404)
    assert unknown["success"] is False


async def test_another_tenants_rows_never_appear(api: ApiClient, engine: AsyncEngine) -> None:
    keys = await seed_tenant(api)
    other = ApiClient(api.http, await new_tenant(engine))
    await other.authenticate()
    mine = await other.create_account(name="Mine")
    for path in ("accounts", "invoices", "orders", "subscriptions", "payments", "contacts"):
        page = await get(other, f"/object-query/{path}?pageSize=99")
        assert not {row["id"] for row in page["data"]} & keys.all(), path
    page = await get(other, "/object-query/accounts?expand[]=invoices&expand[]=subscriptions")
    assert [row["id"] for row in page["data"]] == [mine["accountId"]]
    assert page["data"][0]["invoices"] == page["data"][0]["subscriptions"] == []
    account = keys.of("account")[0]
    assert await get(other, f"/object-query/invoices?filter[]=accountId.EQ:{account}") == {
        "data": []
    }
    # (Numbers are per tenant: B's first account is A00000001 too.)
    await get(other, f"/object-query/accounts/{account}", expect=404)
    for path, kind in (("invoices", "invoice"), ("orders", "order"), ("contacts", "contact")):
        for key in keys.of(kind):
            await get(other, f"/object-query/{path}/{key}", expect=404)
    # A cursor names a position, not rows: A's cursor lists only B's rows for B.
    cursor = (await get(api, "/object-query/invoice-items?pageSize=1"))["nextPage"]
    page = await get(other, f"/object-query/invoice-items?cursor={quote(cursor, safe='')}")
    assert page == {"data": []}


def _cursor(keys: list[dict[str, Any]]) -> str:
    return quote(base64.b64encode(json.dumps(keys).encode()).decode(), safe="")


async def test_bad_parameters_are_400s_naming_them(api: ApiClient) -> None:
    q = "/object-query/invoices?"
    for size in ("0", "100", "abc", "-1", "1.5", ""):
        await bad(api, f"{q}pageSize={size}", "pageSize")
    await bad(api, f"{q}pageSize=1&PAGESIZE=2", "pageSize")
    await bad(api, f"{q}filter[]=amount", "filter[]")
    await bad(api, f"{q}filter[]=nosuch.EQ:1", "filter[]", "nosuch")
    await bad(api, f"{q}filter[]=comments.EQ:x", "filter[]", "comments")  # not filterable
    await bad(api, f"{q}filter[]=amount.XX:1", "filter[]", "XX")
    await bad(api, f"{q}filter[]=amount.EQ:ten", "filter[]", "amount")
    await bad(api, f"{q}filter[]=amount.EQ:1e5", "filter[]", "amount")
    await bad(api, f"{q}filter[]=amount.SW:1", "filter[]", "amount")
    await bad(api, f"{q}filter[]=invoiceDate.EQ:2026-13-01", "filter[]", "invoiceDate")
    await bad(api, f"{q}filter[]=invoiceDate.EQ:20260101", "filter[]", "invoiceDate")
    await bad(api, f"{q}filter[]=updatedDate.GT:yesterday", "filter[]", "updatedDate")
    await bad(api, f"{q}filter[]=amount.LT:null", "filter[]", "amount")
    await bad(api, f"{q}filter[]=status.IN:Draft", "filter[]", "status")
    await bad(api, f"{q}filter[]=status.IN:[{','.join(['x'] * 101)}]", "filter[]", "status")
    await bad(api, "/object-query/accounts?filter[]=partnerAccount.EQ:yes", "partnerAccount")
    await bad(api, "/object-query/accounts?filter[]=partnerAccount.LT:true", "partnerAccount")
    await bad(api, "/object-query/accounts?filter[]=billCycleDay.EQ:1.5", "billCycleDay")
    await bad(api, f"{q}filter[]=account.name.EQ:x", "filter[]")  # never expanded fields
    await bad(api, f"{q}sort[]=amount", "sort[]")
    await bad(api, f"{q}sort[]=amount.UP", "sort[]")
    await bad(api, f"{q}sort[]=amount.ASC&sort[]=id.ASC", "sort[]")
    await bad(api, f"{q}sort[]=comments.ASC", "sort[]", "comments")
    await bad(api, f"{q}fields[]=id,nosuch", "fields[]", "nosuch")
    await bad(api, f"{q}expand[]=widgets", "expand[]", "widgets")
    await bad(api, f"{q}expand[]=account.subscriptions.rateplans.rateplancharges.x", "expand[]")
    await bad(api, f"{q}account.fields[]=id", "account.fields[]")  # not expanded
    await bad(api, f"{q}expand[]=account&account.fields[]=nosuch", "account.fields[]", "nosuch")
    await bad(api, f"{q}includeNullFields=maybe", "includeNullFields")
    await bad(api, f"{q}filters[]=amount.EQ:1", "filters[]")
    await bad(api, f"{q}filter[]=%FF", "filter[]")
    await bad(api, "/object-query/invoices/x?filter[]=amount.EQ:1", "filter[]")
    await bad(api, "/object-query/invoices/x?sort[]=amount.ASC", "sort[]")
    await bad(api, "/object-query/invoices/x?cursor=abc", "cursor")

    good = [
        {"value": "2026-01-01T00:00:00Z", "orderBy": {"field": "UpdatedDate", "order": "DESC"}},
        {"value": "a" * 32, "orderBy": {"field": "Id", "order": "DESC"}},
    ]
    assert (await get(api, f"{q}cursor={_cursor(good)}")) == {"data": []}
    tampered = [
        "not base64!",
        quote(base64.b64encode(b"not json").decode(), safe=""),
        _cursor(good[:1]),
        _cursor([{**good[0], "value": "yesterday"}, good[1]]),
        _cursor([{**good[0], "value": 5}, good[1]]),
        _cursor([good[0], {**good[1], "value": None}]),
        _cursor([{**good[0], "orderBy": {"field": "Amount", "order": "DESC"}}, good[1]]),
        _cursor([good[0], {**good[1], "extra": 1}]),
        _cursor({"value": 1}),  # type: ignore[arg-type]
        quote(base64.b64encode(b"[" * 5000).decode(), safe=""),
    ]
    for cursor in tampered:
        await bad(api, f"{q}cursor={cursor}", "cursor")
    # A cursor of one sort does not continue another.
    await bad(api, f"{q}sort[]=amount.ASC&cursor={_cursor(good)}", "cursor")
    amount_keys = [
        {"value": 12.5, "orderBy": {"field": "Amount", "order": "ASC"}},
        {"value": "b" * 32, "orderBy": {"field": "Id", "order": "ASC"}},
    ]
    assert (await get(api, f"{q}sort[]=amount.ASC&cursor={_cursor(amount_keys)}")) == {"data": []}


async def test_parameter_names_are_case_insensitive_and_plus_is_kept(api: ApiClient) -> None:
    account = await api.create_account(name="Case")
    await invoices(api, account["accountNumber"], ["5.00", "6.00"])
    page = await get(
        api,
        f"/object-query/invoices?PAGESIZE=1&Filter[]=accountid.eq:{account['accountId']}"
        "&FIELDS=id,Amount&filter[]=updatedDate.GT:2000-01-01T01:00:00+01:00",
    )
    assert len(page["data"]) == 1 and set(page["data"][0]) == {"id", "amount"}
    assert "nextPage" in page


def test_cursor_values_round_trip_exactly() -> None:
    from partnerbill.query.catalog import INVOICE

    keyset = object_query._keyset(INVOICE, [("sort[]", "amount.DESC")])
    cursor = object_query.encode_cursor(keyset, [Decimal("1.000000000000000000001"), "x"])
    assert b'"value":1.000000000000000000001' in base64.b64decode(cursor)
    assert object_query.decode_cursor(keyset, cursor) == (
        Decimal("1.000000000000000000001"),
        "x",
    )


async def test_an_expansion_over_its_bound_is_a_400(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await api.create_account(name="Many")
    await invoices(api, account["accountNumber"], ["1.00", "2.00", "3.00"])
    url = "/object-query/accounts?expand[]=invoices&fields[]=id"
    assert len((await get(api, url))["data"][0]["invoices"]) == 3
    monkeypatch.setattr(object_query, "MAX_EXPANDED_ROWS", 2)
    await bad(api, url, "expand[]", "invoices", "pageSize")
    assert len((await get(api, f"{url}&pageSize=2"))["data"][0]["invoices"]) == 2


async def test_hostile_values_are_answered_never_a_500(api: ApiClient) -> None:
    nul = [
        {"value": "2026-01-01T00:00:00Z", "orderBy": {"field": "UpdatedDate", "order": "DESC"}},
        {"value": "a\u0000b", "orderBy": {"field": "Id", "order": "DESC"}},
    ]
    huge = [
        {"value": 1, "orderBy": {"field": "Amount", "order": "ASC"}},
        {"value": "x", "orderBy": {"field": "Id", "order": "ASC"}},
    ]
    huge_cursor = base64.b64encode(json.dumps(huge).encode().replace(b"1,", b"1e999999,"))
    answered = {
        "filter[]=updatedDate.GT:9999-12-31T23:59:59-14:00": 200,
        "filter[]=updatedDate.LT:0001-01-01T00:00:00%2B14:00": 200,
        "filter[]=invoiceDate.GT:9999-12-31": 200,
        f"filter[]=amount.EQ:{'9' * 30}.{'9' * 30}": 200,
        f"filter[]=amount.EQ:{'9' * 31}": 400,
        "filter[]=invoiceNumber.SW:%25_%5C": 200,
        f"filter[]=invoiceNumber.EQ:{'é' * 2000}": 200,
        f"cursor={_cursor(nul)}": 400,
        f"sort[]=amount.ASC&cursor={quote(huge_cursor.decode(), safe='')}": 400,
        "&".join(["filter[]=amount.GT:1"] * 51): 400,
    }
    for query, status in answered.items():
        code, payload = await api.call("GET", f"/object-query/invoices?{query}", expect=None)
        assert code == status, (query, code, payload)
    status, _ = await api.call("GET", f"/object-query/invoices/{'k' * 5000}", expect=None)
    assert status == 404
