"""Bill runs: for one account (its subscriptions as invoice owner) or for all accounts of some
bill cycle days and batches. A run is a job: Pending → Processing → Completed (or Error); then
post (Completed → Posted) or cancel (→ Canceled, its draft invoices canceled and the charges'
charged-through dates put back)."""

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import lock_for_write, lock_many_for_write
from partnerbill.accounts.tables import accounts
from partnerbill.billing.engine import BATCH_SUBSCRIPTIONS, bill
from partnerbill.billing.tables import bill_runs, invoices
from partnerbill.catalog.enums import ChargeType
from partnerbill.core.db import transaction
from partnerbill.core.errors import Resource, business_rule, invalid_value, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.input_policy import Key
from partnerbill.core.jobs import defer_in_transaction
from partnerbill.core.json import v1_datetime
from partnerbill.core.schemas import CamelModel, Flag
from partnerbill.core.tenants import Tenant, next_numbers
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.subscriptions.tables import subscriptions

BILL_RUN = Resource.BILL_RUN


class BillRunFilter(CamelModel):
    filter_type: Literal["Account", "Subscription"]
    account_id: Key | None = None
    subscription_id: Key | None = None


class CreateBillRunRequest(CamelModel):
    target_date: date
    invoice_date: date | None = None
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


def bill_run_json(run: Any) -> dict[str, Any]:
    return {
        "success": True,
        "id": run.id,
        "billRunNumber": run.bill_run_number,
        "name": run.name,
        "status": run.status,
        "targetDate": run.target_date,
        "invoiceDate": run.invoice_date,
        "autoPost": run.auto_post,
        "chargeTypeToExclude": run.charge_type_to_exclude,
        "billRunFilters": (
            [{"filterType": "Account", "accountId": run.account_id}] if run.account_id else []
        ),
        "batches": run.batches,
        "billCycleDay": run.bill_cycle_day,
        "invoiceCount": run.invoice_count,
        "errorMessage": run.error,
        "createdDate": v1_datetime(run.created_at),
        "updatedDate": v1_datetime(run.updated_at),
    }


