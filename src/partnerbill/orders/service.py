"""Orders: every order action on every subscription of one order, all or nothing, in the caller's
transaction; then, when asked, billing of the order's subscriptions.

Metrics: each subscription's contribution to its owner's contractedMrr is read before and after
the order; the differences go to `touch` for the owners (both owners of a transferred
subscription). Billing reports to the invoice owners through the billing engine.

The subscriptions an order creates are checked one by one, in the order's sequence, and inserted
together (up to 50 a statement) before the order's next statement of any other kind: the
database sees the order's writes in the sequence the request gives, and a refusal comes as it
would one subscription at a time (a number already taken before a later subscription's error).
"""

from datetime import date
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts import service as accounts
from partnerbill.accounts.schemas import CreateAccountRequest
from partnerbill.accounts.service import WritableAccount
from partnerbill.billing.engine import BilledInvoice, bill, subscription_batches
from partnerbill.catalog.enums import ChargeType
from partnerbill.core.errors import (
    Category,
    Resource,
    ZuoraError,
    business_rule,
    invalid_value,
    not_found,
)
from partnerbill.core.ids import new_id
from partnerbill.core.json import v1_datetime
from partnerbill.core.money import ZERO
from partnerbill.core.recordsets import execute_values, insert_rows, rows_json
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.orders.actions import amend
from partnerbill.orders.schemas import CreateOrderRequest, OrderAction
from partnerbill.orders.state import OrderState, action_dates, catalog_plans, writable_account
from partnerbill.settings import get_settings
from partnerbill.subscriptions import service as subs
from partnerbill.subscriptions.segments import account_cmrr_contribution
from partnerbill.tables.orders import OrderRow, OrderStatus, order_actions, orders
from partnerbill.tables.subscriptions import SubscriptionRow

ORDER = Resource.ORDER
_ORDER_COLUMNS = (
    "id",
    "order_number",
    "account_id",
    "order_date",
    "status",
    "category",
    "description",
    "response",
)
_ACTION_COLUMNS = (
    "id",
    "order_id",
    "sequence",
    "type",
    "subscription_id",
    "subscription_number",
    "detail",
)


class CreateOrderSubscription(TypedDict):
    """A subscription of a CreateOrderResponse."""

    subscriptionNumber: str
    subscriptionId: str
    status: str  # a SubscriptionStatus
    subscriptionOwnerId: str
    subscriptionOwnerNumber: str


class CreateOrderResponse(TypedDict):
    """Zuora's CreateOrderResponse for an order placed, kept as the order's `response`; the ids only
    when asked for (`returnIds`)."""

    success: bool
    orderNumber: str
    accountNumber: str
    status: str  # an OrderStatus
    subscriptionNumbers: list[str]
    subscriptions: list[CreateOrderSubscription]
    invoiceNumbers: list[str]
    orderId: NotRequired[str]
    accountId: NotRequired[str]
    subscriptionIds: NotRequired[list[str]]
    invoiceIds: NotRequired[list[str]]


class OrderJson(TypedDict):
    """An order as GET /v1/orders/{orderNumber} and the order lists show it; its subscriptions
    come from what was kept of the order (free-form)."""

    orderNumber: str
    orderDate: date
    status: str  # an OrderStatus
    category: str
    description: str | None
    existingAccountNumber: str
    subscriptions: list[dict[str, Any]]
    invoiceNumbers: list[str]
    createdDate: str | None
    updatedDate: str | None


class GetOrderResponse(TypedDict):
    success: bool
    order: OrderJson


# The order and its actions in one statement (a number already taken fails it whole).
_INSERT_ORDER = text(
    f"WITH new_order AS ({insert_rows(orders, 'orders', _ORDER_COLUMNS)}) "
    + insert_rows(order_actions, "actions", _ACTION_COLUMNS)
)


async def _track(
    conn: AsyncConnection, tenant: Tenant, state: OrderState, keys: list[str]
) -> dict[str, SubscriptionRow]:
    """Lock the existing subscriptions the order names, all at once in id order, and remember
    their contractedMrr contributions before the order; keyed by the request's keys."""
    locked = await subs.lock_subscriptions(conn, tenant, keys)
    for sub in locked.values():
        state.touched[sub["id"]] = sub
    ids = list(state.touched)
    before = await account_cmrr_contribution(conn, tenant, ids)
    for subscription_id in ids:
        sub = state.touched[subscription_id]
        state.mrr_before[subscription_id] = (sub["account_id"], before[subscription_id])
        await writable_account(conn, tenant, state, sub["account_id"])
        await writable_account(conn, tenant, state, sub["invoice_owner_account_id"])
    return locked


