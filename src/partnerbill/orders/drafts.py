"""Draft orders: placed with `status: "Draft"`, then updated, activated, cancelled or deleted.

A draft is an `orders` row with status Draft whose `response` keeps the request as given
(`draft`); nothing of it runs, so no subscription, document, metric or change row exists until it
is activated.
- Placing one checks the request as a create does (schema, the tenant's order limit) and that its
  account exists; a draft for a `newAccount` is refused naming the field, as the account would
  have to exist in a draft state partnerbill accounts do not have.
- `PUT /v1/orders/{orderNumber}` replaces a draft's request (the create schema; an
  `orderNumber` in it must be the draft's). It stays a draft: activation is its own call.
- Activate runs the stored request exactly as `create_order` runs a new one — the same rules and
  errors, under the draft's number and id — and answers its CreateOrderResponse. A refusal rolls
  the request back whole, so the draft stays as it was.
- Cancel makes it Cancelled: kept and readable, never run. Delete removes a draft.
- Each change reads the order `FOR UPDATE` first: two activations of one draft run one after the
  other, and the second finds it Completed.
What a completed or cancelled order may not do answers Zuora's rule (`lookup.check_change`).

A draft is listed by `GET /v1/orders` (and `status=draft`); the lists by owner or subscription
show it once activated, as they follow the subscriptions an order changed.
"""

from typing import Any, TypedDict

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import read_for_write
from partnerbill.core.errors import Resource, business_rule, invalid_value
from partnerbill.core.ids import new_id
from partnerbill.core.locking import lock_row
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.orders.lookup import OrderChange, check_change, known_order
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.orders.service import CreateOrderResponse, check_order_limit, create_order
from partnerbill.tables.orders import OrderRow, OrderStatus, orders

ORDER = Resource.ORDER


def _check(request: CreateOrderRequest, limit: int) -> None:
    if request.new_account is not None:
        raise invalid_value(
            ORDER, "newAccount", "a draft order is placed for an existing account only."
        )
    check_order_limit(request, limit)


def _stored(request: CreateOrderRequest) -> dict[str, Any]:
    return request.model_dump(mode="json", by_alias=True, exclude_unset=True)


class CancelledOrder(TypedDict):
    success: bool
    orderNumber: str
    accountNumber: str
    status: str  # an OrderStatus


def _draft_answer(order_number: str, account_number: str) -> CreateOrderResponse:
    return {
        "success": True,
        "orderNumber": order_number,
        "accountNumber": account_number,
        "status": OrderStatus.DRAFT,
        "subscriptionNumbers": [],
        "subscriptions": [],
        "invoiceNumbers": [],
    }


async def place_order(
    conn: AsyncConnection,
    tenant: Tenant,
    request: CreateOrderRequest,
    *,
    limit: int,
    return_ids: bool,
) -> CreateOrderResponse:
    """`POST /v1/orders` (and its async job): a draft is stored, any other order runs."""
    match request.status:
        case OrderStatus.DRAFT:
            return await _place_draft(conn, tenant, request, limit)
        case _:
            return await create_order(conn, tenant, request, limit=limit, return_ids=return_ids)


async def _place_draft(
    conn: AsyncConnection, tenant: Tenant, request: CreateOrderRequest, limit: int
) -> CreateOrderResponse:
    _check(request, limit)
    assert request.existing_account_number is not None  # no newAccount, so the number
    account = await read_for_write(conn, tenant, request.existing_account_number)
    order_number = request.order_number
    if order_number is None:
        (sequence,) = await next_numbers(conn, tenant, "order_number", 1)
        order_number = document_number("O-", sequence)
    answer = _draft_answer(order_number, account.account_number)
    exists = await conn.scalar(
        select(orders.c.id).where(
            orders.c.tenant_id == tenant.id, orders.c.order_number == order_number
        )
    )
    if exists is not None:
        raise business_rule(ORDER, f"An order numbered '{order_number}' already exists.")
    await conn.execute(
        orders.insert().values(
            tenant_id=tenant.id,
            id=new_id(),
            order_number=order_number,
            account_id=account.id,
            order_date=request.order_date,
            status=OrderStatus.DRAFT,
            category=request.category,
            description=request.description,
            response={**answer, "draft": _stored(request)},
        )
    )
    return answer


async def _locked(
    conn: AsyncConnection, tenant: Tenant, order_number: str, change: OrderChange
) -> OrderRow:
    """The order `FOR UPDATE`, refused unless its status allows `change`."""
    await known_order(conn, tenant, order_number)
    row = (
        await lock_row(
            conn,
            tenant,
            orders,
            (orders.c.order_number == order_number) | (orders.c.id == order_number),
            ORDER,
        )
    ).one()
    check_change(row.status, order_number, change)
    return row


async def update_draft(
    conn: AsyncConnection,
    tenant: Tenant,
    order_number: str,
    request: CreateOrderRequest,
    limit: int,
) -> CreateOrderResponse:
    draft = await _locked(conn, tenant, order_number, "update")
    if request.order_number is not None and request.order_number != draft.order_number:
        raise invalid_value(ORDER, "orderNumber", f"must be the draft's, '{draft.order_number}'.")
    _check(request, limit)
    assert request.existing_account_number is not None
    account = await read_for_write(conn, tenant, request.existing_account_number)
    answer = _draft_answer(draft.order_number, account.account_number)
    stored = _stored(request) | {"orderNumber": draft.order_number}
    await conn.execute(
        update(orders)
        .where(orders.c.tenant_id == tenant.id, orders.c.id == draft.id)
        .values(
            account_id=account.id,
            order_date=request.order_date,
            category=request.category,
            description=request.description,
            response={**answer, "draft": stored},
        )
    )
    return answer


async def activate_draft(
    conn: AsyncConnection, tenant: Tenant, order_number: str, limit: int
) -> CreateOrderResponse:
    draft = await _locked(conn, tenant, order_number, "activate")
    request = CreateOrderRequest.model_validate(
        {**draft.response["draft"], "orderNumber": draft.order_number, "status": None}
    )
    # The completed order takes the draft's place (its number and id), in this transaction.
    await conn.execute(
        delete(orders).where(orders.c.tenant_id == tenant.id, orders.c.id == draft.id)
    )
    return await create_order(
        conn, tenant, request, limit=limit, return_ids=False, order_id=draft.id
    )


async def cancel_draft(conn: AsyncConnection, tenant: Tenant, order_number: str) -> CancelledOrder:
    draft = await _locked(conn, tenant, order_number, "cancel")
    await conn.execute(
        update(orders)
        .where(orders.c.tenant_id == tenant.id, orders.c.id == draft.id)
        .values(
            status=OrderStatus.CANCELLED,
            response={**draft.response, "status": OrderStatus.CANCELLED},
        )
    )
    return {
        "success": True,
        "orderNumber": draft.order_number,
        "accountNumber": draft.response["accountNumber"],
        "status": OrderStatus.CANCELLED,
    }


async def delete_draft(conn: AsyncConnection, tenant: Tenant, order_number: str) -> dict[str, Any]:
    draft = await _locked(conn, tenant, order_number, "delete")
    await conn.execute(
        delete(orders).where(orders.c.tenant_id == tenant.id, orders.c.id == draft.id)
    )
    return {"success": True}
