"""Creating standalone invoices, one (`create_invoice`) or a batch (`create_invoices`).

An invoice is created Draft or Posted. A partner account's single invoices are inserted by a
group commit (`billing/group_commit.py`): concurrent requests of one process share a statement
that also logs their metric changes; a batch and a non-partner account's invoice are inserted in
the request's transaction, under the account's `FOR KEY SHARE` (`core/locking.py`). Numbers come
from the tenant's invoice sequence unless the request names one.
"""

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.schemas import due_date
from partnerbill.accounts.service import (
    RECENT_PARTNER_ACCOUNTS,
    WritableAccount,
    document_currency,
    lock_for_write,
    read_for_write,
)
from partnerbill.billing.group_commit import GroupCommit, Written
from partnerbill.billing.schemas import CreateInvoiceItem, CreateInvoiceRequest
from partnerbill.billing.views import InvoiceJson, invoice_json
from partnerbill.catalog.pricing import UNIT_PRICE_MAX_DECIMALS
from partnerbill.core.db import autocommit, in_request_transaction, transaction
from partnerbill.core.errors import (
    Category,
    Resource,
    ZuoraError,
    business_rule,
    invalid_value,
    missing_field,
)
from partnerbill.core.ids import new_id
from partnerbill.core.json import dumps
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.money import (
    MAX_ABS_AMOUNT,
    ZERO,
    amount_problem,
    decimal_places,
)
from partnerbill.core.recordsets import execute_values
from partnerbill.core.tenants import Tenant, document_number, next_numbers, sequence_name
from partnerbill.metrics.service import (
    LOG_CHANGES,
    MetricsDelta,
    change_rows,
    changed_accounts,
    changes_of_writes,
    touch,
)
from partnerbill.settings import get_settings
from partnerbill.tables.accounts import AccountStatus
from partnerbill.tables.billing import (
    DocumentStatus,
    InvoiceItemValues,
    InvoiceRow,
    invoice_items,
    invoices,
)
from partnerbill.tables.metrics import metrics_changes


@dataclass(slots=True)
class PreparedInvoice:
    """A validated invoice, ready to insert."""

    account: WritableAccount
    row: InvoiceRow
    items: list[InvoiceItemValues]


@dataclass(slots=True)
class InvoiceOutcome:
    """One invoice of a create request: the created invoice, or why it was not created."""

    invoice: InvoiceJson | None = None
    error: ZuoraError | None = None


def _item_values(
    tenant: Tenant,
    invoice_id: str,
    currency: str,
    position: int,
    item: CreateInvoiceItem,
    where: str,
) -> InvoiceItemValues:
    problem = amount_problem(item.amount, currency)
    if problem:
        raise invalid_value(Resource.INVOICE_ITEM, f"{where}.amount", problem)
    unit_price = item.unit_price
    if unit_price is None:
        unit_price = item.amount / item.quantity
        if abs(unit_price) >= MAX_ABS_AMOUNT:
            raise invalid_value(
                Resource.INVOICE_ITEM,
                f"{where}.quantity",
                f"gives a unit price of {unit_price:f}; a price is less than {MAX_ABS_AMOUNT:f}.",
            )
        unit_price = unit_price.quantize(Decimal(1).scaleb(-UNIT_PRICE_MAX_DECIMALS))
    elif decimal_places(unit_price) > UNIT_PRICE_MAX_DECIMALS:
        raise invalid_value(
            Resource.INVOICE_ITEM,
            f"{where}.unitPrice",
            f"has more than {UNIT_PRICE_MAX_DECIMALS} decimal places",
        )
    return {
        "tenant_id": tenant.id,
        "id": new_id(),
        "invoice_id": invoice_id,
        "line_number": position + 1,
        "charge_name": item.charge_name,
        "description": item.description,
        "sku": item.sku,
        "uom": item.uom,
        "product_rate_plan_charge_id": item.product_rate_plan_charge_id,
        "quantity": item.quantity,
        "unit_price": unit_price,
        "amount": item.amount,
        "balance": item.amount,
        "service_start_date": item.service_start_date,
        "service_end_date": item.service_end_date or item.service_start_date,
        "charge_date": item.charge_date,
        "tax_code": item.tax_code,
        "tax_mode": item.tax_mode,
        "custom_fields": item.custom_fields(),
    }


