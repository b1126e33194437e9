"""Order requests (Zuora CreateOrderRequest and its order actions), and the legacy subscribe.

Fields the SDK sends that we do not model are accepted and ignored (CamelModel allows extras).
"""

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from partnerbill.accounts.schemas import AccountFields, Contact
from partnerbill.core.input_policy import MAX_PERIODS, Key, Periods, Word
from partnerbill.core.schemas import CamelModel, Date, Flag

PeriodType = Literal["Day", "Week", "Month", "Year"]
TermType = Literal["TERMED", "EVERGREEN"]
RenewalSetting = Literal["RENEW_WITH_SPECIFIC_TERM", "RENEW_TO_EVERGREEN"]
Notes = Annotated[str, Field(max_length=500)]  # a subscription's notes, as Zuora bounds them
MAX_RATE_PLANS_PER_SUBSCRIPTION = 300


class TriggerDate(CamelModel):
    name: Literal["ContractEffective", "ServiceActivation", "CustomerAcceptance"]
    trigger_date: Date


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
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                return value
        return None


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


class InitialTerm(CamelModel):
    term_type: TermType
    period: Periods | None = None
    period_type: PeriodType = "Month"
    start_date: Date | None = None


class RenewalTerm(CamelModel):
    period: Periods | None = None
    period_type: PeriodType = "Month"


class Terms(CamelModel):
    initial_term: InitialTerm
    renewal_setting: RenewalSetting = "RENEW_WITH_SPECIFIC_TERM"
    renewal_terms: list[RenewalTerm] = []
    auto_renew: Flag = False


class CreateSubscription(CamelModel):
    subscription_number: Annotated[str | None, Field(max_length=100)] = None
    subscription_owner_account_number: Key | None = None
    invoice_owner_account_number: Key | None = None
    terms: Terms | None = None
    subscribe_to_products: Annotated[
        list[RatePlanSubscription], Field(max_length=MAX_RATE_PLANS_PER_SUBSCRIPTION)
    ] = []
    subscribe_to_rate_plans: Annotated[
        list[RatePlanSubscription], Field(max_length=MAX_RATE_PLANS_PER_SUBSCRIPTION)
    ] = []
    invoice_separately: Flag = False
    notes: Notes | None = None
    currency: Annotated[str | None, Field(min_length=3, max_length=3)] = None

    @property
    def rate_plans(self) -> list[RatePlanSubscription]:
        return [*self.subscribe_to_products, *self.subscribe_to_rate_plans]


class ChargeUpdate(CamelModel):
    charge_number: Key
    pricing: Pricing | None = None
    description: Annotated[str | None, Field(max_length=500)] = None


class UpdateProduct(CamelModel):
    rate_plan_id: Key | None = None
    subscription_rate_plan_number: Key | None = None
    unique_token: Key | None = None
    charge_updates: list[ChargeUpdate] = []
    specific_update_date: Date | None = None


class RemoveProduct(CamelModel):
    rate_plan_id: Key | None = None
    subscription_rate_plan_number: Key | None = None
    product_rate_plan_id: Key | None = None
    unique_token: Key | None = None


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


class LastTerm(CamelModel):
    term_type: TermType
    period: Periods | None = None
    period_type: PeriodType = "Month"
    start_date: Date | None = None


class TermsAndConditions(CamelModel):
    auto_renew: Flag | None = None
    last_term: LastTerm | None = None
    renewal_setting: RenewalSetting | None = None
    renewal_terms: list[RenewalTerm] = []
    invoice_separately: Flag | None = None


class OwnerTransfer(CamelModel):
    destination_account_number: Key | None = None
    destination_invoice_account_number: Key | None = None


class OrderAction(CamelModel):
    type: Literal[
        "CreateSubscription",
        "AddProduct",
        "UpdateProduct",
        "RemoveProduct",
        "CancelSubscription",
        "Suspend",
        "Resume",
        "RenewSubscription",
        "TermsAndConditions",
        "OwnerTransfer",
    ]
    trigger_dates: list[TriggerDate] = []
    create_subscription: CreateSubscription | None = None
    add_product: RatePlanSubscription | None = None
    update_product: UpdateProduct | None = None
    remove_product: RemoveProduct | None = None
    cancel_subscription: CancelSubscription | None = None
    suspend: Suspend | None = None
    resume: Resume | None = None
    terms_and_conditions: TermsAndConditions | None = None
    owner_transfer: OwnerTransfer | None = None

    @model_validator(mode="after")
    def _payload_present(self) -> "OrderAction":
        payload = self.type[0].lower() + self.type[1:]
        if self.type != "RenewSubscription" and getattr(self, _snake(payload)) is None:
            raise ValueError(f"'{payload}' is required for an order action of type {self.type}")
        return self

    def trigger(self, name: str) -> date | None:
        return next((t.trigger_date for t in self.trigger_dates if t.name == name), None)


def _snake(name: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name)


class OrderSubscription(CamelModel):
    """`notes` are the subscription's notes, stored on it (after the order's actions)."""

    subscription_number: Key | None = None
    order_actions: Annotated[list[OrderAction], Field(min_length=1)]
    notes: Notes | None = None


class NewAccount(AccountFields):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    currency: Annotated[str, Field(max_length=3)]
    bill_cycle_day: Annotated[int, Field(ge=0, le=31, strict=True)]
    bill_to_contact: Contact
    sold_to_contact: Contact | None = None
    account_number: Annotated[str | None, Field(min_length=1, max_length=70)] = None


class BillingOptions(CamelModel):
    target_date: Date | None = None
    document_date: Date | None = None
    generate_draft_invoice: Flag = False
    charge_type_to_exclude: list[Literal["OneTime", "Recurring", "Usage"]] = []


class ProcessingOptions(CamelModel):
    run_billing: Flag = False
    collect_payment: Flag = False
    billing_options: BillingOptions | None = None


class CreateOrderRequest(CamelModel):
    order_date: Date
    order_number: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    category: Literal["NewSales", "Return"] = "NewSales"
    description: Annotated[str | None, Field(max_length=500)] = None
    # Draft: stored, run on activation (see `orders.drafts`); otherwise it runs at once.
    status: Literal["Draft", "Completed"] | None = None
    existing_account_number: Key | None = None
    new_account: NewAccount | None = None
    subscriptions: Annotated[list[OrderSubscription], Field(min_length=1)]
    processing_options: ProcessingOptions | None = None

    @model_validator(mode="after")
    def _one_account(self) -> "CreateOrderRequest":
        if (self.existing_account_number is None) == (self.new_account is None):
            raise ValueError("give exactly one of existingAccountNumber and newAccount")
        return self

    @property
    def action_count(self) -> int:
        return sum(len(s.order_actions) for s in self.subscriptions)


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
