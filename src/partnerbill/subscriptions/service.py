"""Subscriptions: creation from catalog rate plans, rate plans added, locks, versions, saves.

Every function here works inside the caller's transaction on a subscription the caller has locked
(`lock_subscription`, `FOR UPDATE`: the subscription is a document; its place in the lock order
is in `core/locking.py`). Orders, the legacy subscribe and the
legacy amendment endpoints are all built from these, with the segments of `segments`. A
subscription being created needs no lock: no other transaction sees it before the creating one
commits. Those of one order are inserted together (`NewSubscriptions`: a few statements whatever
their number).

The account's contractedMrr is the sum over the subscriptions it owns that are not cancelled, so
a future-dated cancellation already counts 0 there (`segments.account_cmrr_contribution`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Unpack, cast

from sqlalchemy import Row, func, insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import WritableAccount
from partnerbill.catalog.views import CatalogRatePlan
from partnerbill.core.errors import Resource, business_rule, invalid_value, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.locking import lock_row, lock_rows_in_id_order
from partnerbill.core.recordsets import execute_values, insert_rows, insert_values, rows_json
from partnerbill.core.tenants import MAX_NUMBERS_PER_CALL, Tenant, document_number, next_numbers_of
from partnerbill.settings import get_settings
from partnerbill.subscriptions.charges import charge_values
from partnerbill.subscriptions.dates import ActionDates, checked_end
from partnerbill.subscriptions.schemas import (
    MAX_RATE_PLANS_PER_SUBSCRIPTION,
    ChargeOverride,
    RatePlanSubscription,
)
from partnerbill.subscriptions.views import key_clause, subscription_json
from partnerbill.tables.subscriptions import (
    NewChargeSegment,
    NewRatePlanRow,
    NewSubscriptionRow,
    SubscriptionChanges,
    SubscriptionRow,
    SubscriptionStatus,
    rate_plan_charges,
    rate_plans,
    subscription_row,
    subscription_versions,
    subscriptions,
)

SUBSCRIPTION = Resource.SUBSCRIPTION
# Subscriptions one insert writes at most (Zuora's bound on one order): an asynchronous order of
# thousands is inserted in statements of bounded size.
SUBSCRIPTIONS_PER_INSERT = 50


@dataclass(frozen=True, slots=True)
class NewSubscription:
    number: str | None
    owner: WritableAccount
    invoice_owner: WritableAccount
    term_type: str
    initial_term: int | None
    initial_term_period_type: str | None
    renewal_term: int | None
    renewal_term_period_type: str | None
    renewal_setting: str
    auto_renew: bool
    dates: ActionDates
    term_start: date
    rate_plans: Sequence[tuple[CatalogRatePlan, RatePlanSubscription]]
    invoice_separately: bool
    notes: str | None
    order_id: str | None
    term_field: str = "initialTerm"  # where the request gave the term, to name in an error


def _subscription_row(new: NewSubscription) -> NewSubscriptionRow:
    """The subscriptions row of `new`, checked; numbered at insert when `new` has no number."""
    currency = new.invoice_owner.currency
    if new.owner.currency != currency:
        raise business_rule(
            SUBSCRIPTION,
            f"The subscription owner's currency {new.owner.currency} differs from the invoice "
            f"owner's {currency}.",
        )
    if not new.rate_plans:
        raise business_rule(SUBSCRIPTION, "A subscription needs at least one rate plan.")
    if len(new.rate_plans) > MAX_RATE_PLANS_PER_SUBSCRIPTION:
        raise business_rule(
            SUBSCRIPTION, f"At most {MAX_RATE_PLANS_PER_SUBSCRIPTION} rate plans per subscription."
        )
    end: date | None = None
    if new.term_type == "TERMED":
        if new.initial_term is None:
            raise invalid_value(SUBSCRIPTION, "initialTerm", "is required for a TERMED term.")
        end = checked_end(
            new.term_start,
            new.initial_term,
            new.initial_term_period_type or "",
            new.term_field,
            "the term's end",
        )
    subscription_id = new_id()
    return {
        "id": subscription_id,
        "version_id": subscription_id,
        "subscription_number": new.number,
        "account_id": new.owner.id,
        "invoice_owner_account_id": new.invoice_owner.id,
        "status": SubscriptionStatus.ACTIVE,
        "currency": currency,
        "term_type": new.term_type,
        "initial_term": new.initial_term,
        "initial_term_period_type": new.initial_term_period_type,
        "renewal_term": new.renewal_term,
        "renewal_term_period_type": new.renewal_term_period_type,
        "renewal_setting": new.renewal_setting,
        "auto_renew": new.auto_renew,
        "contract_effective_date": new.dates.contract_effective,
        "service_activation_date": new.dates.service_activation,
        "customer_acceptance_date": new.dates.customer_acceptance,
        "term_start_date": new.term_start,
        "term_end_date": end,
        "invoice_separately": new.invoice_separately,
        "notes": new.notes,
        "order_id": new.order_id,
    }


@dataclass(slots=True)
class _PlannedRows:
    """Rate plan rows and their charges' first segments, numbered at insert."""

    plans: list[NewRatePlanRow] = field(default_factory=list)
    charges: list[NewChargeSegment] = field(default_factory=list)

    def add(
        self,
        subscription_id: str,
        plans: Sequence[tuple[CatalogRatePlan, RatePlanSubscription]],
        *,
        currency: str,
        dates: ActionDates,
        invoice_owner_bill_cycle_day: int,
        subscription_start: date,
        change_type: str,
    ) -> None:
        """The rows of `plans` subscribed to, checked (all or none of them is added)."""
        plan_rows: list[NewRatePlanRow] = []
        charge_rows: list[NewChargeSegment] = []
        for plan, request in plans:
            rate_plan_id = new_id()
            plan_rows.append(
                {
                    "id": rate_plan_id,
                    "subscription_id": subscription_id,
                    "product_rate_plan_id": plan.id,
                    "product_id": plan.product_id,
                    "product_name": plan.product_name,
                    "name": plan.name,
                    "last_change_type": change_type,
                    "unique_token": request.unique_token,
                }
            )
            overrides = _overrides_by_charge(plan, request)
            for charge in plan.charges:
                charge_rows.append(
                    charge_values(
                        subscription_id=subscription_id,
                        rate_plan_id=rate_plan_id,
                        charge=charge,
                        override=overrides.get(charge.id),
                        currency=currency,
                        dates=dates,
                        invoice_owner_bill_cycle_day=invoice_owner_bill_cycle_day,
                        subscription_start=subscription_start,
                    )
                )
        self.plans += plan_rows
        self.charges += charge_rows

    def number(self, plan_numbers: Sequence[int], charge_numbers: Sequence[int]) -> None:
        for plan, number in zip(self.plans, plan_numbers, strict=True):
            plan["rate_plan_number"] = document_number("SRP-", number)
        for charge, number in zip(self.charges, charge_numbers, strict=True):
            charge["charge_number"] = document_number("C-", number)


