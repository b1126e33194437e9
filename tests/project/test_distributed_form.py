"""`PARTNERBILL_DISTRIBUTED` (docs/scale-out.md) changes how many-row writes are sent — multi-row
VALUES inserts in a transaction instead of one statement over JSON recordsets — and nothing of
what they write: the same requests on two tenants, one with the setting off and one with it on,
leave the same rows (numbers included: each tenant's sequences start alike) and exact metrics.
Run here on plain PostgreSQL, which serves both forms."""

from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core.recordsets import MAX_PARAMETERS, execute_values, insert_values
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from partnerbill.settings import get_settings
from partnerbill.tables.metrics import metrics_changes
from tests.catalog_fixtures import amendment, order_body, rate_plan, recurring_charge
from tests.helpers import ApiClient, client_for, distributed_form, invoice_body, new_tenant

# Per table, what a row is made of apart from its ids, in a stable order.
FINGERPRINT = {
    "invoices": "invoice_number, status, source_type, invoice_date, amount, balance",
    "invoice_items": "charge_name, service_start_date, service_end_date, amount, line_number",
    "subscriptions": "subscription_number, status, version, term_type",
    "rate_plans": "rate_plan_number, name, last_change_type",
    "rate_plan_charges": "charge_number, segment, mrr, charged_through_date, is_last_segment",
    "orders": "order_number, status, order_date",
    "order_actions": "sequence, type, subscription_number",
    "account_metrics": "total_invoice_balance, contracted_mrr, last_invoice_date",
}


async def _scenario(api: ApiClient) -> list[str]:
    """Standalone invoices (single and batch), orders creating and amending subscriptions, a
    bill run; the accounts' numbers."""
    partner = await api.create_account(partner=True, billCycleDay=1)
    plain = await api.create_account(billCycleDay=1)
    base = await rate_plan(api, recurring_charge("10"), name="Base")
    addon = await rate_plan(api, recurring_charge("2.50"), name="Add-on")
    for account in (partner, plain):
        number = account["accountNumber"]
        await api.ok("POST", "/v1/invoices", invoice_body(number, "12.34", "0.66"))
        batch = [invoice_body(number, "1.11"), invoice_body(number, "2.22", status="Draft")]
        await api.ok("POST", "/v1/invoices/batch", {"invoices": batch})
        order = await api.ok("POST", "/v1/orders", order_body(number, base, "2026-01-01"))
        second = await api.ok("POST", "/v1/orders", order_body(number, base, "2026-01-05"))
        add = {"type": "AddProduct", "addProduct": {"productRatePlanId": addon}}
        subscription = second["subscriptionNumbers"][0]
        await api.ok("POST", "/v1/orders", amendment(number, subscription, "2026-01-10", add))
        assert order["success"] is True
        run = await api.ok(
            "POST",
            "/v1/bill-runs",
            {
                "billRunFilters": [{"filterType": "Account", "accountId": account["accountId"]}],
                "targetDate": "2026-03-01",
            },
        )
        await execute_bill_run(api.tenant, run["id"])
        assert (await api.ok("GET", f"/v1/bill-runs/{run['id']}"))["status"] == "Completed"
    return [partner["accountNumber"], plain["accountNumber"]]


async def _fingerprint(engine: AsyncEngine, api: ApiClient) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    async with engine.begin() as conn:
        for table, columns in FINGERPRINT.items():
            rows = await conn.execute(
                text(f"SELECT {columns} FROM {table} WHERE tenant_id = :t ORDER BY {columns}"),
                {"t": api.tenant.id},
            )
            found[table] = [tuple(row) for row in rows]
        accounts = await conn.scalars(
            text("SELECT id FROM accounts WHERE tenant_id = :t"), {"t": api.tenant.id}
        )
        for account_id in accounts:
            await metric_refresh.refresh_account(conn, api.tenant, account_id, wait=True)
            stored = await metrics.read_metrics(conn, api.tenant, account_id)
            assert stored.metrics == await metrics.recompute(conn, api.tenant, account_id)
    return found


async def test_both_forms_write_the_same_rows(
    app: Any,
    engine: AsyncEngine,
) -> None:
    fingerprints = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://partnerbill.test"
    ) as http:
        for on in (False, True):
            with distributed_form(on):
                assert get_settings().distributed is on
                api = await client_for(http, await new_tenant(engine))
                await _scenario(api)
                fingerprints.append(await _fingerprint(engine, api))
    single_statement, distributed = fingerprints
    assert all(single_statement[table] for table in FINGERPRINT), single_statement
    assert distributed == single_statement


async def test_values_inserts_stay_within_the_parameter_bound(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """A many-row write past PostgreSQL's 65,535 parameters (a bill-run batch's lines can be)
    goes as several VALUES inserts, each within the bound, every row once."""
    account = await api.create_account(partner=True)
    rows = [
        {
            "account_id": account["accountId"],
            "total_invoice_balance": Decimal(i),
            "recompute": False,
        }
        for i in range(50_000)
    ]
    statements = insert_values(metrics_changes, api.tenant.id, rows)
    assert len(statements) > 1
    for statement in statements:
        assert len(statement.compile().params) <= MAX_PARAMETERS
    async with engine.connect() as conn, conn.begin() as transaction:
        await execute_values(conn, metrics_changes, api.tenant.id, rows)
        written = await conn.scalar(
            select(func.count()).where(metrics_changes.c.tenant_id == api.tenant.id)
        )
        assert written == len(rows)
        await transaction.rollback()
