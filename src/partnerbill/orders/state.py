"""What one order carries from action to action (`OrderState`): the accounts it locked for
write, the subscriptions it touched and their contractedMrr before it, the catalog rate plans it
read, and the subscriptions it creates (inserted together).

An account is locked for write (`FOR KEY SHARE`, see `core/locking.py`) the first time the order
names it, after inserting what the order created so far, so the database sees the
order's statements in the request's sequence.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import WritableAccount, lock_for_write
from partnerbill.catalog.views import CatalogRatePlan, load_rate_plans
from partnerbill.core.errors import Category, Resource, ZuoraError
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.tenants import Tenant
from partnerbill.orders.schemas import OrderAction
from partnerbill.subscriptions import service as subs
from partnerbill.subscriptions.dates import ActionDates
from partnerbill.subscriptions.schemas import RatePlanSubscription
from partnerbill.tables.subscriptions import SubscriptionRow

ORDER = Resource.ORDER


@dataclass(slots=True)
class OrderState:
    """What an order touched: accounts (by id), subscriptions, and the contractedMrr
    contributions before the order changed them; the catalog rate plans it read; the
    subscriptions it creates, inserted together (`created`: every other statement of the order
    comes after the insert of what was created before it, see `NewSubscriptions`)."""

    accounts_by_key: dict[str, WritableAccount] = field(default_factory=dict)
    touched: dict[str, SubscriptionRow] = field(default_factory=dict)  # subscription id → row
    mrr_before: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # id → (owner, mrr)
    versioned: set[str] = field(default_factory=set)
    plans: dict[str, CatalogRatePlan] = field(default_factory=dict)  # by the request's key
    created: subs.NewSubscriptions = field(default_factory=subs.NewSubscriptions)


async def writable_account(
    conn: AsyncConnection, tenant: Tenant, state: OrderState, key: str
) -> WritableAccount:
    if key not in state.accounts_by_key:
        await state.created.insert(conn, tenant)
        async with bounded_lock_wait(conn, tenant, Resource.ORDER):
            account = await lock_for_write(conn, tenant, key)
        state.accounts_by_key[key] = account
        state.accounts_by_key[account.id] = account
        state.accounts_by_key[account.account_number] = account
    return state.accounts_by_key[key]


def action_dates(action: OrderAction, order_date: date) -> ActionDates:
    contract = action.trigger("ContractEffective") or order_date
    service = action.trigger("ServiceActivation") or contract
    acceptance = action.trigger("CustomerAcceptance") or service
    return ActionDates(contract, service, acceptance)


async def catalog_plans(
    conn: AsyncConnection,
    tenant: Tenant,
    state: OrderState,
    requests: list[RatePlanSubscription],
    paths: list[str],
) -> list[tuple[CatalogRatePlan, RatePlanSubscription]]:
    """The catalog rate plan of each request; `paths[i]` is where request i sits in the body.
    Each plan is read once per order (its subscriptions mostly subscribe to the same few)."""
    missing = [r.plan_key for r in requests if r.plan_key not in state.plans]
    if missing:
        await state.created.insert(conn, tenant)
        state.plans.update(await load_rate_plans(conn, tenant, missing))
    plans = []
    for request, path in zip(requests, paths, strict=True):
        plan = state.plans.get(request.plan_key)
        if plan is None:
            key = "productRatePlanId" if request.product_rate_plan_id else "productRatePlanNumber"
            raise ZuoraError(
                ORDER,
                Category.INVALID_VALUE,
                f"'{path}.{key}': product rate plan '{request.plan_key}' does not exist.",
            )
        plans.append((plan, request))
    return plans
