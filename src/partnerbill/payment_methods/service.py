"""External payment methods.

Rules:
- Only the external types Zuora records without a gateway are accepted (`EXTERNAL_TYPES`);
  a card, bank account, PayPal or any other gateway type is refused with a business-rule
  (category 30) error, since partnerbill has no payment gateway.
- An account's first payment method becomes its default, as in Zuora; `makeDefault` moves it.
- The default of an account is never deleted (Zuora refuses it too): make another one default
  first.

Locks: a write holds the account `FOR KEY SHARE` (`accounts.service.lock_for_write`), and any
change of the default also holds a transaction advisory lock on the account, so two concurrent
switches serialise instead of racing on the one-default index.
"""

from typing import Any, TypedDict

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts import service as accounts
from partnerbill.core.errors import Resource, business_rule, invalid_value, missing_field, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.tenants import Tenant
from partnerbill.payment_methods.schemas import (
    CreatePaymentMethodRequest,
    UpdatePaymentMethodRequest,
)
from partnerbill.tables.payment_methods import (
    PaymentMethodRow,
    PaymentMethodStatus,
    payment_methods,
)

PAYMENT = Resource.PAYMENT
EXTERNAL_TYPES = frozenset(
    {"Cash", "Check", "CashOnDelivery", "WireTransfer", "DebitCard", "CreditCardExternal", "Other"}
)
# Zuora's own names for the external types, whatever case the request used.
_CANONICAL = {name.lower(): name for name in EXTERNAL_TYPES}


class PaymentMethodJson(TypedDict):
    id: str
    accountKey: str
    type: str
    status: str  # a PaymentMethodStatus
    isDefault: bool
    createdOn: str
    updatedOn: str


class PaymentMethodAnswer(PaymentMethodJson):
    success: bool


class AccountPaymentMethods(TypedDict):
    success: bool
    defaultPaymentMethodId: str | None
    returnedPaymentMethodType: list[PaymentMethodJson]


class SavedPaymentMethod(TypedDict):
    success: bool
    id: str


def payment_method_json(row: PaymentMethodRow) -> PaymentMethodJson:
    return {
        "id": row.id,
        "accountKey": row.account_id,
        "type": row.type,
        "status": row.status,
        "isDefault": row.is_default,
        "createdOn": row.created_at.isoformat(),
        "updatedOn": row.updated_at.isoformat(),
    }


async def _hold_default(conn: AsyncConnection, tenant: Tenant, account_id: str) -> None:
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"payment-method-default:{tenant.id}:{account_id}"},
    )


async def _set_default(conn: AsyncConnection, tenant: Tenant, account_id: str, pm_id: str) -> None:
    table = payment_methods.c
    where = (table.tenant_id == tenant.id) & (table.account_id == account_id)
    await conn.execute(
        update(payment_methods)
        .where(where, table.is_default, table.id != pm_id)
        .values(is_default=False, updated_at=func.now())
    )
    await conn.execute(
        update(payment_methods)
        .where(where, table.id == pm_id)
        .values(is_default=True, updated_at=func.now())
    )


async def create_payment_method(
    conn: AsyncConnection, tenant: Tenant, request: CreatePaymentMethodRequest
) -> SavedPaymentMethod:
    kind = _CANONICAL.get(request.type.lower())
    if kind is None:
        raise business_rule(
            PAYMENT,
            f"Payment method type '{request.type}' needs a payment gateway, and partnerbill has "
            f"none: only external types are accepted ({', '.join(sorted(EXTERNAL_TYPES))}).",
        )
    if request.account_key is None:
        raise missing_field(PAYMENT, "accountKey")
    account = await accounts.lock_for_write(conn, tenant, request.account_key)
    await _hold_default(conn, tenant, account.id)
    table = payment_methods.c
    has_default = (
        await conn.execute(
            select(func.count()).where(
                table.tenant_id == tenant.id, table.account_id == account.id, table.is_default
            )
        )
    ).scalar_one() > 0
    pm_id = new_id()
    await conn.execute(
        payment_methods.insert().values(
            tenant_id=tenant.id, id=pm_id, account_id=account.id, type=kind
        )
    )
    if request.make_default or not has_default:
        await _set_default(conn, tenant, account.id, pm_id)
    return {"success": True, "id": pm_id}


