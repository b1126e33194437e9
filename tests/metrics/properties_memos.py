"""The metrics property test's memo rules: credit memos (from an invoice's items within what is
left to credit on them, or standalone; posted, unposted, canceled, applied, unapplied, refunded)
and debit memos (from an invoice or standalone; posted, unposted, canceled)."""

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    precondition,
    rule,
)
from sqlalchemy import select

from partnerbill.core.errors import Resource
from partnerbill.memos import creation as memo_creation
from partnerbill.memos import kinds as memo_kinds
from partnerbill.memos import service as memos
from partnerbill.memos.schemas import (
    CreateMemoFromChargesRequest,
    CreateMemoFromInvoiceRequest,
    MemoCharge,
    MemoItemFromInvoice,
)
from partnerbill.tables.billing import invoice_items
from tests.metrics.properties_model import (
    Failure,
    ModelDebitMemo,
    ModelInvoice,
    ModelSource,
    account_indexes,
    amounts,
    days,
)


class MemoRules:
    """Credit and debit memos of the metrics machine (mixed into `MetricsMachine`); applying and
    refunding a credit memo use the settlement steps of `SettlementRules`."""

    # credit and debit memos

    def invoice_items(self, invoice: ModelInvoice) -> dict[str, Decimal]:
        if invoice.items is None:

            async def read() -> dict[str, Decimal]:
                async with self.engine.begin() as conn:
                    rows = await conn.execute(
                        select(invoice_items.c.id, invoice_items.c.amount).where(
                            invoice_items.c.tenant_id == self.t.id,
                            invoice_items.c.invoice_id == invoice.id,
                        )
                    )
                    return {row.id: row.amount for row in rows}

            invoice.items = self.run(read())
        return invoice.items

    def creditable(self, invoice: ModelInvoice) -> dict[str, Decimal]:
        """What is left to credit on each item: its amount less non-canceled credit memo items."""
        left = dict(self.invoice_items(invoice))
        for memo in self.model_credit_memos.values():
            if memo.invoice == invoice.id and memo.status != "Canceled":
                for item_id, amount in memo.items:
                    assert item_id is not None
                    left[item_id] -= amount
        return left

    def pick_invoice(self, data: st.DataObject) -> ModelInvoice:
        every = sorted(self.model_invoices)
        suited = [i for i in every if self.model_invoices[i].status == "Posted"]
        return self.model_invoices[self.choose(data, "invoice", every, suited)]

    def record_memo(
        self, response: dict[str, Any], debit: bool, account: int, auto_post: bool, **kw: Any
    ) -> None:
        status = "Posted" if auto_post else "Draft"
        assert response["status"] == status
        assert response["accountId"] == self.accounts[account].id
        if debit:
            memo = ModelDebitMemo(response["id"], account, response["amount"], status, **kw)
            self.model_debit_memos[memo.id] = memo
        else:
            self.model_credit_memos[response["id"]] = ModelSource(
                response["id"], "CreditMemo", account, response["amount"], status, **kw
            )
        if auto_post:
            self.changed_metrics(account)

    @precondition(lambda self: bool(self.model_invoices))
    @rule(data=st.data(), auto_post=st.booleans(), memo_date=days)
    def credit_memo_from_invoice(
        self, data: st.DataObject, auto_post: bool, memo_date: date
    ) -> None:
        invoice = self.pick_invoice(data)
        left = self.creditable(invoice)
        if not left:
            return
        fitting = sorted(i for i, amount in left.items() if amount > 0)
        items: list[tuple[str, Decimal]] = []
        if fitting and data.draw(st.integers(0, 5), label="valid") > 0:
            for item_id in data.draw(
                st.lists(st.sampled_from(fitting), min_size=1, max_size=3, unique=True)
            ):
                items.append((item_id, self.draw_money(data, left[item_id], "credit")))
        else:
            for item_id in data.draw(
                st.lists(st.sampled_from(sorted(left)), min_size=1, max_size=3)
            ):
                cap = max(left[item_id], Decimal(0)) + 20
                items.append((item_id, self.draw_money(data, cap, "credit")))
        failure: Failure = None
        if invoice.status != "Posted":
            failure = (Resource.CREDIT_MEMO, "only from a Posted invoice")
        else:
            remaining = dict(left)
            for item_id, amount in items:
                if amount > remaining[item_id]:
                    failure = (Resource.CREDIT_MEMO, "exceeds what is left to credit")
                    break
                remaining[item_id] -= amount
        request = CreateMemoFromInvoiceRequest(
            effective_date=memo_date,
            auto_post=auto_post,
            items=[MemoItemFromInvoice(amount=a, invoice_item_id=i) for i, a in items],
        )
        response = self.expect(
            failure, memo_creation.create_from_invoice, memo_kinds.CREDIT, invoice.id, request
        )
        if failure is not None:
            return
        assert response["amount"] == sum((a for _, a in items), Decimal(0))
        self.record_memo(
            response,
            False,
            invoice.account,
            auto_post,
            invoice=invoice.id,
            items=list(items),
        )

    @precondition(lambda self: bool(self.model_invoices))
    @rule(
        data=st.data(),
        amounts_=st.lists(amounts, min_size=1, max_size=3),
        auto_post=st.booleans(),
        memo_date=days,
    )
    def debit_memo_from_invoice(
        self, data: st.DataObject, amounts_: list[Decimal], auto_post: bool, memo_date: date
    ) -> None:
        invoice = self.pick_invoice(data)
        item_ids = sorted(self.invoice_items(invoice))
        named = bool(item_ids) and data.draw(st.booleans(), label="name items")
        request = CreateMemoFromInvoiceRequest(
            effective_date=memo_date,
            auto_post=auto_post,
            items=[
                MemoItemFromInvoice(
                    amount=amount,
                    invoice_item_id=data.draw(st.sampled_from(item_ids)) if named else None,
                )
                for amount in amounts_
            ],
        )
        failure: Failure = None
        if invoice.status != "Posted":
            failure = (Resource.DEBIT_MEMO, "only from a Posted invoice")
        response = self.expect(
            failure, memo_creation.create_from_invoice, memo_kinds.DEBIT, invoice.id, request
        )
        if failure is not None:
            return
        assert response["amount"] == sum(amounts_, Decimal(0))
        self.record_memo(response, True, invoice.account, auto_post, invoice=invoice.id)

    @rule(
        account=account_indexes,
        debit=st.booleans(),
        amounts_=st.lists(amounts, min_size=1, max_size=3),
        auto_post=st.booleans(),
        memo_date=days,
    )
    def standalone_memo(
        self, account: int, debit: bool, amounts_: list[Decimal], auto_post: bool, memo_date: date
    ) -> None:
        request = CreateMemoFromChargesRequest(
            account_id=self.accounts[account].id,
            effective_date=memo_date,
            auto_post=auto_post,
            charges=[
                MemoCharge(product_rate_plan_charge_id=self.plan.charge_id, amount=amount)
                for amount in amounts_
            ],
        )
        kind = memo_kinds.DEBIT if debit else memo_kinds.CREDIT
        response = self.expect(None, memo_creation.create_from_charges, kind, request)
        assert response["amount"] == sum(amounts_, Decimal(0))
        assert response["sourceType"] == "Standalone"
        self.record_memo(response, debit, account, auto_post)

    def pick_memo(
        self, data: st.DataObject, debit: bool, usable: Any
    ) -> tuple[ModelDebitMemo | ModelSource, memo_kinds.MemoKind, Resource] | None:
        found: dict[str, Any] = self.model_debit_memos if debit else self.model_credit_memos
        if not found:
            return None
        every = sorted(found)
        chosen = self.choose(data, "memo", every, [i for i in every if usable(found[i])])
        if debit:
            return found[chosen], memo_kinds.DEBIT, Resource.DEBIT_MEMO
        return found[chosen], memo_kinds.CREDIT, Resource.CREDIT_MEMO

    @rule(data=st.data(), debit=st.booleans())
    def post_memo(self, data: st.DataObject, debit: bool) -> None:
        picked = self.pick_memo(data, debit, lambda m: m.status == "Draft")
        if picked is None:
            return
        memo, kind, resource = picked
        failure: Failure = None
        if memo.status != "Draft":
            failure = (resource, f"can be posted; {kind.name} ")
        response = self.expect(failure, memos.post_memo, kind, memo.id)
        if failure is None:
            assert response["status"] == "Posted"
            memo.status = "Posted"
            self.changed_metrics(memo.account)

    @rule(data=st.data(), debit=st.booleans())
    def unpost_memo(self, data: st.DataObject, debit: bool) -> None:
        def unsettled(m: Any) -> bool:
            if isinstance(m, ModelDebitMemo):
                return m.balance == m.amount
            return not m.applied and not m.refunded

        picked = self.pick_memo(data, debit, lambda m: m.status == "Posted" and unsettled(m))
        if picked is None:
            return
        memo, kind, resource = picked
        failure: Failure = None
        if memo.status != "Posted":
            failure = (resource, "can be unposted")
        elif not unsettled(memo):
            failure = (resource, "before unposting")
        response = self.expect(failure, memos.unpost_memo, kind, memo.id)
        if failure is None:
            assert response["status"] == "Draft"
            memo.status = "Draft"
            self.changed_metrics(memo.account)

    @rule(data=st.data(), debit=st.booleans())
    def cancel_memo(self, data: st.DataObject, debit: bool) -> None:
        picked = self.pick_memo(data, debit, lambda m: m.status == "Draft")
        if picked is None:
            return
        memo, kind, resource = picked
        failure: Failure = None
        if memo.status != "Draft":
            failure = (resource, "can be canceled")
        response = self.expect(failure, memos.cancel_memo, kind, memo.id)
        if failure is None:
            assert response["status"] == "Canceled"
            memo.status = "Canceled"  # a Draft never counted: no metrics change, no log row

    @precondition(lambda self: bool(self.model_credit_memos))
    @rule(data=st.data())
    def apply_credit_memo(self, data: st.DataObject) -> None:
        chosen = self.pick_source(data, self.model_credit_memos, lambda c: c.active and c.unapplied)
        self._apply(data, self.model_credit_memos[chosen], 1)

    @precondition(lambda self: bool(self.model_credit_memos))
    @rule(data=st.data())
    def unapply_credit_memo(self, data: st.DataObject) -> None:
        chosen = self.pick_source(data, self.model_credit_memos, lambda c: c.active and c.applied)
        self._apply(data, self.model_credit_memos[chosen], -1)

    @precondition(lambda self: bool(self.model_credit_memos))
    @rule(data=st.data())
    def refund_credit_memo(self, data: st.DataObject) -> None:
        chosen = self.pick_source(data, self.model_credit_memos, lambda c: c.active and c.unapplied)
        self._refund(data, self.model_credit_memos[chosen])
