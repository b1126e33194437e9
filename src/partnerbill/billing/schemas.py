"""Standalone invoice requests (Zuora CreateInvoiceRequest / BulkCreateInvoicesRequest)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from partnerbill.accounts.schemas import check_payment_term
from partnerbill.core.schemas import CamelModel, Flag

MAX_ITEMS_PER_INVOICE = 1000


class CreateInvoiceItem(CamelModel):
    amount: Decimal
    service_start_date: date
    service_end_date: date | None = None
    quantity: Annotated[Decimal, Field(gt=0)] = Decimal(1)
    unit_price: Decimal | None = None
    charge_name: Annotated[str | None, Field(max_length=255)] = None
    description: Annotated[str | None, Field(max_length=2000)] = None
    sku: Annotated[str | None, Field(max_length=100)] = None
    uom: Annotated[str | None, Field(max_length=25)] = None
    product_rate_plan_charge_id: Annotated[str | None, Field(max_length=32)] = None
    charge_date: datetime | None = None
    tax_code: Annotated[str | None, Field(max_length=64)] = None
    tax_mode: Literal["TaxExclusive", "TaxInclusive"] | None = None

    @model_validator(mode="after")
    def _service_period(self) -> "CreateInvoiceItem":
        if self.service_end_date is not None and self.service_end_date < self.service_start_date:
            raise ValueError("serviceEndDate must not be before serviceStartDate")
        return self


class CreateInvoiceRequest(CamelModel):
    account_id: Annotated[str | None, Field(max_length=32)] = None
    account_number: Annotated[str | None, Field(max_length=70)] = None
    invoice_date: date
    invoice_items: Annotated[
        list[CreateInvoiceItem], Field(min_length=1, max_length=MAX_ITEMS_PER_INVOICE)
    ]
    due_date: date | None = None
    invoice_number: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    currency: Annotated[str | None, Field(min_length=3, max_length=3)] = None
    status: Literal["Draft", "Posted"] = "Draft"
    auto_pay: Flag = False
    comments: Annotated[str | None, Field(max_length=255)] = None
    payment_term: str | None = None

    _payment_term = field_validator("payment_term")(check_payment_term)

    @model_validator(mode="after")
    def _dates(self) -> "CreateInvoiceRequest":
        if self.due_date is not None and self.due_date < self.invoice_date:
            raise ValueError("dueDate must not be before invoiceDate")
        return self


class BulkCreateInvoicesRequest(CamelModel):
    invoices: Annotated[list[CreateInvoiceRequest], Field(min_length=1)]
    use_single_transaction: Flag = False


class PostInvoiceRequest(CamelModel):
    invoice_date: date | None = None
