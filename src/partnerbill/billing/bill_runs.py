"""Bill runs: for one account (its subscriptions as invoice owner) or for all accounts of some
bill cycle days and batches. A run is a job: Pending → Processing → Completed (or Error); then
post (Completed → Posted) or cancel (→ Canceled, its draft invoices canceled and the charges'
charged-through dates put back).

One subscription never fails the run: a subscription that cannot be billed (bad stored data, a
lock held past the tenant's `lockWaitMs`) is rolled back alone and recorded in `bill_run_errors`
with its invoice owner; the others are billed and the run ends Completed (or Posted). The run
reads back `numberOfErrors` and the first `ERRORS_SHOWN` of `errors[]`. Error is left for a run
that failed as a whole (its billing rolled back, nothing invoiced).
"""

from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Annotated, Any, Literal, TypedDict, cast

from pydantic import Field, model_validator
from sqlalchemy import Row, and_, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import lock_for_write, lock_many_for_write
from partnerbill.billing.engine import BATCH_SUBSCRIPTIONS, BillingError, bill
from partnerbill.catalog.enums import ChargeType
from partnerbill.core.db import transaction
from partnerbill.core.errors import (
    Category,
    Resource,
    ZuoraError,
    business_rule,
    error_code,
    invalid_value,
    not_found,
)
from partnerbill.core.ids import new_id
from partnerbill.core.input_policy import Key
from partnerbill.core.jobs import defer_in_transaction
from partnerbill.core.json import v1_datetime
from partnerbill.core.locking import lock_row
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.schemas import CamelModel, Date, Flag
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import (
    BillRunErrorRow,
    BillRunRow,
    BillRunStatus,
    DocumentStatus,
    bill_run_errors,
    bill_runs,
    invoices,
)
from partnerbill.tables.subscriptions import subscriptions

BILL_RUN = Resource.BILL_RUN
# The errors a bill run's answer lists (their total is `numberOfErrors`).
ERRORS_SHOWN = 100
# A stored error message is cut here: the cause of an unexpected error can be long.
ERROR_MESSAGE_CHARS = 2000


class BillRunFilter(CamelModel):
    filter_type: Literal["Account", "Subscription"]
    account_id: Key | None = None
    subscription_id: Key | None = None


class CreateBillRunRequest(CamelModel):
    target_date: Date
    invoice_date: Date | None = None
    name: Annotated[str | None, Field(max_length=255)] = None
    bill_run_filters: list[BillRunFilter] = []
    batches: list[Annotated[str, Field(max_length=20)]] = []
    bill_cycle_day: Annotated[str | None, Field(max_length=20)] = None
    charge_type_to_exclude: list[Literal["OneTime", "Recurring", "Usage"]] = []
    auto_post: Flag = False

    @model_validator(mode="after")
    def _scope(self) -> "CreateBillRunRequest":
        if self.bill_run_filters and (self.batches or self.bill_cycle_day):
            raise ValueError("give either billRunFilters or batches/billCycleDay, not both")
        day = self.bill_cycle_day
        if (
            day is not None
            and day != "AllBillCycleDays"
            and not (day.isdigit() and 1 <= int(day) <= 31)
        ):
            raise ValueError("billCycleDay must be AllBillCycleDays or 1 to 31")
        return self


class BillRunFilterJson(TypedDict):
    filterType: str
    accountId: str


class BillRunErrorJson(TypedDict):
    """A subscription the run could not bill."""

    subscriptionId: str
    subscriptionNumber: str
    accountId: str
    accountNumber: str
    code: int
    message: str


class BillRunJson(TypedDict):
    """A bill run as Zuora answers it."""

    success: bool
    id: str
    billRunNumber: str
    name: str | None
    status: str
    targetDate: date
    invoiceDate: date
    autoPost: bool
    chargeTypeToExclude: list[str]
    billRunFilters: list[BillRunFilterJson]
    batches: list[str]
    billCycleDay: str | None
    invoiceCount: int
    errorMessage: str | None
    numberOfErrors: int
    errors: list[BillRunErrorJson]
    createdDate: str | None
    updatedDate: str | None


def _bill_run(row: Row[Any]) -> BillRunRow:
    """A bill run read with all its columns (`SELECT` or `RETURNING`)."""
    return cast(BillRunRow, dict(row._mapping))


