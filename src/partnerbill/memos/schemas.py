"""Credit and debit memo requests (Zuora Invoice Settlement, §3.9, §3.10).

Apply/unapply and refund bodies have the same shape as a payment's: the routes take the payment
request models (`ApplyPaymentRequest`, `CreateRefundRequest`).
"""

from decimal import Decimal
from typing import Annotated

from pydantic import Field, model_validator

from partnerbill.core.schemas import CamelModel, Date, Flag

MAX_ITEMS_PER_MEMO = 1000


class MemoItemDetails(CamelModel):
    """What every memo item may say about itself besides its amount and source."""

    quantity: Annotated[Decimal | None, Field(gt=0)] = None
    service_start_date: Date | None = None
    service_end_date: Date | None = None
    description: Annotated[str | None, Field(max_length=2000)] = None
    comment: Annotated[str | None, Field(max_length=2000)] = None

    @model_validator(mode="after")
    def _service_period(self) -> "MemoItemDetails":
        start, end = self.service_start_date, self.service_end_date
        if start is not None and end is not None and end < start:
            raise ValueError("serviceEndDate must not be before serviceStartDate")
        return self


class MemoItemFromInvoice(MemoItemDetails):
    """An item of a memo created from an invoice; a credit memo item must name the invoice item
    it credits, a debit memo item may."""

    amount: Decimal
    invoice_item_id: Annotated[str | None, Field(max_length=32)] = None
    sku_name: Annotated[str | None, Field(max_length=255)] = None


class MemoCharge(MemoItemDetails):
    """An item of a memo created from product rate plan charges. `chargeId` and
    `memoItemAmount` are the pre-257 names of `productRatePlanChargeId` and `amount`."""

    product_rate_plan_charge_id: Annotated[str | None, Field(max_length=32)] = None
    charge_id: Annotated[str | None, Field(max_length=32)] = None
    amount: Decimal | None = None
    memo_item_amount: Decimal | None = None


class MemoOptions(CamelModel):
    effective_date: Date | None = None
    reason_code: Annotated[str | None, Field(max_length=100)] = None
    comment: Annotated[str | None, Field(max_length=255)] = None
    auto_post: Flag = False
    due_date: Date | None = None  # debit memos only; not before the memo date


class CreateMemoFromInvoiceRequest(MemoOptions):
    items: Annotated[list[MemoItemFromInvoice], Field(min_length=1, max_length=MAX_ITEMS_PER_MEMO)]


class CreateMemoFromChargesRequest(MemoOptions):
    account_id: Annotated[str | None, Field(max_length=32)] = None
    account_number: Annotated[str | None, Field(max_length=70)] = None
    charges: Annotated[list[MemoCharge], Field(min_length=1, max_length=MAX_ITEMS_PER_MEMO)]
    currency: Annotated[str | None, Field(min_length=3, max_length=3)] = None
    number: Annotated[str | None, Field(min_length=1, max_length=64)] = None


class UpdateMemoRequest(CamelModel):
    """The fields of a memo that change without touching its amount: `effectiveDate` only while
    Draft; `dueDate` only on a debit memo."""

    comment: Annotated[str | None, Field(max_length=255)] = None
    reason_code: Annotated[str | None, Field(max_length=100)] = None
    effective_date: Date | None = None
    due_date: Date | None = None