def _account_key(request: CreateInvoiceRequest, where: str) -> str:
    key = request.account_id or request.account_number
    if key is None:
        raise missing_field(Resource.INVOICE, f"{where}accountId")
    return key


def _prepare(
    tenant: Tenant,
    request: CreateInvoiceRequest,
    account: WritableAccount,
    now: datetime,
    where: str,
) -> PreparedInvoice:
    if (
        request.account_id
        and request.account_number
        and (account.id != request.account_id or account.account_number != request.account_number)
    ):
        raise invalid_value(
            Resource.INVOICE, f"{where}accountNumber", "names another account than accountId."
        )
    currency = document_currency(account, request.currency, Resource.INVOICE, where)
    invoice_id = new_id()
    items = [
        _item_values(tenant, invoice_id, currency, i, item, f"{where}invoiceItems[{i}]")
        for i, item in enumerate(request.invoice_items)
    ]
    amount = sum((item["amount"] for item in items), ZERO)
    payment_term = request.payment_term or account.payment_term
    due = request.due_date or due_date(request.invoice_date, payment_term, Resource.INVOICE)
    status = DocumentStatus(request.status)
    row: InvoiceRow = {
        "tenant_id": tenant.id,
        "id": invoice_id,
        "invoice_number": request.invoice_number,
        "account_id": account.id,
        "status": status,
        "source_type": "Standalone",
        "currency": currency,
        "invoice_date": request.invoice_date,
        "due_date": due,
        "payment_term": payment_term,
        "amount": amount,
        "balance": amount,
        "auto_pay": request.auto_pay,
        "comments": request.comments,
        "custom_fields": request.custom_fields(),
        "posted_date": now if status == DocumentStatus.POSTED else None,
        "created_at": now,
        "updated_at": now,
    }
    return PreparedInvoice(account=account, row=row, items=items)


async def create_invoice(tenant: Tenant, request: CreateInvoiceRequest) -> InvoiceJson:
    """`POST /v1/invoices`: one invoice, all or nothing.

    On a partner account the whole write is one statement on an autocommit connection, no
    transaction around it: the path a reseller's parallel clients hammer. The account comes from
    `RECENT_PARTNER_ACCOUNTS` or an unlocked read; the statement takes the account's `FOR KEY
    SHARE` lock itself and inserts nothing unless the account still is what the invoice was
    prepared with, a partner account and not canceled. If not (a flag switch, a cancellation or a
    profile edit won the race, or the remembered account was stale) the request runs the general
    way: `create_invoices` in one transaction, as for any other account. The statement carries
    the other invoices the process is writing for the tenant at that moment (`group_commit`).
    """
    key = _account_key(request, "")
    remembered = RECENT_PARTNER_ACCOUNTS.get(tenant, key)
    account = remembered or await _read_account(tenant, key)
    if account.partner_account and account.status != AccountStatus.CANCELED:
        try:
            invoice = _prepare(tenant, request, account, datetime.now(UTC), "")
            if invoice.row["invoice_number"] is not None:
                async with autocommit() as conn:
                    await _reject_taken_numbers(
                        conn, tenant, [(0, invoice)], [InvoiceOutcome()], True
                    )
            inserted = await _insert_partner_invoice(tenant, invoice)
        except ZuoraError:
            if remembered is None:
                raise
            inserted = False  # perhaps judged on a stale account: the general way decides
        if inserted:
            RECENT_PARTNER_ACCOUNTS.remember(tenant, key, account)
            return invoice_json(invoice.row, account.account_number)
    RECENT_PARTNER_ACCOUNTS.forget(tenant, key)
    async with transaction() as conn:
        (outcome,) = await create_invoices(conn, tenant, [request], all_or_nothing=True)
    assert outcome.invoice is not None
    return outcome.invoice


