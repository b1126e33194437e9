"""Draft orders through the official SDK's OrdersApi against the live server over real HTTP:
placed with `status: Draft` (nothing runs), read, updated, activated (runs then, once), cancelled
and deleted; and the refusals for a draft's wrong account or a change its status forbids."""

from datetime import date
from typing import Any

import pytest
import zuora_sdk as sdk
from zuora_sdk.exceptions import ApiException, NotFoundException
from zuora_sdk.zuora_client import ZuoraClient

from tests.sdk_order_support import _account, _catalog, trigger_dates

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

START = date(2026, 6, 1)


def _draft(plan_id: str, account_number: str, months: int) -> dict[str, Any]:
    """A draft order creating one subscription of `months` (as keyword arguments)."""
    return {
        "order_date": START,
        "existing_account_number": account_number,
        "status": "Draft",
        "subscriptions": [
            sdk.CreateOrderSubscription(
                order_actions=[
                    sdk.CreateOrderAction(
                        type="CreateSubscription",
                        trigger_dates=trigger_dates(START),
                        create_subscription=sdk.CreateOrderCreateSubscription(
                            terms=sdk.OrderActionCreateSubscriptionTerms(
                                initial_term=sdk.InitialTerm(
                                    term_type="TERMED",
                                    period=months,
                                    period_type="Month",
                                    start_date=START,
                                ),
                            ),
                            subscribe_to_rate_plans=[
                                sdk.CreateOrderRatePlanOverride(product_rate_plan_id=plan_id)
                            ],
                        ),
                    )
                ]
            )
        ],
    }


def _place(zc: ZuoraClient, plan_id: str, account_number: str) -> str:
    """A 12-month draft placed: its order number."""
    placed = zc.orders_api().create_order(
        sdk.CreateOrderRequest(**_draft(plan_id, account_number, 12))
    )
    assert (placed.success, placed.status) == (True, "Draft"), placed
    return str(placed.order_number)


def _subscriptions(zc: ZuoraClient, account_number: str) -> list[Any]:
    listed = zc.subscriptions_api().get_subscriptions_by_account(account_number)
    return list(listed.subscriptions or [])


def _refused(answer: Any, status: str) -> None:
    assert answer.success is False, answer
    (reason,) = answer.reasons
    assert reason.code % 100 == 30 and status in reason.message, reason


def test_a_draft_runs_nothing_until_activated_and_runs_once(zc: ZuoraClient) -> None:
    plan_id, _ = _catalog(zc)
    _, account_number = _account(zc, "Draft Orders")
    orders = zc.orders_api()
    placed = orders.create_order(sdk.CreateOrderRequest(**_draft(plan_id, account_number, 12)))
    assert placed.success is True, placed
    assert (placed.status, placed.subscription_numbers) == ("Draft", [])
    number = str(placed.order_number)
    assert _subscriptions(zc, account_number) == []
    read = orders.get_order(number).order
    assert read.status == "Draft"
    (entry,) = read.subscriptions
    assert entry.order_actions[0].type == "CreateSubscription"
    listed = orders.get_orders(start_date=START, end_date=START, page_size=40)
    assert (number, "Draft") in [(o.order_number, o.status) for o in listed.orders or []]

    updated = orders.update_order(
        number, sdk.UpdateOrderRequest(**_draft(plan_id, account_number, 24))
    )
    assert (updated.success, updated.status) == (True, "Draft"), updated
    assert _subscriptions(zc, account_number) == []
    terms = orders.get_order(number).order.subscriptions[0].order_actions[0]
    assert terms.create_subscription.terms.initial_term.period == 24

    activated = orders.activate_order(number)
    assert activated.success is True, activated
    assert (activated.order_number, activated.status) == (number, "Completed")
    (subscription,) = _subscriptions(zc, account_number)
    assert subscription.current_term == 24
    assert orders.get_order(number).order.status == "Completed"
    # Once only: the second activation finds it completed, and nothing more is created.
    _refused(orders.activate_order(number), "Completed")
    assert len(_subscriptions(zc, account_number)) == 1


def test_cancel_and_delete_a_draft(zc: ZuoraClient) -> None:
    plan_id, _ = _catalog(zc)
    _, account_number = _account(zc, "Draft Cancel")
    orders = zc.orders_api()
    cancelled = _place(zc, plan_id, account_number)
    answer = orders.cancel_order(cancelled, body=sdk.CancelOrderRequest(cancel_reason="lost deal"))
    assert answer.success is True, answer
    assert orders.get_order(cancelled).order.status == "Cancelled"
    _refused(orders.activate_order(cancelled), "Cancelled")
    _refused(orders.delete_order(cancelled), "Cancelled")

    deleted = _place(zc, plan_id, account_number)
    assert orders.delete_order(deleted).success is True
    with pytest.raises(NotFoundException):
        orders.get_order(deleted)
    another = _place(zc, plan_id, account_number)
    assert orders.delete_order_asynchronously(another).success is True
    with pytest.raises(NotFoundException):
        orders.get_order(another)
    assert _subscriptions(zc, account_number) == []


def test_a_failing_activation_leaves_the_draft_and_bad_drafts_are_refused(zc: ZuoraClient) -> None:
    _, account_number = _account(zc, "Draft Refusals")
    orders = zc.orders_api()
    broken = str(
        orders.create_order(
            sdk.CreateOrderRequest(**_draft("f" * 32, account_number, 12))
        ).order_number
    )
    with pytest.raises(ApiException) as refused:
        orders.activate_order(broken)
    assert refused.value.status == 400
    assert "productRatePlanId" in str(refused.value.body)
    assert orders.get_order(broken).order.status == "Draft"

    plan_id, _ = _catalog(zc)
    body = _draft(plan_id, account_number, 12)
    body["existing_account_number"] = None
    body["new_account"] = sdk.OrderCreateAccount(
        name="New",
        currency="USD",
        bill_cycle_day=1,
        bill_to_contact=sdk.OrderCreateAccountContact(first_name="Ada", last_name="Lovelace"),
    )
    with pytest.raises(ApiException) as new_account:
        orders.create_order(sdk.CreateOrderRequest(**body))
    assert new_account.value.status == 400
    assert "newAccount" in str(new_account.value.body)
    with pytest.raises(NotFoundException):
        orders.create_order(sdk.CreateOrderRequest(**_draft(plan_id, "A-NO-SUCH", 12)))
