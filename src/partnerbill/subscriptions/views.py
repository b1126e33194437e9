"""Subscription reads: GET /v1/subscriptions/{key} (the latest version from the live rows, an
older one from its snapshot) and the contract values it reports. Read-only: no locks.

A subscription's contractedMrr is the sum over the last segments still open at its end.
"""

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict, cast

from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.catalog.enums import ChargeModel, ChargeType
from partnerbill.catalog.pricing import period_amount
from partnerbill.catalog.tiers import tiers_from_json
from partnerbill.core.errors import Resource, not_found
from partnerbill.core.json import v1_datetime
from partnerbill.core.money import ZERO, trimmed
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.subscriptions.dates import add_term
from partnerbill.tables.accounts import accounts
from partnerbill.tables.subscriptions import (
    ChargeSegment,
    SubscriptionRow,
    charge_segment,
    rate_plan_charges,
    rate_plans,
    subscription_row,
    subscription_versions,
    subscriptions,
)

SUBSCRIPTION = Resource.SUBSCRIPTION


class ChargeJson(TypedDict):
    """A charge (its segment) as GET /v1/subscriptions/{key} shows it."""

    id: str
    number: str
    name: str
    type: str
    model: str
    productRatePlanChargeId: str
    price: Decimal | None
    quantity: Decimal
    tiers: list[dict[str, object]]
    uom: str | None
    description: str | None
    mrr: Decimal
    tcv: Decimal
    billingPeriod: str | None
    specificBillingPeriod: int | None
    billingTiming: str
    billingDay: int
    triggerEvent: str
    endDateCondition: str
    effectiveStartDate: date
    effectiveEndDate: date | None
    chargedThroughDate: date | None
    processedThroughDate: date | None
    segment: int
    version: int


class RatePlanJson(TypedDict):
    id: str
    productId: str
    productName: str
    productRatePlanId: str
    ratePlanName: str
    subscriptionRatePlanNumber: str
    lastChangeType: str
    ratePlanCharges: list[ChargeJson]


class SubscriptionJson(TypedDict):
    """GET /v1/subscriptions/{key}'s answer. An older version's is kept as JSON
    (`subscription_versions`) and answered as it was kept: its dates and amounts as JSON has
    them."""

    success: bool
    id: str
    subscriptionNumber: str
    version: int
    isLatestVersion: bool
    status: str  # a SubscriptionStatus
    accountId: str
    accountNumber: str
    accountName: str
    invoiceOwnerAccountId: str
    invoiceOwnerAccountNumber: str
    invoiceOwnerAccountName: str
    termType: str
    initialTerm: int | None
    initialTermPeriodType: str | None
    currentTerm: int | None
    currentTermPeriodType: str | None
    renewalTerm: int | None
    renewalTermPeriodType: str | None
    renewalSetting: str
    autoRenew: bool
    contractEffectiveDate: date
    serviceActivationDate: date
    customerAcceptanceDate: date
    subscriptionStartDate: date
    subscriptionEndDate: date | None
    termStartDate: date
    termEndDate: date | None
    cancelledDate: date | None
    scheduledSuspendDate: date | None
    scheduledResumeDate: date | None
    invoiceSeparately: bool
    currency: str
    notes: str | None
    contractedMrr: Decimal
    totalContractedValue: Decimal
    createTime: str | None
    updateTime: str | None
    ratePlans: list[RatePlanJson]


def kept_version(snapshot: dict[str, Any]) -> SubscriptionJson:
    """An older version's answer, as it was kept."""
    return cast(SubscriptionJson, snapshot)


def key_clause(key: str) -> ColumnElement[bool]:
    """A subscription by its number or its current version's id (older version ids are served
    from `subscription_versions`)."""
    return (subscriptions.c.version_id == key) | (subscriptions.c.subscription_number == key)


