"""Edits of an invoice's descriptive fields: autoPay, comments, dueDate, and invoiceDate while
the invoice is a Draft (a posted invoice's date is what lastInvoiceDate reads).

No amount changes, so no metrics change and no account is touched. The invoice is locked
`FOR UPDATE` as every status change locks it, its account `FOR KEY SHARE` (`core/locking.py`). A
cancelled invoice is not edited. The due date may not fall before the invoice date. Bad input
writes nothing: every check runs before the one UPDATE.
"""

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.billing.schemas import UpdateInvoiceRequest
from partnerbill.billing.service import lock_invoice
from partnerbill.billing.views import InvoiceJson, get_invoice
from partnerbill.core.errors import Resource, business_rule, invalid_value
from partnerbill.core.tenants import Tenant
from partnerbill.tables.billing import DocumentStatus, invoices


async def update_invoice(
    conn: AsyncConnection, tenant: Tenant, key: str, request: UpdateInvoiceRequest
) -> InvoiceJson:
    """PUT /v1/invoices/{invoiceKey}."""
    invoice = await lock_invoice(conn, tenant, key)
    number = invoice["invoice_number"]
    if invoice["status"] == DocumentStatus.CANCELED:
        raise business_rule(Resource.INVOICE, f"Invoice {number} is cancelled; it is not edited.")
    values = request.model_dump(
        by_alias=False, include=set(type(request).model_fields), exclude_unset=True
    )
    if "invoice_date" in values and invoice["status"] != DocumentStatus.DRAFT:
        raise business_rule(
            Resource.INVOICE, f"The invoiceDate of invoice {number} changes only while Draft."
        )
    for field, name in (
        ("auto_pay", "autoPay"),
        ("due_date", "dueDate"),
        ("invoice_date", "invoiceDate"),
    ):
        if field in values and values[field] is None:
            raise invalid_value(Resource.INVOICE, name, "may not be null.")
    invoice_date = values.get("invoice_date", invoice["invoice_date"])
    due_date = values.get("due_date", invoice["due_date"])
    if due_date < invoice_date:
        raise invalid_value(Resource.INVOICE, "dueDate", "may not be before the invoice date.")
    if values:
        await conn.execute(
            update(invoices)
            .where(invoices.c.tenant_id == tenant.id, invoices.c.id == invoice["id"])
            .values(**values, updated_at=func.now())
        )
    return await get_invoice(conn, tenant, invoice["id"])