async def _read_account(tenant: Tenant, key: str) -> WritableAccount:
    async with autocommit() as conn:
        return await read_for_write(conn, tenant, key)


async def _insert_partner_invoice(tenant: Tenant, invoice: PreparedInvoice) -> bool:
    """The guarded insert of one partner-account invoice, with others of the process where
    group commit is on and the request has no transaction of its own."""
    if get_settings().group_commit and not in_request_transaction():
        written = await PARTNER_INVOICES.write(tenant, invoice)
        if written is not Written.ALONE:
            return written is Written.INSERTED
    async with _guarded_connection() as conn:
        return await _insert_guarded(conn, tenant, [invoice])


def _guarded_connection() -> AbstractAsyncContextManager[AsyncConnection]:
    """Where the guarded insert runs: autocommit for its one statement; a transaction on a
    distributed database, whose form is several statements (`_insert_routable`)."""
    return transaction() if get_settings().distributed else autocommit()


async def _insert_guarded(
    conn: AsyncConnection, tenant: Tenant, prepared: list[PreparedInvoice]
) -> bool:
    return await _insert(conn, tenant, prepared, guarded=True)


PARTNER_INVOICES = GroupCommit(_insert_guarded, _guarded_connection)


async def create_invoices(
    conn: AsyncConnection,
    tenant: Tenant,
    requests: Sequence[CreateInvoiceRequest | ZuoraError],
    *,
    all_or_nothing: bool,
    batch: bool = False,
) -> list[InvoiceOutcome]:
    """Create standalone invoices in the caller's transaction.

    `all_or_nothing`: the first invalid invoice raises and nothing is written. Otherwise invalid
    invoices are reported in their outcome and the valid ones are created; an invoice already
    refused by validation comes as its error. `batch`: error messages name the invoice
    (`invoices[3].…`).
    """
    now = datetime.now(UTC)
    accounts_by_key: dict[str, WritableAccount | ZuoraError] = {}
    outcomes = [InvoiceOutcome() for _ in requests]
    prepared: list[tuple[int, PreparedInvoice]] = []
    for index, request in enumerate(requests):
        where = f"invoices[{index}]." if batch else ""
        try:
            if isinstance(request, ZuoraError):
                raise request
            key = _account_key(request, where)
            if key not in accounts_by_key:
                async with bounded_lock_wait(conn, tenant, Resource.INVOICE):
                    try:
                        accounts_by_key[key] = await lock_for_write(conn, tenant, key)
                    except ZuoraError as error:
                        accounts_by_key[key] = error
            account = accounts_by_key[key]
            if isinstance(account, ZuoraError):
                raise account
            prepared.append((index, _prepare(tenant, request, account, now, where)))
        except ZuoraError as error:
            # A lock competition aborted the transaction: it fails the whole request.
            if all_or_nothing or error.category is Category.LOCK_COMPETITION:
                raise
            outcomes[index].error = error
    await _reject_taken_numbers(conn, tenant, prepared, outcomes, all_or_nothing)
    prepared = [(i, p) for i, p in prepared if outcomes[i].error is None]
    if all_or_nothing:
        await _insert(conn, tenant, [p for _, p in prepared])
        written = prepared
    else:
        written = await _insert_each_that_fits(conn, tenant, prepared, outcomes)
    await touch(conn, tenant, _posting_deltas([p for _, p in written]), logged=True)
    for index, invoice in written:
        outcomes[index].invoice = invoice_json(invoice.row, invoice.account.account_number)
    return outcomes


