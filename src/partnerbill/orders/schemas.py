"""Order requests (Zuora CreateOrderRequest and its order actions). What an order action
shares with the subscriptions' own endpoints (rate plans, charge overrides, cancel, suspend,
resume) is in `subscriptions.schemas`.

Fields the SDK sends that we do not model are accepted and ignored (CamelModel allows extras).
"""

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, model_validator

from partnerbill.accounts.schemas import AccountFields, Contact
from partnerbill.core.input_policy import Key, Periods
from partnerbill.core.schemas import CamelModel, Date, Flag
from partnerbill.subscriptions.schemas import (
    MAX_RATE_PLANS_PER_SUBSCRIPTION,
    CancelSubscription,
    Notes,
    PeriodType,
    Pricing,
    RatePlanSubscription,
    RenewalSetting,
    Resume,
    Suspend,
    TermType,
)


class TriggerDate(CamelModel):
    name: Literal["ContractEffective", "ServiceActivation", "CustomerAcceptance"]
    trigger_date: Date


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
