"""The metrics property test's state machine, its core: the loop, engine, tenant and plan it is
given, the model of three accounts, the writes it attempts or expects to fail, the accounts'
creation, the partner-flag switches and refreshes, and the invariants that compare the stored
documents and metrics with the model and with `recompute`. The rules of each kind of document
are mixed in from the `properties_*` modules beside it (`test_metrics_properties.py`)."""

import asyncio
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, ClassVar

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.accounts import service as accounts_service
from partnerbill.accounts.schemas import Contact, CreateAccountRequest, UpdateAccountRequest
from partnerbill.core.errors import Category, ZuoraError, error_code
from partnerbill.core.tenants import Tenant
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from partnerbill.metrics.service import AccountMetrics
from partnerbill.orders import service as orders
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.tables.billing import invoice_items
from partnerbill.tables.billing import invoices as invoices_table
from partnerbill.tables.memos import credit_memo_items, credit_memos, debit_memo_items, debit_memos
from partnerbill.tables.metrics import account_metrics, metrics_changes
from partnerbill.tables.payments import applications, payments, refunds
from partnerbill.tables.subscriptions import rate_plan_charges
from tests.metrics.properties_model import (
    ACCOUNTS,
    ORDER_LIMIT,
    CatalogPlan,
    Failure,
    ModelAccount,
    ModelDebitMemo,
    ModelInvoice,
    ModelSource,
    ModelSubscription,
    T,
    account_indexes,
)


