"""Charge segments: a subscribed charge's price history, one row per segment, the last one
open. Every function works on a subscription the caller has locked (`lock_subscription`); the
statements change that subscription's segments only.

contractedMrr (API doc §4.2): a recurring charge's MRR is its period price normalised to a
month, stored on each segment; `account_cmrr_contribution` is what a subscription adds to its
owner's figure (the last segments still open; 0 once cancelled).
"""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import ARRAY, String, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.catalog.enums import BillingPeriod, ChargeModel, ChargeType, Tier
from partnerbill.catalog.pricing import monthly_amount
from partnerbill.catalog.tiers import tiers_json
from partnerbill.core.ids import new_id
from partnerbill.core.money import ZERO
from partnerbill.core.tenants import Tenant
from partnerbill.subscriptions.charges import priced_period
from partnerbill.tables.subscriptions import (
    ChargeSegment,
    charge_segment,
    rate_plan_charges,
    subscriptions,
)


async def last_segments(
    conn: AsyncConnection, tenant: Tenant, subscription_id: str, rate_plan_id: str | None = None
) -> list[ChargeSegment]:
    query = select(rate_plan_charges).where(
        rate_plan_charges.c.tenant_id == tenant.id,
        rate_plan_charges.c.subscription_id == subscription_id,
        rate_plan_charges.c.is_last_segment,
    )
    if rate_plan_id is not None:
        query = query.where(rate_plan_charges.c.rate_plan_id == rate_plan_id)
    return [charge_segment(r) for r in await conn.execute(query.order_by(rate_plan_charges.c.id))]


async def end_segments(
    conn: AsyncConnection, tenant: Tenant, segments: Sequence[ChargeSegment], end: date
) -> None:
    """End open (or later-ending) segments at `end` (exclusive)."""
    ids = [
        s["id"]
        for s in segments
        if s["effective_end_date"] is None or s["effective_end_date"] > end
    ]
    if ids:
        await conn.execute(
            update(rate_plan_charges)
            .where(rate_plan_charges.c.tenant_id == tenant.id, rate_plan_charges.c.id.in_(ids))
            .values(effective_end_date=func.greatest(rate_plan_charges.c.effective_start_date, end))
        )


async def split_segment(
    conn: AsyncConnection,
    tenant: Tenant,
    segment: ChargeSegment,
    on: date,
    *,
    quantity: Decimal,
    tiers: tuple[Tier, ...],
    start: date | None = None,
    description: str | None = None,
) -> None:
    """A new segment from `on` (or `start`) with a new price, quantity or description (None:
    the segment's); the current one ends at `on`. A change dated on the segment's own start
    replaces it instead."""
    if description is None:
        description = segment["description"]
    model = ChargeModel(segment["charge_model"])
    mrr = ZERO
    if segment["charge_type"] == ChargeType.RECURRING.value:
        amount = priced_period(model, quantity, tiers)
        assert segment["billing_period"] is not None  # a recurring charge has one
        period = BillingPeriod(segment["billing_period"])
        mrr = monthly_amount(period, segment["specific_billing_period"], amount)
    if on <= segment["effective_start_date"] and start is None:
        await conn.execute(
            update(rate_plan_charges)
            .where(
                rate_plan_charges.c.tenant_id == tenant.id,
                rate_plan_charges.c.id == segment["id"],
            )
            .values(quantity=quantity, tiers=tiers_json(tiers), mrr=mrr, description=description)
        )
        return
    await conn.execute(
        update(rate_plan_charges)
        .where(rate_plan_charges.c.tenant_id == tenant.id, rate_plan_charges.c.id == segment["id"])
        .values(is_last_segment=False, effective_end_date=on)
    )
    await conn.execute(
        insert(rate_plan_charges).values(
            {
                **segment,
                "id": new_id(),
                "segment": segment["segment"] + 1,
                "is_last_segment": True,
                "quantity": quantity,
                "tiers": tiers_json(tiers),
                "mrr": mrr,
                "description": description,
                "effective_start_date": start or on,
                "effective_end_date": segment["effective_end_date"],
                "charged_through_date": None,
                "created_at": func.now(),
            }
        )
    )


# Built once, the ids as one array parameter: an order's 50 subscriptions cost no statement
# building and no parameter per id.
_CMRR_CONTRIBUTION = (
    select(subscriptions.c.id, func.coalesce(func.sum(rate_plan_charges.c.mrr), ZERO))
    .select_from(subscriptions)
    .outerjoin(
        rate_plan_charges,
        (rate_plan_charges.c.tenant_id == subscriptions.c.tenant_id)
        & (rate_plan_charges.c.subscription_id == subscriptions.c.id)
        & rate_plan_charges.c.is_last_segment
        & rate_plan_charges.c.effective_end_date.is_(None)
        & (rate_plan_charges.c.charge_type == ChargeType.RECURRING.value),
    )
    .where(
        subscriptions.c.tenant_id == bindparam("tenant_id"),
        subscriptions.c.id == func.any(bindparam("ids", type_=ARRAY(String))),
        subscriptions.c.cancelled_date.is_(None),
    )
    .group_by(subscriptions.c.id)
)


async def account_cmrr_contribution(
    conn: AsyncConnection, tenant: Tenant, subscription_ids: Sequence[str]
) -> dict[str, Decimal]:
    """What each subscription adds to its owner's contractedMrr right now (0 once cancelled)."""
    if not subscription_ids:
        return {}
    rows = await conn.execute(
        _CMRR_CONTRIBUTION, {"tenant_id": tenant.id, "ids": list(subscription_ids)}
    )
    found = {row[0]: row[1] for row in rows}
    return {sid: found.get(sid, ZERO) for sid in subscription_ids}
