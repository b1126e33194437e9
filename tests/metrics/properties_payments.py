"""The metrics property test's settlement rules: payments created with applications to posted
invoices and debit memos, applied, unapplied, refunded, canceled; and the settlement steps the
credit memo rules share (`properties_memos.py`): choosing targets, drawing allocations, the
failure the model expects, applying and refunding a source."""

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    precondition,
    rule,
)

from partnerbill.core.errors import Resource
from partnerbill.memos import service as memos
from partnerbill.payments import service as payments_service
from partnerbill.payments.schemas import (
    ApplyPaymentRequest,
    CreatePaymentRequest,
    CreateRefundRequest,
    DebitMemoApplication,
    InvoiceApplication,
)
from tests.metrics.properties_model import (
    Failure,
    ModelDebitMemo,
    ModelInvoice,
    ModelSource,
    account_indexes,
    cents,
    days,
    money,
)


class SettlementRules:
    """Payments, and the settlement steps of payments and credit memos, of the metrics machine
    (mixed into `MetricsMachine`)."""

    # -- settlement: payments, credit memos, debit memos ----------------------------------------

    def memos_from(self, invoice_id: str) -> list[str]:
        """The non-canceled credit and debit memos created from the invoice."""
        credit = [
            c.id
            for c in self.model_credit_memos.values()
            if c.invoice == invoice_id and c.status != "Canceled"
        ]
        debit = [
            d.id
            for d in self.model_debit_memos.values()
            if d.invoice == invoice_id and d.status != "Canceled"
        ]
        return credit + debit

    def target(self, target_id: str) -> ModelInvoice | ModelDebitMemo:
        if target_id in self.model_invoices:
            return self.model_invoices[target_id]
        return self.model_debit_memos[target_id]

    def targets(self) -> list[str]:
        return sorted(self.model_invoices) + sorted(self.model_debit_memos)

    def choose(self, data: st.DataObject, label: str, every: list[str], suited: list[str]) -> str:
        """Mostly a document the operation suits (per the model), sometimes any of them."""
        if suited and data.draw(st.integers(min_value=0, max_value=5), label=f"{label}?") > 0:
            return str(data.draw(st.sampled_from(suited), label=label))
        return str(data.draw(st.sampled_from(every), label=label))

    def draw_money(self, data: st.DataObject, high: Decimal, label: str) -> Decimal:
        """An amount from 0.01 to `high` (at least 0.01)."""
        top = max(cents(high), 1)
        return money(data.draw(st.integers(min_value=1, max_value=top), label=label))

    def draw_allocations(
        self,
        data: st.DataObject,
        account: int,
        budget: Decimal | None,
        direction: int,
        already: dict[str, Decimal],
    ) -> list[tuple[str, Decimal]]:
        """Applications (target id, amount) for a source of `account`: mostly valid ones within
        the targets' balances (or what the source has on them) and the source's budget;
        sometimes any targets (other accounts, not Posted) with amounts that may be too much."""
        if direction > 0:
            fitting = [
                i
                for i in self.targets()
                if (t := self.target(i)).account == account
                and t.status == "Posted"
                and (t.balance or 0) > 0
            ]
        else:
            fitting = sorted(i for i, amount in already.items() if amount > 0)
        mode = data.draw(st.integers(min_value=0, max_value=7), label="mode")
        if mode == 1 and fitting:
            # Over-application (or over-unapplication) of one fitting target.
            target_id = data.draw(st.sampled_from(fitting), label="target")
            cap = self.target(target_id).balance if direction > 0 else already[target_id]
            assert cap is not None
            return [(target_id, cap + self.draw_money(data, Decimal(50), "over"))]
        if mode > 1 and fitting and (budget is None or budget > 0):
            chosen = data.draw(
                st.lists(st.sampled_from(fitting), min_size=1, max_size=3, unique=True),
                label="targets",
            )
            found = []
            for target_id in chosen:
                cap = self.target(target_id).balance if direction > 0 else already[target_id]
                assert cap is not None
                if budget is not None:
                    cap = min(cap, budget)
                if cap <= 0:
                    break
                amount = self.draw_money(data, cap, "amount")
                if budget is not None:
                    budget -= amount
                found.append((target_id, amount))
            return found
        every = self.targets()
        if not every:
            return []
        chosen = data.draw(st.lists(st.sampled_from(every), min_size=1, max_size=3), label="any")
        found = []
        for target_id in chosen:
            cap = self.target(target_id).balance if direction > 0 else already.get(target_id)
            high = max(cap or Decimal(0), Decimal(0)) + 50
            found.append((target_id, self.draw_money(data, high, "amount")))
        return found

    def settle_failure(
        self,
        resource: Resource,
        account: int,
        unapplied: Decimal,
        allocations: list[tuple[str, Decimal]],
        direction: int,
        already: dict[str, Decimal],
    ) -> Failure:
        """The rules of applying (1) and unapplying (-1), in the order the service checks them."""
        moved: dict[str, Decimal] = {}
        # The request names invoices first, then debit memos: the service checks in that order.
        in_request = sorted(allocations, key=lambda a: a[0] not in self.model_invoices)
        for target_id, amount in in_request:
            target = self.target(target_id)
            if target.status != "Posted":
                return (resource, ", not Posted.")
            if target.account != account:
                return (resource, "belongs to another account")
            moved[target_id] = moved.get(target_id, Decimal(0)) + amount
            if direction > 0 and moved[target_id] > (target.balance or 0):
                return (resource, "has a balance of")
            if direction < 0 and moved[target_id] > already.get(target_id, Decimal(0)):
                return (resource, "cannot be unapplied")
        if direction > 0 and sum(moved.values(), Decimal(0)) > unapplied:
            return (resource, "The unapplied amount is")
        return None

    def settled(
        self, source: ModelSource, allocations: list[tuple[str, Decimal]], direction: int
    ) -> None:
        """A successful (un)application in the model: targets' balances and the source's ledger."""
        for target_id, amount in allocations:
            target = self.target(target_id)
            assert target.balance is not None
            target.balance -= direction * amount
            source.applied[target_id] = source.applied.get(target_id, Decimal(0)) + (
                direction * amount
            )
            if source.applied[target_id] == 0:
                del source.applied[target_id]

    def application_request(
        self, allocations: list[tuple[str, Decimal]]
    ) -> tuple[list[InvoiceApplication], list[DebitMemoApplication]]:
        to_invoices = [
            InvoiceApplication(invoice_id=i, amount=a)
            for i, a in allocations
            if i in self.model_invoices
        ]
        to_debit_memos = [
            DebitMemoApplication(debit_memo_id=i, amount=a)
            for i, a in allocations
            if i in self.model_debit_memos
        ]
        return to_invoices, to_debit_memos

    # payments

    @rule(data=st.data(), account=account_indexes, effective_date=days)
    def create_payment(self, data: st.DataObject, account: int, effective_date: date) -> None:
        allocations = self.draw_allocations(data, account, None, 1, {})
        total = sum((amount for _, amount in allocations), Decimal(0))
        if total > Decimal("0.01") and data.draw(st.integers(0, 7), label="short") == 0:
            amount = self.draw_money(data, total - Decimal("0.01"), "payment")  # over-applied
        else:
            extra = money(data.draw(st.sampled_from([0, 1, 999, 250_00]), label="extra"))
            amount = total + extra if total + extra > 0 else Decimal("10.00")
        failure = self.settle_failure(Resource.PAYMENT, account, amount, allocations, 1, {})
        to_invoices, to_debit_memos = self.application_request(allocations)
        request = CreatePaymentRequest(
            amount=amount,
            currency="USD",
            type="External",
            account_id=self.accounts[account].id,
            effective_date=effective_date,
            invoices=to_invoices,
            debit_memos=to_debit_memos,
        )
        response = self.expect(failure, payments_service.create_payment, request)
        if failure is not None:
            return
        payment = ModelSource(
            response["id"],
            "Payment",
            account,
            amount,
            "Processed",
            effective_date=effective_date,
            seq=len(self.model_payments),
        )
        self.settled(payment, allocations, 1)
        self.model_payments[payment.id] = payment
        assert response["appliedAmount"] == payment.applied_total
        assert response["unappliedAmount"] == payment.unapplied
        self.changed_metrics(account)

    def pick_source(self, data: st.DataObject, sources: dict[str, ModelSource], usable: Any) -> str:
        every = sorted(sources)
        return self.choose(data, "source", every, [i for i in every if usable(sources[i])])

    def source_status_failure(self, source: ModelSource, action: str) -> Failure:
        if source.active:
            return None
        if source.kind == "Payment":
            return (Resource.PAYMENT, f"is {source.status}.")
        return (Resource.CREDIT_MEMO, f"Only a Posted credit memo can be {action}")

    def _apply(self, data: st.DataObject, source: ModelSource, direction: int) -> None:
        already = dict(source.applied) if direction < 0 else {}
        budget = source.unapplied if direction > 0 else None
        allocations = self.draw_allocations(data, source.account, budget, direction, already)
        if not allocations:
            return
        failure = self.source_status_failure(
            source, "applied" if direction > 0 else "unapplied"
        ) or self.settle_failure(
            source.resource, source.account, source.unapplied, allocations, direction, already
        )
        to_invoices, to_debit_memos = self.application_request(allocations)
        request = ApplyPaymentRequest(invoices=to_invoices, debit_memos=to_debit_memos)
        operation: Any = (
            payments_service.apply_payment if source.kind == "Payment" else memos.apply_credit_memo
        )
        response = self.expect(failure, operation, source.id, request, direction)
        if failure is not None:
            return
        self.settled(source, allocations, direction)
        assert response["appliedAmount"] == source.applied_total
        assert response["unappliedAmount"] == source.unapplied
        self.changed_metrics(source.account)

    @precondition(lambda self: bool(self.model_payments))
    @rule(data=st.data())
    def apply_payment(self, data: st.DataObject) -> None:
        chosen = self.pick_source(data, self.model_payments, lambda p: p.active and p.unapplied)
        self._apply(data, self.model_payments[chosen], 1)

    @precondition(lambda self: bool(self.model_payments))
    @rule(data=st.data())
    def unapply_payment(self, data: st.DataObject) -> None:
        chosen = self.pick_source(data, self.model_payments, lambda p: p.active and p.applied)
        self._apply(data, self.model_payments[chosen], -1)

    def _refund(self, data: st.DataObject, source: ModelSource) -> None:
        over = data.draw(st.integers(0, 6), label="over") == 0 or source.unapplied <= 0
        if over:
            amount = max(source.unapplied, Decimal(0)) + self.draw_money(data, Decimal(50), "over")
        else:
            amount = self.draw_money(data, source.unapplied, "refund")
        failure = self.source_status_failure(source, "refunded")
        if failure is None and amount > source.unapplied:
            failure = (
                (Resource.PAYMENT, "more than the payment's unapplied amount")
                if source.kind == "Payment"
                else (Resource.CREDIT_MEMO, "exceeds the unapplied amount")
            )
        request = CreateRefundRequest(type="External", total_amount=amount)
        if source.kind == "Payment":
            operation = payments_service.refund_payment
        else:
            operation = memos.refund_credit_memo
        response = self.expect(failure, operation, source.id, request)
        if failure is not None:
            return
        assert response["amount"] == amount
        source.refunded += amount
        self.changed_metrics(source.account)

    @precondition(lambda self: bool(self.model_payments))
    @rule(data=st.data())
    def refund_payment(self, data: st.DataObject) -> None:
        chosen = self.pick_source(data, self.model_payments, lambda p: p.active and p.unapplied)
        self._refund(data, self.model_payments[chosen])

    @precondition(lambda self: bool(self.model_payments))
    @rule(data=st.data())
    def cancel_payment(self, data: st.DataObject) -> None:
        chosen = self.pick_source(data, self.model_payments, lambda p: p.active and not p.refunded)
        payment = self.model_payments[chosen]
        failure = self.source_status_failure(payment, "canceled")
        if failure is None and payment.refunded:
            failure = (Resource.PAYMENT, "has refunds; it cannot be canceled")
        response = self.expect(failure, payments_service.cancel_payment, payment.id)
        if failure is not None:
            return
        # Its applications are reversed; its unapplied amount leaves the metrics.
        self.settled(payment, sorted(payment.applied.items()), -1)
        payment.status = "Canceled"
        assert response["status"] == "Canceled"
        assert response["appliedAmount"] == 0
        self.changed_metrics(payment.account)