class MachineBase(RuleBasedStateMachine):
    # Installed by the test before the machine runs: one loop, one engine, one tenant and one
    # catalog rate plan for every example.
    runner: ClassVar[asyncio.Runner]
    engine: ClassVar[AsyncEngine]
    shared_tenant: ClassVar[Tenant]
    plan: ClassVar[CatalogPlan]

    def __init__(self) -> None:
        super().__init__()
        self.tenant: Tenant | None = None
        self.accounts: list[ModelAccount] = []
        self.model_invoices: dict[str, ModelInvoice] = {}
        self.model_subscriptions: dict[str, ModelSubscription] = {}
        self.model_debit_memos: dict[str, ModelDebitMemo] = {}
        self.model_payments: dict[str, ModelSource] = {}
        self.model_credit_memos: dict[str, ModelSource] = {}

    # -- plumbing -------------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    @property
    def t(self) -> Tenant:
        assert self.tenant is not None
        return self.tenant

    def expected(self, index: int) -> AccountMetrics:
        """The metrics the model says the documents imply."""
        posted = [
            inv
            for inv in self.model_invoices.values()
            if inv.account == index and inv.status == "Posted"
        ]
        owned = [sub for sub in self.model_subscriptions.values() if sub.owner == index]
        debit = [
            memo
            for memo in self.model_debit_memos.values()
            if memo.account == index and memo.status == "Posted"
        ]
        paid = [p for p in self.model_payments.values() if p.account == index and p.active]
        credit = [c for c in self.model_credit_memos.values() if c.account == index and c.active]
        last = max(paid, key=lambda p: (p.effective_date, p.seq), default=None)
        return AccountMetrics(
            total_invoice_balance=sum((inv.balance or Decimal(0) for inv in posted), Decimal(0)),
            total_debit_memo_balance=sum((memo.balance for memo in debit), Decimal(0)),
            unapplied_payment_amount=sum((p.unapplied for p in paid), Decimal(0)),
            unapplied_credit_memo_amount=sum((c.unapplied for c in credit), Decimal(0)),
            last_invoice_date=max((inv.invoice_date for inv in posted), default=None),
            contracted_mrr=sum((sub.mrr for sub in owned), Decimal(0)),
            last_payment_date=last.effective_date if last else None,
            last_payment_amount=last.amount if last else None,
        )

    def changed_metrics(self, index: int) -> None:
        """A write changed the account's document metrics: a partner account logs one change."""
        if self.accounts[index].partner:
            self.accounts[index].pending += 1

    def touched(self, indexes: Any) -> None:
        """One `touch` call named these accounts: each partner among them logs one change (deltas
        are merged per account, and a partner logs even a delta that moves no figure)."""
        for index in set(indexes):
            self.changed_metrics(index)

    def index_of(self, account_id: str) -> int:
        return next(i for i, model in enumerate(self.accounts) if model.id == account_id)

    async def _write(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        async with self.engine.begin() as conn:
            return await operation(conn, self.t, *args, **kwargs)

    def attempt(self, allowed: bool, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a write: it must fail with a business-rule error exactly when the model forbids."""
        if allowed:
            return self.run(self._write(operation, *args, **kwargs))
        try:
            self.run(self._write(operation, *args, **kwargs))
        except ZuoraError as error:
            assert error.category == Category.BUSINESS_RULE, error.reasons
            return None
        raise AssertionError(f"{operation.__name__}{args} succeeded but the model forbids it")

    def expect(self, failure: Failure, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a write the model has judged: it succeeds when `failure` is None, and otherwise
        fails with exactly that business-rule error (resource code and message) having changed
        nothing at all (documents, ledger, refunds, metrics, change log)."""
        event(f"{operation.__name__}: {'ok' if failure is None else failure[1]}")
        if failure is None:
            return self.run(self._write(operation, *args, **kwargs))
        resource, fragment = failure
        before = self.run(self._snapshot())
        try:
            self.run(self._write(operation, *args, **kwargs))
        except ZuoraError as error:
            reason = error.reasons[0]
            assert error.category == Category.BUSINESS_RULE, (failure, error.reasons)
            assert reason.code == error_code(resource, Category.BUSINESS_RULE), (
                failure,
                reason.code,
                reason.message,
            )
            assert fragment in reason.message, (failure, reason.message)
        else:
            raise AssertionError(f"{operation.__name__}{args} succeeded; expected {failure}")
        assert self.run(self._snapshot()) == before, failure
        return None

    async def _snapshot(self) -> dict[str, Any]:
        """Every row a write could change for the example's accounts (whole rows, timestamps
        included), and the tenant's row counts of the tables without an account column."""
        ids = [model.id for model in self.accounts]
        found: dict[str, Any] = {}
        async with self.engine.begin() as conn:
            for table in (
                invoices_table,
                debit_memos,
                credit_memos,
                payments,
                refunds,
                account_metrics,
                metrics_changes,
            ):
                rows = await conn.execute(
                    select(table).where(table.c.tenant_id == self.t.id, table.c.account_id.in_(ids))
                )
                found[table.name] = sorted(tuple(map(str, row)) for row in rows)
            for table in (applications, credit_memo_items, debit_memo_items, invoice_items):
                found[table.name] = await conn.scalar(
                    select(func.count()).select_from(table).where(table.c.tenant_id == self.t.id)
                )
        return found

    def attempt_order(self, error: Category | None, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create an order; it must fail with `error` (all or nothing) exactly when the model says
        so, and otherwise succeed."""
        request = CreateOrderRequest.model_validate(body)
        if error is None:
            response = self.run(
                self._write(orders.create_order, request, limit=ORDER_LIMIT, return_ids=True)
            )
            assert response["success"] is True, response
            return dict(response)
        try:
            self.run(self._write(orders.create_order, request, limit=ORDER_LIMIT, return_ids=True))
        except ZuoraError as failure:
            assert failure.category == error, (error, failure.category, failure.reasons, body)
            return None
        raise AssertionError(f"the order succeeded but the model expects {error}: {body}")

    def record_billed(self, invoice_ids: list[str], *, also_touched: Any = ()) -> list[str]:
        """Invoices billing just made: each Posted, on one of the billed subscriptions' invoice
        owners. The billing engine reports them to their owners in one `touch`; an order that
        bills reports them in the same `touch` as its own changes (`also_touched`)."""

        async def read() -> list[Any]:
            async with self.engine.begin() as conn:
                return list(
                    await conn.execute(
                        select(
                            invoices_table.c.id,
                            invoices_table.c.account_id,
                            invoices_table.c.amount,
                            invoices_table.c.balance,
                            invoices_table.c.invoice_date,
                            invoices_table.c.status,
                        ).where(
                            invoices_table.c.tenant_id == self.t.id,
                            invoices_table.c.id.in_(invoice_ids),
                        )
                    )
                )

        rows = self.run(read()) if invoice_ids else []
        assert sorted(r.id for r in rows) == sorted(invoice_ids)
        owners = {sub.invoice_owner for sub in self.model_subscriptions.values()}
        billed = []
        for row in rows:
            index = self.index_of(row.account_id)
            assert index in owners, (row, owners)
            assert row.status == "Posted", row
            assert row.balance == row.amount, row
            self.model_invoices[row.id] = ModelInvoice(
                row.id, index, row.amount, row.invoice_date, "Posted"
            )
            billed.append(index)
        self.touched([*billed, *also_touched])
        return [str(r.id) for r in rows]

    async def _check_billed_lines(self, subscription_ids: list[str]) -> None:
        """Every invoice line of a subscription lies within its charge segment: a credit for a
        cut segment never gives back service the segment did not bill."""
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(
                    invoice_items.c.amount,
                    invoice_items.c.service_start_date,
                    invoice_items.c.service_end_date,
                    rate_plan_charges.c.effective_start_date,
                    rate_plan_charges.c.charge_number,
                    rate_plan_charges.c.segment,
                )
                .join(
                    rate_plan_charges,
                    (rate_plan_charges.c.tenant_id == invoice_items.c.tenant_id)
                    & (rate_plan_charges.c.id == invoice_items.c.rate_plan_charge_id),
                )
                .where(
                    invoice_items.c.tenant_id == self.t.id,
                    invoice_items.c.subscription_id.in_(subscription_ids),
                )
            )
            for row in rows:
                assert row.service_start_date <= row.service_end_date, row
                assert row.service_start_date >= row.effective_start_date, row

    # -- setup ----------------------------------------------------------------------------------

    @initialize(
        partners=st.lists(st.booleans(), min_size=ACCOUNTS, max_size=ACCOUNTS),
        bill_cycle_days=st.lists(
            st.sampled_from([0, 1, 15, 31]), min_size=ACCOUNTS, max_size=ACCOUNTS
        ),
    )
    def create_accounts(self, partners: list[bool], bill_cycle_days: list[int]) -> None:
        tenant = self.shared_tenant

        async def setup() -> list[tuple[str, str]]:
            async with self.engine.begin() as conn:
                created = []
                for partner, bill_cycle_day in zip(partners, bill_cycle_days, strict=True):
                    account = await accounts_service.create_account(
                        conn,
                        tenant,
                        CreateAccountRequest(
                            name="Property Account",
                            currency="USD",
                            bill_cycle_day=bill_cycle_day,
                            bill_to_contact=Contact(first_name="Ada", last_name="Lovelace"),
                            partner_account=partner,
                        ),
                    )
                    created.append((account["accountId"], account["accountNumber"]))
            return created

        created = self.run(setup())
        self.tenant = tenant
        self.accounts = [
            ModelAccount(
                id=account_id,
                number=number,
                partner=partner,
                cached=AccountMetrics() if partner else None,
            )
            for (account_id, number), partner in zip(created, partners, strict=True)
        ]

    # -- flag switches and refreshes ------------------------------------------------------------

    @rule(account=account_indexes, partner=st.booleans())
    def set_partner(self, account: int, partner: bool) -> None:
        model = self.accounts[account]
        self.run(
            self._write(
                accounts_service.update_account,
                model.id,
                UpdateAccountRequest(partner_account=partner),
            )
        )
        snapshot = self.run(self._read(account))
        if partner == model.partner:
            return
        model.partner = partner
        model.pending = 0
        if partner:
            # Metrics stay as they are (exact, the account was synchronous) and deferral starts.
            model.cached = self.expected(account)
            assert snapshot.last_metrics_update is not None
        else:
            # Recomputed now; synchronous from here on.
            model.cached = None
            assert snapshot.last_metrics_update is None
            assert snapshot.metrics == self.expected(account)
        assert snapshot.pending_changes == 0

    @rule(account=account_indexes)
    def refresh(self, account: int) -> None:
        model = self.accounts[account]

        async def refresh_and_read() -> tuple[metric_refresh.RefreshResult | None, Any]:
            async with self.engine.begin() as conn:
                result = await metric_refresh.refresh_account(conn, self.t, model.id, wait=True)
            return result, await self._read(account)

        result, snapshot = self.run(refresh_and_read())
        assert result is not None  # wait=True never skips
        assert result.folded_changes == (model.pending if model.partner else 0)
        assert result.metrics == self.expected(account)
        assert snapshot.metrics == self.expected(account)
        assert snapshot.pending_changes == 0
        assert snapshot.last_metrics_update == result.refreshed_at
        if model.partner:
            model.pending = 0
            model.cached = self.expected(account)

    # -- the invariant --------------------------------------------------------------------------

    async def _read(self, index: int) -> metrics.MetricsSnapshot:
        async with self.engine.begin() as conn:
            return await metrics.read_metrics(conn, self.t, self.accounts[index].id)

    async def _read_all(self) -> list[tuple[metrics.MetricsSnapshot, AccountMetrics]]:
        async with self.engine.begin() as conn:
            return [
                (
                    await metrics.read_metrics(conn, self.t, model.id),
                    await metrics.recompute(conn, self.t, model.id),
                )
                for model in self.accounts
            ]

    async def _documents(self) -> dict[str, Any]:
        ids = [model.id for model in self.accounts]
        sources = list(self.model_payments) + list(self.model_credit_memos)
        found: dict[str, Any] = {}
        async with self.engine.begin() as conn:
            for name, table, balance in (
                ("invoices", invoices_table, invoices_table.c.balance),
                ("debit_memos", debit_memos, debit_memos.c.balance),
                ("payments", payments, payments.c.applied_amount),
                ("credit_memos", credit_memos, credit_memos.c.applied_amount),
            ):
                found[name] = {
                    row.id: row
                    for row in await conn.execute(
                        select(
                            table.c.id,
                            table.c.account_id,
                            table.c.amount,
                            table.c.status,
                            balance.label("balance"),
                            *([table.c.refund_amount] if "refund_amount" in table.c else []),
                        ).where(table.c.tenant_id == self.t.id, table.c.account_id.in_(ids))
                    )
                }
            found["ledger"] = {
                (row.source_id, row.target_id): row.amount
                for row in await conn.execute(
                    select(
                        applications.c.source_id,
                        applications.c.target_id,
                        func.sum(applications.c.amount).label("amount"),
                    )
                    .where(
                        applications.c.tenant_id == self.t.id,
                        applications.c.source_id.in_(sources),
                    )
                    .group_by(applications.c.source_id, applications.c.target_id)
                )
            }
            found["refunds"] = {
                row.source: row.amount
                for row in await conn.execute(
                    select(
                        func.coalesce(refunds.c.payment_id, refunds.c.credit_memo_id).label(
                            "source"
                        ),
                        func.sum(refunds.c.amount).label("amount"),
                    )
                    .where(refunds.c.tenant_id == self.t.id, refunds.c.account_id.in_(ids))
                    .group_by("source")
                )
            }
        return found

    @invariant()
    def documents_match_the_model(self) -> None:
        """Every invoice and debit memo: balance = amount - what the ledger has on it; every
        payment and credit memo: applied (the ledger) + unapplied + refunded (the refunds) =
        amount, unapplied >= 0; and each document as the model has it."""
        if not self.accounts:
            return
        found = self.run(self._documents())
        on_target: dict[str, Decimal] = {}
        from_source: dict[str, Decimal] = {}
        for (source_id, target_id), amount in found["ledger"].items():
            on_target[target_id] = on_target.get(target_id, Decimal(0)) + amount
            from_source[source_id] = from_source.get(source_id, Decimal(0)) + amount
        for name, models in (
            ("invoices", self.model_invoices),
            ("debit_memos", self.model_debit_memos),
        ):
            rows = found[name]
            assert sorted(rows) == sorted(models), name
            for target_id, row in rows.items():
                model = models[target_id]
                assert (row.status, row.amount, row.balance) == (
                    model.status,
                    model.amount,
                    model.balance,
                ), (name, row, model)
                assert row.balance == row.amount - on_target.get(target_id, 0), (name, row)
                assert self.accounts[model.account].id == row.account_id
        for name, sources in (
            ("payments", self.model_payments),
            ("credit_memos", self.model_credit_memos),
        ):
            rows = found[name]
            assert sorted(rows) == sorted(sources), name
            for source_id, row in rows.items():
                source = sources[source_id]
                applied, refunded = row.balance, row.refund_amount
                assert (row.status, row.amount, applied, refunded) == (
                    source.status,
                    source.amount,
                    source.applied_total,
                    source.refunded,
                ), (name, row, source)
                assert applied == from_source.get(source_id, 0), (name, row)
                assert refunded == found["refunds"].get(source_id, 0), (name, row)
                for target_id, amount in source.applied.items():
                    assert found["ledger"][(source_id, target_id)] == amount, (name, target_id)
                assert applied + source.unapplied + refunded == row.amount
                assert source.unapplied >= 0 and applied >= 0, (name, row)

    @invariant()
    def stored_metrics_match_documents(self) -> None:
        if not self.accounts:
            return
        for index, (snapshot, recomputed) in enumerate(self.run(self._read_all())):
            model = self.accounts[index]
            expected = self.expected(index)
            # `recompute` itself agrees with the model of the documents.
            assert recomputed == expected, (index, recomputed, expected)
            assert snapshot.pending_changes == model.pending, (index, snapshot, model)
            if model.partner:
                # Partner writes never touch the cache: it holds what the last refresh wrote.
                assert snapshot.metrics == model.cached, (index, snapshot.metrics, model.cached)
                if model.pending == 0:
                    assert snapshot.metrics == recomputed, (index, snapshot.metrics, recomputed)
            else:
                # Synchronous: exact at every step, lastInvoiceDate included.
                assert snapshot.metrics == recomputed, (index, snapshot.metrics, recomputed)
                assert snapshot.metrics.last_invoice_date == expected.last_invoice_date
