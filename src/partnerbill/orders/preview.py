"""`POST /v1/orders/preview`: what an order would create and bill, writing nothing.

The order runs exactly as `create_order` runs it (the same rules, the same errors), billed
through `previewOptions.specificPreviewThruDate` (default: the order date) as draft invoices,
inside a savepoint that is then rolled back: no subscription, invoice, metric or change row
survives. Locks: those `create_order` takes, held until the request's transaction ends (it ends
at once). Document numbers drawn from sequences inside the savepoint are not given back (a
sequence never is), so the subscription numbers a preview shows are the shape of what the order
creates, not numbers reserved for it.

Only `previewThruType: SpecificDate` is supported (the billing engine bills through a date);
TermEnd and NumberOfPeriods are refused naming the field. Taxes are not computed: taxAmount 0.
"""

from datetime import date
from decimal import Decimal
from typing import Literal, NotRequired, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, invalid_value
from partnerbill.core.money import ZERO
from partnerbill.core.schemas import CamelModel, Date
from partnerbill.core.tenants import Tenant
from partnerbill.orders.schemas import BillingOptions, CreateOrderRequest, ProcessingOptions
from partnerbill.orders.service import create_order
from partnerbill.tables.billing import invoice_items
from partnerbill.tables.subscriptions import subscriptions


class PreviewOptions(CamelModel):
    preview_thru_type: Literal["SpecificDate", "TermEnd", "NumberOfPeriods"] = "SpecificDate"
    specific_preview_thru_date: Date | None = None
    preview_types: list[
        Literal["ChargeMetrics", "BillingDocs", "OrderDeltaMetrics", "OrderMetrics", "RampMetrics"]
    ] = ["BillingDocs"]
    document_date: Date | None = None
    charge_type_to_exclude: list[Literal["OneTime", "Recurring", "Usage"]] = []


class PreviewOrderRequest(CreateOrderRequest):
    preview_options: PreviewOptions


class PreviewInvoiceItem(TypedDict):
    serviceStartDate: date
    serviceEndDate: date
    amountWithoutTax: Decimal
    taxAmount: Decimal
    unitPrice: Decimal
    chargeName: str | None
    chargeNumber: str | None
    productRatePlanChargeId: str | None
    subscriptionNumber: str | None
    processingType: str


class PreviewInvoice(TypedDict):
    """The invoice an order would create."""

    targetDate: date
    amount: Decimal
    amountWithoutTax: Decimal
    taxAmount: Decimal
    invoiceItems: list[PreviewInvoiceItem]


class PreviewResult(TypedDict):
    subscriptionNumbers: list[str]
    invoices: NotRequired[list[PreviewInvoice]]  # with the BillingDocs preview type


class PreviewOrderResponse(TypedDict):
    success: bool
    previewResult: PreviewResult


async def preview_order(
    conn: AsyncConnection, tenant: Tenant, request: PreviewOrderRequest, *, limit: int
) -> PreviewOrderResponse:
    """The PreviewOrderResponse of `request` (see the module docstring)."""
    options = request.preview_options
    if options.preview_thru_type != "SpecificDate":
        raise invalid_value(
            Resource.ORDER,
            "previewOptions.previewThruType",
            "only SpecificDate is supported (with specificPreviewThruDate).",
        )
    target = options.specific_preview_thru_date or request.order_date
    order = request.model_copy(
        update={
            "status": None,
            "processing_options": ProcessingOptions(
                run_billing=True,
                billing_options=BillingOptions(
                    target_date=target,
                    document_date=options.document_date,
                    generate_draft_invoice=True,
                    charge_type_to_exclude=options.charge_type_to_exclude,
                ),
            ),
        }
    )
    savepoint = await conn.begin_nested()
    try:
        created = await create_order(conn, tenant, order, limit=limit, return_ids=True)
        invoices = [await preview_invoice(conn, tenant, i, target) for i in created["invoiceIds"]]
    finally:
        await savepoint.rollback()
    result: PreviewResult = {"subscriptionNumbers": created["subscriptionNumbers"]}
    if "BillingDocs" in options.preview_types:
        result["invoices"] = invoices
    return {"success": True, "previewResult": result}


async def preview_invoice(
    conn: AsyncConnection, tenant: Tenant, invoice_id: str, target: date
) -> PreviewInvoice:
    items: list[PreviewInvoiceItem] = []
    total: Decimal = ZERO
    for item in await conn.execute(
        select(invoice_items, subscriptions.c.subscription_number)
        .outerjoin(
            subscriptions,
            (subscriptions.c.tenant_id == invoice_items.c.tenant_id)
            & (subscriptions.c.id == invoice_items.c.subscription_id),
        )
        .where(invoice_items.c.tenant_id == tenant.id, invoice_items.c.invoice_id == invoice_id)
        .order_by(invoice_items.c.line_number)
    ):
        total += item.amount
        items.append(
            {
                "serviceStartDate": item.service_start_date,
                "serviceEndDate": item.service_end_date,
                "amountWithoutTax": item.amount,
                "taxAmount": ZERO,
                "unitPrice": item.unit_price,
                "chargeName": item.charge_name,
                "chargeNumber": item.charge_number,
                "productRatePlanChargeId": item.product_rate_plan_charge_id,
                "subscriptionNumber": item.subscription_number,
                "processingType": "Charge",
            }
        )
    return {
        "targetDate": target,
        "amount": total,
        "amountWithoutTax": total,
        "taxAmount": ZERO,
        "invoiceItems": items,
    }
