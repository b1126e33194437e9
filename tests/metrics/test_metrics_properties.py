"""Property-based test of the metrics engine (docs/architecture.md): over random runs of invoice
operations, subscription orders (create, update quantity, remove, cancel, owner transfer, with or
without runBilling), bill runs, partner-flag switches and refreshes on three accounts, the stored
metrics of a non-partner account (contractedMrr included) equal `recompute` at every step, and those
of a partner account equal it right after each refresh (in between they stay exactly what the last
refresh or switch left). contractedMrr belongs to the subscription owner, the document metrics to
the invoice owner.

Settlement too: payments (created with applications to posted invoices and debit memos, applied,
unapplied, refunded, canceled), credit memos (from an invoice's items within what is left to credit
on them, or standalone; posted, unposted, canceled, applied, unapplied, refunded) and debit memos
(from an invoice or standalone; posted, unposted, canceled). The model picks valid operations most
of the time and sometimes invalid ones (over-application, unposting a settled document or an
invoice with memos, operations on canceled documents); an invalid one must fail with exactly the
business-rule error the model names and change nothing. Every payment and credit memo keeps
applied + unapplied + refunded = amount, every invoice and debit memo balance = amount - what the
ledger has on it.

One tenant and one catalog rate plan (a monthly per-unit recurring charge) serve the whole run;
each example creates its own accounts in that tenant.

Hypothesis rules are synchronous, so the machine drives the service functions on an event loop
and an engine of its own; it never touches the app's global engine.
"""

import asyncio
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.billing import engine as billing_engine
from partnerbill.catalog import service as catalog
from partnerbill.catalog.schemas import (
    CreateProductRatePlanChargeRequest,
    CreateProductRatePlanRequest,
    CreateProductRequest,
)
from partnerbill.core import db
from partnerbill.core.tenants import Tenant, create_tenant
from partnerbill.tables.billing import invoice_items
from partnerbill.tables.subscriptions import rate_plan_charges
from tests.metrics.properties_invoices import InvoiceRules
from tests.metrics.properties_machine import MachineBase
from tests.metrics.properties_memos import MemoRules
from tests.metrics.properties_model import (
    UNIT_PRICE,
    CatalogPlan,
)
from tests.metrics.properties_orders import OrderRules
from tests.metrics.properties_payments import SettlementRules


class MetricsMachine(InvoiceRules, OrderRules, SettlementRules, MemoRules, MachineBase):
    """The machine the tests run: the core and the rules of every kind of document."""


async def _tenant_with_catalog(engine: AsyncEngine) -> tuple[Tenant, CatalogPlan]:
    """The run's tenant and its one rate plan: a monthly per-unit recurring charge."""
    async with engine.begin() as conn:
        tenant = await create_tenant(conn, f"prop-{uuid.uuid4().hex[:16]}")
        product_id = await catalog.create_product(
            conn,
            tenant,
            CreateProductRequest.model_validate(
                {
                    "Name": "Seats",
                    "EffectiveStartDate": "2020-01-01",
                    "EffectiveEndDate": "2040-01-01",
                }
            ),
        )
        rate_plan_id = await catalog.create_product_rate_plan(
            conn,
            tenant,
            CreateProductRatePlanRequest.model_validate(
                {"Name": "Monthly", "ProductId": product_id}
            ),
        )
        charge_id = await catalog.create_product_rate_plan_charge(
            conn,
            tenant,
            CreateProductRatePlanChargeRequest.model_validate(
                {
                    "ProductRatePlanId": rate_plan_id,
                    "Name": "Seat",
                    "ChargeType": "Recurring",
                    "ChargeModel": "Per Unit Pricing",
                    "BillingPeriod": "Month",
                    "BillCycleType": "DefaultFromCustomer",
                    "TriggerEvent": "ContractEffective",
                    "DefaultQuantity": "1",
                    "ProductRatePlanChargeTierData": {
                        "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": str(UNIT_PRICE)}]
                    },
                }
            ),
        )
    return tenant, CatalogPlan(rate_plan_id, charge_id)


