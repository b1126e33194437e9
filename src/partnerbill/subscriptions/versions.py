"""Reads across a subscription's versions and its metrics. Read-only: no locks.

A version is the current one (served from the live rows) or an older one kept as a snapshot in
`subscription_versions` when an amendment replaced it. The subscription is named by its number
or by any of its versions' ids.

Subscription metrics follow Zuora's definitions with partnerbill's catalog, which has no
discounts: contractedMrr is the MRR of the recurring charges' open last segments (0 once
cancelled), totalContractedValue the subscription's TCV, and the "net" figures equal the gross
ones. asOfDayGrossMrr is the MRR of the recurring segments in effect on `asOfDay` (today when
not given): 0 from the cancellation date, or from the current term's end. An unknown number
is an invalid value of the query (400), as the route has no key in its path.
"""

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.catalog.enums import ChargeType
from partnerbill.core.errors import Category, Resource, ZuoraError, not_found
from partnerbill.core.money import ZERO, trimmed
from partnerbill.core.tenants import Tenant
from partnerbill.subscriptions.views import (
    SubscriptionJson,
    kept_version,
    subscription_json,
    subscription_tcv,
)
from partnerbill.tables.subscriptions import (
    ChargeSegment,
    SubscriptionRow,
    charge_segment,
    rate_plan_charges,
    subscription_row,
    subscription_versions,
    subscriptions,
)

MAX_METRICS_SUBSCRIPTIONS = 50


class SubscriptionMetrics(TypedDict):
    subscriptionNumber: str
    contractedMrr: Decimal
    contractedNetMrr: Decimal
    asOfDayGrossMrr: Decimal
    asOfDayNetMrr: Decimal
    totalContractedValue: Decimal
    netTotalContractedValue: Decimal


async def _subscription_id(conn: AsyncConnection, tenant: Tenant, key: str) -> str:
    live = await conn.scalar(
        select(subscriptions.c.id).where(
            subscriptions.c.tenant_id == tenant.id,
            (subscriptions.c.version_id == key) | (subscriptions.c.subscription_number == key),
        )
    )
    if live is None:
        live = await conn.scalar(
            select(subscription_versions.c.subscription_id).where(
                subscription_versions.c.tenant_id == tenant.id, subscription_versions.c.id == key
            )
        )
    if live is None:
        raise not_found(Resource.SUBSCRIPTION, "subscription", key)
    return str(live)


VERSION = re.compile(r"[0-9]{1,9}")


async def subscription_version_json(
    conn: AsyncConnection, tenant: Tenant, key: str, version: str
) -> SubscriptionJson:
    """GET /v1/subscriptions/{key}/versions/{version}."""
    # ASCII digits only: str.isdigit also accepts '²', which int() refuses; at most 9 of them,
    # so the number fits the version column.
    if not VERSION.fullmatch(version) or int(version) < 1:
        raise ZuoraError(
            Resource.SUBSCRIPTION,
            Category.INVALID_VALUE,
            "'version': must be a whole number of 1 or more (at most 9 digits).",
        )
    subscription_id = await _subscription_id(conn, tenant, key)
    current = (
        await conn.execute(
            select(subscriptions.c.version_id, subscriptions.c.version).where(
                subscriptions.c.tenant_id == tenant.id, subscriptions.c.id == subscription_id
            )
        )
    ).one()
    if current.version == int(version):
        return await subscription_json(conn, tenant, current.version_id)
    snapshot = await conn.scalar(
        select(subscription_versions.c.snapshot).where(
            subscription_versions.c.tenant_id == tenant.id,
            subscription_versions.c.subscription_id == subscription_id,
            subscription_versions.c.version == int(version),
        )
    )
    if snapshot is None:
        raise not_found(Resource.SUBSCRIPTION, "subscription version", f"{key}/{version}")
    return kept_version(dict(snapshot))


async def subscription_metrics(
    conn: AsyncConnection, tenant: Tenant, numbers: Sequence[str], as_of_day: date
) -> list[SubscriptionMetrics]:
    """The metrics of each subscription named by number, in the order asked."""
    if not numbers:
        raise ZuoraError(
            Resource.SUBSCRIPTION, Category.MISSING_FIELD, "'subscriptionNumbers' is required."
        )
    if len(numbers) > MAX_METRICS_SUBSCRIPTIONS:
        raise ZuoraError(
            Resource.SUBSCRIPTION,
            Category.LIMIT_EXCEEDED,
            f"'subscriptionNumbers': at most {MAX_METRICS_SUBSCRIPTIONS} subscriptions per call.",
        )
    rows = {
        row.subscription_number: subscription_row(row)
        for row in await conn.execute(
            select(subscriptions).where(
                subscriptions.c.tenant_id == tenant.id,
                subscriptions.c.subscription_number.in_(list(numbers)),
            )
        )
    }
    for number in numbers:
        if number not in rows:
            raise ZuoraError(
                Resource.SUBSCRIPTION,
                Category.INVALID_VALUE,
                f"'subscriptionNumbers': no subscription {number}.",
            )
    segments: dict[str, list[ChargeSegment]] = {sub["id"]: [] for sub in rows.values()}
    for segment in await conn.execute(
        select(rate_plan_charges).where(
            rate_plan_charges.c.tenant_id == tenant.id,
            rate_plan_charges.c.subscription_id.in_(list(segments)),
        )
    ):
        segments[segment.subscription_id].append(charge_segment(segment))
    return [_metrics(rows[number], segments[rows[number]["id"]], as_of_day) for number in numbers]


def _metrics(
    sub: SubscriptionRow, segments: list[ChargeSegment], as_of_day: date
) -> SubscriptionMetrics:
    recurring = [s for s in segments if s["charge_type"] == ChargeType.RECURRING.value]
    contracted = ZERO
    if sub["cancelled_date"] is None:
        contracted = sum(
            (
                s["mrr"]
                for s in recurring
                if s["is_last_segment"] and s["effective_end_date"] is None
            ),
            ZERO,
        )
    ended = sub["cancelled_date"] or sub["term_end_date"]
    on_day = (
        ZERO
        if ended is not None and as_of_day >= ended
        else sum(
            (
                s["mrr"]
                for s in recurring
                if s["effective_start_date"] <= as_of_day
                and (s["effective_end_date"] is None or as_of_day < s["effective_end_date"])
            ),
            ZERO,
        )
    )
    tcv = subscription_tcv(sub, segments)
    return {
        "subscriptionNumber": sub["subscription_number"],
        "contractedMrr": trimmed(contracted),
        "contractedNetMrr": trimmed(contracted),
        "asOfDayGrossMrr": trimmed(on_day),
        "asOfDayNetMrr": trimmed(on_day),
        "totalContractedValue": tcv,
        "netTotalContractedValue": tcv,
    }