_SUBSCRIPTION_COLUMNS = (
    "id",
    "version_id",
    "subscription_number",
    "account_id",
    "invoice_owner_account_id",
    "status",
    "currency",
    "term_type",
    "initial_term",
    "initial_term_period_type",
    "renewal_term",
    "renewal_term_period_type",
    "renewal_setting",
    "auto_renew",
    "contract_effective_date",
    "service_activation_date",
    "customer_acceptance_date",
    "term_start_date",
    "term_end_date",
    "invoice_separately",
    "notes",
    "order_id",
)
_PLAN_COLUMNS = (
    "id",
    "subscription_id",
    "rate_plan_number",
    "product_rate_plan_id",
    "product_id",
    "product_name",
    "name",
    "last_change_type",
    "unique_token",
)
_CHARGE_COLUMNS = tuple(
    c.name for c in rate_plan_charges.c if c.name not in ("tenant_id", "created_at")
)
# Rate plans and their charges in one statement (one round trip, one prepared text).
_INSERT_PLANS = (
    f"new_plans AS ({insert_rows(rate_plans, 'plans', _PLAN_COLUMNS)}), "
    f"new_charges AS ({insert_rows(rate_plan_charges, 'charges', _CHARGE_COLUMNS)})"
)
_ADD_RATE_PLANS = text(f"WITH {_INSERT_PLANS} SELECT 1")
# Subscriptions with their rate plans and charges. A number already taken inserts nothing for
# that subscription (its row is missing from the answer): the caller refuses the write.
_INSERT_SUBSCRIPTIONS = text(
    "WITH new_subscriptions AS ("
    + insert_rows(subscriptions, "subscriptions", _SUBSCRIPTION_COLUMNS)
    + " ON CONFLICT (tenant_id, subscription_number) DO NOTHING RETURNING *), "
    + f"{_INSERT_PLANS} SELECT * FROM new_subscriptions"
)