def bill_run_json(
    run: BillRunRow, errors: Sequence[BillRunErrorRow] = (), error_count: int = 0
) -> BillRunJson:
    """The run as Zuora answers it, with the subscriptions it could not bill."""
    account_id = run["account_id"]
    return {
        "success": True,
        "id": run["id"],
        "billRunNumber": run["bill_run_number"],
        "name": run["name"],
        "status": run["status"],
        "targetDate": run["target_date"],
        "invoiceDate": run["invoice_date"],
        "autoPost": run["auto_post"],
        "chargeTypeToExclude": run["charge_type_to_exclude"],
        "billRunFilters": (
            [{"filterType": "Account", "accountId": account_id}] if account_id else []
        ),
        "batches": run["batches"],
        "billCycleDay": run["bill_cycle_day"],
        "invoiceCount": run["invoice_count"],
        "errorMessage": run["error"],
        "numberOfErrors": error_count,
        "errors": [
            {
                "subscriptionId": e["subscription_id"],
                "subscriptionNumber": e["subscription_number"],
                "accountId": e["account_id"],
                "accountNumber": e["account_number"],
                "code": e["code"],
                "message": e["message"],
            }
            for e in errors
        ],
        "createdDate": v1_datetime(run["created_at"]),
        "updatedDate": v1_datetime(run["updated_at"]),
    }


async def create_bill_run(
    conn: AsyncConnection, tenant: Tenant, request: CreateBillRunRequest
) -> BillRunJson:
    account_id: str | None = None
    for i, run_filter in enumerate(request.bill_run_filters):
        key = run_filter.account_id
        if run_filter.filter_type == "Subscription":
            raise invalid_value(
                BILL_RUN, f"billRunFilters[{i}].filterType", "only Account filters are supported."
            )
        if key is None:
            raise invalid_value(BILL_RUN, f"billRunFilters[{i}].accountId", "is required.")
        if account_id is not None:
            raise invalid_value(BILL_RUN, "billRunFilters", "one account per account-level run.")
        async with bounded_lock_wait(conn, tenant, BILL_RUN):
            account_id = (await lock_for_write(conn, tenant, key)).id
    (number,) = await next_numbers(conn, tenant, "bill_run_number", 1)
    run_id = new_id()
    run = (
        await conn.execute(
            insert(bill_runs)
            .values(
                tenant_id=tenant.id,
                id=run_id,
                bill_run_number=document_number("BR-", number),
                name=request.name,
                status=BillRunStatus.PENDING,
                target_date=request.target_date,
                invoice_date=request.invoice_date or request.target_date,
                auto_post=request.auto_post,
                charge_type_to_exclude=request.charge_type_to_exclude,
                account_id=account_id,
                bill_cycle_day=None
                if account_id
                else (request.bill_cycle_day or "AllBillCycleDays"),
                batches=request.batches,
            )
            .returning(*bill_runs.c)
        )
    ).one()
    await defer_in_transaction(
        conn,
        "billing:run_bill_run",
        tenant_id=tenant.id,
        tenant_number=tenant.number,
        bill_run_id=run_id,
    )
    return bill_run_json(_bill_run(run))


async def _subscription_ids(run: BillRunRow, tenant: Tenant) -> AsyncIterator[list[str]]:
    """The run's subscriptions in id order, a batch at a time (keyset, each in its own read)."""
    after = ""
    while True:
        query = select(subscriptions.c.id).where(
            subscriptions.c.tenant_id == tenant.id, subscriptions.c.id > after
        )
        if run["account_id"] is not None:
            query = query.where(subscriptions.c.invoice_owner_account_id == run["account_id"])
        else:
            owner = and_(
                accounts.c.tenant_id == subscriptions.c.tenant_id,
                accounts.c.id == subscriptions.c.invoice_owner_account_id,
            )
            query = query.join(accounts, owner)
            day = run["bill_cycle_day"]
            if day is not None and day != "AllBillCycleDays":
                query = query.where(accounts.c.bill_cycle_day == int(day))
            if run["batches"]:
                query = query.where(accounts.c.batch.in_(run["batches"]))
        async with transaction() as conn:
            ids = list(
                await conn.scalars(query.order_by(subscriptions.c.id).limit(BATCH_SUBSCRIPTIONS))
            )
        if not ids:
            return
        yield ids
        after = ids[-1]


