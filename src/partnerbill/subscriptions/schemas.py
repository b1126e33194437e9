"""Subscription requests: the rate plans and charge overrides a subscription is created or
amended with, its lifecycle changes (cancel, suspend, resume), and the legacy subscribe and
amend requests (`POST` and `PUT /v1/subscriptions`). The order actions of `orders.schemas` are
built from these.

Fields the SDK sends that we do not model are accepted and ignored (CamelModel allows extras).
"""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from partnerbill.core.input_policy import MAX_PERIODS, Key, Periods, Word
from partnerbill.core.schemas import CamelModel, Date, Flag

PeriodType = Literal["Day", "Week", "Month", "Year"]
TermType = Literal["TERMED", "EVERGREEN"]
RenewalSetting = Literal["RENEW_WITH_SPECIFIC_TERM", "RENEW_TO_EVERGREEN"]
Notes = Annotated[str, Field(max_length=500)]  # a subscription's notes, as Zuora bounds them
MAX_RATE_PLANS_PER_SUBSCRIPTION = 300


class PriceTier(CamelModel):
    tier: int | None = None
    starting_unit: Decimal
    ending_unit: Decimal | None = None
    price: Decimal
    price_format: Word = "PerUnit"


class ChargePricing(CamelModel):
    """One charge's price: the first pricing object present applies (Zuora sends exactly one)."""

    list_price: Decimal | None = None
    quantity: Annotated[Decimal | None, Field(ge=0)] = None
    tiers: list[PriceTier] | None = None


class Pricing(CamelModel):
    recurring_flat_fee: ChargePricing | None = None
    recurring_per_unit: ChargePricing | None = None
    recurring_tiered: ChargePricing | None = None
    recurring_volume: ChargePricing | None = None
    one_time_flat_fee: ChargePricing | None = None
    one_time_per_unit: ChargePricing | None = None
    one_time_tiered: ChargePricing | None = None
    one_time_volume: ChargePricing | None = None

    def chosen(self) -> ChargePricing | None:
        """The first pricing given, in the order of the fields."""
        given = (
            self.recurring_flat_fee,
            self.recurring_per_unit,
            self.recurring_tiered,
            self.recurring_volume,
            self.one_time_flat_fee,
            self.one_time_per_unit,
            self.one_time_tiered,
            self.one_time_volume,
        )
        return next((pricing for pricing in given if pricing is not None), None)


class ChargeBilling(CamelModel):
    bill_cycle_day: Annotated[int | None, Field(ge=1, le=31)] = None
    billing_period: Word | None = None
    billing_timing: Word | None = None
    specific_billing_period: Periods | None = None


class ChargeStart(CamelModel):
    trigger_event: Word | None = None
    specific_trigger_date: Date | None = None


class ChargeEnd(CamelModel):
    end_date_condition: Word | None = None
    up_to_periods: Periods | None = None
    up_to_periods_type: Word | None = None
    specific_end_date: Date | None = None


class ChargeOverride(CamelModel):
    product_rate_plan_charge_id: Key | None = None
    product_rate_plan_charge_number: Key | None = None
    description: Annotated[str | None, Field(max_length=500)] = None
    pricing: Pricing | None = None
    billing: ChargeBilling | None = None
    start_date: ChargeStart | None = None
    end_date: ChargeEnd | None = None
    # Legacy subscribe spellings.
    quantity: Annotated[Decimal | None, Field(ge=0)] = None
    price: Decimal | None = None
    bill_cycle_day: Annotated[int | None, Field(ge=1, le=31)] = None
    billing_period: Word | None = None
    billing_timing: Word | None = None
    trigger_event: Word | None = None
    trigger_date: Date | None = None
    end_date_condition: Word | None = None
    up_to_periods: Periods | None = None
    tiers: list[PriceTier] | None = None


class RatePlanSubscription(CamelModel):
    product_rate_plan_id: Key | None = None
    product_rate_plan_number: Key | None = None
    charge_overrides: list[ChargeOverride] = []
    unique_token: Annotated[str | None, Field(max_length=64)] = None

    @model_validator(mode="after")
    def _plan_named(self) -> "RatePlanSubscription":
        if self.product_rate_plan_id is None and self.product_rate_plan_number is None:
            raise ValueError("productRatePlanId or productRatePlanNumber is required")
        return self

    @property
    def plan_key(self) -> str:
        """The id, else the number; the validator above makes one of them present and each
        key is at least one character."""
        return self.product_rate_plan_id or self.product_rate_plan_number or ""


class CancelSubscription(CamelModel):
    cancellation_policy: Literal["EndOfCurrentTerm", "EndOfLastInvoicePeriod", "SpecificDate"]
    cancellation_effective_date: Date | None = None


class Suspend(CamelModel):
    suspend_policy: Literal["Today", "FixedPeriodsFromToday", "SpecificDate"]
    suspend_periods: Periods | None = None
    suspend_periods_type: PeriodType | None = None
    suspend_specific_date: Date | None = None


