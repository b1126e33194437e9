"""External payments: create (with applications), apply, unapply, refund, cancel.

There is no payment gateway: payments are records of money received elsewhere (type External),
created Processed. Their account's metrics move as API doc §4.3 says: the unapplied part adds to
unappliedPaymentAmount, applications lower the invoices' and debit memos' balances, a refund
lowers the unapplied amount, a cancellation reverses the payment's applications and removes its
unapplied amount. Applied + unapplied + refunded always equals the amount.

Apply, unapply and refund are `settlement`'s, with a payment as the source (`PAYMENT_SOURCE`),
open while Processed; cancel is open while Processed and nothing is refunded.

Locks (in the order of `core/locking.py`): the payment `FOR UPDATE`, then its account
`FOR KEY SHARE` in a statement of its own, then the targets (apply, unapply, cancel; a refund
has none); a new payment's account, then its targets.
"""

from datetime import date
from decimal import Decimal
from typing import Any, Literal, TypedDict, cast

from sqlalchemy import Row, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import lock_for_write
from partnerbill.core.clock import today
from partnerbill.core.errors import Resource, ZuoraError, business_rule, missing_field, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.json import v1_datetime
from partnerbill.core.locking import lock_row
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.metrics.service import touch
from partnerbill.payment_methods.service import payment_method_type
from partnerbill.payments import settlement
from partnerbill.payments.schemas import (
    ApplyPaymentRequest,
    CreatePaymentRequest,
    CreateRefundRequest,
)
from partnerbill.payments.settlement import (
    Allocation,
    RefundJson,
    SourceKind,
    allocations_from,
    applications_of,
    check_amount,
    lock_targets,
    moved,
    settle,
    unapplied,
)
from partnerbill.tables.payments import (
    LockedPayment,
    PaymentRow,
    PaymentStatus,
    PaymentValues,
    RefundRow,
    payments,
)

PAYMENT = Resource.PAYMENT


class PaymentJson(TypedDict):
    """A payment as Zuora answers it."""

    success: bool
    id: str
    number: str
    accountId: str
    accountNumber: str
    amount: Decimal
    appliedAmount: Decimal
    unappliedAmount: Decimal
    refundAmount: Decimal
    creditBalanceAmount: int
    status: str
    type: str
    effectiveDate: date
    currency: str
    paymentMethodType: str | None
    paymentMethodId: str | None
    referenceId: str | None
    comment: str | None
    standalone: bool
    createdDate: str | None
    updatedDate: str | None


def payment_row(row: Row[Any]) -> PaymentRow:
    """A payment read with all its columns (`RETURNING` or `SELECT`), and perhaps more."""
    return cast(PaymentRow, dict(row._mapping))


def payment_json(payment: PaymentRow, account_number: str) -> PaymentJson:
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


NO_GATEWAY = "Only External payments and refunds are supported: there is no gateway."


async def create_payment(
    conn: AsyncConnection, tenant: Tenant, request: CreatePaymentRequest
) -> PaymentJson:
    key = request.account_id or request.account_number
    if key is None:
        raise missing_field(PAYMENT, "accountId")
    if request.type != "External":
        raise business_rule(PAYMENT, NO_GATEWAY)
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
        number = document_number("P-", sequence)
    effective = request.effective_date or today()
    payment: PaymentValues = {
        "tenant_id": tenant.id,
        "id": payment_id,
        "payment_number": number,
        "account_id": account.id,
        "currency": request.currency,
        "amount": request.amount,
        "applied_amount": Decimal(0),
        "refund_amount": Decimal(0),
        "status": PaymentStatus.PROCESSED,
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
    delta = moved("Payment", account.id, account.partner_account, applied, unapplied(payment))
    delta.payments_changed = True
    await touch(conn, tenant, [delta])
    return payment_json(payment_row(row), account.account_number)


async def _lock_payment(conn: AsyncConnection, tenant: Tenant, key: str) -> LockedPayment:
    """The payment `FOR UPDATE`, with its account's number and partner flag (the account held
    `FOR KEY SHARE`, as every document write holds it)."""
    async with bounded_lock_wait(conn, tenant, PAYMENT):
        match = (payments.c.id == key) | (payments.c.payment_number == key)
        row = (await lock_row(conn, tenant, payments, match, PAYMENT)).one_or_none()
        if row is None:
            raise not_found(PAYMENT, "payment", key)
        account = await lock_for_write(conn, tenant, row.account_id)
    return {
        **payment_row(row),
        "account_number": account.account_number,
        "partner_account": account.partner_account,
    }


async def _save(
    conn: AsyncConnection, tenant: Tenant, payment: PaymentRow, **values: object
) -> PaymentRow:
    row = (
        await conn.execute(
            update(payments)
            .where(payments.c.tenant_id == tenant.id, payments.c.id == payment["id"])
            .values(**values, updated_at=func.now())
            .returning(*payments.c)
        )
    ).one()
    return payment_row(row)


def _not_processed(payment: PaymentRow, action: str) -> ZuoraError:
    """Only a Processed payment is applied, unapplied, refunded or canceled."""
    return business_rule(PAYMENT, f"Payment {payment['payment_number']} is {payment['status']}.")


def refund_json(refund: RefundRow, payment_number: str | None) -> RefundJson:
    """RefundResponse, of a payment's refund or a credit memo's."""
    return settlement.refund_json(
        refund,
        {
            "paymentId": refund["payment_id"],
            "paymentNumber": payment_number,
            "creditMemoId": refund["credit_memo_id"],
        },
    )


PAYMENT_SOURCE: SourceKind[LockedPayment, PaymentRow, PaymentJson] = SourceKind(
    source_type="Payment",
    resource=PAYMENT,
    open_status=PaymentStatus.PROCESSED,
    refund_column="payment_id",
    no_gateway=NO_GATEWAY,
    lock=_lock_payment,
    save=_save,
    not_open=_not_processed,
    refund_exceeds=lambda _, amount, remaining: (
        f"The refund {amount} is more than the payment's unapplied amount {remaining}; "
        "unapply it first."
    ),
    answer=payment_json,
    refund_answer=lambda refund, payment: refund_json(refund, payment["payment_number"]),
)


async def apply_payment(
    conn: AsyncConnection,
    tenant: Tenant,
    key: str,
    request: ApplyPaymentRequest,
    direction: Literal[1, -1],
) -> PaymentJson:
    """Apply (1) or unapply (-1) the payment (`settlement.apply`)."""
    return await settlement.apply(conn, tenant, PAYMENT_SOURCE, key, request, direction)


async def refund_payment(
    conn: AsyncConnection, tenant: Tenant, key: str, request: CreateRefundRequest
) -> RefundJson:
    """Refund from the payment's unapplied amount (`settlement.refund`)."""
    return await settlement.refund(conn, tenant, PAYMENT_SOURCE, key, request)


async def cancel_payment(conn: AsyncConnection, tenant: Tenant, key: str) -> PaymentJson:
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
    if payment["status"] != PaymentStatus.PROCESSED:
        raise _not_processed(payment, "canceled")
    if payment["refund_amount"] > 0:
        raise business_rule(
            PAYMENT, f"Payment {payment['payment_number']} has refunds; it cannot be canceled."
        )
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
        status=PaymentStatus.CANCELED,
        applied_amount=payment["applied_amount"] + applied.total,
    )
    delta = moved("Payment", payment["account_id"], payment["partner_account"], applied, -remaining)
    delta.payments_changed = True
    await touch(conn, tenant, [delta])
    return payment_json(row, payment["account_number"])
