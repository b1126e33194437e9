"""`/v1/invoices`: standalone invoices, single and batch; post, unpost, cancel; read."""

from typing import Annotated

from fastapi import Body, Request

from partnerbill.billing import creation, edits, service, views
from partnerbill.billing import responses as answers
from partnerbill.billing.schemas import (
    BulkCreateInvoicesRequest,
    CreateInvoiceRequest,
    PostInvoiceRequest,
    UpdateInvoiceRequest,
)
from partnerbill.billing.service import InvoiceJob, UnpostedInvoice
from partnerbill.billing.views import InvoiceJson
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.errors import envelope
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tenants import get_settings

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Invoices"])


@router.post("/v1/invoices", responses=ok(answers.Invoice))
async def create_standalone_invoice(
    request: CreateInvoiceRequest, tenant: CurrentTenant
) -> InvoiceJson:
    return await creation.create_invoice(tenant, request)


@router.post("/v1/invoices/batch", responses=ok(answers.InvoiceBatch))
async def bulk_create_standalone_invoices(
    body: BulkCreateInvoicesRequest, tenant: CurrentTenant, http_request: Request
) -> dict[str, object]:
    """`useSingleTransaction: true` creates all or none; otherwise each invoice succeeds or fails
    on its own and the response lists each outcome in request order."""
    entries = body.entries()
    async with transaction() as conn:
        settings = await get_settings(conn, tenant)
        item_count = sum(len(invoice.invoice_items) for invoice in body.invoices)
        problem = creation.batch_problem(len(entries), item_count, settings.invoice_batch_limit)
        if problem is not None:
            raise problem
        outcomes = await creation.create_invoices(
            conn, tenant, entries, all_or_nothing=body.use_single_transaction, batch=True
        )
    request_id = http_request.state.request_id
    results = [
        outcome.invoice
        if outcome.invoice is not None
        else envelope(outcome.error.reasons, request_id)  # type: ignore[union-attr]
        for outcome in outcomes
    ]
    return {"success": all(o.error is None for o in outcomes), "invoices": results}


@router.get("/v1/invoices/{invoice_key}", responses=ok(answers.Invoice))
async def get_invoice(invoice_key: str, tenant: CurrentTenant) -> InvoiceJson:
    async with transaction() as conn:
        return await views.get_invoice(conn, tenant, invoice_key)


@router.get("/v1/invoices/{invoice_key}/items", responses=ok(answers.InvoiceItems))
async def get_invoice_items(
    invoice_key: str,
    tenant: CurrentTenant,
    http_request: Request,
    window: PageRequest = page_request(views.DEFAULT_PAGE_SIZE),
) -> dict[str, object]:
    async with transaction() as conn:
        items, more = await views.get_invoice_items(conn, tenant, invoice_key, window)
    return paged("invoiceItems", items, more, http_request, window)


@router.put("/v1/invoices/{invoice_key}/post", responses=ok(answers.Invoice))
async def post_invoice(
    invoice_key: str,
    tenant: CurrentTenant,
    body: Annotated[PostInvoiceRequest | None, Body()] = None,
) -> InvoiceJob:
    async with transaction() as conn:
        return await service.post_invoice(
            conn, tenant, invoice_key, body.invoice_date if body else None
        )


@router.put("/v1/invoices/{invoice_key}/unpost", responses=ok(answers.Invoice))
async def unpost_invoice(invoice_key: str, tenant: CurrentTenant) -> UnpostedInvoice:
    async with transaction() as conn:
        return await service.unpost_invoice(conn, tenant, invoice_key)


@router.put("/v1/invoices/{invoice_key}/cancel", responses=ok(answers.Invoice))
async def cancel_invoice(invoice_key: str, tenant: CurrentTenant) -> InvoiceJob:
    async with transaction() as conn:
        return await service.cancel_invoice(conn, tenant, invoice_key)


@router.put("/v1/invoices/{invoice_key}", responses=ok(answers.Invoice))
async def update_invoice(
    invoice_key: str, request: UpdateInvoiceRequest, tenant: CurrentTenant
) -> InvoiceJson:
    async with transaction() as conn:
        return await edits.update_invoice(conn, tenant, invoice_key, request)
