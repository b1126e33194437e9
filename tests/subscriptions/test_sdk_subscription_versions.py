"""Subscription versions and subscription metrics through the official Zuora Python SDK
(zuora-sdk) against the live server over real HTTP."""

from datetime import date
from decimal import Decimal

import pytest
import zuora_sdk as sdk
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

from tests.sdk_order_support import QUANTITY, UNIT_PRICE, _subscribe

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]


def test_versions_and_metrics_before_and_after_a_cancellation(zc: ZuoraClient) -> None:
    number = _subscribe(zc)
    subs = zc.subscriptions_api()
    first = subs.get_subscription_by_key(number)
    monthly = UNIT_PRICE * QUANTITY

    metrics = subs.get_metrics_by_subscription_numbers([number], as_of_day="2026-04-01")
    assert metrics.success is True
    (one,) = metrics.subscription_metrics
    assert one.subscription_number == number
    assert Decimal(str(one.contracted_mrr)) == monthly
    assert Decimal(str(one.as_of_day_gross_mrr)) == monthly
    assert Decimal(str(one.total_contracted_value)) == monthly * 12
    assert Decimal(str(one.total_contracted_value)) == Decimal(str(first.total_contracted_value))

    cancelled = subs.cancel_subscription(
        number,
        sdk.CancelSubscriptionRequest(
            cancellation_policy="SpecificDate", cancellation_effective_date=date(2026, 9, 1)
        ),
    )
    assert cancelled.success is True, cancelled

    latest = subs.get_subscription_by_key_and_version(number, "2")
    assert latest.version == 2
    assert latest.is_latest_version is True
    assert latest.status == sdk.SubscriptionStatus.CANCELLED
    old = subs.get_subscription_by_key_and_version(number, "1")
    assert old.version == 1
    assert old.is_latest_version is False
    assert old.id == first.id
    assert old.status == sdk.SubscriptionStatus.ACTIVE
    # The old version's id names the same subscription.
    assert subs.get_subscription_by_key_and_version(first.id, "2").id == latest.id

    after = subs.get_metrics_by_subscription_numbers([number], as_of_day="2026-10-01")
    (now,) = after.subscription_metrics
    assert Decimal(str(now.contracted_mrr)) == 0
    assert Decimal(str(now.as_of_day_gross_mrr)) == 0
    assert Decimal(str(now.total_contracted_value)) == monthly * 6

    with pytest.raises(ApiException) as missing:
        subs.get_subscription_by_key_and_version(number, "3")
    assert "Cannot find subscription version" in str(missing.value.body)
    # Not a version number: a superscript digit (a digit to str.isdigit) and ten digits.
    for version in ("\u00b2", "1234567890", "0"):
        with pytest.raises(ApiException) as invalid:
            subs.get_subscription_by_key_and_version(number, version)
        assert invalid.value.status == 400
        assert "'version'" in str(invalid.value.body)
    with pytest.raises(ApiException) as unknown:
        subs.get_metrics_by_subscription_numbers([number, "A-S-none"])
    assert "A-S-none" in str(unknown.value.body)
