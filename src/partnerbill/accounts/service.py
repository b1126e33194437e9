"""Accounts: create, update, read; and the read-for-write every document path starts with.

The Reseller Account feature (a tenant setting) governs `partnerAccount`: with it disabled, a
request carrying the flag is refused (`check_partner_flag`) and answers leave out
`partnerAccount`, `lastMetricsUpdate` and `metricsFreshness`. No account of such a tenant is a
partner (disabling is refused while one is), so its metrics are always current.
"""

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, NotRequired, Protocol, TypedDict

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.contacts import AccountContacts, assign_roles
from partnerbill.accounts.schemas import (
    Contact,
    ContactUpdate,
    CreateAccountRequest,
    UpdateAccountRequest,
)
from partnerbill.core.errors import Resource, business_rule, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.json import v1_datetime
from partnerbill.core.locking import for_key_share, for_no_key_update, for_update
from partnerbill.core.locks import bounded_lock_wait, execute_locking
from partnerbill.core.money import trimmed
from partnerbill.core.tables import tenants
from partnerbill.core.tenants import (
    Tenant,
    document_number,
    get_settings,
    next_numbers,
    require_reseller_account,
)
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from partnerbill.metrics.service import MetricsSnapshot
from partnerbill.tables.accounts import AccountRow, AccountStatus, ContactJson, accounts
from partnerbill.tables.billing import DocumentStatus, invoices
from partnerbill.tables.payments import payments
from partnerbill.tables.subscriptions import rate_plans, subscriptions

RECENT_INVOICES = 6
RECENT_PAYMENTS = 6
# The summary lists the account's newest subscriptions, as it does invoices and payments: a
# reseller's account may own 100,000, which the paged subscription list serves instead.
RECENT_SUBSCRIPTIONS = 6
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class WritableAccount:
    """What a document write needs to know about its account."""

    id: str
    account_number: str
    currency: str
    payment_term: str
    partner_account: bool
    status: str
    bill_cycle_day: int  # 0: AutoSet


def document_currency(
    account: WritableAccount, currency: str | None, resource: Resource, where: str = ""
) -> str:
    """The currency of a new document on `account` (`currency` as the request gives it, or the
    account's): refused on a canceled account, and in any other currency than the account's."""
    if account.status == AccountStatus.CANCELED:
        raise business_rule(resource, f"Account '{account.account_number}' is canceled.")
    chosen = currency or account.currency
    if chosen != account.currency:
        raise business_rule(
            resource,
            f"'{where}currency' {chosen} differs from the account's currency {account.currency}.",
        )
    return chosen


class AccountRead(AccountRow, Protocol):
    """An account read for an answer, with its tenant's Reseller Account switch (and its
    metrics, read with `MetricsSnapshot.of`)."""

    reseller_account_enabled: bool


class SummarySubscription(TypedDict):
    """A subscription in the account summary (terms as texts, as Zuora writes them there)."""

    id: str
    subscriptionNumber: str
    status: str  # a SubscriptionStatus
    termType: str
    subscriptionStartDate: date
    termStartDate: date
    termEndDate: date | None
    initialTerm: str | None
    renewalTerm: str | None
    autoRenew: bool
    ratePlans: list[dict[str, str]]


class SummaryInvoice(TypedDict):
    id: str
    invoiceNumber: str
    invoiceDate: date
    dueDate: date
    amount: Decimal
    balance: Decimal
    status: str  # a DocumentStatus


class SummaryPayment(TypedDict):
    id: str
    paymentNumber: str
    paymentType: str
    status: str  # a PaymentStatus
    effectiveDate: date
    amount: Decimal


class Freshness(TypedDict, total=False):
    """`metricsFreshness` (ours), with the Reseller Account feature."""

    metricsFreshness: dict[str, object]


class AccountSummary(TypedDict):
    """GET /v1/accounts/{key}/summary's answer; its basic info carries the account's custom
    fields."""

    success: bool
    basicInfo: dict[str, Any]
    metricsFreshness: NotRequired[dict[str, object]]
    billToContact: ContactJson
    soldToContact: ContactJson
    subscriptions: list[SummarySubscription]
    invoices: list[SummaryInvoice]
    payments: list[SummaryPayment]
    usage: list[object]