async def _find(conn: AsyncConnection, tenant: Tenant, pm_id: str) -> PaymentMethodRow:
    row: PaymentMethodRow | None = (
        await conn.execute(
            select(payment_methods).where(
                payment_methods.c.tenant_id == tenant.id, payment_methods.c.id == pm_id
            )
        )
    ).one_or_none()
    if row is None:
        raise not_found(PAYMENT, "payment method", pm_id)
    return row


async def payment_method_type(
    conn: AsyncConnection, tenant: Tenant, account_id: str, pm_id: str, resource: Resource
) -> str:
    """The type of the account's active payment method `pm_id`, which a payment names
    (`paymentMethodId`); refused naming the field when it is not one."""
    kind = await conn.scalar(
        select(payment_methods.c.type).where(
            payment_methods.c.tenant_id == tenant.id,
            payment_methods.c.id == pm_id,
            payment_methods.c.account_id == account_id,
            payment_methods.c.status == PaymentMethodStatus.ACTIVE,
        )
    )
    if kind is None:
        raise invalid_value(
            resource, "paymentMethodId", f"'{pm_id}' is not an active payment method of the account"
        )
    return str(kind)


async def get_payment_method(
    conn: AsyncConnection, tenant: Tenant, pm_id: str
) -> PaymentMethodAnswer:
    return {"success": True, **payment_method_json(await _find(conn, tenant, pm_id))}


async def update_payment_method(
    conn: AsyncConnection, tenant: Tenant, pm_id: str, request: UpdatePaymentMethodRequest
) -> SavedPaymentMethod:
    row = await _find(conn, tenant, pm_id)
    if request.make_default:
        await accounts.lock_for_write(conn, tenant, row.account_id)
        await _hold_default(conn, tenant, row.account_id)
        await _set_default(conn, tenant, row.account_id, pm_id)
    return {"success": True, "id": pm_id}


async def delete_payment_method(
    conn: AsyncConnection, tenant: Tenant, pm_id: str
) -> dict[str, Any]:
    row = await _find(conn, tenant, pm_id)
    await _hold_default(conn, tenant, row.account_id)
    row = await _find(conn, tenant, pm_id)
    if row.is_default:
        raise business_rule(
            PAYMENT,
            "The default payment method of an account cannot be deleted: make another one "
            "the default first.",
        )
    await conn.execute(
        payment_methods.delete().where(
            payment_methods.c.tenant_id == tenant.id, payment_methods.c.id == pm_id
        )
    )
    return {"success": True}


async def _account_rows(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> tuple[str, list[PaymentMethodRow]]:
    account = await accounts.read_for_write(conn, tenant, key)
    rows = (
        await conn.execute(
            select(payment_methods)
            .where(
                payment_methods.c.tenant_id == tenant.id,
                payment_methods.c.account_id == account.id,
            )
            .order_by(payment_methods.c.id)
        )
    ).all()
    return account.id, list(rows)


async def account_payment_methods(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> AccountPaymentMethods:
    """Zuora groups an account's methods by type under `returnedPaymentMethodType`; the SDK
    reads that key as a list of payment methods, so the list is flat here, in id order."""
    _, rows = await _account_rows(conn, tenant, key)
    default = next((row.id for row in rows if row.is_default), None)
    return {
        "success": True,
        "defaultPaymentMethodId": default,
        "returnedPaymentMethodType": [payment_method_json(row) for row in rows],
    }


async def account_default_payment_method(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> PaymentMethodAnswer:
    _, rows = await _account_rows(conn, tenant, key)
    default = next((row for row in rows if row.is_default), None)
    if default is None:
        raise not_found(PAYMENT, "default payment method of account", key)
    return {"success": True, **payment_method_json(default)}
