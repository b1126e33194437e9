"""Edits of a payment's or refund's descriptive fields (comment, referenceId, reasonCode).

No money moves, so no metrics change and no account is touched. The edited row is locked
`FOR UPDATE` (a document lock, `core/locking.py`) so an edit never interleaves with a
cancel or a refund of the same payment. Only the fields the request sets are written; a field
set to null clears it. A cancelled payment or refund keeps its fields as they were.
"""

from typing import Any

from sqlalchemy import Column, Row, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, business_rule, not_found
from partnerbill.core.locking import lock_row
from partnerbill.core.tenants import Tenant
from partnerbill.payments.schemas import UpdatePaymentRequest, UpdateRefundRequest
from partnerbill.payments.service import PaymentJson, payment_json, payment_row, refund_json
from partnerbill.payments.settlement import RefundJson, refund_row
from partnerbill.tables.accounts import accounts
from partnerbill.tables.payments import PaymentStatus, payments, refunds


async def _edit(
    conn: AsyncConnection,
    tenant: Tenant,
    table: Table,
    number: Column[str],
    kind: str,
    key: str,
    request: UpdatePaymentRequest | UpdateRefundRequest,
) -> Row[Any]:
    """Lock the payment or refund by id or number, refuse a cancelled one, write what the
    request sets; the row as it now is."""
    found = (
        await lock_row(conn, tenant, table, (table.c.id == key) | (number == key), Resource.PAYMENT)
    ).one_or_none()
    if found is None:
        raise not_found(Resource.PAYMENT, kind, key)
    if found.status == PaymentStatus.CANCELED:
        raise business_rule(
            Resource.PAYMENT, f"{kind.capitalize()} {found._mapping[number.name]} is cancelled."
        )
    values = request.model_dump(
        by_alias=False, include=set(type(request).model_fields), exclude_unset=True
    )
    if not values:
        return found
    if "updated_at" in table.c:
        values["updated_at"] = func.now()
    return (
        await conn.execute(
            update(table)
            .where(table.c.tenant_id == tenant.id, table.c.id == found.id)
            .values(**values)
            .returning(*table.c)
        )
    ).one()


async def update_payment(
    conn: AsyncConnection, tenant: Tenant, key: str, request: UpdatePaymentRequest
) -> PaymentJson:
    """PUT /v1/payments/{paymentId}."""
    row = await _edit(conn, tenant, payments, payments.c.payment_number, "payment", key, request)
    number = await conn.scalar(
        select(accounts.c.account_number).where(
            accounts.c.tenant_id == tenant.id, accounts.c.id == row.account_id
        )
    )
    return payment_json(payment_row(row), str(number))


async def update_refund(
    conn: AsyncConnection, tenant: Tenant, key: str, request: UpdateRefundRequest
) -> RefundJson:
    """PUT /v1/refunds/{refundId}."""
    row = await _edit(conn, tenant, refunds, refunds.c.refund_number, "refund", key, request)
    payment_number = None
    if row.payment_id is not None:
        payment_number = await conn.scalar(
            select(payments.c.payment_number).where(
                payments.c.tenant_id == tenant.id, payments.c.id == row.payment_id
            )
        )
    return refund_json(refund_row(row), payment_number)
