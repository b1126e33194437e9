"""Orders through the official zuora-sdk, the shared part: a catalog rate plan made with the
SDK's catalog APIs, an account, trigger dates, and an SDK value back to an exact amount or a
date. Shared by the SDK order and subscription tests."""

from datetime import date
from decimal import Decimal

import zuora_sdk as sdk
from zuora_sdk.zuora_client import ZuoraClient

UNIT_PRICE = Decimal("19.99")
QUANTITY = 3


def _money(value: object) -> Decimal:
    """An SDK float back to the exact amount it carries (2 places, or MRR's 9)."""
    return Decimal(str(value))


def _day(value: object) -> date:
    """An SDK date field: the SDK leaves some as the ISO string it received."""
    return date.fromisoformat(str(value)[:10])


def trigger_dates(day: date) -> list[sdk.TriggerDate]:
    """An order action's three trigger dates, all on `day`."""
    return [
        sdk.TriggerDate(name=name, trigger_date=day)
        for name in ("ContractEffective", "ServiceActivation", "CustomerAcceptance")
    ]


def _catalog(zc: ZuoraClient) -> tuple[str, str]:
    """A product with one rate plan and a monthly per-unit recurring charge: (plan, charge)."""
    product = zc.products_api().create_product(
        sdk.CreateProductRequest(
            name="SDK Order Product",
            effective_start_date=date(2026, 1, 1),
            effective_end_date=date(2036, 1, 1),
            category=sdk.ProductCategory.BASE_PRODUCTS,
        )
    )
    assert product.success is True, product
    plan = zc.product_rate_plans_api().create_product_rate_plan(
        sdk.CreateProductRatePlanRequest(name="SDK Order Monthly", product_id=product.id)
    )
    assert plan.success is True, plan
    charge = zc.product_rate_plan_charges_api().create_product_rate_plan_charge(
        sdk.CreateProductRatePlanChargeRequest(
            product_rate_plan_id=plan.id,
            name="SDK order seat",
            charge_type=sdk.ChargeType.RECURRING,
            charge_model=sdk.ChargeModelProductRatePlanChargeRest.PER_UNIT_PRICING,
            bill_cycle_type=sdk.BillCycleType.DEFAULTFROMCUSTOMER,
            billing_period=sdk.BillingPeriodProductRatePlanChargeRest.MONTH,
            trigger_event=sdk.TriggerEventProductRatePlanChargeRest.CONTRACTEFFECTIVE,
            use_discount_specific_accounting_code=False,
            uom="Seat",
            product_rate_plan_charge_tier_data=sdk.ProductRatePlanChargeTierData(
                product_rate_plan_charge_tier=[
                    sdk.ProductRatePlanChargeTier(currency="USD", price=UNIT_PRICE)
                ]
            ),
        )
    )
    assert charge.success is True, charge
    return str(plan.id), str(charge.id)


def _account(zc: ZuoraClient, name: str) -> tuple[str, str]:
    created = zc.accounts_api().create_account(
        sdk.CreateAccountRequest(
            name=name,
            currency="USD",
            bill_cycle_day=1,
            auto_pay=False,
            bill_to_contact=sdk.CreateAccountContact(first_name="Ada", last_name="Lovelace"),
        )
    )
    assert created.success is True, created
    return str(created.account_id), str(created.account_number)


START = date(2026, 3, 1)


def _subscribe(zc: ZuoraClient) -> str:
    plan_id, charge_id = _catalog(zc)
    _, owner_number = _account(zc, "Version Owner")
    order = zc.orders_api().create_order(
        sdk.CreateOrderRequest(
            order_date=START,
            existing_account_number=owner_number,
            subscriptions=[
                sdk.CreateOrderSubscription(
                    order_actions=[
                        sdk.CreateOrderAction(
                            type="CreateSubscription",
                            trigger_dates=trigger_dates(START),
                            create_subscription=sdk.CreateOrderCreateSubscription(
                                terms=sdk.OrderActionCreateSubscriptionTerms(
                                    initial_term=sdk.InitialTerm(
                                        term_type="TERMED",
                                        period=12,
                                        period_type="Month",
                                        start_date=START,
                                    ),
                                    renewal_setting="RENEW_WITH_SPECIFIC_TERM",
                                    renewal_terms=[sdk.RenewalTerm(period=12, period_type="Month")],
                                    auto_renew=False,
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
        ),
        return_ids=True,
    )
    assert order.success is True, order
    (number,) = order.subscription_numbers
    return str(number)
