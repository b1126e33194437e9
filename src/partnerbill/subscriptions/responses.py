"""Documented answers of the subscription routes (OpenAPI only; see `core.responses`)."""

from datetime import date
from typing import Any

from partnerbill.core.responses import Documented, Money, Succeeded


class RatePlanCharge(Documented):
    id: str
    number: str
    name: str
    type: str
    model: str
    productRatePlanChargeId: str
    price: Money | None = None
    quantity: Money | None = None
    mrr: Money | None = None
    tcv: Money | None = None
    effectiveStartDate: date | None = None
    effectiveEndDate: date | None = None
    chargedThroughDate: date | None = None
    segment: int
    version: int


class RatePlan(Documented):
    id: str
    productId: str
    productName: str | None = None
    productRatePlanId: str
    ratePlanName: str | None = None
    ratePlanCharges: list[RatePlanCharge]


class Subscription(Documented):
    id: str
    subscriptionNumber: str
    version: int
    status: str
    accountId: str
    accountNumber: str
    invoiceOwnerAccountId: str
    invoiceOwnerAccountNumber: str
    termType: str
    initialTerm: int | None = None
    currentTerm: int | None = None
    renewalTerm: int | None = None
    autoRenew: bool
    contractEffectiveDate: date
    subscriptionStartDate: date | None = None
    subscriptionEndDate: date | None = None
    termStartDate: date | None = None
    termEndDate: date | None = None
    cancelledDate: date | None = None
    currency: str
    notes: str | None = None
    contractedMrr: Money
    totalContractedValue: Money | None = None
    ratePlans: list[RatePlan]


class SubscriptionAnswer(Succeeded, Subscription):
    pass


class AccountSubscriptions(Succeeded):
    subscriptions: list[Subscription]
    nextPage: str | None = None


class CreatedSubscription(Succeeded):
    subscriptionId: str
    subscriptionNumber: str
    contractedMrr: Money
    totalContractedValue: Money | None = None
    orderNumber: str
    invoiceId: str | None = None
    invoiceNumber: str | None = None


class AmendedSubscription(Succeeded):
    subscriptionId: str
    subscriptionNumber: str
    orderNumber: str
    subscriptionNumbers: list[str]
    status: str
    cancelledDate: date | None = None
    termEndDate: date | None = None
    invoiceNumbers: list[str]


class UpdatedSubscription(Succeeded):
    """An amendment's answer; a preview's carries the invoice it would create instead of ids."""

    totalDeltaMrr: Money
    totalDeltaTcv: Money
    subscriptionId: str | None = None
    orderNumbers: list[str] | None = None
    invoiceId: str | None = None
    invoiceTargetDate: date | None = None
    amount: Money | None = None
    amountWithoutTax: Money | None = None
    taxAmount: Money | None = None
    invoiceItems: list[dict[str, Any]] | None = None


class SubscriptionMetrics(Documented):
    subscriptionNumber: str
    contractedMrr: Money
    contractedNetMrr: Money
    asOfDayGrossMrr: Money
    asOfDayNetMrr: Money
    totalContractedValue: Money
    netTotalContractedValue: Money


class SubscriptionMetricsAnswer(Succeeded):
    subscriptionMetrics: list[SubscriptionMetrics]