async def execute_bill_run(tenant: Tenant, bill_run_id: str) -> None:
    """The job: bill every subscription of the run in one transaction (each batch, and each
    subscription of a failing batch, in a savepoint of its own), recording the subscriptions it
    could not bill; or record the error that failed the run as a whole."""
    where = and_(bill_runs.c.tenant_id == tenant.id, bill_runs.c.id == bill_run_id)
    async with transaction() as conn:
        claimed = (
            await conn.execute(
                update(bill_runs)
                # Processing too: a worker that died mid-run rolled its billing back, and the
                # stalled-job recovery runs the job again.
                .where(
                    where, bill_runs.c.status.in_((BillRunStatus.PENDING, BillRunStatus.PROCESSING))
                )
                .values(status=BillRunStatus.PROCESSING, updated_at=func.now())
                .returning(*bill_runs.c)
            )
        ).one_or_none()
    if claimed is None:
        return  # canceled meanwhile, or already run
    run = _bill_run(claimed)
    try:
        async with transaction() as conn:
            errors: list[BillingError] = []
            billed = await bill(
                conn,
                tenant,
                _subscription_ids(run, tenant),
                target_date=run["target_date"],
                invoice_date=run["invoice_date"],
                post=run["auto_post"],
                excluded=[ChargeType(t) for t in run["charge_type_to_exclude"]],
                bill_run_id=run["id"],
                errors=errors,
            )
            await _record_errors(conn, tenant, run["id"], errors)
            await conn.execute(
                update(bill_runs)
                .where(where)
                .values(
                    status=BillRunStatus.POSTED if run["auto_post"] else BillRunStatus.COMPLETED,
                    invoice_count=len(billed),
                    error=(
                        f"{len(errors)} subscription(s) could not be billed; see errors."
                        if errors
                        else None
                    ),
                    updated_at=func.now(),
                )
            )
    except Exception as error:
        async with transaction() as conn:
            await conn.execute(
                update(bill_runs)
                .where(where)
                .values(status=BillRunStatus.ERROR, error=str(error)[:2000], updated_at=func.now())
            )
        raise


def _code_and_message(error: Exception) -> tuple[int, str]:
    if isinstance(error, ZuoraError):
        return error.reasons[0].code, error.reasons[0].message
    # Bad stored data: say what failed; the traceback is in the worker's log.
    return error_code(BILL_RUN, Category.INTERNAL), f"{type(error).__name__}: {error}"


async def _record_errors(
    conn: AsyncConnection, tenant: Tenant, bill_run_id: str, errors: Sequence[BillingError]
) -> None:
    """One row per subscription the run could not bill, with its invoice owner."""
    if not errors:
        return
    owners = {
        row.id: row
        for row in await conn.execute(
            select(
                subscriptions.c.id,
                subscriptions.c.subscription_number,
                accounts.c.id.label("account_id"),
                accounts.c.account_number,
            )
            .join(
                accounts,
                and_(
                    accounts.c.tenant_id == subscriptions.c.tenant_id,
                    accounts.c.id == subscriptions.c.invoice_owner_account_id,
                ),
            )
            .where(
                subscriptions.c.tenant_id == tenant.id,
                subscriptions.c.id.in_([e.subscription_id for e in errors]),
            )
        )
    }
    rows = []
    for error in errors:
        owner = owners[error.subscription_id]
        code, message = _code_and_message(error.error)
        rows.append(
            {
                "tenant_id": tenant.id,
                "bill_run_id": bill_run_id,
                "subscription_id": error.subscription_id,
                "subscription_number": owner.subscription_number,
                "account_id": owner.account_id,
                "account_number": owner.account_number,
                "code": code,
                # Text columns refuse NUL, which a message quoting bad data may carry.
                "message": message.replace("\x00", "")[:ERROR_MESSAGE_CHARS],
            }
        )
    await conn.execute(insert(bill_run_errors), rows)


async def _run_json_with_errors(
    conn: AsyncConnection, tenant: Tenant, run: BillRunRow
) -> BillRunJson:
    """The run's answer with its errors (the first `ERRORS_SHOWN`, in subscription order)."""
    of_run = and_(
        bill_run_errors.c.tenant_id == tenant.id, bill_run_errors.c.bill_run_id == run["id"]
    )
    count = await conn.scalar(select(func.count()).select_from(bill_run_errors).where(of_run))
    errors = (
        await conn.execute(
            select(bill_run_errors)
            .where(of_run)
            .order_by(bill_run_errors.c.subscription_id)
            .limit(ERRORS_SHOWN)
        )
    ).all()
    # The statement reads every column of the error rows.
    shown = [cast(BillRunErrorRow, dict(error._mapping)) for error in errors]
    return bill_run_json(run, shown, count or 0)


async def _lock_run(conn: AsyncConnection, tenant: Tenant, key: str) -> BillRunRow:
    run = (
        await lock_row(
            conn,
            tenant,
            bill_runs,
            (bill_runs.c.id == key) | (bill_runs.c.bill_run_number == key),
            BILL_RUN,
        )
    ).one_or_none()
    if run is None:
        raise not_found(BILL_RUN, "bill run", key)
    return _bill_run(run)


