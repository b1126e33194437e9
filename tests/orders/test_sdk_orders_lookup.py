"""Order lists and the draft-only changes of a completed order through the official SDK's
OrdersApi against the live server: three orders each creating a subscription (owner and invoice
owner apart), then the lists by invoice owner, subscription owner, subscription and tenant, paged
and filtered as the SDK sends it; and update, activate, cancel, delete (sync and async) of a
completed order refused with a business rule (category 30) in the envelope."""

import time
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import zuora_sdk as sdk
from zuora_sdk.exceptions import NotFoundException
from zuora_sdk.zuora_client import ZuoraClient

from tests.async_order_support import raw_job_status
from tests.job_worker import running_worker
from tests.sdk_order_support import _account, _catalog, _day, trigger_dates

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

ORDER_DATES = (date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1))


def _create_subscription(
    zc: ZuoraClient, plan_id: str, owner: str, payer: str, order_date: date
) -> tuple[str, str]:
    """An order creating one subscription: (order number, subscription number)."""
    trigger = trigger_dates(order_date)
    order = zc.orders_api().create_order(
        sdk.CreateOrderRequest(
            order_date=order_date,
            existing_account_number=payer,
            subscriptions=[
                sdk.CreateOrderSubscription(
                    order_actions=[
                        sdk.CreateOrderAction(
                            type="CreateSubscription",
                            trigger_dates=trigger,
                            create_subscription=sdk.CreateOrderCreateSubscription(
                                subscription_owner_account_number=owner,
                                invoice_owner_account_number=payer,
                                terms=sdk.OrderActionCreateSubscriptionTerms(
                                    initial_term=sdk.InitialTerm(
                                        term_type="TERMED",
                                        period=12,
                                        period_type="Month",
                                        start_date=order_date,
                                    ),
                                    renewal_setting="RENEW_WITH_SPECIFIC_TERM",
                                    renewal_terms=[sdk.RenewalTerm(period=12, period_type="Month")],
                                    auto_renew=True,
                                ),
                                subscribe_to_rate_plans=[
                                    sdk.CreateOrderRatePlanOverride(product_rate_plan_id=plan_id)
                                ],
                            ),
                        )
                    ]
                )
            ],
        )
    )
    assert order.success is True, order
    (subscription_number,) = order.subscription_numbers
    return str(order.order_number), str(subscription_number)


def _numbers(listed: sdk.GetOrdersResponse) -> list[str]:
    assert listed.success is True, listed
    return [str(o.order_number) for o in listed.orders or []]


def _refused_as_business_rule(answer: Any, order_number: str) -> None:
    """`answer`: any of the SDK's response models (each has `success` and `reasons`)."""
    assert answer.success is False, answer
    (reason,) = answer.reasons
    assert reason.code % 100 == 30, reason
    assert order_number in reason.message and "Completed" in reason.message, reason


def test_order_lists_and_changes_of_a_completed_order(zc: ZuoraClient) -> None:
    plan_id, _ = _catalog(zc)
    _, owner = _account(zc, "Lookup Subscription Owner")
    _, payer = _account(zc, "Lookup Invoice Owner")
    placed = [_create_subscription(zc, plan_id, owner, payer, d) for d in ORDER_DATES]
    order_numbers = [o for o, _ in placed]
    orders = zc.orders_api()

    # Owners: the payer bills all three, the owner owns all three, and bills none.
    assert _numbers(orders.get_orders_by_invoice_owner(payer)) == order_numbers
    assert _numbers(orders.get_orders_by_subscription_owner(owner)) == order_numbers
    assert _numbers(orders.get_orders_by_invoice_owner(owner)) == []
    assert _numbers(orders.get_orders_by_subscription_owner(payer)) == []
    listed = orders.get_orders_by_invoice_owner(payer).orders
    assert listed is not None
    assert listed[0].subscriptions[0].subscription_number == placed[0][1]
    assert listed[0].status == "Completed"

    # The tenant's list, paged: two, then the third with no further page.
    first = orders.get_orders(page=1, page_size=2)
    assert _numbers(first) == order_numbers[:2]
    assert first.next_page is not None and "page=2" in first.next_page
    second = orders.get_orders(page=2, page_size=2)
    assert _numbers(second) == order_numbers[2:]
    assert second.next_page is None

    # Date filters on the order date, inclusive on both ends.
    window = orders.get_orders(start_date=ORDER_DATES[1], end_date=ORDER_DATES[1])
    assert _numbers(window) == [order_numbers[1]]
    later = orders.get_orders_by_invoice_owner(
        payer, date_filter_option="orderDate", start_date=ORDER_DATES[1]
    )
    assert _numbers(later) == order_numbers[1:]
    # updatedDate is the day the order was placed (today): none was placed before 2026-03-01.
    assert (
        _numbers(orders.get_orders(date_filter_option="updatedDate", end_date=date(2000, 1, 1)))
        == []
    )

    # By subscription, with the status filter as the SDK sends it.
    order_number, subscription_number = placed[1]
    by_sub = orders.get_orders_by_subscription_number(subscription_number)
    assert _numbers(by_sub) == [order_number]
    completed = orders.get_orders_by_subscription_number(
        subscription_number, status=sdk.OrderStatusParameter.COMPLETED
    )
    assert _numbers(completed) == [order_number]
    drafts = orders.get_orders_by_subscription_number(
        subscription_number, status=sdk.OrderStatusParameter.DRAFT
    )
    assert _numbers(drafts) == []
    assert _numbers(orders.get_pending_orders_by_subscription_number(subscription_number)) == []

    # A completed order cannot be changed: each change answers a business rule, writes nothing.
    _refused_as_business_rule(
        orders.update_order(
            order_number,
            sdk.UpdateOrderRequest(
                order_date=ORDER_DATES[1],
                existing_account_number=payer,
                subscriptions=[
                    sdk.CreateOrderSubscription(
                        subscription_number=subscription_number,
                        order_actions=[sdk.CreateOrderAction(type="RenewSubscription")],
                    )
                ],
            ),
        ),
        order_number,
    )
    _refused_as_business_rule(orders.activate_order(order_number), order_number)
    _refused_as_business_rule(
        orders.cancel_order(order_number, body=sdk.CancelOrderRequest(cancel_reason="no")),
        order_number,
    )
    _refused_as_business_rule(orders.delete_order(order_number), order_number)
    _refused_as_business_rule(orders.delete_order_asynchronously(order_number), order_number)
    still = orders.get_order(order_number)
    assert still.success is True and still.order.status == "Completed"

    # An unknown order is not found (category 40, HTTP 404), not a business rule.
    with pytest.raises(NotFoundException) as missing:
        orders.delete_order("O-NO-SUCH")
    assert "O-NO-SUCH" in str(missing.value.body)


