"""Order lists (`/v1/orders`, by invoice owner, subscription owner and subscription, pending),
the order preview, and the changes Zuora allows on draft orders (see `drafts`)."""

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import Body, Depends, Query, Request
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import Documented, Succeeded, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.schemas import Date
from partnerbill.core.tenants import get_settings
from partnerbill.orders import drafts, lookup, preview
from partnerbill.orders.lookup import DateFilterOption, OrderStatusFilter
from partnerbill.orders.preview import PreviewOrderRequest
from partnerbill.orders.responses import CancelledOrder, CreatedOrder, Order
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.orders.service import CreateOrderResponse

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Orders"])

DEFAULT_PAGE_SIZE = 20

Status = Annotated[OrderStatusFilter | None, Query()]
DateOption = Annotated[DateFilterOption, Query(alias="dateFilterOption")]
StartDate = Annotated[Date | None, Query(alias="startDate")]
EndDate = Annotated[Date | None, Query(alias="endDate")]
# A cancel's body (`cancelReason`), accepted and not kept.
AnyBody = Annotated[dict[str, Any] | None, Body()]


class Orders(Succeeded):
    orders: list[Order]
    nextPage: str | None = None


@dataclass(frozen=True)
class OrderFilter:
    """Which orders of the list: a status (or all) and a date window."""

    status: OrderStatusFilter | None
    date_filter_option: DateFilterOption
    start_date: date | None
    end_date: date | None


def _order_filter(
    status: Status = None,
    date_filter_option: DateOption = "orderDate",
    start_date: StartDate = None,
    end_date: EndDate = None,
) -> OrderFilter:
    return OrderFilter(status, date_filter_option, start_date, end_date)


def _date_filter(
    date_filter_option: DateOption = "orderDate",
    start_date: StartDate = None,
    end_date: EndDate = None,
) -> OrderFilter:
    """The filter of `/v1/orders`, which takes no status."""
    return OrderFilter(None, date_filter_option, start_date, end_date)


async def _page(
    http_request: Request,
    tenant: CurrentTenant,
    which: ColumnElement[bool],
    order_filter: OrderFilter,
    window: PageRequest,
    conn: AsyncConnection,
) -> dict[str, Any]:
    rows, more = await lookup.list_orders(
        conn,
        tenant,
        which,
        status=order_filter.status,
        date_filter_option=order_filter.date_filter_option,
        start_date=order_filter.start_date,
        end_date=order_filter.end_date,
        window=window,
    )
    # `paged` takes plain dicts.
    return paged("orders", rows, more, http_request, window)


@router.get("/v1/orders", responses=ok(Orders))
async def get_orders(
    http_request: Request,
    tenant: CurrentTenant,
    window: PageRequest = page_request(DEFAULT_PAGE_SIZE),
    order_filter: OrderFilter = Depends(_date_filter),
) -> dict[str, Any]:
    async with transaction() as conn:
        return await _page(http_request, tenant, lookup.EVERY_ORDER, order_filter, window, conn)


@router.get("/v1/orders/invoiceOwner/{account_number}", responses=ok(Orders))
async def get_orders_by_invoice_owner(
    account_number: str,
    http_request: Request,
    tenant: CurrentTenant,
    window: PageRequest = page_request(DEFAULT_PAGE_SIZE),
    order_filter: OrderFilter = Depends(_order_filter),
) -> dict[str, Any]:
    async with transaction() as conn:
        which = await lookup.owner_filter(conn, tenant, "invoiceOwner", account_number)
        return await _page(http_request, tenant, which, order_filter, window, conn)


@router.get("/v1/orders/subscriptionOwner/{account_number}", responses=ok(Orders))
async def get_orders_by_subscription_owner(
    account_number: str,
    http_request: Request,
    tenant: CurrentTenant,
    window: PageRequest = page_request(DEFAULT_PAGE_SIZE),
    order_filter: OrderFilter = Depends(_order_filter),
) -> dict[str, Any]:
    async with transaction() as conn:
        which = await lookup.owner_filter(conn, tenant, "subscriptionOwner", account_number)
        return await _page(http_request, tenant, which, order_filter, window, conn)


@router.get("/v1/orders/subscription/{subscription_number}", responses=ok(Orders))
async def get_orders_by_subscription_number(
    subscription_number: str,
    http_request: Request,
    tenant: CurrentTenant,
    window: PageRequest = page_request(DEFAULT_PAGE_SIZE),
    order_filter: OrderFilter = Depends(_order_filter),
) -> dict[str, Any]:
    async with transaction() as conn:
        await lookup.known_subscription(conn, tenant, subscription_number)
        which = lookup.subscription_filter(tenant, subscription_number)
        return await _page(http_request, tenant, which, order_filter, window, conn)


@router.get("/v1/orders/subscription/{subscription_key}/pending", responses=ok(Orders))
async def get_pending_orders_by_subscription_number(
    subscription_key: str, http_request: Request, tenant: CurrentTenant
) -> dict[str, Any]:
    """Always empty: every order is completed as it is placed."""
    async with transaction() as conn:
        await lookup.known_subscription(conn, tenant, subscription_key)
        nothing = OrderFilter(None, "orderDate", None, None)
        return await _page(http_request, tenant, lookup.NO_ORDER, nothing, PageRequest(1, 1), conn)


@router.put("/v1/orders/{order_number}", responses=ok(CreatedOrder))
async def update_order(
    order_number: str, request: CreateOrderRequest, tenant: CurrentTenant
) -> CreateOrderResponse:
    """A draft's request replaced (see `orders.drafts`)."""
    async with transaction() as conn:
        limit = (await get_settings(conn, tenant)).order_sync_limit
        return await drafts.update_draft(conn, tenant, order_number, request, limit)


@router.put("/v1/orders/{order_number}/activate", responses=ok(CreatedOrder))
async def activate_order(order_number: str, tenant: CurrentTenant) -> CreateOrderResponse:
    async with transaction() as conn:
        limit = (await get_settings(conn, tenant)).order_sync_limit
        return await drafts.activate_draft(conn, tenant, order_number, limit)


@router.put("/v1/orders/{order_number}/cancel", responses=ok(CancelledOrder))
async def cancel_order(
    order_number: str, tenant: CurrentTenant, body: AnyBody = None
) -> drafts.CancelledOrder:
    """`cancelReason` is accepted and not kept."""
    async with transaction() as conn:
        return await drafts.cancel_draft(conn, tenant, order_number)


@router.delete("/v1/orders/{order_number}", responses=ok(Succeeded))
async def delete_order(order_number: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await drafts.delete_draft(conn, tenant, order_number)


@router.delete("/v1/async/orders/{order_number}", responses=ok(Succeeded))
async def delete_order_asynchronously(order_number: str, tenant: CurrentTenant) -> dict[str, Any]:
    """Deleted at once (no job): deleting a draft is one row."""
    async with transaction() as conn:
        return await drafts.delete_draft(conn, tenant, order_number)


class PreviewedOrder(Succeeded):
    previewResult: Documented


@router.post("/v1/orders/preview", responses=ok(PreviewedOrder))
async def preview_order(
    request: PreviewOrderRequest, tenant: CurrentTenant
) -> preview.PreviewOrderResponse:
    async with transaction() as conn:
        limit = (await get_settings(conn, tenant)).order_sync_limit
        return await preview.preview_order(conn, tenant, request, limit=limit)