def _charge_json(sub: SubscriptionRow, segment: ChargeSegment) -> ChargeJson:
    tiers = tiers_from_json(segment["tiers"])
    model = ChargeModel(segment["charge_model"])
    return {
        "id": segment["id"],
        "number": segment["charge_number"],
        "name": segment["name"],
        "type": segment["charge_type"],
        "model": segment["charge_model"],
        "productRatePlanChargeId": segment["product_rate_plan_charge_id"],
        "price": tiers[0].price if model in (ChargeModel.FLAT_FEE, ChargeModel.PER_UNIT) else None,
        "quantity": segment["quantity"],
        "tiers": (
            [t.as_json() for t in tiers]
            if model in (ChargeModel.TIERED, ChargeModel.VOLUME)
            else []
        ),
        "uom": segment["uom"],
        "description": segment["description"],
        "mrr": trimmed(segment["mrr"]),
        "tcv": segment_tcv(sub, segment),
        "billingPeriod": segment["billing_period"],
        "specificBillingPeriod": segment["specific_billing_period"],
        "billingTiming": segment["billing_timing"],
        "billingDay": segment["bill_cycle_day"],
        "triggerEvent": segment["trigger_event"],
        "endDateCondition": segment["end_date_condition"],
        "effectiveStartDate": segment["effective_start_date"],
        "effectiveEndDate": segment["effective_end_date"],
        "chargedThroughDate": segment["charged_through_date"],
        "processedThroughDate": segment["charged_through_date"],
        "segment": segment["segment"],
        "version": 1,
    }


def _months_between(start: date, end: date) -> Decimal:
    months = (end.year - start.year) * 12 + end.month - start.month
    days = Decimal((end - add_term(start, months, "Month")).days)
    return Decimal(months) + days / Decimal(30)


def segment_tcv(sub: SubscriptionRow, segment: ChargeSegment) -> Decimal:
    """Contract value of one segment: a one-time price, or the recurring MRR over the months the
    segment runs within the current term (an evergreen subscription counts its first 12 months),
    up to a cancellation."""
    if segment["charge_type"] == ChargeType.ONE_TIME.value:
        return period_amount(
            ChargeModel(segment["charge_model"]),
            segment["quantity"],
            tiers_from_json(segment["tiers"]),
        )
    term_end = sub["term_end_date"] or add_term(sub["term_start_date"], 12, "Month")
    if sub["cancelled_date"] is not None:
        term_end = min(term_end, sub["cancelled_date"])
    start = max(segment["effective_start_date"], sub["term_start_date"])
    end = min(segment["effective_end_date"] or term_end, term_end)
    value = segment["mrr"] * _months_between(start, end) if end > start else ZERO
    return value.quantize(Decimal("0.01"))


def subscription_tcv(sub: SubscriptionRow, segments: Sequence[ChargeSegment]) -> Decimal:
    """totalContractedValue: the sum of its segments' contract values."""
    return sum((segment_tcv(sub, segment) for segment in segments), ZERO)


async def subscription_json(conn: AsyncConnection, tenant: Tenant, key: str) -> SubscriptionJson:
    """GET /v1/subscriptions/{key}: the latest version, or a stored older version by its id."""
    row = (
        await conn.execute(
            select(subscriptions).where(subscriptions.c.tenant_id == tenant.id, key_clause(key))
        )
    ).one_or_none()
    if row is None:
        snapshot = await conn.scalar(
            select(subscription_versions.c.snapshot).where(
                subscription_versions.c.tenant_id == tenant.id, subscription_versions.c.id == key
            )
        )
        if snapshot is None:
            raise not_found(SUBSCRIPTION, "subscription", key)
        return kept_version(dict(snapshot))
    sub = subscription_row(row)
    owners = {
        r.id: r
        for r in await conn.execute(
            select(accounts.c.id, accounts.c.account_number, accounts.c.name).where(
                accounts.c.tenant_id == tenant.id,
                accounts.c.id.in_([sub["account_id"], sub["invoice_owner_account_id"]]),
            )
        )
    }
    plan_rows = (
        await conn.execute(
            select(rate_plans)
            .where(rate_plans.c.tenant_id == tenant.id, rate_plans.c.subscription_id == sub["id"])
            .order_by(rate_plans.c.created_at, rate_plans.c.id)
        )
    ).all()
    segment_rows = [
        charge_segment(r)
        for r in await conn.execute(
            select(rate_plan_charges)
            .where(
                rate_plan_charges.c.tenant_id == tenant.id,
                rate_plan_charges.c.subscription_id == sub["id"],
            )
            .order_by(rate_plan_charges.c.charge_number, rate_plan_charges.c.segment)
        )
    ]
    return _subscription_answer(sub, owners, plan_rows, segment_rows)


