"""Payment requests (Zuora CreatePaymentRequest, apply/unapply, CreateRefundRequest)."""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from partnerbill.core.input_policy import Key
from partnerbill.core.schemas import CamelModel, Date


class InvoiceApplication(CamelModel):
    invoice_id: Key | None = None
    invoice_number: Key | None = None
    amount: Decimal


class DebitMemoApplication(CamelModel):
    debit_memo_id: Key | None = None
    debit_memo_number: Key | None = None
    amount: Decimal


class CreatePaymentRequest(CamelModel):
    amount: Decimal
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    type: Literal["External", "Electronic"]
    account_id: Key | None = None
    account_number: Key | None = None
    effective_date: Date | None = None
    payment_method_type: Annotated[str | None, Field(max_length=32)] = None
    payment_method_id: Key | None = None
    invoices: list[InvoiceApplication] = []
    debit_memos: list[DebitMemoApplication] = []
    reference_id: Annotated[str | None, Field(max_length=100)] = None
    comment: Annotated[str | None, Field(max_length=255)] = None
    number: Annotated[str | None, Field(min_length=1, max_length=64)] = None


class ApplyPaymentRequest(CamelModel):
    effective_date: Date | None = None
    invoices: list[InvoiceApplication] = []
    debit_memos: list[DebitMemoApplication] = []


class CreateRefundRequest(CamelModel):
    type: Literal["External", "Electronic"]
    total_amount: Decimal
    refund_date: Date | None = None
    method_type: Annotated[str | None, Field(max_length=32)] = None
    reason_code: Annotated[str | None, Field(max_length=100)] = None
    reference_id: Annotated[str | None, Field(max_length=100)] = None
    comment: Annotated[str | None, Field(max_length=255)] = None


class UpdatePaymentRequest(CamelModel):
    """The descriptive fields of a payment; money fields change only through apply, refund and
    cancel."""

    comment: Annotated[str | None, Field(max_length=255)] = None
    reference_id: Annotated[str | None, Field(max_length=100)] = None


class UpdateRefundRequest(CamelModel):
    comment: Annotated[str | None, Field(max_length=255)] = None
    reason_code: Annotated[str | None, Field(max_length=100)] = None
    reference_id: Annotated[str | None, Field(max_length=100)] = None