async def _reject_taken_numbers(
    conn: AsyncConnection,
    tenant: Tenant,
    prepared: list[tuple[int, PreparedInvoice]],
    outcomes: list[InvoiceOutcome],
    all_or_nothing: bool,
) -> None:
    chosen: dict[str, int] = {}
    for index, invoice in prepared:
        number = invoice.row["invoice_number"]
        if number is None:
            continue
        if number in chosen:
            error = business_rule(
                Resource.INVOICE, f"Invoice number '{number}' appears twice in the request."
            )
            if all_or_nothing:
                raise error
            outcomes[index].error = error
            continue
        chosen[number] = index
    if not chosen:
        return
    taken = await conn.scalars(
        select(invoices.c.invoice_number).where(
            invoices.c.tenant_id == tenant.id, invoices.c.invoice_number.in_(list(chosen))
        )
    )
    for number in taken:
        error = business_rule(Resource.INVOICE, f"Invoice number '{number}' already exists.")
        if all_or_nothing:
            raise error
        outcomes[chosen[number]].error = error


# Invoices (numbered from the tenant's sequence where the request gave no number, in request
# order), their items and the partner owners' change rows in one statement: one round trip, and
# one statement text whatever the batch size, so SQLAlchemy compiles it once and PostgreSQL
# prepares it once per connection. The rows arrive as one JSON array per table (money as exact
# JSON numbers): one parameter to encode instead of an array per column, which cost a tenth of a
# request. `guarded_accounts` (the autocommit path of `create_invoice`) are locked `FOR KEY
# SHARE` here, and nothing is inserted unless each is still a partner account, not canceled, and
# has the number, currency and payment term the invoice was prepared with.
_INSERT_INVOICES = text(
    f"""
WITH guard AS (
    SELECT a.id
    FROM accounts a
    JOIN jsonb_to_recordset(CAST(:guarded_accounts AS jsonb))
         AS g(id text, account_number text, currency text, payment_term text)
      ON a.id = g.id AND a.account_number = g.account_number AND a.currency = g.currency
     AND a.payment_term = g.payment_term
    WHERE a.tenant_id = :tenant_id AND a.partner_account AND a.status <> '{AccountStatus.CANCELED}'
    FOR KEY SHARE OF a
), new_invoices AS (
    INSERT INTO invoices (tenant_id, id, invoice_number, account_id, status, source_type, currency,
                          invoice_date, due_date, payment_term, amount, balance, auto_pay,
                          comments, custom_fields, posted_date, created_at, updated_at)
    SELECT :tenant_id, v.id,
           COALESCE(v.invoice_number,
                    'INV' || lpad(nextval(CAST(:sequence AS regclass))::text, 8, '0')),
           v.account_id, v.status, 'Standalone', v.currency, v.invoice_date, v.due_date,
           v.payment_term, v.amount, v.amount, v.auto_pay, v.comments, v.custom_fields,
           CASE WHEN v.status = 'Posted' THEN v.created_at END, v.created_at, v.created_at
    FROM jsonb_to_recordset(CAST(:invoices AS jsonb))
         AS v(position integer, id text, invoice_number text, account_id text, status text,
              currency text, invoice_date date, due_date date, payment_term text, amount numeric,
              auto_pay boolean, comments text, custom_fields jsonb, created_at timestamptz)
    WHERE (SELECT count(*) FROM guard) = jsonb_array_length(CAST(:guarded_accounts AS jsonb))
    ORDER BY v.position
    RETURNING id, invoice_number
), new_items AS (
    INSERT INTO invoice_items (tenant_id, id, invoice_id, line_number, charge_name, description,
                               sku, uom, product_rate_plan_charge_id, quantity, unit_price, amount,
                               balance, service_start_date, service_end_date, charge_date,
                               tax_code, tax_mode, custom_fields)
    SELECT :tenant_id, v.id, v.invoice_id, v.line_number, v.charge_name, v.description, v.sku,
           v.uom, v.product_rate_plan_charge_id, v.quantity, v.unit_price, v.amount, v.amount,
           v.service_start_date, v.service_end_date, v.charge_date, v.tax_code, v.tax_mode,
           v.custom_fields
    FROM jsonb_to_recordset(CAST(:items AS jsonb))
         AS v(id text, invoice_id text, line_number integer, charge_name text, description text,
              sku text, uom text, product_rate_plan_charge_id text, quantity numeric,
              unit_price numeric, amount numeric, service_start_date date,
              service_end_date date, charge_date timestamp, tax_code text, tax_mode text,
              custom_fields jsonb)
    WHERE v.invoice_id IN (SELECT id FROM new_invoices)
), changes AS ({LOG_CHANGES} WHERE EXISTS (SELECT FROM new_invoices))
SELECT id, invoice_number FROM new_invoices
"""
)