async def create_bill_run(
    conn: AsyncConnection, tenant: Tenant, request: CreateBillRunRequest
) -> dict[str, Any]:
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
        account_id = (await lock_for_write(conn, tenant, key)).id
    (number,) = await next_numbers(conn, tenant, "bill_run_number", 1)
    run_id = new_id()
    run = (
        await conn.execute(
            insert(bill_runs)
            .values(
                tenant_id=tenant.id,
                id=run_id,
                bill_run_number=f"BR-{number:08d}",
                name=request.name,
                status="Pending",
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
    return bill_run_json(run)


async def _subscription_ids(run: Any, tenant: Tenant) -> AsyncIterator[list[str]]:
    """The run's subscriptions in id order, a batch at a time (keyset, each in its own read)."""
    after = ""
    while True:
        query = select(subscriptions.c.id).where(
            subscriptions.c.tenant_id == tenant.id, subscriptions.c.id > after
        )
        if run.account_id is not None:
            query = query.where(subscriptions.c.invoice_owner_account_id == run.account_id)
        else:
            owner = and_(
                accounts.c.tenant_id == subscriptions.c.tenant_id,
                accounts.c.id == subscriptions.c.invoice_owner_account_id,
            )
            query = query.join(accounts, owner)
            if run.bill_cycle_day not in (None, "AllBillCycleDays"):
                query = query.where(accounts.c.bill_cycle_day == int(run.bill_cycle_day))
            if run.batches:
                query = query.where(accounts.c.batch.in_(run.batches))
        async with transaction() as conn:
            ids = list(
                await conn.scalars(query.order_by(subscriptions.c.id).limit(BATCH_SUBSCRIPTIONS))
            )
        if not ids:
            return
        yield ids
        after = ids[-1]


async def execute_bill_run(tenant: Tenant, bill_run_id: str) -> None:
    """The job: bill every subscription of the run in one transaction, or record the error."""
    where = and_(bill_runs.c.tenant_id == tenant.id, bill_runs.c.id == bill_run_id)
    async with transaction() as conn:
        run = (
            await conn.execute(
                update(bill_runs)
                # Processing too: a worker that died mid-run rolled its billing back, and the
                # stalled-job recovery runs the job again.
                .where(where, bill_runs.c.status.in_(("Pending", "Processing")))
                .values(status="Processing", updated_at=func.now())
                .returning(*bill_runs.c)
            )
        ).one_or_none()
    if run is None:
        return  # canceled meanwhile, or already run
    try:
        async with transaction() as conn:
            billed = await bill(
                conn,
                tenant,
                _subscription_ids(run, tenant),
                target_date=run.target_date,
                invoice_date=run.invoice_date,
                post=run.auto_post,
                excluded=[ChargeType(t) for t in run.charge_type_to_exclude],
                bill_run_id=run.id,
            )
            await conn.execute(
                update(bill_runs)
                .where(where)
                .values(
                    status="Posted" if run.auto_post else "Completed",
                    invoice_count=len(billed),
                    updated_at=func.now(),
                )
            )
    except Exception as error:
        async with transaction() as conn:
            await conn.execute(
                update(bill_runs)
                .where(where)
                .values(status="Error", error=str(error)[:2000], updated_at=func.now())
            )
        raise


async def _lock_run(conn: AsyncConnection, tenant: Tenant, key: str) -> Any:
    run = (
        await conn.execute(
            select(bill_runs)
            .where(
                bill_runs.c.tenant_id == tenant.id,
                (bill_runs.c.id == key) | (bill_runs.c.bill_run_number == key),
            )
            .with_for_update()
        )
    ).one_or_none()
    if run is None:
        raise not_found(BILL_RUN, "bill run", key)
    return run


async def get_bill_run(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
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
    return bill_run_json(run)


async def post_bill_run(
    conn: AsyncConnection, tenant: Tenant, key: str, invoice_date: date | None
) -> dict[str, Any]:
    """Post every draft invoice of a Completed run and report them to their owners."""
    run = await _lock_run(conn, tenant, key)
    if run.status != "Completed":
        raise business_rule(
            BILL_RUN, f"Only a Completed bill run can be posted; it is {run.status}."
        )
    values: dict[str, Any] = {
        "status": "Posted",
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
                invoices.c.bill_run_id == run.id,
                invoices.c.status == "Draft",
            )
            .values(**values)
            .returning(invoices.c.account_id, invoices.c.balance, invoices.c.invoice_date)
        )
    ).all()
    owners = {row.account_id for row in posted}
    partner = {
        account_id: account.partner_account
        for account_id, account in (await lock_many_for_write(conn, tenant, owners)).items()
    }
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
    return await _set_status(conn, tenant, run.id, "Posted")


_ROLL_BACK_CHARGED_THROUGH = text(
    """
    UPDATE rate_plan_charges c SET charged_through_date = (
        SELECT max(i.service_end_date) + 1 FROM invoice_items i
        JOIN invoices v ON v.tenant_id = i.tenant_id AND v.id = i.invoice_id
        WHERE i.tenant_id = c.tenant_id AND i.rate_plan_charge_id = c.id
          AND v.status <> 'Canceled' AND i.amount > 0)
    WHERE c.tenant_id = :tenant_id AND c.id IN (
        SELECT i.rate_plan_charge_id FROM invoice_items i
        JOIN invoices v ON v.tenant_id = i.tenant_id AND v.id = i.invoice_id
        WHERE v.tenant_id = :tenant_id AND v.bill_run_id = :bill_run_id)
    """
)


async def cancel_bill_run(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    """Cancel a Pending or Completed run: its drafts are canceled and what they billed becomes
    billable again."""
    run = await _lock_run(conn, tenant, key)
    if run.status not in ("Pending", "Completed"):
        raise business_rule(
            BILL_RUN, f"Only a Pending or Completed bill run can be canceled; it is {run.status}."
        )
    await conn.execute(
        update(invoices)
        .where(
            invoices.c.tenant_id == tenant.id,
            invoices.c.bill_run_id == run.id,
            invoices.c.status == "Draft",
        )
        .values(status="Canceled", updated_at=func.now())
    )
    await conn.execute(_ROLL_BACK_CHARGED_THROUGH, {"tenant_id": tenant.id, "bill_run_id": run.id})
    return await _set_status(conn, tenant, run.id, "Canceled")


async def _set_status(
    conn: AsyncConnection, tenant: Tenant, run_id: str, status: str
) -> dict[str, Any]:
    changed = (
        await conn.execute(
            update(bill_runs)
            .where(bill_runs.c.tenant_id == tenant.id, bill_runs.c.id == run_id)
            .values(status=status, updated_at=func.now())
            .returning(*bill_runs.c)
        )
    ).one()
    return bill_run_json(changed)
