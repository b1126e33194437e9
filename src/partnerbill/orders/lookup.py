"""Reading orders in lists (by invoice owner, subscription owner, subscription, or all of the
tenant's) and the rule for changing a placed order.

Locks: none; every read is one tenant-scoped query per page plus one `order_json` per order on
it (at most `MAX_PAGE_SIZE`).

Rules:
- An order is listed under an account when one of its actions changed a subscription that
  account now owns (subscription owner) or now bills (invoice owner): a transferred
  subscription's orders follow it to its new owner, as its invoices do.
- `status` filters as the SDK sends it (lower case: draft, pending, completed, cancelled,
  scheduled, executing, failed, all); `dateFilterOption` is orderDate (default) or updatedDate,
  bounded by `startDate`/`endDate` inclusive. An order's updatedDate is its creation date:
  a placed order never changes.
- An order completes as it is placed unless it is placed as a draft (`orders.drafts`); Pending
  and Scheduled orders do not exist here. Updating, activating, cancelling or deleting an order
  is Zuora's business rule for draft, pending (and, to delete, scheduled) orders only: any other
  status answers category 30 naming it (`check_change`); an unknown order answers category 40.
  A pending-orders list is always empty.
- A draft is listed by the tenant-wide list only: the owner and subscription lists follow the
  actions an order ran, and a draft has run none.
"""

from datetime import date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, business_rule, not_found
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.orders.service import OrderJson, order_json
from partnerbill.tables.accounts import accounts
from partnerbill.tables.orders import OrderStatus, order_actions, orders
from partnerbill.tables.subscriptions import subscriptions

ORDER = Resource.ORDER

OrderStatusFilter = Literal[
    "draft", "pending", "completed", "cancelled", "scheduled", "executing", "failed", "all"
]
DateFilterOption = Literal["orderDate", "updatedDate"]
OwnerRole = Literal["invoiceOwner", "subscriptionOwner"]
# The filters of the tenant-wide list and of a pending-orders list (always empty).
EVERY_ORDER: ColumnElement[bool] = true()
NO_ORDER: ColumnElement[bool] = false()

# What each change asks of the order's status, in Zuora's words.
_OPEN = (OrderStatus.DRAFT, OrderStatus.PENDING)
_CHANGES = {
    "update": ("updated", _OPEN),
    "activate": ("activated", _OPEN),
    "cancel": ("cancelled", _OPEN),
    "delete": ("deleted", (*_OPEN, OrderStatus.SCHEDULED)),
}
OrderChange = Literal["update", "activate", "cancel", "delete"]


async def _account_id(conn: AsyncConnection, tenant: Tenant, account_number: str) -> str:
    account_id = (
        await conn.execute(
            select(accounts.c.id).where(
                accounts.c.tenant_id == tenant.id,
                (accounts.c.account_number == account_number) | (accounts.c.id == account_number),
            )
        )
    ).scalar_one_or_none()
    if account_id is None:
        raise not_found(ORDER, "account", account_number)
    return str(account_id)


def _orders_of_subscriptions(tenant: Tenant, which: ColumnElement[bool]) -> ColumnElement[bool]:
    """Orders with an action on a subscription matching `which`."""
    return orders.c.id.in_(
        select(order_actions.c.order_id)
        .join(
            subscriptions,
            (subscriptions.c.tenant_id == order_actions.c.tenant_id)
            & (subscriptions.c.id == order_actions.c.subscription_id),
        )
        .where(order_actions.c.tenant_id == tenant.id, which)
    )


async def owner_filter(
    conn: AsyncConnection, tenant: Tenant, role: OwnerRole, account_number: str
) -> ColumnElement[bool]:
    account_id = await _account_id(conn, tenant, account_number)
    owner = (
        subscriptions.c.invoice_owner_account_id
        if role == "invoiceOwner"
        else subscriptions.c.account_id
    )
    return _orders_of_subscriptions(tenant, owner == account_id)


async def known_subscription(conn: AsyncConnection, tenant: Tenant, key: str) -> None:
    """A subscription number (or a version's id) the tenant does not have answers 404, as an
    unknown account does for the owner lists."""
    found = await conn.scalar(
        select(subscriptions.c.id)
        .where(
            subscriptions.c.tenant_id == tenant.id,
            (subscriptions.c.subscription_number == key) | (subscriptions.c.id == key),
        )
        .limit(1)
    )
    if found is None:
        raise not_found(Resource.SUBSCRIPTION, "subscription", key)


def subscription_filter(tenant: Tenant, subscription_number: str) -> ColumnElement[bool]:
    return orders.c.id.in_(
        select(order_actions.c.order_id).where(
            order_actions.c.tenant_id == tenant.id,
            order_actions.c.subscription_number == subscription_number,
        )
    )


def _date_window(
    option: DateFilterOption, start_date: date | None, end_date: date | None
) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = true()
    if option == "orderDate":
        if start_date is not None:
            condition &= orders.c.order_date >= start_date
        if end_date is not None:
            condition &= orders.c.order_date <= end_date
        return condition
    # updatedDate: the creation time (a placed order never changes), compared by calendar day
    # in UTC, the day the v1 answers print.
    if start_date is not None:
        condition &= orders.c.created_at >= func.timezone(
            "UTC", datetime.combine(start_date, time())
        )
    if end_date is not None:
        next_day = datetime.combine(end_date + timedelta(days=1), time())
        condition &= orders.c.created_at < func.timezone("UTC", next_day)
    return condition


async def list_orders(
    conn: AsyncConnection,
    tenant: Tenant,
    which: ColumnElement[bool],
    *,
    status: OrderStatusFilter | None,
    date_filter_option: DateFilterOption,
    start_date: date | None,
    end_date: date | None,
    window: PageRequest,
) -> tuple[list[OrderJson], bool]:
    """One page of orders, oldest first (order date, then number); and whether more follow."""
    condition = which & _date_window(date_filter_option, start_date, end_date)
    if status is not None and status != "all":
        condition &= func.lower(orders.c.status) == status
    numbers = (
        (
            await conn.execute(
                select(orders.c.order_number)
                .where(orders.c.tenant_id == tenant.id, condition)
                .order_by(orders.c.order_date, orders.c.order_number)
                .offset(window.offset)
                .limit(window.limit + 1)
            )
        )
        .scalars()
        .all()
    )
    found = [(await order_json(conn, tenant, n))["order"] for n in numbers[: window.limit]]
    return found, len(numbers) > window.limit


async def known_order(conn: AsyncConnection, tenant: Tenant, order_number: str) -> None:
    """Refused (not found) unless the tenant has the order (by number or id)."""
    found = await conn.scalar(
        select(orders.c.id).where(
            orders.c.tenant_id == tenant.id,
            (orders.c.order_number == order_number) | (orders.c.id == order_number),
        )
    )
    if found is None:
        raise not_found(ORDER, "order", order_number)


def check_change(status: str, order_number: str, change: OrderChange) -> None:
    """Zuora's rule: which statuses an order may be updated, activated, cancelled or deleted in."""
    verb, allowed = _CHANGES[change]
    if status not in allowed:
        raise business_rule(
            ORDER,
            f"Only {', '.join(allowed[:-1])} or {allowed[-1]} orders can be {verb}; order "
            f"'{order_number}' is {status}.",
        )