def _plan_parameters(tenant: Tenant, rows: _PlannedRows) -> dict[str, str]:
    return {
        "tenant_id": tenant.id,
        "plans": rows_json(rows.plans, _PLAN_COLUMNS),
        "charges": rows_json(rows.charges, _CHARGE_COLUMNS),
    }


async def _insert_plans_as_values(
    conn: AsyncConnection, tenant: Tenant, planned: _PlannedRows
) -> None:
    """`_INSERT_PLANS` in the form a database distributed by tenant routes to one shard."""
    await execute_values(conn, rate_plans, tenant.id, planned.plans)
    await execute_values(conn, rate_plan_charges, tenant.id, planned.charges)


class NewSubscriptions:
    """Subscriptions being created, inserted together: numbered in one round trip, then inserted
    with their rate plans and charges in one statement, whatever their number.

    `add` checks a subscription and keeps its rows; `insert` writes what was added. A caller that
    adds several keeps the effects in the order one-by-one creation had: it inserts before any
    other statement of its own, and before raising an error found after an `add`, so that a
    refusal an insert gives (a number already taken) comes first, as it would have.
    """

    def __init__(self) -> None:
        self._rows: list[NewSubscriptionRow] = []  # as inserted
        self._subscriptions: list[SubscriptionRow] = []  # as `add` returned them
        self._planned = _PlannedRows()

    def has_room_for(self, new: NewSubscription) -> bool:
        """Whether `new` may join what was added in one insert (always, when nothing was)."""
        charges = sum(len(plan.charges) for plan, _ in new.rate_plans)
        return not self._rows or (
            len(self._rows) < SUBSCRIPTIONS_PER_INSERT
            and len(self._planned.plans) + len(new.rate_plans) <= MAX_NUMBERS_PER_CALL
            and len(self._planned.charges) + charges <= MAX_NUMBERS_PER_CALL
        )

    def add(self, new: NewSubscription) -> SubscriptionRow:
        """Check `new` and keep its rows; returns its subscription row, complete once inserted
        (number, version, timestamps). A refusal of its rate plans comes after its row was kept:
        one-by-one creation inserted the subscription before it checked the rate plans."""
        row = _subscription_row(new)
        subscription = cast(SubscriptionRow, dict(row))
        self._rows.append(row)
        self._subscriptions.append(subscription)
        self._planned.add(
            row["id"],
            new.rate_plans,
            currency=row["currency"],
            dates=new.dates,
            invoice_owner_bill_cycle_day=new.invoice_owner.bill_cycle_day,
            subscription_start=new.dates.contract_effective,
            change_type="Add",
        )
        return subscription

    def set_notes(self, subscription_id: str, notes: str) -> bool:
        """Give a kept subscription its notes; False when it is not kept here."""
        for row, subscription in zip(self._rows, self._subscriptions, strict=True):
            if row["id"] == subscription_id:
                row["notes"] = subscription["notes"] = notes
                return True
        return False

    async def insert(self, conn: AsyncConnection, tenant: Tenant) -> None:
        """Insert what was added (nothing kept afterwards)."""
        rows, subscriptions_, planned = self._rows, self._subscriptions, self._planned
        self._rows, self._subscriptions, self._planned = [], [], _PlannedRows()
        if not rows:
            return
        unnumbered = [row for row in rows if row["subscription_number"] is None]
        numbers = await next_numbers_of(
            conn,
            tenant,
            {
                "subscription_number": len(unnumbered),
                "rate_plan_number": len(planned.plans),
                "charge_number": len(planned.charges),
            },
        )
        for row, number in zip(unnumbered, numbers["subscription_number"], strict=True):
            row["subscription_number"] = document_number("A-S", number)
        planned.number(numbers["rate_plan_number"], numbers["charge_number"])
        written: list[Row[Any]] = []
        if get_settings().distributed:
            for statement in insert_values(subscriptions, tenant.id, rows):
                written += await conn.execute(
                    statement.on_conflict_do_nothing(
                        index_elements=["tenant_id", "subscription_number"]
                    ).returning(*subscriptions.c)
                )
            await _insert_plans_as_values(conn, tenant, planned)
        else:
            written += await conn.execute(
                _INSERT_SUBSCRIPTIONS,
                {
                    **_plan_parameters(tenant, planned),
                    "subscriptions": rows_json(rows, _SUBSCRIPTION_COLUMNS),
                },
            )
        inserted = {found.id: subscription_row(found) for found in written}
        for row, subscription in zip(rows, subscriptions_, strict=True):
            if row["id"] not in inserted:
                raise business_rule(
                    SUBSCRIPTION,
                    f"A subscription numbered '{row['subscription_number']}' already exists.",
                )
            subscription.update(inserted[row["id"]])


