"""Credit and debit memos over the v1 API: create (from an invoice, from charges), post, unpost,
cancel, read; apply, unapply and refund a credit memo; the rules that refuse an operation with
nothing written; how each operation moves the account metrics (a synchronous account at once, a
partner account at its refresh, then equal to `recompute`); parallel applies over real HTTP."""

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core import db
from partnerbill.metrics.service import recompute
from tests.catalog_fixtures import one_time_charge, plan_charge_ids, rate_plan
from tests.helpers import (
    ApiClient,
    TenantCredentials,
    assert_envelope,
    client_for,
    invoice_body,
)

D = Decimal
MEMO_TABLES = (
    "credit_memos",
    "credit_memo_items",
    "debit_memos",
    "debit_memo_items",
    "applications",
    "refunds",
    "invoices",
    "metrics_changes",
)


@dataclass(frozen=True)
class Figures:
    """The account metrics memos move."""

    tib: Decimal
    tdmb: Decimal
    ucma: Decimal
    balance: Decimal

    def __sub__(self, other: "Figures") -> "Figures":
        return Figures(
            self.tib - other.tib,
            self.tdmb - other.tdmb,
            self.ucma - other.ucma,
            self.balance - other.balance,
        )


def delta(tib: str = "0", tdmb: str = "0", ucma: str = "0") -> Figures:
    """Expected change; balance = TIB + TDMB - UPA - UCMA moves with them."""
    return Figures(D(tib), D(tdmb), D(ucma), D(tib) + D(tdmb) - D(ucma))


@dataclass(frozen=True)
class Account:
    id: str
    number: str
    partner: bool


async def figures(api: ApiClient, account: Account) -> Figures:
    m = await api.metrics(account.number)
    return Figures(
        D(m["totalInvoiceBalance"]),
        D(m["totalDebitMemoBalance"]),
        D(m["unappliedCreditMemoAmount"]),
        D(m["balance"]),
    )


async def recomputed(engine: AsyncEngine, api: ApiClient, account: Account) -> Figures:
    async with engine.connect() as conn:
        m = await recompute(conn, api.tenant, account.id)
    return Figures(
        m.total_invoice_balance,
        m.total_debit_memo_balance,
        m.unapplied_credit_memo_amount,
        m.balance,
    )


class Watch:
    """Checks what one operation did to an account's metrics: a synchronous account moves at
    once; a partner account not at all until its refresh, and then the same way. Either way the
    result equals `recompute` from the documents."""

    def __init__(self, api: ApiClient, engine: AsyncEngine, account: Account) -> None:
        self.api, self.engine, self.account = api, engine, account
        self.before: Figures | None = None

    async def start(self) -> None:
        if self.account.partner:
            await self.api.refresh(self.account.number)
        self.before = await figures(self.api, self.account)

    async def moved(self, expected: Figures) -> None:
        assert self.before is not None
        if self.account.partner:
            assert await figures(self.api, self.account) == self.before
            await self.api.refresh(self.account.number)
        now = await figures(self.api, self.account)
        assert now - self.before == expected, (now, self.before)
        assert now == await recomputed(self.engine, self.api, self.account)
        self.before = now


async def rows(api: ApiClient) -> dict[str, int]:
    """The tenant's rows in every table a memo operation may write."""
    async with db.get_engine().connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"),
                    {"t": api.tenant.id},
                )
                or 0
            )
            for table in MEMO_TABLES
        }


async def new_account(api: ApiClient, partner: bool = False, **fields: Any) -> Account:
    created = await api.create_account(partner=partner, **fields)
    return Account(created["accountId"], created["accountNumber"], partner)


async def posted_invoice(api: ApiClient, account: Account, *amounts: str) -> dict[str, Any]:
    """A posted invoice with its item ids under `itemIds`."""
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(account.number, *amounts))
    items = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items")
    invoice["itemIds"] = [item["id"] for item in items["invoiceItems"]]
    return invoice


async def a_charge(api: ApiClient) -> str:
    plan = await rate_plan(api, one_time_charge("5"), name="Memo plan")
    return (await plan_charge_ids(api, plan))[0]


