"""Credit memos applied, unapplied and refunded over the v1 API; the rules that refuse an
application with nothing written; how each moves the account metrics (a synchronous account at
once, a partner account at its refresh, then equal to `recompute`); parallel applies over real
HTTP."""

import asyncio
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import (
    ApiClient,
    TenantCredentials,
    client_for,
)
from tests.memos.memo_support import (
    D,
    Watch,
    a_charge,
    apply_body,
    credit_from_invoice,
    delta,
    figures,
    new_account,
    partner_or_not,
    posted_invoice,
    recomputed,
    refused,
    standalone,
)

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