class RecentPartnerAccounts:
    """Per process: the partner accounts documents were last written to, by tenant and key, so
    the next write to a hot account need not read it first. Only a guess: the write's own
    statement checks under the account's `FOR KEY SHARE` lock that the account still is what was
    remembered (see `billing.creation._INSERT_INVOICES`), and the caller forgets it otherwise."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._accounts: OrderedDict[tuple[str, str], WritableAccount] = OrderedDict()

    def get(self, tenant: Tenant, key: str) -> WritableAccount | None:
        account = self._accounts.get((tenant.id, key))
        if account is not None:
            self._accounts.move_to_end((tenant.id, key))
        return account

    def remember(self, tenant: Tenant, key: str, account: WritableAccount) -> None:
        self._accounts[(tenant.id, key)] = account
        self._accounts.move_to_end((tenant.id, key))
        if len(self._accounts) > self.capacity:
            self._accounts.popitem(last=False)

    def forget(self, tenant: Tenant, key: str) -> None:
        self._accounts.pop((tenant.id, key), None)


RECENT_PARTNER_ACCOUNTS = RecentPartnerAccounts(capacity=10_000)


def _by_key(statement: Callable[[Any], Select[Any]]) -> tuple[Select[Any], Select[Any]]:
    """`statement` on the account named by `:key` within `:tenant_id`, built once per process
    (building and cache-keying a statement per request is a visible share of a request's time):
    [0] matches the account number only, [1] the id or the number. Pick with `_variant(key)`."""
    tenant = accounts.c.tenant_id == bindparam("tenant_id")
    by_number = accounts.c.account_number == bindparam("key")
    by_id = accounts.c.id == bindparam("key")
    return statement(and_(tenant, by_number)), statement(and_(tenant, or_(by_id, by_number)))


def _variant(key: str) -> int:
    """Only something shaped like an id can be one; the rest need not probe the primary key."""
    return 1 if _ID.match(key) else 0


_FIND = _by_key(lambda match: select(accounts).where(match))
# With the tenant's Reseller Account switch: an account read stays one round trip.
_RESELLER_ACCOUNT_ENABLED = (
    select(tenants.c.reseller_account_enabled)
    .where(tenants.c.id == accounts.c.tenant_id)
    .scalar_subquery()
    .label("reseller_account_enabled")
)
_FIND_WITH_METRICS = _by_key(
    lambda match: metrics.with_metrics(
        select(accounts, _RESELLER_ACCOUNT_ENABLED).where(match), bindparam("tenant_id")
    )
)
_FIND_FOR_UPDATE = _by_key(lambda match: for_update(select(accounts).where(match)))
_FIND_FOR_NO_KEY_UPDATE = _by_key(lambda match: for_no_key_update(select(accounts).where(match)))
_WRITABLE = _by_key(
    lambda match: select(
        accounts.c.id,
        accounts.c.account_number,
        accounts.c.currency,
        accounts.c.payment_term,
        accounts.c.partner_account,
        accounts.c.status,
        accounts.c.bill_cycle_day,
    ).where(match)
)
_LOCK_FOR_WRITE = (for_key_share(_WRITABLE[0]), for_key_share(_WRITABLE[1]))


async def read_for_write(conn: AsyncConnection, tenant: Tenant, key: str) -> WritableAccount:
    """`lock_for_write` without the lock, for a write whose own statement takes it and re-checks
    what it relies on (see `billing.creation.create_invoice`)."""
    return await _writable(conn, _WRITABLE[_variant(key)], tenant, key)


async def lock_for_write(conn: AsyncConnection, tenant: Tenant, key: str) -> WritableAccount:
    """Read the account a document write is for, holding it `FOR KEY SHARE`.

    KEY SHARE is the lock a foreign key to the account takes anyway: it never conflicts with other
    writers or with profile edits. It does conflict with the `FOR UPDATE` a `partnerAccount` switch
    takes, which is what makes the switch safe: no write can act on a stale flag.
    """
    async with bounded_lock_wait(conn, tenant, Resource.ACCOUNT):
        return await _writable(conn, _LOCK_FOR_WRITE[_variant(key)], tenant, key)


_LOCK_MANY_FOR_WRITE = for_key_share(
    select(*_WRITABLE[0].selected_columns)
    .where(
        accounts.c.tenant_id == bindparam("tenant_id"),
        accounts.c.id == func.any(bindparam("ids", type_=ARRAY(String))),
    )
    .order_by(accounts.c.id)
)


async def lock_many_for_write(
    conn: AsyncConnection, tenant: Tenant, account_ids: Iterable[str]
) -> dict[str, WritableAccount]:
    """`lock_for_write` for many accounts by id in one statement, locked in id order. An id
    that is not an account of the tenant is missing from the result."""
    async with bounded_lock_wait(conn, tenant, Resource.ACCOUNT):
        rows = await conn.execute(
            _LOCK_MANY_FOR_WRITE, {"tenant_id": tenant.id, "ids": sorted(set(account_ids))}
        )
    return {row.id: WritableAccount(*row) for row in rows}


async def _writable(
    conn: AsyncConnection, statement: Select[Any], tenant: Tenant, key: str
) -> WritableAccount:
    row = (await conn.execute(statement, {"tenant_id": tenant.id, "key": key})).one_or_none()
    if row is None:
        raise not_found(Resource.ACCOUNT, "account", key)
    return WritableAccount(*row)


def _contact_json(contact: Contact | ContactUpdate, contact_id: str) -> ContactJson:
    return {
        "id": contact_id,
        **contact.model_dump(exclude_none=True, exclude=set(contact.model_extra or {})),
        **contact.custom_fields(),
    }


async def check_partner_flag(
    conn: AsyncConnection, tenant: Tenant, partner_account: bool | None
) -> None:
    """A request that carries `partnerAccount` (either value) needs the Reseller Account feature.
    Checked under the switch's shared interlock (`require_reseller_account`), held to the commit:
    a concurrent disabling waits for this request, then sees its partner account and is refused.
    Only account create, update and an order's new account come here, never a document write."""
    if partner_account is not None:
        await require_reseller_account(conn, tenant)


async def create_account(
    conn: AsyncConnection, tenant: Tenant, request: CreateAccountRequest
) -> dict[str, Any]:
    await check_partner_flag(conn, tenant, request.partner_account)
    custom_fields = request.custom_fields()
    bill_to = _contact_json(request.bill_to_contact, new_id())
    sold_to = (
        _contact_json(request.sold_to_contact, new_id())
        if request.sold_to_contact is not None
        else bill_to
    )
    account_number = request.account_number
    if account_number is None:
        (number,) = await next_numbers(conn, tenant, "account_number", 1)
        account_number = document_number("A", number)
    account_id = new_id()
    bill_cycle_day = request.bill_cycle_day or 0
    values = {
        "tenant_id": tenant.id,
        "id": account_id,
        "account_number": account_number,
        "name": request.name,
        "currency": request.currency,
        "bill_cycle_day": bill_cycle_day,
        "bcd_setting_option": "AutoSet" if bill_cycle_day == 0 else "ManualSet",
        "bill_to_contact": bill_to,
        "sold_to_contact": sold_to,
        "custom_fields": custom_fields,
        **_profile_values(request),
    }
    try:
        await conn.execute(insert(accounts).values(**values))
    except IntegrityError as exc:  # the transaction is lost; the request fails whole
        raise business_rule(
            Resource.ACCOUNT, f"An account with account number '{account_number}' already exists."
        ) from exc
    await metrics.create_metrics(
        conn, tenant, account_id, partner_account=bool(request.partner_account)
    )
    return {
        "success": True,
        "accountId": account_id,
        "accountNumber": account_number,
        "billToContactId": bill_to["id"],
        "soldToContactId": sold_to["id"],
    }


def _profile_values(request: CreateAccountRequest | UpdateAccountRequest) -> dict[str, Any]:
    names = (
        "payment_term",
        "auto_pay",
        "batch",
        "notes",
        "crm_id",
        "sales_rep",
        "purchase_order_number",
        "customer_service_rep_name",
        "invoice_delivery_prefs_email",
        "invoice_delivery_prefs_print",
        "partner_account",
    )
    return {name: getattr(request, name) for name in names if getattr(request, name) is not None}


async def update_account(
    conn: AsyncConnection, tenant: Tenant, key: str, request: UpdateAccountRequest
) -> None:
    await check_partner_flag(conn, tenant, request.partner_account)
    custom_fields = request.custom_fields()
    # FOR UPDATE only for a flag switch: it must wait out in-flight document writes. A profile edit
    # takes the weaker row lock of a plain UPDATE, which never blocks document writers; a contact
    # change takes that lock before it reads the contacts (`accounts.contacts`).
    if request.partner_account is not None:
        query = _FIND_FOR_UPDATE[_variant(key)]
    elif request.changes_contacts():
        query = _FIND_FOR_NO_KEY_UPDATE[_variant(key)]
    else:
        query = _FIND[_variant(key)]
    found = await execute_locking(
        conn, tenant, query, {"tenant_id": tenant.id, "key": key}, Resource.ACCOUNT
    )
    current: AccountRow | None = found.one_or_none()
    if current is None:
        raise not_found(Resource.ACCOUNT, "account", key)
    values: dict[str, Any] = _profile_values(request)
    if request.name is not None:
        values["name"] = request.name
    if request.bill_cycle_day is not None:
        values["bill_cycle_day"] = request.bill_cycle_day
        values["bcd_setting_option"] = "AutoSet" if request.bill_cycle_day == 0 else "ManualSet"
    if custom_fields:
        values["custom_fields"] = {**current.custom_fields, **custom_fields}
    bill_to, sold_to = current.bill_to_contact, current.sold_to_contact
    if request.bill_to_contact_id is not None or request.sold_to_contact_id is not None:
        roles = {
            "billToContactId": request.bill_to_contact_id,
            "soldToContactId": request.sold_to_contact_id,
        }
        account = AccountContacts(current.id, current.account_number, bill_to, sold_to)
        values |= await assign_roles(conn, tenant, account, roles, Resource.ACCOUNT)
        bill_to, sold_to = values["bill_to_contact"], values["sold_to_contact"]
    # An account created without a sold-to contact uses its bill-to contact for both (one id):
    # an edit of that contact shows on both, an edit of the sold-to alone splits it off.
    shared = bill_to["id"] == sold_to["id"]
    if request.bill_to_contact is not None:
        values["bill_to_contact"] = {
            **bill_to,
            **_contact_json(request.bill_to_contact, bill_to["id"]),
        }
        if shared and request.sold_to_contact is None:
            values["sold_to_contact"] = values["bill_to_contact"]
    if request.sold_to_contact is not None:
        contact_id = new_id() if shared else sold_to["id"]
        values["sold_to_contact"] = {
            **sold_to,
            **_contact_json(request.sold_to_contact, contact_id),
        }
    if values:
        values["updated_at"] = func.now()
        # A plain UPDATE queues behind a flag switch's FOR UPDATE: bounded like any lock wait.
        await execute_locking(
            conn,
            tenant,
            update(accounts)
            .where(accounts.c.tenant_id == tenant.id, accounts.c.id == current.id)
            .values(**values),
            resource=Resource.ACCOUNT,
        )
    if request.partner_account is not None and request.partner_account != current.partner_account:
        if request.partner_account:
            await metrics.make_deferred(conn, tenant, current.id)
        else:
            await metrics.make_synchronous(conn, tenant, current.id)


async def _find(conn: AsyncConnection, tenant: Tenant, key: str) -> AccountRow:
    row: AccountRow | None = (
        await conn.execute(_FIND[_variant(key)], {"tenant_id": tenant.id, "key": key})
    ).one_or_none()
    if row is None:
        raise not_found(Resource.ACCOUNT, "account", key)
    return row


async def _find_with_metrics(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> tuple[AccountRead, MetricsSnapshot]:
    row = (
        await conn.execute(_FIND_WITH_METRICS[_variant(key)], {"tenant_id": tenant.id, "key": key})
    ).one_or_none()
    if row is None:
        raise not_found(Resource.ACCOUNT, "account", key)
    return row, MetricsSnapshot.of(row)


def _reseller_fields(account: AccountRead, snapshot: MetricsSnapshot) -> dict[str, Any]:
    """`partnerAccount` and `lastMetricsUpdate`, or nothing when the feature is disabled."""
    if not account.reseller_account_enabled:
        return {}
    return {
        "partnerAccount": account.partner_account,
        # Null while the account is not a partner: its metrics are always current then.
        "lastMetricsUpdate": (
            v1_datetime(snapshot.last_metrics_update) if account.partner_account else None
        ),
    }


def _freshness(account: AccountRead, snapshot: MetricsSnapshot) -> Freshness:
    """`metricsFreshness` (ours), part of the Reseller Account feature's answer too."""
    if not account.reseller_account_enabled:
        return {}
    return {"metricsFreshness": snapshot.freshness_json()}


def _basic_info(account: AccountRead, snapshot: MetricsSnapshot) -> dict[str, Any]:
    return {
        "id": account.id,
        "accountNumber": account.account_number,
        "name": account.name,
        "status": account.status,
        "batch": account.batch,
        "crmId": account.crm_id,
        "notes": account.notes,
        "salesRep": account.sales_rep,
        "purchaseOrderNumber": account.purchase_order_number,
        "customerServiceRepName": account.customer_service_rep_name,
        **_reseller_fields(account, snapshot),
        **account.custom_fields,
    }


async def get_account(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    account, snapshot = await _find_with_metrics(conn, tenant, key)
    m = snapshot.metrics
    return {
        "success": True,
        "basicInfo": _basic_info(account, snapshot),
        "billingAndPayment": {
            "billCycleDay": account.bill_cycle_day,
            "bcdSettingOption": account.bcd_setting_option,
            "currency": account.currency,
            "paymentTerm": account.payment_term,
            "autoPay": account.auto_pay,
            "invoiceDeliveryPrefsEmail": account.invoice_delivery_prefs_email,
            "invoiceDeliveryPrefsPrint": account.invoice_delivery_prefs_print,
            "additionalEmailAddresses": [],
        },
        "metrics": {
            "balance": m.balance,
            "currency": account.currency,
            "contractedMrr": trimmed(m.contracted_mrr),
            "creditBalance": m.credit_balance,
            "reservedPaymentAmount": m.reserved_payment_amount,
            "totalDebitMemoBalance": m.total_debit_memo_balance,
            "totalInvoiceBalance": m.total_invoice_balance,
            "unappliedCreditMemoAmount": m.unapplied_credit_memo_amount,
            "unappliedPaymentAmount": m.unapplied_payment_amount,
        },
        **_freshness(account, snapshot),
        "billToContact": account.bill_to_contact,
        "soldToContact": account.sold_to_contact,
    }


async def get_account_summary(conn: AsyncConnection, tenant: Tenant, key: str) -> AccountSummary:
    account, snapshot = await _find_with_metrics(conn, tenant, key)
    recent = await conn.execute(
        select(
            invoices.c.id,
            invoices.c.invoice_number,
            invoices.c.invoice_date,
            invoices.c.due_date,
            invoices.c.amount,
            invoices.c.balance,
            invoices.c.status,
        )
        .where(
            invoices.c.tenant_id == tenant.id,
            invoices.c.account_id == account.id,
            invoices.c.status == DocumentStatus.POSTED,
        )
        .order_by(invoices.c.invoice_date.desc(), invoices.c.id.desc())
        .limit(RECENT_INVOICES)
    )
    m = snapshot.metrics
    return {
        "success": True,
        "basicInfo": {
            **_basic_info(account, snapshot),
            "currency": account.currency,
            "billCycleDay": account.bill_cycle_day,
            "autoPay": account.auto_pay,
            "balance": format(m.balance, "f"),
            "lastInvoiceDate": m.last_invoice_date,
            "lastPaymentAmount": (
                None if m.last_payment_amount is None else format(m.last_payment_amount, "f")
            ),
            "lastPaymentDate": m.last_payment_date,
            "defaultPaymentMethod": None,
        },
        **_freshness(account, snapshot),
        "billToContact": account.bill_to_contact,
        "soldToContact": account.sold_to_contact,
        "subscriptions": await _recent_subscriptions(conn, tenant, account.id),
        "invoices": [
            {
                "id": row.id,
                "invoiceNumber": row.invoice_number,
                "invoiceDate": row.invoice_date,
                "dueDate": row.due_date,
                "amount": row.amount,
                "balance": row.balance,
                "status": row.status,
            }
            for row in recent
        ],
        "payments": [
            {
                "id": row.id,
                "paymentNumber": row.payment_number,
                "paymentType": row.type,
                "status": row.status,
                "effectiveDate": row.effective_date,
                "amount": row.amount,
            }
            for row in await conn.execute(
                select(payments)
                .where(payments.c.tenant_id == tenant.id, payments.c.account_id == account.id)
                .order_by(payments.c.effective_date.desc(), payments.c.created_at.desc())
                .limit(RECENT_PAYMENTS)
            )
        ],
        "usage": [],
    }


async def _recent_subscriptions(
    conn: AsyncConnection, tenant: Tenant, account_id: str
) -> list[SummarySubscription]:
    """The summary's subscriptions owned by the account, newest first, with their rate plans
    that are not removed (terms as texts, as Zuora writes them there)."""
    recent = (
        await conn.execute(
            select(subscriptions)
            .where(subscriptions.c.tenant_id == tenant.id, subscriptions.c.account_id == account_id)
            .order_by(subscriptions.c.created_at.desc(), subscriptions.c.id.desc())
            .limit(RECENT_SUBSCRIPTIONS)
        )
    ).all()
    plans: dict[str, list[dict[str, str]]] = {row.id: [] for row in recent}
    for plan in await conn.execute(
        select(rate_plans.c.subscription_id, rate_plans.c.product_name, rate_plans.c.name)
        .where(
            rate_plans.c.tenant_id == tenant.id,
            rate_plans.c.subscription_id.in_(list(plans)),
            rate_plans.c.last_change_type != "Remove",
        )
        .order_by(rate_plans.c.created_at, rate_plans.c.id)
    ):
        plans[plan.subscription_id].append(
            {"productName": plan.product_name, "ratePlanName": plan.name}
        )
    return [
        {
            "id": row.version_id,
            "subscriptionNumber": row.subscription_number,
            "status": row.status,
            "termType": row.term_type,
            "subscriptionStartDate": row.contract_effective_date,
            "termStartDate": row.term_start_date,
            "termEndDate": row.term_end_date,
            "initialTerm": None if row.initial_term is None else str(row.initial_term),
            "renewalTerm": None if row.renewal_term is None else str(row.renewal_term),
            "autoRenew": row.auto_renew,
            "ratePlans": plans[row.id],
        }
        for row in recent
    ]


async def refresh_metrics(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    """On-demand refresh of one account (ours, not Zuora's): folds its pending changes now."""
    account = await _find(conn, tenant, key)
    result = await metric_refresh.refresh_account(conn, tenant, account.id, wait=True)
    assert result is not None  # wait=True never skips
    answer: dict[str, Any] = {
        "success": True,
        "accountId": account.id,
        "accountNumber": account.account_number,
        "foldedChanges": result.folded_changes,
        "durationMs": round(result.duration_seconds * 1000, 3),
    }
    if (await get_settings(conn, tenant)).reseller_account_enabled:
        answer["lastMetricsUpdate"] = v1_datetime(result.refreshed_at)
    return answer