def credit_body(invoice: dict[str, Any], *amounts: str, **fields: Any) -> dict[str, Any]:
    return {
        "items": [
            {"invoiceItemId": invoice["itemIds"][i], "amount": amount}
            for i, amount in enumerate(amounts)
        ],
        **fields,
    }


async def credit_from_invoice(
    api: ApiClient, invoice: dict[str, Any], *amounts: str, **fields: Any
) -> dict[str, Any]:
    return await api.ok(
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        credit_body(invoice, *amounts, **fields),
    )


async def standalone(
    api: ApiClient, kind: str, account: Account, charge: str, amount: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "accountNumber": account.number,
        "charges": [{"productRatePlanChargeId": charge, "amount": amount}],
        **fields,
    }
    return await api.ok("POST", f"/v1/{kind}-memos", body)


async def refused(
    api: ApiClient, method: str, path: str, body: Any = None, *, status: int = 200, category: int
) -> str:
    """The call fails with the category and writes nothing; its message."""
    before = await rows(api)
    got, payload = await api.call(method, path, body, expect=None)
    assert got == status, payload
    reasons = assert_envelope(payload, category)
    assert await rows(api) == before
    return " ".join(reason["message"] for reason in reasons)


def apply_body(invoices: dict[str, str] | None = None, debit: dict[str, str] | None = None) -> Any:
    return {
        "effectiveDate": "2026-11-05",
        "invoices": [{"invoiceId": k, "amount": v} for k, v in (invoices or {}).items()],
        "debitMemos": [{"debitMemoId": k, "amount": v} for k, v in (debit or {}).items()],
    }


partner_or_not = pytest.mark.parametrize("partner", [False, True], ids=["sync", "partner"])


# --- credit memos: create, post, unpost, cancel -----------------------------------------------


@partner_or_not
async def test_credit_memo_from_invoice_lifecycle(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner)
    invoice = await posted_invoice(api, account, "100.00", "50.00")
    watch = Watch(api, engine, account)
    await watch.start()

    memo = await credit_from_invoice(
        api, invoice, "30.00", "20.50", effectiveDate="2026-11-03", reasonCode="Correction"
    )
    assert memo["number"] == "CM00000001"
    assert memo["status"] == "Draft"
    assert (memo["amount"], memo["unappliedAmount"], memo["appliedAmount"]) == (
        D("50.50"),
        D("50.50"),
        D(0),
    )
    assert memo["referredInvoiceId"] == invoice["id"]
    assert memo["creditMemoDate"] == "2026-11-03"
    assert memo["reasonCode"] == "Correction"
    assert memo["accountNumber"] == account.number
    await watch.moved(delta())  # a draft counts nowhere

    posted = await api.ok("PUT", f"/v1/credit-memos/{memo['id']}/post")
    assert posted["status"] == "Posted" and posted["postedOn"]
    await watch.moved(delta(ucma="50.50"))

    unposted = await api.ok("PUT", f"/v1/credit-memos/{memo['number']}/unpost")
    assert unposted["status"] == "Draft" and unposted["postedOn"] is None
    await watch.moved(delta(ucma="-50.50"))

    canceled = await api.ok("PUT", f"/v1/credit-memos/{memo['id']}/cancel")
    assert canceled["status"] == "Canceled"
    await watch.moved(delta())
    for action in ("post", "unpost", "cancel"):
        await refused(api, "PUT", f"/v1/credit-memos/{memo['id']}/{action}", category=30)
    await refused(
        api, "PUT", f"/v1/credit-memos/{memo['id']}/apply", apply_body({invoice["id"]: "1"}),
        category=30,
    )  # fmt: skip
    await refused(
        api, "POST", f"/v1/credit-memos/{memo['id']}/refund",
        {"type": "External", "totalAmount": "1"}, category=30,
    )  # fmt: skip


@partner_or_not
async def test_credit_memo_auto_post_and_read(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner)
    invoice = await posted_invoice(api, account, "80.00")
    watch = Watch(api, engine, account)
    await watch.start()
    memo = await credit_from_invoice(api, invoice, "25", autoPost=True, comment="goodwill")
    assert memo["status"] == "Posted"
    await watch.moved(delta(ucma="25"))

    for key in (memo["id"], memo["number"]):
        got = await api.ok("GET", f"/v1/credit-memos/{key}")
        assert got["id"] == memo["id"] and got["comment"] == "goodwill"
        assert got["currency"] == "USD" and got["createdDate"] and got["updatedDate"]
    items = await api.ok("GET", f"/v1/credit-memos/{memo['id']}/items")
    (item,) = items["items"]
    assert item["amount"] == D(25) and item["sourceItemId"] == invoice["itemIds"][0]
    assert item["serviceStartDate"] == "2026-11-01"
    assert "nextPage" not in items


