"""External payments: create (with applications), apply, unapply, refund, cancel, read.

There is no payment gateway: payments are records of money received elsewhere (type External),
created Processed. Their account's metrics move as API doc §4.3 says: the unapplied part adds to
unappliedPaymentAmount, applications lower the invoices' and debit memos' balances, a refund
lowers the unapplied amount, a cancellation reverses the payment's applications and removes its
unapplied amount. Applied + unapplied + refunded always equals the amount.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import WritableAccount, lock_for_write
from partnerbill.core.clock import today
from partnerbill.core.errors import Resource, business_rule, missing_field, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.json import v1_datetime
from partnerbill.core.locks import bounded_lock_wait, execute_locking
from partnerbill.core.tenants import Tenant, next_numbers
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.payment_methods.service import payment_method_type
from partnerbill.payments.applications import (
    Allocation,
    Applied,
    allocations_from,
    applications_of,
    check_amount,
    lock_targets,
    settle,
    unapplied,
)
from partnerbill.payments.schemas import (
    ApplyPaymentRequest,
    CreatePaymentRequest,
    CreateRefundRequest,
)
from partnerbill.payments.tables import payments, refunds

PAYMENT = Resource.PAYMENT


def payment_json(payment: Mapping[Any, Any], account_number: str) -> dict[str, Any]:
    return {
        "success": True,
        "id": payment["id"],
        "number": payment["payment_number"],
        "accountId": payment["account_id"],
        "accountNumber": account_number,
        "amount": payment["amount"],
        "appliedAmount": payment["applied_amount"],
        "unappliedAmount": unapplied(payment),
        "refundAmount": payment["refund_amount"],
        "creditBalanceAmount": 0,
        "status": payment["status"],
        "type": payment["type"],
        "effectiveDate": payment["effective_date"],
        "currency": payment["currency"],
        "paymentMethodType": payment["payment_method_type"],
        "paymentMethodId": payment["payment_method_id"],
        "referenceId": payment["reference_id"],
        "comment": payment["comment"],
        "standalone": False,
        "createdDate": v1_datetime(payment["created_at"]),
        "updatedDate": v1_datetime(payment["updated_at"]),
    }


def _delta(account: WritableAccount, applied: Applied, unapplied_change: Decimal) -> MetricsDelta:
    return MetricsDelta(
        account_id=account.id,
        partner_account=account.partner_account,
        total_invoice_balance=-applied.to_invoices,
        total_debit_memo_balance=-applied.to_debit_memos,
        unapplied_payment_amount=unapplied_change,
    )


def _external_only(kind: str) -> None:
    if kind != "External":
        raise business_rule(
            PAYMENT, "Only External payments and refunds are supported: there is no gateway."
        )


async def create_payment(
    conn: AsyncConnection, tenant: Tenant, request: CreatePaymentRequest
) -> dict[str, Any]:
    key = request.account_id or request.account_number
    if key is None:
        raise missing_field(PAYMENT, "accountId")
    _external_only(request.type)
    async with bounded_lock_wait(conn, tenant, PAYMENT):
        account = await lock_for_write(conn, tenant, key)
        if request.currency != account.currency:
            raise business_rule(
                PAYMENT,
                f"'currency' {request.currency} differs from the account's {account.currency}.",
            )
        check_amount(request.amount, request.currency, "amount", PAYMENT)
        allocations = allocations_from(request.invoices, request.debit_memos)
        targets = await lock_targets(conn, tenant, allocations)
    method_type = request.payment_method_type
    if request.payment_method_id is not None:
        method_type = await payment_method_type(
            conn, tenant, account.id, request.payment_method_id, PAYMENT
        )
    payment_id = new_id()
    number = request.number
    if number is None:
        (sequence,) = await next_numbers(conn, tenant, "payment_number", 1)
        number = f"P-{sequence:08d}"
    effective = request.effective_date or today()
    payment = {
        "tenant_id": tenant.id,
        "id": payment_id,
        "payment_number": number,
        "account_id": account.id,
        "currency": request.currency,
        "amount": request.amount,
        "applied_amount": Decimal(0),
        "refund_amount": Decimal(0),
        "status": "Processed",
        "type": request.type,
        "effective_date": effective,
        "payment_method_type": method_type,
        "payment_method_id": request.payment_method_id,
        "reference_id": request.reference_id,
        "comment": request.comment,
    }
    applied = await settle(
        conn,
        tenant,
        source_type="Payment",
        source=payment,
        unapplied=request.amount,
        targets=targets,
        allocations=allocations,
        effective_date=effective,
        direction=1,
        resource=PAYMENT,
    )
    payment["applied_amount"] = applied.total
    try:
        row = (await conn.execute(insert(payments).values(**payment).returning(*payments.c))).one()
    except IntegrityError as exc:
        raise business_rule(PAYMENT, f"A payment numbered '{number}' already exists.") from exc
    delta = _delta(account, applied, unapplied(payment))
    delta.payments_changed = True
    await touch(conn, tenant, [delta])
    return payment_json(row._mapping, account.account_number)


async def _lock_payment(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    row = (
        await execute_locking(
            conn,
            tenant,
            select(payments)
            .where(
                payments.c.tenant_id == tenant.id,
                (payments.c.id == key) | (payments.c.payment_number == key),
            )
            .with_for_update(),
            resource=PAYMENT,
        )
    ).one_or_none()
    if row is None:
        raise not_found(PAYMENT, "payment", key)
    return dict(row._mapping)


async def _save(
    conn: AsyncConnection, tenant: Tenant, payment: dict[str, Any], **values: Any
) -> Any:
    payment.update(values)
    return (
        await conn.execute(
            update(payments)
            .where(payments.c.tenant_id == tenant.id, payments.c.id == payment["id"])
            .values(**values, updated_at=func.now())
            .returning(*payments.c)
        )
    ).one()


async def apply_payment(
    conn: AsyncConnection,
    tenant: Tenant,
    key: str,
    request: ApplyPaymentRequest,
    direction: int,
) -> dict[str, Any]:
    """Apply (1) or unapply (-1): the payment is locked first, then the targets."""
    allocations = allocations_from(request.invoices, request.debit_memos)
    if not allocations:
        raise missing_field(PAYMENT, "invoices")
    async with bounded_lock_wait(conn, tenant, PAYMENT):
        payment = await _lock_payment(conn, tenant, key)
        targets = await lock_targets(conn, tenant, allocations)
        if payment["status"] != "Processed":
            raise business_rule(
                PAYMENT, f"Payment {payment['payment_number']} is {payment['status']}."
            )
        account = await lock_for_write(conn, tenant, payment["account_id"])
    applied = await settle(
        conn,
        tenant,
        source_type="Payment",
        source=payment,
        unapplied=unapplied(payment),
        targets=targets,
        allocations=allocations,
        effective_date=request.effective_date or today(),
        direction=1 if direction > 0 else -1,
        resource=PAYMENT,
    )
    row = await _save(
        conn, tenant, payment, applied_amount=payment["applied_amount"] + applied.total
    )
    await touch(conn, tenant, [_delta(account, applied, -applied.total)])
    return payment_json(row._mapping, account.account_number)


async def refund_payment(
    conn: AsyncConnection, tenant: Tenant, key: str, request: CreateRefundRequest
) -> dict[str, Any]:
    """Refund from the payment's unapplied amount."""
    _external_only(request.type)
    async with bounded_lock_wait(conn, tenant, PAYMENT):
        payment = await _lock_payment(conn, tenant, key)
        if payment["status"] != "Processed":
            raise business_rule(
                PAYMENT, f"Payment {payment['payment_number']} is {payment['status']}."
            )
        check_amount(request.total_amount, payment["currency"], "totalAmount", PAYMENT)
        if request.total_amount > unapplied(payment):
            raise business_rule(
                PAYMENT,
                f"The refund {request.total_amount} is more than the payment's unapplied amount "
                f"{unapplied(payment)}; unapply it first.",
            )
        account = await lock_for_write(conn, tenant, payment["account_id"])
    (sequence,) = await next_numbers(conn, tenant, "refund_number", 1)
    refund = (
        await conn.execute(
            insert(refunds)
            .values(
                tenant_id=tenant.id,
                id=new_id(),
                refund_number=f"R-{sequence:08d}",
                account_id=account.id,
                source_type="Payment",
                payment_id=payment["id"],
                amount=request.total_amount,
                status="Processed",
                type=request.type,
                method_type=request.method_type,
                refund_date=request.refund_date or today(),
                reason_code=request.reason_code,
                reference_id=request.reference_id,
                comment=request.comment,
            )
            .returning(*refunds.c)
        )
    ).one()
    await _save(
        conn, tenant, payment, refund_amount=payment["refund_amount"] + request.total_amount
    )
    await touch(
        conn,
        tenant,
        [
            MetricsDelta(
                account_id=account.id,
                partner_account=account.partner_account,
                unapplied_payment_amount=-request.total_amount,
            )
        ],
    )
    return refund_json(refund._mapping, payment["payment_number"])


