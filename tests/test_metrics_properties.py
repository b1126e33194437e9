"""Property-based test of the metrics engine (DESIGN §3): over random sequences of invoice
operations, partner-flag switches and refreshes on three accounts, the stored metrics of a
non-partner account equal `recompute` at every step, and those of a partner account equal it right
after each refresh (in between they stay exactly what the last refresh or switch left).

Hypothesis rules are synchronous, so the machine drives the service functions on an event loop
and an engine of its own; it never touches the app's global engine.
"""

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.accounts import service as accounts_service
from partnerbill.accounts.schemas import Contact, CreateAccountRequest, UpdateAccountRequest
from partnerbill.billing import service as billing
from partnerbill.billing.schemas import CreateInvoiceItem, CreateInvoiceRequest
from partnerbill.core import db
from partnerbill.core.errors import Category, ZuoraError
from partnerbill.core.tenants import Tenant, create_tenant
from partnerbill.metrics import service as metrics
from partnerbill.metrics.service import AccountMetrics

T = TypeVar("T")

ACCOUNTS = 3
BASE_DATE = date(2026, 1, 1)

amounts = st.integers(min_value=1, max_value=500_000).map(lambda cents: Decimal(cents).scaleb(-2))
days = st.integers(min_value=0, max_value=40).map(lambda n: BASE_DATE + timedelta(days=n))
account_indexes = st.integers(min_value=0, max_value=ACCOUNTS - 1)


@dataclass
class ModelInvoice:
    id: str
    account: int
    amount: Decimal
    invoice_date: date
    status: str  # Draft | Posted | Canceled


@dataclass
class ModelAccount:
    id: str
    partner: bool
    # Partner only: change rows written since the last refresh / switch.
    pending: int = 0
    # Partner only: what the stored cache must hold until the next refresh.
    cached: AccountMetrics | None = None


