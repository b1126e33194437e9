"""Reads of payments and refunds: one by id or number, and pages of the tenant's (newest
first). Read-only: no locks."""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, not_found
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.payments.service import PaymentJson, payment_json, payment_row, refund_json
from partnerbill.payments.settlement import RefundJson, refund_row
from partnerbill.tables.accounts import accounts
from partnerbill.tables.payments import payments, refunds

# A refund with the number of the payment it refunds (none for a credit memo's refund).
_REFUNDS = select(refunds, payments.c.payment_number).outerjoin(
    payments,
    (payments.c.tenant_id == refunds.c.tenant_id) & (payments.c.id == refunds.c.payment_id),
)


async def _account_numbers(
    conn: AsyncConnection, tenant: Tenant, account_ids: set[str]
) -> dict[str, str]:
    rows = await conn.execute(
        select(accounts.c.id, accounts.c.account_number).where(
            accounts.c.tenant_id == tenant.id, accounts.c.id.in_(account_ids)
        )
    )
    return {row.id: row.account_number for row in rows}


def _listed(document: Mapping[str, object]) -> dict[str, object]:
    """A document as a list entry: lists carry one `success`, at the top."""
    return {key: value for key, value in document.items() if key != "success"}


async def _page(
    conn: AsyncConnection, query: Select[Any], window: PageRequest
) -> tuple[Sequence[Row[Any]], bool]:
    rows = (await conn.execute(query.offset(window.offset).limit(window.limit + 1))).all()
    return rows[: window.limit], len(rows) > window.limit


async def get_payment(conn: AsyncConnection, tenant: Tenant, key: str) -> PaymentJson:
    row = (
        await conn.execute(
            select(payments).where(
                payments.c.tenant_id == tenant.id,
                (payments.c.id == key) | (payments.c.payment_number == key),
            )
        )
    ).one_or_none()
    if row is None:
        raise not_found(Resource.PAYMENT, "payment", key)
    numbers = await _account_numbers(conn, tenant, {row.account_id})
    return payment_json(payment_row(row), numbers[row.account_id])


async def list_payments(
    conn: AsyncConnection,
    tenant: Tenant,
    *,
    account_id: str | None,
    status: str | None,
    payment_type: str | None,
    window: PageRequest,
) -> tuple[list[dict[str, object]], bool]:
    """One page of the tenant's payments, and whether another follows."""
    query = select(payments).where(payments.c.tenant_id == tenant.id)
    if account_id is not None:
        query = query.where(payments.c.account_id == account_id)
    if status is not None:
        query = query.where(payments.c.status == status)
    if payment_type is not None:
        query = query.where(payments.c.type == payment_type)
    rows, more = await _page(
        conn, query.order_by(payments.c.created_at.desc(), payments.c.id.desc()), window
    )
    numbers = await _account_numbers(conn, tenant, {row.account_id for row in rows})
    found = [_listed(payment_json(payment_row(row), numbers[row.account_id])) for row in rows]
    return found, more


async def get_refund(conn: AsyncConnection, tenant: Tenant, key: str) -> RefundJson:
    row = (
        await conn.execute(
            _REFUNDS.where(
                refunds.c.tenant_id == tenant.id,
                (refunds.c.id == key) | (refunds.c.refund_number == key),
            )
        )
    ).one_or_none()
    if row is None:
        raise not_found(Resource.PAYMENT, "refund", key)
    return refund_json(refund_row(row), row.payment_number)


async def list_refunds(
    conn: AsyncConnection,
    tenant: Tenant,
    *,
    account_id: str | None,
    window: PageRequest,
) -> tuple[list[dict[str, object]], bool]:
    """One page of the tenant's refunds, and whether another follows."""
    query = _REFUNDS.where(refunds.c.tenant_id == tenant.id)
    if account_id is not None:
        query = query.where(refunds.c.account_id == account_id)
    rows, more = await _page(
        conn, query.order_by(refunds.c.created_at.desc(), refunds.c.id.desc()), window
    )
    found = [_listed(refund_json(refund_row(row), row.payment_number)) for row in rows]
    return found, more