def _subscription_answer(
    sub: SubscriptionRow,
    owners: Mapping[str, Any],
    plan_rows: Sequence[Row[Any]],
    segment_rows: Sequence[ChargeSegment],
) -> SubscriptionJson:
    """The latest version's answer from its rows: the subscription, its two owners (by id),
    rate plans and charge segments."""
    cmrr = sum(
        (
            s["mrr"]
            for s in segment_rows
            if s["is_last_segment"]
            and s["effective_end_date"] is None
            and s["charge_type"] == ChargeType.RECURRING.value
        ),
        ZERO,
    )
    owner, invoice_owner = owners[sub["account_id"]], owners[sub["invoice_owner_account_id"]]
    return {
        "success": True,
        "id": sub["version_id"],
        "subscriptionNumber": sub["subscription_number"],
        "version": sub["version"],
        "isLatestVersion": True,
        "status": sub["status"],
        "accountId": owner.id,
        "accountNumber": owner.account_number,
        "accountName": owner.name,
        "invoiceOwnerAccountId": invoice_owner.id,
        "invoiceOwnerAccountNumber": invoice_owner.account_number,
        "invoiceOwnerAccountName": invoice_owner.name,
        "termType": sub["term_type"],
        "initialTerm": sub["initial_term"],
        "initialTermPeriodType": sub["initial_term_period_type"],
        "currentTerm": sub["initial_term"],
        "currentTermPeriodType": sub["initial_term_period_type"],
        "renewalTerm": sub["renewal_term"],
        "renewalTermPeriodType": sub["renewal_term_period_type"],
        "renewalSetting": sub["renewal_setting"],
        "autoRenew": sub["auto_renew"],
        "contractEffectiveDate": sub["contract_effective_date"],
        "serviceActivationDate": sub["service_activation_date"],
        "customerAcceptanceDate": sub["customer_acceptance_date"],
        "subscriptionStartDate": sub["contract_effective_date"],
        "subscriptionEndDate": sub["cancelled_date"] or sub["term_end_date"],
        "termStartDate": sub["term_start_date"],
        "termEndDate": sub["term_end_date"],
        "cancelledDate": sub["cancelled_date"],
        "scheduledSuspendDate": sub["suspended_date"],
        "scheduledResumeDate": sub["resume_date"],
        "invoiceSeparately": sub["invoice_separately"],
        "currency": sub["currency"],
        "notes": sub["notes"],
        "contractedMrr": trimmed(cmrr),
        "totalContractedValue": subscription_tcv(sub, segment_rows),
        "createTime": v1_datetime(sub["created_at"]),
        "updateTime": v1_datetime(sub["updated_at"]),
        "ratePlans": [
            {
                "id": plan.id,
                "productId": plan.product_id,
                "productName": plan.product_name,
                "productRatePlanId": plan.product_rate_plan_id,
                "ratePlanName": plan.name,
                "subscriptionRatePlanNumber": plan.rate_plan_number,
                "lastChangeType": plan.last_change_type,
                "ratePlanCharges": [
                    _charge_json(sub, s) for s in segment_rows if s["rate_plan_id"] == plan.id
                ],
            }
            for plan in plan_rows
        ],
    }


async def account_subscriptions(
    conn: AsyncConnection, tenant: Tenant, account_key: str, window: PageRequest
) -> tuple[list[SubscriptionJson], bool]:
    """One page of the subscriptions the account (by id or number) owns or is the invoice owner
    of, by subscription number, and whether another page follows."""
    account_id = await conn.scalar(
        select(accounts.c.id).where(
            accounts.c.tenant_id == tenant.id,
            (accounts.c.id == account_key) | (accounts.c.account_number == account_key),
        )
    )
    if account_id is None:
        raise not_found(Resource.ACCOUNT, "account", account_key)
    ids = list(
        await conn.scalars(
            select(subscriptions.c.version_id)
            .where(
                subscriptions.c.tenant_id == tenant.id,
                (subscriptions.c.account_id == account_id)
                | (subscriptions.c.invoice_owner_account_id == account_id),
            )
            .order_by(subscriptions.c.subscription_number)
            .offset(window.offset)
            .limit(window.limit + 1)
        )
    )
    found = [await subscription_json(conn, tenant, i) for i in ids[: window.limit]]
    return found, len(ids) > window.limit