async def _create_subscription(
    conn: AsyncConnection,
    tenant: Tenant,
    state: OrderState,
    order_account: WritableAccount,
    action: OrderAction,
    order_date: date,
    order_id: str,
    where: str,
) -> SubscriptionRow:
    create = action.create_subscription
    assert create is not None
    owner = await writable_account(
        conn, tenant, state, create.subscription_owner_account_number or order_account.id
    )
    invoice_owner = await writable_account(
        conn, tenant, state, create.invoice_owner_account_number or order_account.id
    )
    if create.currency is not None and create.currency != invoice_owner.currency:
        raise business_rule(ORDER, f"'{where}.currency' must be the invoice owner's currency.")
    dates = action_dates(action, order_date)
    terms = create.terms
    term_type = terms.initial_term.term_type if terms else "EVERGREEN"
    renewal = terms.renewal_terms[0] if terms and terms.renewal_terms else None
    field = "subscribeToProducts" if create.subscribe_to_products else "subscribeToRatePlans"
    paths = [f"{where}.{field}[{i}]" for i in range(len(create.rate_plans))]
    plans = await catalog_plans(conn, tenant, state, create.rate_plans, paths)
    new = subs.NewSubscription(
        number=create.subscription_number,
        owner=owner,
        invoice_owner=invoice_owner,
        term_type=term_type,
        initial_term=terms.initial_term.period if terms else None,
        initial_term_period_type=terms.initial_term.period_type if terms else None,
        renewal_term=renewal.period if renewal else None,
        renewal_term_period_type=renewal.period_type if renewal else None,
        renewal_setting=terms.renewal_setting if terms else "RENEW_WITH_SPECIFIC_TERM",
        auto_renew=terms.auto_renew if terms else False,
        dates=dates,
        term_start=(terms.initial_term.start_date if terms else None) or dates.contract_effective,
        rate_plans=plans,
        invoice_separately=create.invoice_separately,
        notes=create.notes,
        order_id=order_id,
        term_field=f"{where}.createSubscription.terms.initialTerm.period",
    )
    if not state.created.has_room_for(new):
        await state.created.insert(conn, tenant)
    # Complete (number, version, timestamps) once inserted: by the next statement of the order.
    sub = state.created.add(new)
    state.touched[sub["id"]] = sub
    state.mrr_before[sub["id"]] = (owner.id, ZERO)
    state.versioned.add(sub["id"])
    return sub


def check_order_limit(request: CreateOrderRequest, limit: int) -> None:
    """The tenant's bound on one order's subscriptions and actions."""
    if len(request.subscriptions) > limit or request.action_count > limit:
        raise ZuoraError(
            ORDER,
            Category.LIMIT_EXCEEDED,
            f"'subscriptions': at most {limit} subscriptions and {limit} order actions per order "
            f"(tenant setting); got {len(request.subscriptions)} and {request.action_count}.",
        )


async def create_order(
    conn: AsyncConnection,
    tenant: Tenant,
    request: CreateOrderRequest,
    *,
    limit: int,
    return_ids: bool,
    order_id: str | None = None,
) -> CreateOrderResponse:
    """Process a whole order in the caller's transaction; returns the CreateOrderResponse.
    `order_id`: the id to give it (an activated draft keeps its own)."""
    check_order_limit(request, limit)
    state = OrderState()
    if request.new_account is not None:
        created = await accounts.create_account(
            conn, tenant, CreateAccountRequest.model_validate(request.new_account.model_dump())
        )
        order_account = await writable_account(conn, tenant, state, created["accountId"])
    else:
        assert request.existing_account_number is not None
        order_account = await writable_account(conn, tenant, state, request.existing_account_number)
    order_id = order_id or new_id()
    order_number = request.order_number
    if order_number is None:
        (sequence,) = await next_numbers(conn, tenant, "order_number", 1)
        order_number = document_number("O-", sequence)
    existing = await _track(
        conn,
        tenant,
        state,
        [e.subscription_number for e in request.subscriptions if e.subscription_number],
    )
    try:
        in_order, actions = await _run_actions(
            conn, tenant, state, request, order_account, order_id, existing
        )
    except ZuoraError:
        # One-by-one creation had inserted the subscriptions created so far: a refusal of
        # their insert (a number already taken) comes first.
        await state.created.insert(conn, tenant)
        raise
    # One `touch` for the owners' and the billing's changes: metrics rows locked once, in one
    # order (two touches could take two accounts' rows in opposite orders).
    deltas = await _owner_deltas(conn, tenant, state)
    invoices = await _run_billing(conn, tenant, request, in_order, deltas)
    await touch(conn, tenant, deltas)
    response = _response(
        state, order_account, order_id, order_number, in_order, invoices, return_ids
    )
    order = {
        "id": order_id,
        "order_number": order_number,
        "account_id": order_account.id,
        "order_date": request.order_date,
        "status": OrderStatus.COMPLETED,
        "category": request.category,
        "description": request.description,
        "response": response,
    }
    action_rows = [
        {
            "id": new_id(),
            "order_id": order_id,
            "sequence": sequence,
            "type": action.type,
            "subscription_id": sub["id"],
            "subscription_number": sub["subscription_number"],
            "detail": action.model_dump(by_alias=True, exclude_unset=True),
        }
        for sequence, (action, sub) in enumerate(actions, start=1)
    ]
    try:
        if get_settings().distributed:
            await execute_values(conn, orders, tenant.id, [order])
            await execute_values(conn, order_actions, tenant.id, action_rows)
        else:
            await conn.execute(
                _INSERT_ORDER,
                {
                    "tenant_id": tenant.id,
                    "orders": rows_json([order], _ORDER_COLUMNS),
                    "actions": rows_json(action_rows, _ACTION_COLUMNS),
                },
            )
    except IntegrityError as exc:
        raise business_rule(ORDER, f"An order numbered '{order_number}' already exists.") from exc
    return response