_INVOICE_FIELDS = (
    "id",
    "invoice_number",
    "account_id",
    "status",
    "currency",
    "invoice_date",
    "due_date",
    "payment_term",
    "amount",
    "auto_pay",
    "comments",
    "custom_fields",
    "created_at",
)


def _insert_parameters(
    tenant: Tenant, prepared: Sequence[PreparedInvoice], guarded: bool
) -> dict[str, object]:
    rows: list[Mapping[str, object]] = [p.row for p in prepared]
    return {
        "tenant_id": tenant.id,
        "sequence": sequence_name(tenant, "invoice_number"),
        "invoices": dumps(
            [
                {"position": position, **{name: row[name] for name in _INVOICE_FIELDS}}
                for position, row in enumerate(rows)
            ]
        ).decode(),
        "items": dumps([item for p in prepared for item in p.items]).decode(),
        # Guarded: single-invoice requests, perhaps several of a group commit, one change each.
        "changed_accounts": changes_of_writes(_posting_deltas([p]) for p in prepared)
        if guarded
        else changed_accounts(_posting_deltas(prepared)),
        # Each distinct account as each invoice saw it: two requests of one group commit may
        # have seen one account before and after an edit, and then the guard declines both.
        "guarded_accounts": dumps(
            [
                {"id": id_, "account_number": number, "currency": currency, "payment_term": term}
                for id_, number, currency, term in dict.fromkeys(
                    (
                        p.account.id,
                        p.account.account_number,
                        p.account.currency,
                        p.account.payment_term,
                    )
                    for p in prepared
                )
                if guarded
            ]
        ).decode(),
    }


_GUARDED_ACCOUNTS = text(
    "SELECT id, account_number, currency, payment_term FROM accounts "
    "WHERE tenant_id = :tenant_id AND id = ANY(:ids) AND partner_account "
    f"AND status <> '{AccountStatus.CANCELED}' FOR KEY SHARE"
)


async def _insert_routable(
    conn: AsyncConnection, tenant: Tenant, prepared: Sequence[PreparedInvoice], guarded: bool
) -> dict[str, str]:
    """`_INSERT_INVOICES` as statements a database distributed by tenant routes to the tenant's
    shard and commits in one phase (in the caller's transaction): the guard, the numbers from
    the tenant's sequence (which lives on the coordinator, so never inside a statement sent to a
    shard), then multi-row VALUES of the invoices, their items and the change rows. The
    invoices' numbers by id; none when the guard declined."""
    if guarded:
        seen = {
            (p.account.id, p.account.account_number, p.account.currency, p.account.payment_term)
            for p in prepared
        }
        ids = sorted({account_id for account_id, _, _, _ in seen})
        holding = await conn.execute(_GUARDED_ACCOUNTS, {"tenant_id": tenant.id, "ids": ids})
        if not seen <= {tuple(row) for row in holding}:
            return {}
    unnumbered = [p.row["id"] for p in prepared if p.row["invoice_number"] is None]
    drawn = (
        await next_numbers(conn, tenant, "invoice_number", len(unnumbered)) if unnumbered else []
    )
    numbers = dict(zip(unnumbered, (document_number("INV", n) for n in drawn), strict=True))
    numbers |= {
        p.row["id"]: number for p in prepared if (number := p.row["invoice_number"]) is not None
    }
    numbered = [p.row | {"invoice_number": numbers[p.row["id"]]} for p in prepared]
    await execute_values(conn, invoices, tenant.id, numbered)
    await execute_values(conn, invoice_items, tenant.id, [i for p in prepared for i in p.items])
    writes = [_posting_deltas([p]) for p in prepared] if guarded else [_posting_deltas(prepared)]
    await execute_values(conn, metrics_changes, tenant.id, change_rows(tenant, writes))
    return numbers


