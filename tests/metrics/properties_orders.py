"""The metrics property test's subscription rules: orders that create a subscription or amend it
(update quantity, remove, cancel, owner transfer, several at once, with or without runBilling),
and bill runs."""

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    multiple,
    precondition,
    rule,
)
from sqlalchemy import select

from partnerbill.billing import engine as billing_engine
from partnerbill.core.errors import Category
from partnerbill.subscriptions import views as subscriptions_views
from partnerbill.tables.subscriptions import subscriptions as subscriptions_table
from tests.metrics.properties_model import (
    UNIT_PRICE,
    ModelSubscription,
    account_indexes,
    days,
    invoices,
    offsets,
    order_actions,
    quantities,
)


class OrderRules:
    """Subscription orders and bill runs of the metrics machine (mixed into `MetricsMachine`)."""

    # -- subscription orders and bill runs ------------------------------------------------------

    @rule(
        owner=account_indexes,
        invoice_owner=account_indexes,
        quantity=quantities,
        order_date=days,
        run_billing=st.booleans(),
        target_date=st.none() | days,
    )
    def create_subscription(
        self,
        owner: int,
        invoice_owner: int,
        quantity: int,
        order_date: date,
        run_billing: bool,
        target_date: date | None,
    ) -> None:
        body: dict[str, Any] = {
            "orderDate": order_date,
            # The order's account is the invoice owner (Zuora), named again in the action.
            "existingAccountNumber": self.accounts[invoice_owner].number,
            "subscriptions": [
                {
                    "orderActions": [
                        {
                            "type": "CreateSubscription",
                            "createSubscription": {
                                "subscriptionOwnerAccountNumber": self.accounts[owner].number,
                                "invoiceOwnerAccountNumber": self.accounts[invoice_owner].number,
                                "terms": {"initialTerm": {"termType": "EVERGREEN"}},
                                "subscribeToRatePlans": [
                                    {
                                        "productRatePlanId": self.plan.rate_plan_id,
                                        "chargeOverrides": [
                                            {
                                                "productRatePlanChargeId": self.plan.charge_id,
                                                "pricing": {
                                                    "recurringPerUnit": {"quantity": quantity}
                                                },
                                            }
                                        ],
                                    }
                                ],
                            },
                        }
                    ]
                }
            ],
        }
        if run_billing:
            body["processingOptions"] = {
                "runBilling": True,
                "billingOptions": {"targetDate": target_date} if target_date else None,
            }
        response = self.attempt_order(None, body)
        assert response is not None
        (version_id,) = response["subscriptionIds"]
        (number,) = response["subscriptionNumbers"]
        assert response["subscriptions"][0]["subscriptionOwnerId"] == self.accounts[owner].id

        async def read() -> tuple[str, dict[str, Any]]:
            async with self.engine.begin() as conn:
                row_id = await conn.scalar(
                    select(subscriptions_table.c.id).where(
                        subscriptions_table.c.tenant_id == self.t.id,
                        subscriptions_table.c.subscription_number == number,
                    )
                )
                return str(row_id), await subscriptions_views.subscription_json(
                    conn, self.t, version_id
                )

        subscription_id, sub_json = self.run(read())
        assert sub_json["id"] == version_id
        assert sub_json["subscriptionNumber"] == number
        (plan,) = sub_json["ratePlans"]
        (charge,) = plan["ratePlanCharges"]
        assert charge["quantity"] == quantity
        assert charge["mrr"] == UNIT_PRICE * quantity
        assert sub_json["contractedMrr"] == UNIT_PRICE * quantity
        assert sub_json["invoiceOwnerAccountId"] == self.accounts[invoice_owner].id
        self.model_subscriptions[subscription_id] = ModelSubscription(
            id=subscription_id,
            version_id=version_id,
            number=number,
            owner=owner,
            invoice_owner=invoice_owner,
            start=order_date,
            quantity=quantity,
            rate_plan_id=plan["id"],
            charge_number=charge["number"],
        )
        if run_billing:
            assert len(response["invoiceIds"]) <= 1
            assert len(response["invoiceNumbers"]) == len(response["invoiceIds"])
            self.record_billed(response["invoiceIds"], also_touched=[owner, invoice_owner])
        else:
            assert response["invoiceIds"] == []
            self.touched([owner, invoice_owner])

    def _simulate(
        self, sub: ModelSubscription, action: tuple[Any, ...], order_date: date
    ) -> Category | None:
        """Apply one order action to the model; the error category the service must raise."""
        kind = action[0]
        if sub.cancelled and kind != "transfer":
            return Category.BUSINESS_RULE  # a cancelled subscription cannot change
        match action:
            case ("update", quantity, _):
                if sub.removed:
                    return Category.INVALID_VALUE  # no active rate plan to update
                sub.quantity = quantity
            case ("remove",):
                if sub.removed:
                    return Category.INVALID_VALUE
                sub.removed = True
            case ("cancel", offset):
                if sub.start + offset < sub.start:
                    return Category.BUSINESS_RULE  # cannot be cancelled before it starts
                sub.cancelled = True
            case ("transfer", owner, invoice_owner):
                if owner is None and invoice_owner is None:
                    return Category.INVALID_VALUE
                if owner is not None:
                    sub.owner = owner
                if invoice_owner is not None:
                    sub.invoice_owner = invoice_owner
        return None

    def _action_json(self, sub: ModelSubscription, action: tuple[Any, ...]) -> dict[str, Any]:
        match action:
            case ("update", quantity, offset):
                return {
                    "type": "UpdateProduct",
                    "updateProduct": {
                        "ratePlanId": sub.rate_plan_id,
                        "specificUpdateDate": sub.start + offset,
                        "chargeUpdates": [
                            {
                                "chargeNumber": sub.charge_number,
                                "pricing": {"recurringPerUnit": {"quantity": quantity}},
                            }
                        ],
                    },
                }
            case ("remove",):
                return {"type": "RemoveProduct", "removeProduct": {"ratePlanId": sub.rate_plan_id}}
            case ("cancel", offset):
                return {
                    "type": "CancelSubscription",
                    "cancelSubscription": {
                        "cancellationPolicy": "SpecificDate",
                        "cancellationEffectiveDate": sub.start + offset,
                    },
                }
            case ("transfer", owner, invoice_owner):
                transfer: dict[str, Any] = {}
                if owner is not None:
                    transfer["destinationAccountNumber"] = self.accounts[owner].number
                if invoice_owner is not None:
                    transfer["destinationInvoiceAccountNumber"] = self.accounts[
                        invoice_owner
                    ].number
                return {"type": "OwnerTransfer", "ownerTransfer": transfer}
        raise AssertionError(action)

    def _amend(
        self, subscription_id: str, actions: list[tuple[Any, ...]], order_date: date
    ) -> None:
        """One order of actions on one subscription: all or nothing. The model chooses the
        outcome: a cancelled subscription takes no further action but an owner transfer (which
        the service allows on purpose); a removed rate plan cannot be updated or removed again;
        nothing is cancelled before it starts."""
        current = self.model_subscriptions[subscription_id]
        after = replace(current)
        error = None
        for action in actions:
            error = self._simulate(after, action, order_date)
            if error is not None:
                break
        body = {
            "orderDate": order_date,
            "existingAccountNumber": self.accounts[current.invoice_owner].number,
            "subscriptions": [
                {
                    "subscriptionNumber": current.number,
                    "orderActions": [self._action_json(current, a) for a in actions],
                }
            ],
        }
        response = self.attempt_order(error, body)
        if error is not None:
            return
        assert response is not None
        assert response["subscriptionNumbers"] == [current.number]
        # One new version (with its own id) per amending order.
        (after.version_id,) = response["subscriptionIds"]
        assert after.version_id != current.version_id
        assert response["invoiceIds"] == []
        self.model_subscriptions[subscription_id] = after
        # `touch` names the owner before the order, the owner after it and the invoice owner.
        self.touched([current.owner, after.owner, after.invoice_owner])

    def pick(self, data: st.DataObject, usable: Any) -> str:
        """A subscription of the example: mostly one the action suits (per the model), sometimes
        any, so the refusals are exercised too."""
        every = sorted(self.model_subscriptions)
        suited = [i for i in every if usable(self.model_subscriptions[i])]
        if suited and data.draw(st.integers(min_value=0, max_value=4), label="suited") > 0:
            return str(data.draw(st.sampled_from(suited), label="subscription"))
        return str(data.draw(st.sampled_from(every), label="subscription"))

    @precondition(lambda self: bool(self.model_subscriptions))
    @rule(data=st.data(), quantity=quantities, offset=offsets, order_date=days)
    def update_quantity(
        self, data: st.DataObject, quantity: int, offset: timedelta, order_date: date
    ) -> None:
        chosen = self.pick(data, lambda sub: not sub.cancelled and not sub.removed)
        self._amend(chosen, [("update", quantity, offset)], order_date)

    @precondition(lambda self: bool(self.model_subscriptions))
    @rule(data=st.data(), order_date=days)
    def remove_product(self, data: st.DataObject, order_date: date) -> None:
        chosen = self.pick(data, lambda sub: not sub.cancelled and not sub.removed)
        self._amend(chosen, [("remove",)], order_date)

    @precondition(lambda self: bool(self.model_subscriptions))
    @rule(data=st.data(), offset=offsets, order_date=days)
    def cancel_subscription(self, data: st.DataObject, offset: timedelta, order_date: date) -> None:
        chosen = self.pick(data, lambda sub: not sub.cancelled)
        self._amend(chosen, [("cancel", offset)], order_date)

    @precondition(lambda self: bool(self.model_subscriptions))
    @rule(
        data=st.data(),
        owner=st.none() | account_indexes,
        invoice_owner=st.none() | account_indexes,
        order_date=days,
    )
    def owner_transfer(
        self, data: st.DataObject, owner: int | None, invoice_owner: int | None, order_date: date
    ) -> None:
        chosen = self.pick(data, lambda sub: not sub.cancelled)
        self._amend(chosen, [("transfer", owner, invoice_owner)], order_date)

    @precondition(lambda self: bool(self.model_subscriptions))
    @rule(
        data=st.data(),
        actions=st.lists(order_actions, min_size=2, max_size=3),
        order_date=days,
    )
    def amend_several(
        self, data: st.DataObject, actions: list[tuple[Any, ...]], order_date: date
    ) -> None:
        """Several actions on one subscription in one order: one new version, one `touch`."""
        chosen = self.pick(data, lambda sub: not sub.cancelled and not sub.removed)
        self._amend(chosen, actions, order_date)

    @precondition(lambda self: bool(self.model_subscriptions))
    @rule(target=invoices, target_date=days)
    def bill_run(self, target_date: date) -> Any:
        """Bill every subscription of the example up to `target_date` and post the invoices."""
        ids = sorted(self.model_subscriptions)

        async def run_bill() -> list[billing_engine.BilledInvoice]:
            async with self.engine.begin() as conn:
                return await billing_engine.bill(
                    conn,
                    self.t,
                    billing_engine.subscription_batches(ids),
                    target_date=target_date,
                    invoice_date=target_date,
                    post=True,
                )

        billed = self.run(run_bill())
        assert len({b.account_id for b in billed}) == len(billed), billed  # one per owner
        invoice_ids = self.record_billed([b.id for b in billed])
        for b in billed:
            assert self.model_invoices[b.id].amount == b.amount
        if ids:
            self.run(self._check_billed_lines(ids))
        # Nothing is billed twice: the same run again finds nothing due.
        assert self.run(run_bill()) == []
        return multiple(*invoice_ids)