async def test_credit_memo_list_filters_and_pages(api: ApiClient) -> None:
    one = await new_account(api)
    other = await new_account(api)
    invoice = await posted_invoice(api, one, "100")
    charge = await a_charge(api)
    for _ in range(3):
        await credit_from_invoice(api, invoice, "1", autoPost=True)
    await credit_from_invoice(api, invoice, "1")
    await standalone(api, "credit", other, charge, "7")

    page = await api.ok("GET", f"/v1/credit-memos?accountNumber={one.number}&pageSize=2")
    assert [m["number"] for m in page["creditmemos"]] == ["CM00000001", "CM00000002"]
    assert "page=2" in page["nextPage"] and page["nextPage"].startswith("http")
    last = await api.ok("GET", page["nextPage"].split("partnerbill.test", 1)[1])
    assert len(last["creditmemos"]) == 2 and "nextPage" not in last
    drafts = await api.ok("GET", f"/v1/credit-memos?accountId={one.id}&status=Draft")
    assert [m["number"] for m in drafts["creditmemos"]] == ["CM00000004"]
    everything = await api.ok("GET", "/v1/credit-memos?pageSize=100")
    assert len(everything["creditmemos"]) == 5
    await refused(api, "GET", "/v1/credit-memos?status=Open", status=400, category=20)


async def test_credit_beyond_what_is_left_of_an_invoice_item(api: ApiClient) -> None:
    account = await new_account(api)
    invoice = await posted_invoice(api, account, "100.00", "10.00")
    first = await credit_from_invoice(api, invoice, "60.00")
    message = await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        credit_body(invoice, "40.01"),
        category=30,
    )
    assert "39.99" not in message and "40.00" in message, message
    # Twice the same item in one request counts both.
    body = credit_body(invoice, "30")
    body["items"].append({"invoiceItemId": invoice["itemIds"][0], "amount": "10.01"})
    await refused(api, "POST", f"/v1/credit-memos/invoice/{invoice['id']}", body, category=30)
    # A canceled memo frees what it credited.
    await api.ok("PUT", f"/v1/credit-memos/{first['id']}/cancel")
    assert (await credit_from_invoice(api, invoice, "100.00", "10.00"))["amount"] == D(110)


async def test_credit_from_invoice_rules(api: ApiClient) -> None:
    account = await new_account(api)
    invoice = await posted_invoice(api, account, "100")
    other = await posted_invoice(api, account, "100")
    draft = await api.ok(
        "POST", "/v1/invoices", invoice_body(account.number, "100", status="Draft")
    )
    await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{draft['id']}",
        {"items": [{"invoiceItemId": "x" * 32, "amount": "1"}]},
        category=30,
    )
    await refused(
        api, "POST", "/v1/credit-memos/invoice/INV99999999", credit_body(invoice, "1"),
        status=404, category=40,
    )  # fmt: skip
    message = await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        {"items": [{"invoiceItemId": other["itemIds"][0], "amount": "1"}]},
        status=400,
        category=20,
    )
    assert "items[0].invoiceItemId" in message
    for amount, category in (("0", 20), ("-5", 20), ("1.001", 20)):
        message = await refused(
            api,
            "POST",
            f"/v1/credit-memos/invoice/{invoice['id']}",
            credit_body(invoice, amount),
            status=400,
            category=category,
        )
        assert "items[0].amount" in message
    message = await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        {"items": [{"amount": "1"}]},
        status=400,
        category=22,
    )
    assert "items[0].invoiceItemId" in message
    await refused(
        api, "POST", f"/v1/credit-memos/invoice/{invoice['id']}", {"items": []},
        status=400, category=20,
    )  # fmt: skip