async def _run_actions(
    conn: AsyncConnection,
    tenant: Tenant,
    state: OrderState,
    request: CreateOrderRequest,
    order_account: WritableAccount,
    order_id: str,
    existing: dict[str, SubscriptionRow],
) -> tuple[list[str], list[tuple[OrderAction, SubscriptionRow]]]:
    """Every action of the order, in its sequence: (the subscriptions in the order's sequence,
    each action with the subscription it changed). Ends with everything created inserted."""
    in_order: dict[str, None] = {}  # ids, in the order's sequence
    actions: list[tuple[OrderAction, SubscriptionRow]] = []
    for s_index, entry in enumerate(request.subscriptions):
        sub: SubscriptionRow | None = None
        if entry.subscription_number is not None:
            sub = existing[entry.subscription_number]
        for a_index, action in enumerate(entry.order_actions):
            where = f"subscriptions[{s_index}].orderActions[{a_index}]"
            if action.type == "CreateSubscription":
                if sub is not None:
                    raise invalid_value(
                        ORDER, f"{where}.type", "a subscription is created only once."
                    )
                sub = await _create_subscription(
                    conn, tenant, state, order_account, action, request.order_date, order_id, where
                )
            elif sub is None:
                raise invalid_value(
                    ORDER,
                    f"subscriptions[{s_index}].subscriptionNumber",
                    f"is required for a {action.type} action.",
                )
            else:
                await state.created.insert(conn, tenant)
                await amend(conn, tenant, state, sub, action, request.order_date, where)
            actions.append((action, sub))
        assert sub is not None
        if entry.notes is not None and not state.created.set_notes(sub["id"], entry.notes):
            await state.created.insert(conn, tenant)
            await subs.save(conn, tenant, sub, notes=entry.notes)
        in_order[sub["id"]] = None
    await state.created.insert(conn, tenant)
    return list(in_order), actions


async def _owner_deltas(
    conn: AsyncConnection, tenant: Tenant, state: OrderState
) -> list[MetricsDelta]:
    """contractedMrr changes of the subscription owners (old and new ones of a transfer)."""
    after = await account_cmrr_contribution(conn, tenant, list(state.touched))
    changes: dict[str, Decimal] = {}  # account id → its change
    for subscription_id, sub in state.touched.items():
        old_owner, before = state.mrr_before[subscription_id]
        changes[old_owner] = changes.get(old_owner, ZERO) - before
        changes[sub["account_id"]] = changes.get(sub["account_id"], ZERO) + after[subscription_id]
        # The subscription's (new) invoice owner is touched too, so a partner one is refreshed
        # next time. No figure of an invoice owner moves until the subscription is billed, so
        # a synchronous one takes no lock, and the previous invoice owner has nothing to report.
        changes.setdefault(sub["invoice_owner_account_id"], ZERO)
    return [
        MetricsDelta(
            account_id=account_id,
            partner_account=state.accounts_by_key[account_id].partner_account,
            contracted_mrr=change,
        )
        for account_id, change in changes.items()
    ]


