"""Account requests, field for field with Zuora's CreateAccountRequest / UpdateAccountRequest."""

import re
from datetime import date, timedelta
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from partnerbill.core.errors import Resource
from partnerbill.core.input_policy import derived_date
from partnerbill.core.money import CURRENCIES
from partnerbill.core.schemas import CamelModel, Flag

PAYMENT_TERM = re.compile(r"^(Due Upon Receipt|Net (\d{1,3}))$")
BATCH = re.compile(r"^Batch([1-9]|[1-4]\d|50)$")


def payment_term_days(term: str) -> int:
    match = PAYMENT_TERM.match(term)
    assert match is not None, term  # every stored or accepted term passed check_payment_term
    return int(match.group(2) or 0)


def due_date(day: date, term: str, resource: Resource) -> date:
    """The due date `term` gives a document dated `day`; refused when past the last date."""
    return derived_date(
        day + timedelta(days=payment_term_days(term)),
        resource,
        "paymentTerm",
        f"the due date ({term} from {day})",
    )


def check_payment_term(value: str | None) -> str | None:
    if value is not None and not PAYMENT_TERM.match(value):
        raise ValueError("must be 'Due Upon Receipt' or 'Net N' (N days, e.g. 'Net 30')")
    return value


class Contact(CamelModel):
    first_name: Annotated[str, Field(min_length=1, max_length=100)]
    last_name: Annotated[str, Field(min_length=1, max_length=100)]
    nickname: Annotated[str | None, Field(max_length=100)] = None
    address1: Annotated[str | None, Field(max_length=255)] = None
    address2: Annotated[str | None, Field(max_length=255)] = None
    city: Annotated[str | None, Field(max_length=100)] = None
    state: Annotated[str | None, Field(max_length=100)] = None
    county: Annotated[str | None, Field(max_length=100)] = None
    zip_code: Annotated[str | None, Field(max_length=20)] = None
    country: Annotated[str | None, Field(max_length=64)] = None
    tax_region: Annotated[str | None, Field(max_length=32)] = None
    work_email: Annotated[str | None, Field(max_length=80)] = None
    personal_email: Annotated[str | None, Field(max_length=80)] = None
    work_phone: Annotated[str | None, Field(max_length=40)] = None
    home_phone: Annotated[str | None, Field(max_length=40)] = None
    mobile_phone: Annotated[str | None, Field(max_length=40)] = None
    other_phone: Annotated[str | None, Field(max_length=40)] = None
    other_phone_type: Annotated[str | None, Field(max_length=20)] = None
    fax: Annotated[str | None, Field(max_length=40)] = None
    description: Annotated[str | None, Field(max_length=100)] = None


class ContactUpdate(Contact):
    first_name: Annotated[str | None, Field(min_length=1, max_length=100)] = None  # type: ignore[assignment]
    last_name: Annotated[str | None, Field(min_length=1, max_length=100)] = None  # type: ignore[assignment]


class AccountFields(CamelModel):
    """Fields that create and update share."""

    bill_cycle_day: Annotated[int | None, Field(ge=0, le=31, strict=True)] = None
    payment_term: Annotated[str | None, Field(max_length=64)] = None
    auto_pay: Flag | None = None
    batch: Annotated[str | None, Field(max_length=20)] = None
    notes: Annotated[str | None, Field(max_length=65535)] = None
    crm_id: Annotated[str | None, Field(max_length=100)] = None
    sales_rep: Annotated[str | None, Field(max_length=50)] = None
    purchase_order_number: Annotated[str | None, Field(max_length=100)] = None
    customer_service_rep_name: Annotated[str | None, Field(max_length=50)] = None
    invoice_delivery_prefs_email: Flag | None = None
    invoice_delivery_prefs_print: Flag | None = None
    partner_account: Flag | None = None

    _payment_term = field_validator("payment_term")(check_payment_term)

    @field_validator("batch")
    @classmethod
    def _batch(cls, value: str | None) -> str | None:
        if value is not None and not BATCH.match(value):
            raise ValueError("must be Batch1 to Batch50")
        return value


class CreateAccountRequest(AccountFields):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    currency: Annotated[str, Field(max_length=3)]
    bill_to_contact: Contact
    sold_to_contact: Contact | None = None
    account_number: Annotated[str | None, Field(min_length=1, max_length=70)] = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError("must be an ISO 4217 currency code such as USD or EUR")
        return value


class UpdateAccountRequest(AccountFields):
    name: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    bill_to_contact: ContactUpdate | None = None
    sold_to_contact: ContactUpdate | None = None
    # Another contact of the account takes the role; the one it replaces stays a contact.
    bill_to_contact_id: Annotated[str | None, Field(min_length=1, max_length=32)] = None
    sold_to_contact_id: Annotated[str | None, Field(min_length=1, max_length=32)] = None

    @model_validator(mode="after")
    def _one_way_per_role(self) -> "UpdateAccountRequest":
        if self.bill_to_contact is not None and self.bill_to_contact_id is not None:
            raise ValueError("billToContactId: give billToContact or billToContactId, not both")
        if self.sold_to_contact is not None and self.sold_to_contact_id is not None:
            raise ValueError("soldToContactId: give soldToContact or soldToContactId, not both")
        return self

    def changes_contacts(self) -> bool:
        return any(
            value is not None
            for value in (
                self.bill_to_contact,
                self.sold_to_contact,
                self.bill_to_contact_id,
                self.sold_to_contact_id,
            )
        )