@partner_or_not
async def test_standalone_credit_memo_from_charges(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner)
    charge = await a_charge(api)
    watch = Watch(api, engine, account)
    await watch.start()
    body = {
        "accountId": account.id,
        "charges": [
            {"chargeId": charge, "memoItemAmount": "12.34", "description": "refund of fee"},
            {"productRatePlanChargeId": charge, "amount": 5, "quantity": 2},
        ],
        "currency": "USD",
        "number": "MY-CM-1",
        "autoPost": True,
        "effectiveDate": "2026-10-10",
    }
    memo = await api.ok("POST", "/v1/credit-memos", body)
    assert memo["number"] == "MY-CM-1" and memo["amount"] == D("17.34")
    assert memo["referredInvoiceId"] is None and memo["status"] == "Posted"
    await watch.moved(delta(ucma="17.34"))
    items = (await api.ok("GET", "/v1/credit-memos/MY-CM-1/items"))["items"]
    assert [i["productRatePlanChargeId"] for i in items] == [charge, charge]
    assert items[0]["description"] == "refund of fee" and items[1]["quantity"] == D(2)
    generated = await standalone(api, "credit", account, charge, "1")
    assert generated["number"] == "CM00000001"


async def test_standalone_memo_rules(api: ApiClient) -> None:
    account = await new_account(api)
    charge = await a_charge(api)
    await standalone(api, "credit", account, charge, "1", number="TAKEN")

    def body(**fields: Any) -> dict[str, Any]:
        return {
            "accountNumber": account.number,
            "charges": [{"productRatePlanChargeId": charge, "amount": "10"}],
            **fields,
        }

    for kind in ("credit", "debit"):
        path = f"/v1/{kind}-memos"
        message = await refused(api, "POST", path, body(currency="EUR"), category=30)
        assert "currency" in message
        await refused(api, "POST", path, body(accountNumber="NOPE"), status=404, category=40)
        await refused(
            api, "POST", path, body(charges=[{"productRatePlanChargeId": "f" * 32, "amount": "1"}]),
            status=404, category=40,
        )  # fmt: skip
        message = await refused(
            api, "POST", path, body(charges=[{"amount": "1"}]), status=400, category=22
        )
        assert "charges[0].productRatePlanChargeId" in message
        message = await refused(
            api, "POST", path, body(charges=[{"chargeId": charge}]), status=400, category=22
        )
        assert "charges[0].amount" in message
        message = await refused(
            api, "POST", path,
            body(charges=[{"chargeId": charge, "amount": "1"},
                          {"chargeId": charge, "amount": "-1"}]),
            status=400, category=20,
        )  # fmt: skip
        assert "charges[1].amount" in message
        await refused(api, "POST", path, {"charges": body()["charges"]}, status=400, category=22)
    await refused(api, "POST", "/v1/credit-memos", body(number="TAKEN"), category=30)


# --- credit memos: apply, unapply, refund -----------------------------------------------------


@partner_or_not
async def test_apply_and_unapply_credit_memo(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner)
    charge = await a_charge(api)
    invoice = await posted_invoice(api, account, "100.00")
    debit = await standalone(api, "debit", account, charge, "40.00", autoPost=True)
    memo = await standalone(api, "credit", account, charge, "70.00", autoPost=True)
    watch = Watch(api, engine, account)
    await watch.start()

    applied = await api.ok(
        "PUT",
        f"/v1/credit-memos/{memo['number']}/apply",
        apply_body({invoice["invoiceNumber"]: "45.00"}, {debit["number"]: "15.00"}),
    )
    assert (applied["appliedAmount"], applied["unappliedAmount"]) == (D(60), D(10))
    await watch.moved(delta(tib="-45", tdmb="-15", ucma="-60"))
    assert (await api.ok("GET", f"/v1/invoices/{invoice['id']}"))["balance"] == D(55)
    got_debit = await api.ok("GET", f"/v1/debit-memos/{debit['id']}")
    assert (got_debit["balance"], got_debit["beAppliedAmount"]) == (D(25), D(15))

    unapplied = await api.ok(
        "PUT",
        f"/v1/credit-memos/{memo['id']}/unapply",
        {
            "invoices": [{"invoiceNumber": invoice["invoiceNumber"], "amount": "20"}],
            "debitMemos": [{"debitMemoNumber": debit["number"], "amount": "15"}],
        },
    )
    assert unapplied["appliedAmount"] == D(25)
    await watch.moved(delta(tib="20", tdmb="15", ucma="35"))
    async with engine.connect() as conn:
        ledger = (
            await conn.execute(
                text(
                    "SELECT target_type, sum(amount) FROM applications WHERE tenant_id = :t "
                    "AND source_id = :s GROUP BY target_type ORDER BY target_type"
                ),
                {"t": api.tenant.id, "s": memo["id"]},
            )
        ).all()
    assert [tuple(r) for r in ledger] == [("DebitMemo", D(0)), ("Invoice", D(25))]


