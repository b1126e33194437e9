"""Credit and debit memos as the memo tests make and check them: account figures and their
recompute, watched rows, posted invoices, memo and apply bodies, refusals, and the partner or
non-partner parametrization."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core import db
from partnerbill.metrics.service import recompute
from tests.catalog_fixtures import one_time_charge, plan_charge_ids, rate_plan
from tests.helpers import (
    ApiClient,
    assert_envelope,
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