async def _run_billing(
    conn: AsyncConnection,
    tenant: Tenant,
    request: CreateOrderRequest,
    subscription_ids: list[str],
    deltas: list[MetricsDelta],
) -> list[BilledInvoice]:
    options = request.processing_options
    if options is None or not options.run_billing:
        return []
    billing = options.billing_options
    target = (billing.target_date if billing else None) or request.order_date
    return await bill(
        conn,
        tenant,
        subscription_batches(sorted(subscription_ids)),
        target_date=target,
        invoice_date=(billing.document_date if billing else None) or target,
        post=not (billing.generate_draft_invoice if billing else False),
        excluded=[ChargeType(t) for t in (billing.charge_type_to_exclude if billing else [])],
        deltas=deltas,
    )


async def order_json(conn: AsyncConnection, tenant: Tenant, key: str) -> GetOrderResponse:
    """GET /v1/orders/{orderNumber} (or its id): the order, its subscriptions in the order's
    sequence, each with the order actions that changed it as they were given."""
    order: OrderRow | None = (
        await conn.execute(
            select(orders).where(
                orders.c.tenant_id == tenant.id,
                (orders.c.order_number == key) | (orders.c.id == key),
            )
        )
    ).one_or_none()
    if order is None:
        raise not_found(ORDER, "order", key)
    created = order.response
    if "draft" in created:
        return _draft_json(order)
    entries: dict[str, dict[str, Any]] = {}
    for action in await conn.execute(
        select(order_actions)
        .where(order_actions.c.tenant_id == tenant.id, order_actions.c.order_id == order.id)
        .order_by(order_actions.c.sequence)
    ):
        entry = entries.setdefault(
            action.subscription_number,
            {
                "sequence": len(entries) + 1,
                "subscriptionNumber": action.subscription_number,
                "orderActions": [],
            },
        )
        entry["orderActions"].append(
            {
                **(action.detail or {}),
                "id": action.id,
                "sequence": action.sequence,
                "type": action.type,
            }
        )
    subscriptions = []
    for answered in created["subscriptions"]:
        entry = entries.get(answered["subscriptionNumber"], {"orderActions": []})
        subscriptions.append(
            {
                **answered,
                **entry,
                "subscriptionOwnerAccountNumber": answered["subscriptionOwnerNumber"],
            }
        )
    return _order_answer(order, subscriptions, created["invoiceNumbers"])


def _order_answer(
    order: OrderRow, subscriptions: list[dict[str, Any]], invoice_numbers: list[str]
) -> GetOrderResponse:
    return {
        "success": True,
        "order": {
            "orderNumber": order.order_number,
            "orderDate": order.order_date,
            "status": order.status,
            "category": order.category,
            "description": order.description,
            "existingAccountNumber": order.response["accountNumber"],
            "subscriptions": subscriptions,
            "invoiceNumbers": invoice_numbers,
            "createdDate": v1_datetime(order.created_at),
            "updatedDate": v1_datetime(order.created_at),
        },
    }


def _draft_json(order: OrderRow) -> GetOrderResponse:
    """A draft (or cancelled draft) order: its request as stored, nothing run."""
    subscriptions = [
        {
            "sequence": i + 1,
            **(
                {"subscriptionNumber": e["subscriptionNumber"]} if "subscriptionNumber" in e else {}
            ),
            "orderActions": [
                {**action, "sequence": j + 1} for j, action in enumerate(e["orderActions"])
            ],
        }
        for i, e in enumerate(order.response["draft"]["subscriptions"])
    ]
    return _order_answer(order, subscriptions, [])


def _response(
    state: OrderState,
    order_account: WritableAccount,
    order_id: str,
    order_number: str,
    subscription_ids: list[str],
    invoices: list[BilledInvoice],
    return_ids: bool,
) -> CreateOrderResponse:
    touched = [state.touched[s] for s in subscription_ids]
    response: CreateOrderResponse = {
        "success": True,
        "orderNumber": order_number,
        "accountNumber": order_account.account_number,
        "status": OrderStatus.COMPLETED,
        "subscriptionNumbers": [s["subscription_number"] for s in touched],
        "subscriptions": [
            {
                "subscriptionNumber": s["subscription_number"],
                "subscriptionId": s["version_id"],
                "status": s["status"],
                "subscriptionOwnerId": s["account_id"],
                "subscriptionOwnerNumber": state.accounts_by_key[s["account_id"]].account_number,
            }
            for s in touched
        ],
        "invoiceNumbers": [i.invoice_number for i in invoices],
    }
    if return_ids:
        response["orderId"] = order_id
        response["accountId"] = order_account.id
        response["subscriptionIds"] = [s["version_id"] for s in touched]
        response["invoiceIds"] = [i.id for i in invoices]
    return response