def test_metrics_equal_recompute_over_random_operations(database_url: str) -> None:
    with asyncio.Runner() as runner:
        engine = db.create_engine(database_url)
        MetricsMachine.runner = runner
        MetricsMachine.engine = engine
        MetricsMachine.shared_tenant, MetricsMachine.plan = runner.run(_tenant_with_catalog(engine))
        try:
            run_state_machine_as_test(
                MetricsMachine,
                settings=settings(
                    max_examples=50,
                    stateful_step_count=50,
                    deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(engine.dispose())


def test_cancellation_before_a_later_segment_credits_only_what_that_segment_billed(
    database_url: str,
) -> None:
    """A case the machine's line check catches (kept explicit because random runs reach it
    rarely): a quantity update on Jan 20 splits the charge (segment 1 from Jan 1, segment 2 from
    Jan 20), a bill run through February bills both, then a cancellation dated Jan 10 — before
    segment 2 starts. Segment 1 must be credited Jan 10-19 and segment 2 exactly what it billed
    (Jan 20 on); no credit of segment 2 may start before Jan 20, and the customer must not be
    credited Jan 10-19 twice."""
    with asyncio.Runner() as runner:
        engine = db.create_engine(database_url)
        MetricsMachine.runner = runner
        MetricsMachine.engine = engine
        MetricsMachine.shared_tenant, MetricsMachine.plan = runner.run(_tenant_with_catalog(engine))
        try:
            machine = MetricsMachine()
            machine.create_accounts(partners=[False, False, False], bill_cycle_days=[1, 1, 1])
            start = date(2026, 1, 1)
            machine.create_subscription(
                owner=0,
                invoice_owner=0,
                quantity=10,
                order_date=start,
                run_billing=False,
                target_date=None,
            )
            (subscription_id,) = machine.model_subscriptions
            machine._amend(subscription_id, [("update", 20, timedelta(days=19))], start)
            machine.bill_run(target_date=date(2026, 2, 5))
            machine.stored_metrics_match_documents()
            machine._amend(subscription_id, [("cancel", timedelta(days=9))], start)
            machine.stored_metrics_match_documents()

            async def cancel_billing() -> list[Any]:
                async with engine.begin() as conn:
                    await billing_engine.bill(
                        conn,
                        machine.t,
                        billing_engine.subscription_batches([subscription_id]),
                        target_date=date(2026, 2, 5),
                        invoice_date=date(2026, 2, 5),
                        post=False,
                    )
                    return list(
                        await conn.execute(
                            select(
                                rate_plan_charges.c.segment,
                                rate_plan_charges.c.effective_start_date,
                                invoice_items.c.service_start_date,
                                invoice_items.c.amount,
                            )
                            .join(
                                rate_plan_charges,
                                (rate_plan_charges.c.tenant_id == invoice_items.c.tenant_id)
                                & (rate_plan_charges.c.id == invoice_items.c.rate_plan_charge_id),
                            )
                            .where(
                                invoice_items.c.tenant_id == machine.t.id,
                                invoice_items.c.subscription_id == subscription_id,
                            )
                        )
                    )

            lines = runner.run(cancel_billing())
            net = {
                segment: sum((line.amount for line in lines if line.segment == segment), Decimal(0))
                for segment in (1, 2)
            }
            # Segment 1 keeps Jan 1-9 (9 of 31 days of 10 seats); segment 2 (from Jan 20, after
            # the cancellation date) keeps nothing.
            assert net[1] == (UNIT_PRICE * 10 * 9 / 31).quantize(Decimal("0.01")), net
            assert net[2] == 0, (net, lines)
            for line in lines:
                assert line.service_start_date >= line.effective_start_date, line
        finally:
            runner.run(engine.dispose())