async def test_apply_rules_write_nothing(api: ApiClient) -> None:
    account = await new_account(api)
    stranger = await new_account(api)
    charge = await a_charge(api)
    invoice = await posted_invoice(api, account, "50.00")
    foreign = await posted_invoice(api, stranger, "50.00")
    memo = await standalone(api, "credit", account, charge, "80.00", autoPost=True)
    draft = await standalone(api, "credit", account, charge, "10.00")
    apply = f"/v1/credit-memos/{memo['id']}/apply"

    message = await refused(api, "PUT", apply, apply_body({invoice["id"]: "50.01"}), category=30)
    assert "balance" in message
    second = await posted_invoice(api, account, "50.00")
    message = await refused(
        api, "PUT", apply, apply_body({invoice["id"]: "50", second["id"]: "30.01"}), category=30
    )
    assert "unapplied" in message
    message = await refused(api, "PUT", apply, apply_body({foreign["id"]: "1"}), category=30)
    assert "another account" in message
    await refused(
        api, "PUT", f"/v1/credit-memos/{draft['id']}/apply", apply_body({invoice["id"]: "1"}),
        category=30,
    )  # fmt: skip
    await refused(api, "PUT", apply, apply_body({invoice["id"]: "0"}), status=400, category=20)
    await refused(api, "PUT", apply, apply_body(), status=400, category=22)
    await refused(api, "PUT", apply, apply_body({"INV404": "1"}), status=404, category=40)
    await refused(
        api, "PUT", "/v1/credit-memos/CM404/apply", apply_body({invoice["id"]: "1"}),
        status=404, category=40,
    )  # fmt: skip
    # Unapply more than is applied.
    await api.ok("PUT", apply, apply_body({invoice["id"]: "10"}))
    message = await refused(
        api, "PUT", f"/v1/credit-memos/{memo['id']}/unapply", apply_body({invoice["id"]: "10.01"}),
        category=30,
    )  # fmt: skip
    assert "10" in message
    # Unpost while applied; the invoice keeps its memo-free rules too.
    await refused(api, "PUT", f"/v1/credit-memos/{memo['id']}/unpost", category=30)
    await refused(api, "PUT", f"/v1/invoices/{invoice['id']}/unpost", category=30)


@partner_or_not
async def test_refund_credit_memo(api: ApiClient, engine: AsyncEngine, partner: bool) -> None:
    account = await new_account(api, partner)
    invoice = await posted_invoice(api, account, "100.00")
    memo = await credit_from_invoice(api, invoice, "60.00", autoPost=True)
    await api.ok("PUT", f"/v1/credit-memos/{memo['id']}/apply", apply_body({invoice["id"]: "20"}))
    watch = Watch(api, engine, account)
    await watch.start()

    refund = await api.ok(
        "POST",
        f"/v1/credit-memos/{memo['number']}/refund",
        {
            "type": "External",
            "totalAmount": "15.50",
            "methodType": "Check",
            "refundDate": "2026-11-20",
            "referenceId": "chq-1",
        },
    )
    assert refund["number"] == "R-00000001" and refund["status"] == "Processed"
    assert (refund["amount"], refund["creditMemoId"], refund["type"]) == (
        D("15.50"),
        memo["id"],
        "External",
    )
    assert (refund["methodType"], refund["refundDate"]) == ("Check", "2026-11-20")
    assert refund["createdDate"] == refund["refundTransactionTime"]
    fetched = await api.ok("GET", f"/v1/refunds/{refund['id']}")
    assert fetched["createdDate"] == refund["createdDate"] and fetched["paymentNumber"] is None
    await watch.moved(delta(ucma="-15.50"))
    got = await api.ok("GET", f"/v1/credit-memos/{memo['id']}")
    assert (got["refundAmount"], got["appliedAmount"], got["unappliedAmount"]) == (
        D("15.50"),
        D(20),
        D("24.50"),
    )

    refund_path = f"/v1/credit-memos/{memo['id']}/refund"
    message = await refused(
        api, "POST", refund_path, {"type": "External", "totalAmount": "24.51"}, category=30
    )
    assert "24.50" in message
    message = await refused(
        api, "POST", refund_path, {"type": "Electronic", "totalAmount": "1"}, category=30
    )
    assert "gateway" in message
    await refused(
        api, "POST", refund_path, {"type": "External", "totalAmount": "-1"}, status=400,
        category=20,
    )  # fmt: skip
    await refused(api, "POST", refund_path, {"type": "External"}, status=400, category=22)
    await refused(
        api, "POST", "/v1/credit-memos/CM404/refund", {"type": "External", "totalAmount": "1"},
        status=404, category=40,
    )  # fmt: skip
    # Refunded or applied: no unpost until both are undone (a refund cannot be undone here).
    await api.ok("PUT", f"/v1/credit-memos/{memo['id']}/unapply", apply_body({invoice["id"]: "20"}))
    await refused(api, "PUT", f"/v1/credit-memos/{memo['id']}/unpost", category=30)