def _preview_request(plan_id: str, owner: str, payer: str) -> sdk.PreviewOrderRequest:
    """A CreateSubscription order on `plan_id` previewed through 2026-04-15."""
    start = ORDER_DATES[0]
    trigger = trigger_dates(start)
    return sdk.PreviewOrderRequest(
        order_date=start,
        existing_account_number=payer,
        preview_options=sdk.PreviewOptions(
            preview_thru_type="SpecificDate",
            specific_preview_thru_date=date(2026, 4, 15),
            preview_types=["BillingDocs"],
        ),
        subscriptions=[
            sdk.PreviewOrderSubscriptions(
                order_actions=[
                    sdk.PreviewOrderOrderAction(
                        type="CreateSubscription",
                        trigger_dates=trigger,
                        create_subscription=sdk.PreviewOrderCreateSubscription(
                            subscription_owner_account_number=owner,
                            invoice_owner_account_number=payer,
                            terms=sdk.PreviewOrderCreateSubscriptionTerms(
                                initial_term=sdk.InitialTerm(
                                    term_type="TERMED",
                                    period=12,
                                    period_type="Month",
                                    start_date=start,
                                ),
                                renewal_setting="RENEW_WITH_SPECIFIC_TERM",
                                renewal_terms=[sdk.RenewalTerm(period=12, period_type="Month")],
                                auto_renew=True,
                            ),
                            subscribe_to_rate_plans=[
                                sdk.PreviewOrderRatePlanOverride(product_rate_plan_id=plan_id)
                            ],
                        ),
                    )
                ]
            )
        ],
    )


def test_preview_order_bills_through_the_date_and_writes_nothing(zc: ZuoraClient) -> None:
    plan_id, charge_id = _catalog(zc)
    _, owner = _account(zc, "Preview Subscription Owner")
    _, payer = _account(zc, "Preview Invoice Owner")
    previewed = zc.orders_api().preview_order(_preview_request(plan_id, owner, payer))
    assert previewed.success is True, previewed
    result = previewed.preview_result
    assert result is not None
    (invoice,) = result.invoices or []
    # Billed in advance through 2026-04-15: March and April, one seat each at the list price.
    periods = [
        (_day(i.service_start_date), _day(i.service_end_date)) for i in invoice.invoice_items
    ]
    assert periods == [(date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 4, 30))]
    amounts = [Decimal(str(i.amount_without_tax)) for i in invoice.invoice_items]
    assert amounts == [Decimal("19.99")] * 2
    assert Decimal(str(invoice.amount)) == Decimal("39.98")
    assert {i.product_rate_plan_charge_id for i in invoice.invoice_items} == {charge_id}
    (subscription_number,) = result.additional_properties["subscriptionNumbers"]
    assert {i.subscription_number for i in invoice.invoice_items} == {subscription_number}

    # Nothing was written: no order, no subscription, no invoice, no balance.
    assert _numbers(zc.orders_api().get_orders_by_invoice_owner(payer)) == []
    with pytest.raises(NotFoundException):
        zc.subscriptions_api().get_subscription_by_key(subscription_number)
    summary = zc.accounts_api().get_account(payer)
    assert Decimal(str(summary.metrics.balance)) == 0
    # No billing document either.
    documents = zc.billing_documents_api().get_billing_documents(account_id=summary.basic_info.id)
    assert not documents.documents, documents


def test_async_preview_order_result_through_the_job(zc: ZuoraClient, database_url: str) -> None:
    plan_id, _ = _catalog(zc)
    _, owner = _account(zc, "Async Preview Owner")
    _, payer = _account(zc, "Async Preview Payer")
    request = _preview_request(plan_id, owner, payer).to_dict()
    accepted = zc.orders_api().preview_order_asynchronously(
        sdk.PreviewOrderAsyncRequest.from_dict(request)
    )
    # PreviewOrderAsyncResponse carries only the job id.
    assert accepted.job_id
    with running_worker(database_url) as worker:
        deadline = time.monotonic() + 60
        while (job := raw_job_status(zc, accepted.job_id))["status"] == "Processing":
            assert worker.poll() is None, "the worker died"
            assert time.monotonic() < deadline, "the job did not complete"
            time.sleep(0.2)
    assert job["status"] == "Completed", job
    assert job["result"]["jobType"] == "AsyncPreviewOrder"
    (invoice,) = job["result"]["previewResult"]["invoices"]
    assert Decimal(str(invoice["amount"])) == Decimal("39.98")
    # The preview wrote nothing: the payer has no order.
    assert _numbers(zc.orders_api().get_orders_by_invoice_owner(payer)) == []
