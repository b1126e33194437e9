"""The metrics property test's invoice rules: create (one or a batch), post, unpost, a settled
invoice's unpost refused, cancel."""

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    multiple,
    precondition,
    rule,
)

from partnerbill.billing import creation as invoice_creation
from partnerbill.billing import service as billing
from partnerbill.billing.schemas import CreateInvoiceItem, CreateInvoiceRequest
from partnerbill.core.errors import Resource
from tests.metrics.properties_model import (
    Failure,
    ModelInvoice,
    account_indexes,
    amounts,
    days,
    invoices,
)


class InvoiceRules:
    """Invoice operations of the metrics machine (mixed into `MetricsMachine`)."""

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
            status="Posted" if status == "Posted" else "Draft",
            invoice_items=[
                CreateInvoiceItem(amount=amount, service_start_date=invoice_date)
                for amount in items
            ],
        )
        (outcome,) = self.attempt(
            True, invoice_creation.create_invoices, [request], all_or_nothing=True
        )
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
                status="Posted" if status == "Posted" else "Draft",
                invoice_items=[CreateInvoiceItem(amount=amount, service_start_date=invoice_date)],
            )
            for account, status, amount, invoice_date in specs
        ]
        outcomes = self.attempt(
            True,
            invoice_creation.create_invoices,
            requests,
            all_or_nothing=all_or_nothing,
            batch=True,
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
        failure = None if allowed else (Resource.INVOICE, "Only a Draft invoice can be posted")
        self.expect(failure, billing.post_invoice, invoice_id, new_date)
        if allowed:
            invoice.status = "Posted"
            if new_date is not None:
                invoice.invoice_date = new_date
            self.changed_metrics(invoice.account)

    @rule(invoice_id=invoices)
    def unpost(self, invoice_id: str) -> None:
        invoice = self.model_invoices[invoice_id]
        failure: Failure = None
        if invoice.status != "Posted":
            failure = (Resource.INVOICE, "Only a Posted invoice can be unposted")
        elif invoice.balance != invoice.amount:
            failure = (Resource.INVOICE, "has payments or credits applied")
        elif self.memos_from(invoice_id):
            failure = (Resource.INVOICE, "created from it")
        self.expect(failure, billing.unpost_invoice, invoice_id)
        if failure is None:
            invoice.status = "Draft"
            self.changed_metrics(invoice.account)

    @precondition(
        lambda self: any(
            inv.balance != inv.amount or self.memos_from(i)
            for i, inv in self.model_invoices.items()
        )
    )
    @rule(data=st.data())
    def unpost_settled_invoice(self, data: st.DataObject) -> None:
        """Unpost an invoice that payments or credit memos settle, or that memos were made
        from: refused, nothing changes."""
        settled = sorted(
            i
            for i, inv in self.model_invoices.items()
            if inv.balance != inv.amount or self.memos_from(i)
        )
        self.unpost(data.draw(st.sampled_from(settled), label="invoice"))

    @rule(invoice_id=invoices)
    def cancel(self, invoice_id: str) -> None:
        invoice = self.model_invoices[invoice_id]
        failure: Failure = None
        if invoice.status != "Draft":
            failure = (Resource.INVOICE, "Only a Draft invoice can be canceled")
        elif self.memos_from(invoice_id):
            failure = (Resource.INVOICE, "created from it")
        self.expect(failure, billing.cancel_invoice, invoice_id)
        if failure is None:
            invoice.status = "Canceled"  # a Draft never counted: no metrics change