# --- debit memos ------------------------------------------------------------------------------


@partner_or_not
async def test_debit_memo_from_invoice_lifecycle(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner, paymentTerm="Net 30")
    invoice = await posted_invoice(api, account, "100.00")
    watch = Watch(api, engine, account)
    await watch.start()
    memo = await api.ok(
        "POST",
        f"/v1/debit-memos/invoice/{invoice['invoiceNumber']}",
        {
            "effectiveDate": "2026-11-10",
            "items": [
                {"amount": "12.00", "invoiceItemId": invoice["itemIds"][0], "skuName": "late"},
                {"amount": "3.00", "description": "fee"},
            ],
        },
    )
    assert memo["number"] == "DM00000001" and memo["status"] == "Draft"
    assert (memo["amount"], memo["balance"], memo["beAppliedAmount"]) == (D(15), D(15), D(0))
    assert (memo["debitMemoDate"], memo["dueDate"]) == ("2026-11-10", "2026-12-10")
    assert memo["referredInvoiceId"] == invoice["id"]
    await watch.moved(delta())

    await api.ok("PUT", f"/v1/debit-memos/{memo['id']}/post")
    await watch.moved(delta(tdmb="15"))
    assert (await api.ok("GET", f"/v1/debit-memos/{memo['number']}"))["status"] == "Posted"
    await api.ok("PUT", f"/v1/debit-memos/{memo['id']}/unpost")
    await watch.moved(delta(tdmb="-15"))
    await api.ok("PUT", f"/v1/debit-memos/{memo['id']}/cancel")
    await watch.moved(delta())
    for action in ("post", "unpost", "cancel"):
        await refused(api, "PUT", f"/v1/debit-memos/{memo['id']}/{action}", category=30)

    items = await api.ok("GET", f"/v1/debit-memos/{memo['id']}/items?pageSize=1")
    assert items["items"][0]["skuName"] == "late" and "nextPage" in items
    assert items["items"][0]["serviceStartDate"] == "2026-11-01"
    listed = await api.ok("GET", f"/v1/debit-memos?accountNumber={account.number}")
    assert [m["id"] for m in listed["debitmemos"]] == [memo["id"]]


@partner_or_not
async def test_standalone_debit_memo(api: ApiClient, engine: AsyncEngine, partner: bool) -> None:
    account = await new_account(api, partner)  # Due Upon Receipt
    charge = await a_charge(api)
    watch = Watch(api, engine, account)
    await watch.start()
    memo = await standalone(
        api, "debit", account, charge, "9.99", autoPost=True, effectiveDate="2026-05-05"
    )
    assert memo["dueDate"] == "2026-05-05" and memo["status"] == "Posted"
    await watch.moved(delta(tdmb="9.99"))
    later = await standalone(
        api, "debit", account, charge, "1", dueDate="2026-06-30", effectiveDate="2026-06-01"
    )
    assert later["dueDate"] == "2026-06-30" and later["number"] == "DM00000002"
    await refused(
        api, "POST", "/v1/debit-memos",
        {"accountNumber": account.number, "charges": [{"chargeId": charge, "amount": "1"}],
         "effectiveDate": "2026-06-01", "dueDate": "2026-05-01"},
        status=400, category=20,
    )  # fmt: skip