class MetricsMachine(RuleBasedStateMachine):
    # Installed by the test before the machine runs: one loop and one engine for every example.
    runner: ClassVar[asyncio.Runner]
    engine: ClassVar[AsyncEngine]

    invoices = Bundle("invoices")

    def __init__(self) -> None:
        super().__init__()
        self.tenant: Tenant | None = None
        self.accounts: list[ModelAccount] = []
        self.model_invoices: dict[str, ModelInvoice] = {}

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
        return AccountMetrics(
            total_invoice_balance=sum((inv.amount for inv in posted), Decimal(0)),
            last_invoice_date=max((inv.invoice_date for inv in posted), default=None),
        )

    def changed_metrics(self, index: int) -> None:
        """A write changed the account's document metrics: a partner account logs one change."""
        if self.accounts[index].partner:
            self.accounts[index].pending += 1

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

    # -- setup ----------------------------------------------------------------------------------

    @initialize(partners=st.lists(st.booleans(), min_size=ACCOUNTS, max_size=ACCOUNTS))
    def create_accounts(self, partners: list[bool]) -> None:
        async def setup() -> tuple[Tenant, list[str]]:
            async with self.engine.begin() as conn:
                tenant = await create_tenant(conn, f"prop-{uuid.uuid4().hex[:16]}")
                ids = []
                for partner in partners:
                    created = await accounts_service.create_account(
                        conn,
                        tenant,
                        CreateAccountRequest(
                            name="Property Account",
                            currency="USD",
                            bill_to_contact=Contact(first_name="Ada", last_name="Lovelace"),
                            partner_account=partner,
                        ),
                    )
                    ids.append(created["accountId"])
            return tenant, ids

        self.tenant, ids = self.run(setup())
        self.accounts = [
            ModelAccount(
                id=account_id, partner=partner, cached=AccountMetrics() if partner else None
            )
            for account_id, partner in zip(ids, partners, strict=True)
        ]

    # -- invoice operations ---------------------------------------------------------------------

    @rule(
        target=invoices,
        account=account_indexes,
        status=st.sampled_from(["Draft", "Posted"]),
        items=st.lists(amounts, min_size=1, max_size=3),
        invoice_date=days,
    )
    def create_invoice(
        self, account: int, status: str, items: list[Decimal], invoice_date: date
    ) -> str:
        request = CreateInvoiceRequest(
            account_id=self.accounts[account].id,
            invoice_date=invoice_date,
            status=status,
            invoice_items=[
                CreateInvoiceItem(amount=amount, service_start_date=invoice_date)
                for amount in items
            ],
        )
        (outcome,) = self.attempt(True, billing.create_invoices, [request], all_or_nothing=True)
        assert outcome.error is None
        assert outcome.invoice is not None
        invoice = outcome.invoice
        total = sum(items, Decimal(0))
        assert invoice["amount"] == total
        assert invoice["status"] == status
        self.model_invoices[invoice["id"]] = ModelInvoice(
            invoice["id"], account, total, invoice_date, status
        )
        if status == "Posted":
            self.changed_metrics(account)
        return str(invoice["id"])

    @rule(
        target=invoices,
        specs=st.lists(
            st.tuples(account_indexes, st.sampled_from(["Draft", "Posted"]), amounts, days),
            min_size=2,
            max_size=5,
        ),
        all_or_nothing=st.booleans(),
    )
    def create_batch(
        self, specs: list[tuple[int, str, Decimal, date]], all_or_nothing: bool
    ) -> Any:
        """One request for several invoices, possibly on several accounts: `touch` merges the
        deltas per account (a partner account logs one change for the whole request)."""
        requests = [
            CreateInvoiceRequest(
                account_id=self.accounts[account].id,
                invoice_date=invoice_date,
                status=status,
                invoice_items=[CreateInvoiceItem(amount=amount, service_start_date=invoice_date)],
            )
            for account, status, amount, invoice_date in specs
        ]
        outcomes = self.attempt(
            True, billing.create_invoices, requests, all_or_nothing=all_or_nothing, batch=True
        )
        ids = []
        for outcome, (account, status, amount, invoice_date) in zip(outcomes, specs, strict=True):
            assert outcome.error is None
            assert outcome.invoice is not None
            assert outcome.invoice["amount"] == amount
            invoice_id = str(outcome.invoice["id"])
            self.model_invoices[invoice_id] = ModelInvoice(
                invoice_id, account, amount, invoice_date, status
            )
            ids.append(invoice_id)
        for account in {account for account, status, _, _ in specs if status == "Posted"}:
            self.changed_metrics(account)
        return multiple(*ids)

    @rule(invoice_id=invoices, new_date=st.none() | days)
    def post(self, invoice_id: str, new_date: date | None) -> None:
        invoice = self.model_invoices[invoice_id]
        allowed = invoice.status == "Draft"
        self.attempt(allowed, billing.post_invoice, invoice_id, new_date)
        if allowed:
            invoice.status = "Posted"
            if new_date is not None:
                invoice.invoice_date = new_date
            self.changed_metrics(invoice.account)

    @rule(invoice_id=invoices)
    def unpost(self, invoice_id: str) -> None:
        invoice = self.model_invoices[invoice_id]
        allowed = invoice.status == "Posted"
        self.attempt(allowed, billing.unpost_invoice, invoice_id)
        if allowed:
            invoice.status = "Draft"
            self.changed_metrics(invoice.account)

    @rule(invoice_id=invoices)
    def cancel(self, invoice_id: str) -> None:
        invoice = self.model_invoices[invoice_id]
        allowed = invoice.status == "Draft"
        self.attempt(allowed, billing.cancel_invoice, invoice_id)
        if allowed:
            invoice.status = "Canceled"  # a Draft never counted: no metrics change

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

        async def refresh_and_read() -> tuple[metrics.RefreshResult | None, Any]:
            async with self.engine.begin() as conn:
                result = await metrics.refresh_account(conn, self.t, model.id, wait=True)
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


def test_metrics_equal_recompute_over_random_operations(database_url: str) -> None:
    with asyncio.Runner() as runner:
        engine = db.create_engine(database_url)
        MetricsMachine.runner = runner
        MetricsMachine.engine = engine
        try:
            run_state_machine_as_test(
                MetricsMachine,
                settings=settings(
                    max_examples=40,
                    stateful_step_count=25,
                    deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(engine.dispose())