async def add_rate_plans(
    conn: AsyncConnection,
    tenant: Tenant,
    subscription_id: str,
    plans: Sequence[tuple[CatalogRatePlan, RatePlanSubscription]],
    *,
    currency: str,
    dates: ActionDates,
    invoice_owner_bill_cycle_day: int,
    subscription_start: date,
    change_type: str,
) -> None:
    planned = _PlannedRows()
    planned.add(
        subscription_id,
        plans,
        currency=currency,
        dates=dates,
        invoice_owner_bill_cycle_day=invoice_owner_bill_cycle_day,
        subscription_start=subscription_start,
        change_type=change_type,
    )
    numbers = await next_numbers_of(
        conn,
        tenant,
        {"rate_plan_number": len(planned.plans), "charge_number": len(planned.charges)},
    )
    planned.number(numbers["rate_plan_number"], numbers["charge_number"])
    if get_settings().distributed:
        await _insert_plans_as_values(conn, tenant, planned)
    else:
        await conn.execute(_ADD_RATE_PLANS, _plan_parameters(tenant, planned))


def _overrides_by_charge(
    plan: CatalogRatePlan, request: RatePlanSubscription
) -> dict[str, ChargeOverride]:
    by_id = {charge.id: charge for charge in plan.charges}
    overrides: dict[str, ChargeOverride] = {}
    for i, override in enumerate(request.charge_overrides):
        charge_id = override.product_rate_plan_charge_id
        if charge_id is None or charge_id not in by_id:
            raise invalid_value(
                SUBSCRIPTION,
                f"chargeOverrides[{i}].productRatePlanChargeId",
                f"'{charge_id}' is not a charge of rate plan '{plan.name}'.",
            )
        overrides[charge_id] = override
    return overrides


async def lock_subscription(conn: AsyncConnection, tenant: Tenant, key: str) -> SubscriptionRow:
    """The subscription (by its current version's id or its number) `FOR UPDATE`: it is about to
    change."""
    row = (await lock_row(conn, tenant, subscriptions, key_clause(key), SUBSCRIPTION)).one_or_none()
    if row is None:
        raise not_found(SUBSCRIPTION, "subscription", key)
    return subscription_row(row)


async def lock_subscriptions(
    conn: AsyncConnection, tenant: Tenant, keys: Sequence[str]
) -> dict[str, SubscriptionRow]:
    """The subscriptions named by `keys` (numbers or current version ids), locked `FOR UPDATE`
    in one statement in id order (as a bill run locks them, `core/locking.py`); keyed by the
    given key."""
    if not keys:
        return {}
    rows = await lock_rows_in_id_order(
        conn,
        tenant,
        subscriptions,
        subscriptions.c.version_id.in_(keys) | subscriptions.c.subscription_number.in_(keys),
        SUBSCRIPTION,
    )
    found: dict[str, SubscriptionRow] = {}
    for row in rows:
        sub = subscription_row(row)
        found[sub["version_id"]] = found[sub["subscription_number"]] = sub
    for key in keys:
        if key not in found:
            raise not_found(SUBSCRIPTION, "subscription", key)
    return {key: found[key] for key in keys}


async def new_version(conn: AsyncConnection, tenant: Tenant, subscription: SubscriptionRow) -> None:
    """Keep the current version as a snapshot before an amendment changes it."""
    snapshot = await subscription_json(conn, tenant, subscription["version_id"])
    await conn.execute(
        insert(subscription_versions).values(
            tenant_id=tenant.id,
            id=subscription["version_id"],
            subscription_id=subscription["id"],
            version=subscription["version"],
            snapshot={**snapshot, "isLatestVersion": False},
        )
    )
    await save(conn, tenant, subscription, version=subscription["version"] + 1, version_id=new_id())


async def save(
    conn: AsyncConnection,
    tenant: Tenant,
    subscription: SubscriptionRow,
    **values: Unpack[SubscriptionChanges],
) -> None:
    # mypy checks an update against every column of the row; the changes are some of them.
    subscription.update(values)  # type: ignore[typeddict-item]
    await conn.execute(
        update(subscriptions)
        .where(subscriptions.c.tenant_id == tenant.id, subscriptions.c.id == subscription["id"])
        .values(**values, updated_at=func.now())
    )