class Resume(CamelModel):
    resume_policy: Literal[
        "Today",
        "FixedPeriodsFromSuspendDate",
        "FixedPeriodsFromToday",
        "SpecificDate",
        "SuspendDate",
    ]
    resume_periods: Periods | None = None
    resume_periods_type: PeriodType | None = None
    resume_specific_date: Date | None = None
    extends_term: Flag = False


class CreateSubscriptionRequest(CamelModel):
    """Legacy subscribe: `POST /v1/subscriptions`."""

    account_key: Key
    contract_effective_date: Date
    term_type: TermType
    subscribe_to_rate_plans: Annotated[
        list[RatePlanSubscription],
        Field(min_length=1, max_length=MAX_RATE_PLANS_PER_SUBSCRIPTION),
    ]
    initial_term: Periods | None = None
    initial_term_period_type: PeriodType = "Month"
    renewal_term: Annotated[int | None, Field(ge=0, le=MAX_PERIODS)] = None
    renewal_term_period_type: PeriodType = "Month"
    auto_renew: Flag = False
    renewal_setting: RenewalSetting = "RENEW_WITH_SPECIFIC_TERM"
    service_activation_date: Date | None = None
    customer_acceptance_date: Date | None = None
    term_start_date: Date | None = None
    subscription_number: Annotated[str | None, Field(max_length=100)] = None
    invoice_owner_account_key: Key | None = None
    invoice_separately: Flag = False
    notes: Notes | None = None
    run_billing: Flag = False
    invoice: Flag = False
    target_date: Date | None = None
    document_date: Date | None = None


class LegacyCancelRequest(CancelSubscription):
    run_billing: Flag = False
    order_date: Date | None = None


class LegacySuspendRequest(Suspend):
    order_date: Date | None = None


class LegacyResumeRequest(Resume):
    order_date: Date | None = None


class LegacyRenewRequest(CamelModel):
    order_date: Date | None = None


class LegacyActionDates(CamelModel):
    """When a legacy amendment of one rate plan takes effect (contract effective required)."""

    contract_effective_date: Date
    service_activation_date: Date | None = None
    customer_acceptance_date: Date | None = None


class LegacyAddRatePlan(RatePlanSubscription, LegacyActionDates):
    pass


class LegacyRatePlanKey(LegacyActionDates):
    rate_plan_id: Key | None = None
    subscription_rate_plan_number: Key | None = None

    @model_validator(mode="after")
    def _named(self) -> "LegacyRatePlanKey":
        if self.rate_plan_id is None and self.subscription_rate_plan_number is None:
            raise ValueError("ratePlanId: name the rate plan (or subscriptionRatePlanNumber)")
        return self


class LegacyChargeUpdate(CamelModel):
    rate_plan_charge_id: Key
    quantity: Annotated[Decimal | None, Field(ge=0)] = None
    price: Decimal | None = None
    tiers: list[PriceTier] | None = None
    description: Annotated[str | None, Field(max_length=500)] = None


class LegacyUpdateRatePlan(LegacyRatePlanKey):
    specific_update_date: Date | None = None
    charge_update_details: list[LegacyChargeUpdate] = []


class LegacyUpdateRequest(CamelModel):
    """Legacy amend: `PUT /v1/subscriptions/{key}` (Zuora's UpdateSubscriptionRequest)."""

    add: Annotated[list[LegacyAddRatePlan], Field(max_length=MAX_RATE_PLANS_PER_SUBSCRIPTION)] = []
    remove: Annotated[
        list[LegacyRatePlanKey], Field(max_length=MAX_RATE_PLANS_PER_SUBSCRIPTION)
    ] = []
    update: Annotated[
        list[LegacyUpdateRatePlan], Field(max_length=MAX_RATE_PLANS_PER_SUBSCRIPTION)
    ] = []
    change: list[dict[str, object]] = []
    auto_renew: Flag | None = None
    renewal_setting: RenewalSetting | None = None
    renewal_term: Annotated[int | None, Field(ge=0, le=MAX_PERIODS)] = None
    renewal_term_period_type: PeriodType | None = None
    current_term: Periods | None = None
    current_term_period_type: PeriodType | None = None
    term_type: TermType | None = None
    term_start_date: Date | None = None
    invoice_separately: Flag | None = None
    notes: Notes | None = None
    run_billing: Flag = False
    invoice: Flag = False
    target_date: Date | None = None
    invoice_target_date: Date | None = None
    document_date: Date | None = None
    collect: Flag = False
    invoice_collect: Flag = False
    preview: Flag = False

    @field_validator("change")
    @classmethod
    def _no_change(cls, value: list[dict[str, object]]) -> list[dict[str, object]]:
        if value:
            raise ValueError("replacing a rate plan in place is not supported: remove it and add")
        return value

    @field_validator("collect", "invoice_collect")
    @classmethod
    def _no_collect(cls, value: bool) -> bool:
        if value:
            raise ValueError("collecting needs a payment gateway, which partnerbill does not have")
        return value

    def changes_terms(self) -> bool:
        return any(
            value is not None
            for value in (
                self.auto_renew,
                self.renewal_setting,
                self.renewal_term,
                self.renewal_term_period_type,
                self.current_term,
                self.current_term_period_type,
                self.term_type,
                self.term_start_date,
                self.invoice_separately,
            )
        )