async def test_debit_memo_unpost_only_while_unpaid(api: ApiClient) -> None:
    account = await new_account(api)
    charge = await a_charge(api)
    debit = await standalone(api, "debit", account, charge, "40", autoPost=True)
    memo = await standalone(api, "credit", account, charge, "10", autoPost=True)
    await api.ok(
        "PUT", f"/v1/credit-memos/{memo['id']}/apply", apply_body(debit={debit["id"]: "10"})
    )
    message = await refused(api, "PUT", f"/v1/debit-memos/{debit['id']}/unpost", category=30)
    assert "unapply" in message
    await refused(api, "GET", "/v1/debit-memos/DM404", status=404, category=40)
    await refused(api, "PUT", "/v1/debit-memos/DM404/post", status=404, category=40)
    await refused(api, "GET", "/v1/credit-memos/CM404/items", status=404, category=40)


# --- invoices with memos ----------------------------------------------------------------------


async def test_invoice_with_memos_cannot_be_unposted(api: ApiClient) -> None:
    account = await new_account(api)
    invoice = await posted_invoice(api, account, "100")
    credit = await credit_from_invoice(api, invoice, "10", autoPost=True)
    debit = await api.ok(
        "POST", f"/v1/debit-memos/invoice/{invoice['id']}", {"items": [{"amount": "5"}]}
    )
    unpost = f"/v1/invoices/{invoice['id']}/unpost"
    message = await refused(api, "PUT", unpost, category=30)
    assert credit["number"] in message
    await api.ok("PUT", f"/v1/credit-memos/{credit['id']}/unpost")
    await refused(api, "PUT", unpost, category=30)  # a draft memo still refers to it
    await api.ok("PUT", f"/v1/credit-memos/{credit['id']}/cancel")
    message = await refused(api, "PUT", unpost, category=30)
    assert debit["number"] in message
    await api.ok("PUT", f"/v1/debit-memos/{debit['id']}/cancel")
    assert (await api.ok("PUT", unpost))["invoice"]["status"] == "Draft"
    # And a memo needs a posted invoice.
    await refused(
        api, "POST", f"/v1/debit-memos/invoice/{invoice['id']}", {"items": [{"amount": "5"}]},
        category=30,
    )  # fmt: skip


# --- concurrency ------------------------------------------------------------------------------


async def test_parallel_applies_never_over_apply_an_invoice(
    live_server: str, tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    """64 credit memos of 10.00 applied at once to one invoice of 100.00 over real HTTP: exactly
    10 succeed, the rest are refused by the balance rule; no deadlock, no internal error."""
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=live_server, timeout=120, limits=limits) as http:
        api = await client_for(http, tenant_credentials)
        account = await new_account(api)
        invoice = await posted_invoice(api, account, "100.00")
        charge = await a_charge(api)
        body = {
            "accountNumber": account.number,
            "charges": [{"productRatePlanChargeId": charge, "amount": "10.00"}],
            "autoPost": True,
        }
        memos = [await api.ok("POST", "/v1/credit-memos", body) for _ in range(64)]

        async def apply(memo: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            return await api.call(
                "PUT",
                f"/v1/credit-memos/{memo['id']}/apply",
                apply_body({invoice["id"]: "10.00"}),
                expect=None,
            )

        results = await asyncio.gather(*(apply(memo) for memo in memos))
        assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200]
        succeeded = [p for _, p in results if p["success"]]
        refused_ = [p for _, p in results if not p["success"]]
        assert len(succeeded) == 10
        assert all(p["reasons"][0]["code"] % 100 == 30 for p in refused_), refused_[:3]
        assert (await api.ok("GET", f"/v1/invoices/{invoice['id']}"))["balance"] == D(0)
        now = await figures(api, account)
        assert now == await recomputed(engine, api, account)
        assert (now.tib, now.ucma) == (D(0), D(540))
