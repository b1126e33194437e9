"""Orders through the official Zuora Python SDK (zuora-sdk 3.21.0) against the live server: a
catalog rate plan made with the SDK's catalog APIs, two accounts, then `OrdersApi.create_order` with
a CreateSubscription (subscription owner and invoice owner apart) and runBilling; the subscription,
the invoice and both accounts' metrics read back through the SDK.

contractedMrr belongs to the subscription owner, the invoice (and so the invoice balance) to the
invoice owner (docs/architecture.md). Both accounts are non-partner: their metrics are current at
once.
"""

from datetime import date

import pytest
import zuora_sdk as sdk
from zuora_sdk.zuora_client import ZuoraClient

from tests.sdk_order_support import (
    QUANTITY,
    UNIT_PRICE,
    _account,
    _catalog,
    _day,
    _money,
    trigger_dates,
)

# The SDK's generated models use pydantic APIs deprecated in v2 and type money as float, while
# money here is Decimal (the SDK sends it as a string): both warnings are the SDK's business.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

ORDER_DATE = date(2026, 3, 1)


def test_create_subscription_order_with_run_billing_through_the_sdk(zc: ZuoraClient) -> None:
    plan_id, charge_id = _catalog(zc)
    owner_id, owner_number = _account(zc, "Subscription Owner")
    payer_id, payer_number = _account(zc, "Invoice Owner")

    order = zc.orders_api().create_order(
        sdk.CreateOrderRequest(
            order_date=ORDER_DATE,
            existing_account_number=payer_number,
            subscriptions=[
                sdk.CreateOrderSubscription(
                    order_actions=[
                        sdk.CreateOrderAction(
                            type="CreateSubscription",
                            trigger_dates=trigger_dates(ORDER_DATE),
                            create_subscription=sdk.CreateOrderCreateSubscription(
                                subscription_owner_account_number=owner_number,
                                invoice_owner_account_number=payer_number,
                                terms=sdk.OrderActionCreateSubscriptionTerms(
                                    initial_term=sdk.InitialTerm(
                                        term_type="TERMED",
                                        period=12,
                                        period_type="Month",
                                        start_date=ORDER_DATE,
                                    ),
                                    renewal_setting="RENEW_WITH_SPECIFIC_TERM",
                                    renewal_terms=[sdk.RenewalTerm(period=12, period_type="Month")],
                                    auto_renew=True,
                                ),
                                subscribe_to_rate_plans=[
                                    sdk.CreateOrderRatePlanOverride(
                                        product_rate_plan_id=plan_id,
                                        charge_overrides=[
                                            sdk.ChargeOverride(
                                                product_rate_plan_charge_id=charge_id,
                                                pricing=sdk.ChargeOverridePricing(
                                                    recurring_per_unit=sdk.RecurringPerUnitPricingOverride(
                                                        quantity=QUANTITY
                                                    )
                                                ),
                                            )
                                        ],
                                    )
                                ],
                            ),
                        )
                    ]
                )
            ],
            processing_options=sdk.ProcessingOptionsWithDelayedCapturePayment(
                run_billing=True,
                billing_options=sdk.BillingOptions(target_date=ORDER_DATE),
            ),
        ),
        return_ids=True,
    )
    assert order.success is True, order
    assert order.order_number
    assert order.account_number == payer_number
    (subscription_number,) = order.subscription_numbers
    (invoice_number,) = order.invoice_numbers
    (subscription_id,) = order.subscription_ids
    (invoice_id,) = order.invoice_ids
    (response_sub,) = order.subscriptions
    assert response_sub.subscription_number == subscription_number
    assert response_sub.subscription_owner_id == owner_id
    assert response_sub.subscription_owner_number == owner_number

    # The subscription: owner and invoice owner apart, one rate plan with the overridden quantity.
    monthly = UNIT_PRICE * QUANTITY
    sub = zc.subscriptions_api().get_subscription_by_key(subscription_number)
    assert sub.success is True
    assert sub.id == subscription_id
    assert sub.subscription_number == subscription_number
    assert sub.status == sdk.SubscriptionStatus.ACTIVE
    assert sub.account_id == owner_id
    assert sub.account_number == owner_number
    assert sub.invoice_owner_account_id == payer_id
    assert sub.invoice_owner_account_number == payer_number
    assert sub.term_type == "TERMED"
    assert _day(sub.contract_effective_date) == ORDER_DATE
    assert _day(sub.term_start_date) == ORDER_DATE
    assert _day(sub.term_end_date) == date(2027, 3, 1)
    assert _money(sub.contracted_mrr) == monthly
    (rate_plan,) = sub.rate_plans
    assert rate_plan.product_rate_plan_id == plan_id
    assert rate_plan.rate_plan_name == "SDK Order Monthly"
    assert rate_plan.product_name == "SDK Order Product"
    (charge,) = rate_plan.rate_plan_charges
    assert charge.product_rate_plan_charge_id == charge_id
    assert charge.name == "SDK order seat"
    assert charge.quantity == QUANTITY
    assert _money(charge.price) == UNIT_PRICE
    assert _money(charge.mrr) == monthly
    # Billed in advance for March: charged through the end of the period.
    assert _day(charge.charged_through_date) == date(2026, 4, 1)

    # The invoice: on the invoice owner, one month of three seats.
    invoice = zc.invoices_api().get_invoice(invoice_id)
    assert invoice.success is True
    assert invoice.invoice_number == invoice_number
    assert invoice.account_id == payer_id
    assert invoice.status == "Posted"
    assert _day(invoice.invoice_date) == ORDER_DATE
    assert _money(invoice.amount) == monthly
    assert _money(invoice.balance) == monthly
    items = zc.invoices_api().get_invoice_items(invoice_number)
    (item,) = items.invoice_items
    assert item.subscription_id == subscription_id
    assert _day(item.service_start_date) == ORDER_DATE
    assert _day(item.service_end_date) == date(2026, 3, 31)
    assert _money(item.charge_amount) == monthly

    # Metrics, current at once (non-partner): contractedMrr on the subscription owner, the
    # invoice balance on the invoice owner.
    owner = zc.accounts_api().get_account(owner_number)
    assert _money(owner.metrics.contracted_mrr) == monthly
    assert _money(owner.metrics.total_invoice_balance) == 0
    assert _money(owner.metrics.balance) == 0
    payer = zc.accounts_api().get_account(payer_number)
    assert _money(payer.metrics.contracted_mrr) == 0
    assert _money(payer.metrics.total_invoice_balance) == monthly
    assert _money(payer.metrics.balance) == monthly

    # The summary lists the subscription on its owner, with its rate plan; the payer owns none.
    summary = zc.accounts_api().get_account_summary(owner_number)
    (listed,) = summary.subscriptions
    assert listed.id == subscription_id
    assert listed.subscription_number == subscription_number
    assert listed.status == "Active"
    assert listed.term_type == "TERMED"
    assert (listed.initial_term, listed.renewal_term, listed.auto_renew) == ("12", "12", True)
    assert _day(listed.subscription_start_date) == ORDER_DATE
    assert _day(listed.term_start_date) == ORDER_DATE
    assert _day(listed.term_end_date) == date(2027, 3, 1)
    (plan,) = listed.rate_plans
    assert (plan.product_name, plan.rate_plan_name) == ("SDK Order Product", "SDK Order Monthly")
    assert zc.accounts_api().get_account_summary(payer_number).subscriptions == []

    # The order read back: its subscription with the order action as it was given.
    read = zc.orders_api().get_order(order.order_number)
    assert read.success is True, read
    assert read.order.order_number == order.order_number
    (ordered,) = read.order.subscriptions
    assert ordered.subscription_number == subscription_number
    assert ordered.subscription_owner_account_number == owner_number
    (action,) = ordered.order_actions
    assert action.type == "CreateSubscription" and action.sequence == 1 and action.id
    assert {t.name for t in action.trigger_dates} == {
        "ContractEffective",
        "ServiceActivation",
        "CustomerAcceptance",
    }
    created_sub = action.create_subscription
    assert created_sub.subscription_owner_account_number == owner_number
    assert created_sub.terms.initial_term.period == 12
    (plan_override,) = created_sub.subscribe_to_rate_plans
    assert plan_override.product_rate_plan_id == plan_id
    (charge_override,) = plan_override.charge_overrides
    assert charge_override.pricing.recurring_per_unit.quantity == QUANTITY