def refund_json(refund: Mapping[Any, Any], payment_number: str | None) -> dict[str, Any]:
    return {
        "success": True,
        "id": refund["id"],
        "number": refund["refund_number"],
        "amount": refund["amount"],
        "status": refund["status"],
        "type": refund["type"],
        "methodType": refund["method_type"],
        "paymentId": refund["payment_id"],
        "paymentNumber": payment_number,
        "creditMemoId": refund["credit_memo_id"],
        "accountId": refund["account_id"],
        "refundDate": refund["refund_date"],
        "reasonCode": refund["reason_code"],
        "referenceId": refund["reference_id"],
        "comment": refund["comment"],
        "refundTransactionTime": v1_datetime(refund["created_at"]),
        "createdDate": v1_datetime(refund["created_at"]),
    }


async def cancel_payment(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    """Cancel a payment that has not been refunded: its applications are reversed."""
    async with bounded_lock_wait(conn, tenant, PAYMENT):
        payment = await _lock_payment(conn, tenant, key)
        allocations = [
            Allocation(target_type, target_id, amount, "applications")
            for target_id, (target_type, amount) in (
                await applications_of(conn, tenant, payment["id"])
            ).items()
        ]
        targets = await lock_targets(conn, tenant, allocations)
        if payment["status"] != "Processed":
            raise business_rule(
                PAYMENT, f"Payment {payment['payment_number']} is {payment['status']}."
            )
        if payment["refund_amount"] > 0:
            raise business_rule(
                PAYMENT, f"Payment {payment['payment_number']} has refunds; it cannot be canceled."
            )
        account = await lock_for_write(conn, tenant, payment["account_id"])
    remaining = unapplied(payment)
    applied = await settle(
        conn,
        tenant,
        source_type="Payment",
        source=payment,
        unapplied=remaining,
        targets=targets,
        allocations=allocations,
        effective_date=today(),
        direction=-1,
        resource=PAYMENT,
    )
    row = await _save(
        conn,
        tenant,
        payment,
        status="Canceled",
        applied_amount=payment["applied_amount"] + applied.total,
    )
    delta = _delta(account, applied, -remaining)
    delta.payments_changed = True
    await touch(conn, tenant, [delta])
    return payment_json(row._mapping, account.account_number)