async def get_bill_run(conn: AsyncConnection, tenant: Tenant, key: str) -> BillRunJson:
    run = (
        await conn.execute(
            select(bill_runs).where(
                bill_runs.c.tenant_id == tenant.id,
                (bill_runs.c.id == key) | (bill_runs.c.bill_run_number == key),
            )
        )
    ).one_or_none()
    if run is None:
        raise not_found(BILL_RUN, "bill run", key)
    return await _run_json_with_errors(conn, tenant, _bill_run(run))


async def post_bill_run(
    conn: AsyncConnection, tenant: Tenant, key: str, invoice_date: date | None
) -> BillRunJson:
    """Post every draft invoice of a Completed run and report them to their owners."""
    run = await _lock_run(conn, tenant, key)
    if run["status"] != BillRunStatus.COMPLETED:
        raise business_rule(
            BILL_RUN, f"Only a Completed bill run can be posted; it is {run['status']}."
        )
    values: dict[str, object] = {
        "status": DocumentStatus.POSTED,
        "posted_date": func.now(),
        "updated_at": func.now(),
    }
    if invoice_date is not None:
        # Each due date moves with its invoice date, keeping the payment term's distance.
        values["invoice_date"] = invoice_date
        values["due_date"] = invoices.c.due_date + (invoice_date - invoices.c.invoice_date)
    posted = (
        await conn.execute(
            update(invoices)
            .where(
                invoices.c.tenant_id == tenant.id,
                invoices.c.bill_run_id == run["id"],
                invoices.c.status == DocumentStatus.DRAFT,
            )
            .values(**values)
            .returning(invoices.c.account_id, invoices.c.balance, invoices.c.invoice_date)
        )
    ).all()
    owners = {row.account_id for row in posted}
    async with bounded_lock_wait(conn, tenant, BILL_RUN):
        locked = await lock_many_for_write(conn, tenant, owners)
    partner = {account_id: account.partner_account for account_id, account in locked.items()}
    await touch(
        conn,
        tenant,
        [
            MetricsDelta(
                account_id=row.account_id,
                partner_account=partner[row.account_id],
                total_invoice_balance=row.balance,
                posted_invoice_date=row.invoice_date,
            )
            for row in posted
        ],
    )
    return await _set_status(conn, tenant, run["id"], BillRunStatus.POSTED)


# Every table restricted by the bound tenant id, the correlated subquery's too: one shard on a
# database distributed by tenant (docs/scale-out.md).
_ROLL_BACK_CHARGED_THROUGH = text(
    """
    UPDATE rate_plan_charges c SET charged_through_date = (
        SELECT max(i.service_end_date) + 1 FROM invoice_items i
        JOIN invoices v ON v.tenant_id = :tenant_id AND v.id = i.invoice_id
        WHERE i.tenant_id = :tenant_id AND i.rate_plan_charge_id = c.id
          AND v.status <> 'Canceled' AND i.amount > 0)
    WHERE c.tenant_id = :tenant_id AND c.id IN (
        SELECT i.rate_plan_charge_id FROM invoice_items i
        JOIN invoices v ON v.tenant_id = :tenant_id AND v.id = i.invoice_id
        WHERE i.tenant_id = :tenant_id AND v.bill_run_id = :bill_run_id)
    """
)


async def cancel_bill_run(conn: AsyncConnection, tenant: Tenant, key: str) -> BillRunJson:
    """Cancel a Pending or Completed run: its drafts are canceled and what they billed becomes
    billable again."""
    run = await _lock_run(conn, tenant, key)
    if run["status"] not in (BillRunStatus.PENDING, BillRunStatus.COMPLETED):
        raise business_rule(
            BILL_RUN,
            f"Only a Pending or Completed bill run can be canceled; it is {run['status']}.",
        )
    await conn.execute(
        update(invoices)
        .where(
            invoices.c.tenant_id == tenant.id,
            invoices.c.bill_run_id == run["id"],
            invoices.c.status == DocumentStatus.DRAFT,
        )
        .values(status=DocumentStatus.CANCELED, updated_at=func.now())
    )
    await conn.execute(
        _ROLL_BACK_CHARGED_THROUGH, {"tenant_id": tenant.id, "bill_run_id": run["id"]}
    )
    return await _set_status(conn, tenant, run["id"], BillRunStatus.CANCELED)


async def _set_status(
    conn: AsyncConnection, tenant: Tenant, run_id: str, status: BillRunStatus
) -> BillRunJson:
    changed = (
        await conn.execute(
            update(bill_runs)
            .where(bill_runs.c.tenant_id == tenant.id, bill_runs.c.id == run_id)
            .values(status=status, updated_at=func.now())
            .returning(*bill_runs.c)
        )
    ).one()
    return await _run_json_with_errors(conn, tenant, _bill_run(changed))
