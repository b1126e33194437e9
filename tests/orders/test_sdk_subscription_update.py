"""Legacy amend (`PUT /v1/subscriptions/{key}`, `SubscriptionsApi.update_subscription`) through
the official Zuora Python SDK (zuora-sdk) against the live server over real HTTP: add, update and
remove rate plans, change the terms, bill, preview, and the refusals naming the legacy field."""

from datetime import date
from decimal import Decimal

import pytest
import zuora_sdk as sdk
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

from tests.sdk_order_support import UNIT_PRICE, _catalog, _money, _subscribe

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

LATER = date(2026, 4, 1)


def _mrr(zc: ZuoraClient, number: str) -> Decimal:
    return _money(zc.subscriptions_api().get_subscription_by_key(number).contracted_mrr)


def _add(plan_id: str, charge_id: str, quantity: int) -> sdk.AddSubscriptionRatePlan:
    return sdk.AddSubscriptionRatePlan(
        product_rate_plan_id=plan_id,
        contract_effective_date=LATER,
        charge_overrides=[
            sdk.AddSubscriptionComponent(
                product_rate_plan_charge_id=charge_id, quantity=Decimal(quantity)
            )
        ],
    )


def test_add_update_and_remove_a_rate_plan(zc: ZuoraClient) -> None:
    number = _subscribe(zc)
    api = zc.subscriptions_api()
    before = _mrr(zc, number)
    plan_id, charge_id = _catalog(zc)

    added = api.update_subscription(
        number, sdk.UpdateSubscriptionRequest(add=[_add(plan_id, charge_id, 2)])
    )
    assert added.success is True, added
    assert _money(added.total_delta_mrr) == UNIT_PRICE * 2
    assert _mrr(zc, number) == before + UNIT_PRICE * 2
    assert added.order_numbers and added.subscription_id
    subscription = api.get_subscription_by_key(number)
    assert subscription.id == added.subscription_id
    new_plan = next(p for p in subscription.rate_plans if p.product_rate_plan_id == plan_id)
    (charge,) = new_plan.rate_plan_charges

    updated = api.update_subscription(
        number,
        sdk.UpdateSubscriptionRequest(
            update=[
                sdk.UpdateSubscriptionRatePlan(
                    rate_plan_id=new_plan.id,
                    contract_effective_date=LATER,
                    charge_update_details=[
                        sdk.UpdateRatePlanCharge(rate_plan_charge_id=charge.id, quantity=5)
                    ],
                )
            ]
        ),
    )
    assert updated.success is True, updated
    assert _money(updated.total_delta_mrr) == UNIT_PRICE * 3
    subscription = api.get_subscription_by_key(number)
    plan = next(p for p in subscription.rate_plans if p.id == new_plan.id)
    assert Decimal(str(plan.rate_plan_charges[-1].quantity)) == 5

    removed = api.update_subscription(
        number,
        sdk.UpdateSubscriptionRequest(
            remove=[
                sdk.RemoveSubscriptionRatePlan(
                    rate_plan_id=new_plan.id, contract_effective_date=LATER
                )
            ]
        ),
    )
    assert removed.success is True, removed
    assert _money(removed.total_delta_mrr) == -UNIT_PRICE * 5
    assert _mrr(zc, number) == before


def test_terms_and_notes_change_in_one_call(zc: ZuoraClient) -> None:
    number = _subscribe(zc)
    api = zc.subscriptions_api()
    answer = api.update_subscription(
        number,
        sdk.UpdateSubscriptionRequest(
            current_term=24,
            current_term_period_type="Month",
            auto_renew=True,
            renewal_term=6,
            notes="Two-year term agreed",
        ),
    )
    assert answer.success is True, answer
    subscription = api.get_subscription_by_key(number)
    assert (subscription.current_term, subscription.auto_renew) == (24, True)
    assert subscription.renewal_term == 6
    assert str(subscription.term_end_date)[:10] == "2028-03-01"
    assert subscription.notes == "Two-year term agreed"


def test_invoice_bills_the_amendment_and_preview_writes_nothing(zc: ZuoraClient) -> None:
    number = _subscribe(zc)
    api = zc.subscriptions_api()
    plan_id, charge_id = _catalog(zc)
    before = api.get_subscription_by_key(number)

    preview = api.update_subscription(
        number,
        sdk.UpdateSubscriptionRequest(
            add=[_add(plan_id, charge_id, 1)], preview=True, target_date=LATER
        ),
    )
    assert preview.success is True, preview
    assert _money(preview.total_delta_mrr) == UNIT_PRICE
    assert preview.invoice_items, preview
    assert _money(preview.amount) >= UNIT_PRICE
    assert preview.subscription_id is None
    after = api.get_subscription_by_key(number)
    assert (after.id, len(after.rate_plans)) == (before.id, len(before.rate_plans))

    billed = api.update_subscription(
        number,
        sdk.UpdateSubscriptionRequest(
            add=[_add(plan_id, charge_id, 1)], invoice=True, target_date=LATER
        ),
    )
    assert billed.success is True, billed
    assert billed.invoice_id
    invoice = zc.invoices_api().get_invoice(billed.invoice_id)
    assert _money(invoice.amount) == _money(preview.amount)


def test_refusals_name_the_legacy_field_and_write_nothing(zc: ZuoraClient) -> None:
    number = _subscribe(zc)
    api = zc.subscriptions_api()
    before = api.get_subscription_by_key(number)
    _, charge_id = _catalog(zc)
    for request, field in (
        (
            sdk.UpdateSubscriptionRequest(
                change=[sdk.ChangeSubscriptionRatePlan(contract_effective_date=LATER)]
            ),
            "change",
        ),
        (sdk.UpdateSubscriptionRequest(current_term=12, collect=True), "collect"),
        (
            sdk.UpdateSubscriptionRequest(add=[_add("f" * 32, charge_id, 1)]),
            "add[0].productRatePlanId",
        ),
        (
            sdk.UpdateSubscriptionRequest(
                update=[
                    sdk.UpdateSubscriptionRatePlan(
                        rate_plan_id=before.rate_plans[0].id,
                        contract_effective_date=LATER,
                        charge_update_details=[
                            sdk.UpdateRatePlanCharge(rate_plan_charge_id="e" * 32, quantity=1)
                        ],
                    )
                ]
            ),
            "update[0].chargeUpdateDetails[0].ratePlanChargeId",
        ),
        (sdk.UpdateSubscriptionRequest(), "add"),
    ):
        with pytest.raises(ApiException) as refused:
            api.update_subscription(number, request)
        assert refused.value.status == 400, refused.value.body
        assert field in str(refused.value.body), (field, refused.value.body)
    assert api.get_subscription_by_key(number).id == before.id
    with pytest.raises(ApiException) as missing:
        api.update_subscription("A-S-NOPE", sdk.UpdateSubscriptionRequest(current_term=3))
    assert missing.value.status == 404