async def _insert(
    conn: AsyncConnection,
    tenant: Tenant,
    prepared: Sequence[PreparedInvoice],
    *,
    guarded: bool = False,
) -> bool:
    """Insert `prepared` (numbering the unnumbered) and log their partner owners' changes.
    `guarded`: see `_INSERT_INVOICES`; False when the guard stopped the insert."""
    if not prepared:
        return True
    try:
        if get_settings().distributed:
            numbers = await _insert_routable(conn, tenant, prepared, guarded)
        else:
            numbered = await conn.execute(
                _INSERT_INVOICES, _insert_parameters(tenant, prepared, guarded)
            )
            numbers = {row.id: row.invoice_number for row in numbered}
    except IntegrityError as exc:
        # Lost a race for a chosen invoice number (the pre-check saw it free).
        raise business_rule(
            Resource.INVOICE, "An invoice number of the request was taken meanwhile; retry."
        ) from exc
    if not numbers:
        return False
    for invoice in prepared:
        invoice.row["invoice_number"] = numbers[invoice.row["id"]]
    return True


async def _insert_in_savepoint(
    conn: AsyncConnection, tenant: Tenant, prepared: Sequence[PreparedInvoice]
) -> None:
    """`_insert` that leaves the transaction usable when it fails."""
    savepoint = await conn.begin_nested()
    try:
        await _insert(conn, tenant, prepared)
    except ZuoraError:
        await savepoint.rollback()
        raise
    await savepoint.commit()


async def _insert_each_that_fits(
    conn: AsyncConnection,
    tenant: Tenant,
    prepared: list[tuple[int, PreparedInvoice]],
    outcomes: list[InvoiceOutcome],
) -> list[tuple[int, PreparedInvoice]]:
    """All at once; if that fails, one savepoint each so one bad invoice fails alone."""
    try:
        await _insert_in_savepoint(conn, tenant, [p for _, p in prepared])
        return prepared
    except ZuoraError:
        pass
    written = []
    for index, invoice in prepared:
        try:
            await _insert_in_savepoint(conn, tenant, [invoice])
            written.append((index, invoice))
        except ZuoraError as error:
            outcomes[index].error = error
    return written


def _posting_deltas(prepared: Sequence[PreparedInvoice]) -> list[MetricsDelta]:
    return [
        MetricsDelta(
            account_id=p.account.id,
            partner_account=p.account.partner_account,
            total_invoice_balance=p.row["balance"],
            posted_invoice_date=p.row["invoice_date"],
        )
        for p in prepared
        if p.row["status"] == DocumentStatus.POSTED
    ]


def batch_problem(count: int, item_count: int, limit: int) -> ZuoraError | None:
    """The batch is over the tenant's limits (Zuora: 50 invoices, 1,000 items per request)."""
    item_limit = limit * 20
    if count > limit:
        return ZuoraError(
            Resource.INVOICE,
            Category.LIMIT_EXCEEDED,
            f"'invoices': at most {limit} invoices per request (tenant setting "
            f"invoiceBatchLimit); got {count}.",
        )
    if item_count > item_limit:
        return ZuoraError(
            Resource.INVOICE,
            Category.LIMIT_EXCEEDED,
            f"'invoices': at most {item_limit} invoice items per request; got {item_count}.",
        )
    return None
