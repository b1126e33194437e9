"""Standalone invoice requests (Zuora CreateInvoiceRequest / BulkCreateInvoicesRequest)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from partnerbill.accounts.schemas import check_payment_term
from partnerbill.core.errors import ZuoraError
from partnerbill.core.schemas import CamelModel, Date, Flag, validation_reasons

MAX_ITEMS_PER_INVOICE = 1000


class CreateInvoiceItem(CamelModel):
    amount: Decimal
    service_start_date: Date
    service_end_date: Date | None = None
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
    invoice_date: Date
    invoice_items: Annotated[
        list[CreateInvoiceItem], Field(min_length=1, max_length=MAX_ITEMS_PER_INVOICE)
    ]
    due_date: Date | None = None
    invoice_number: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    currency: Annotated[str | None, Field(min_length=3, max_length=3)] = None
    status: Literal["Draft", "Posted"] = "Draft"
    auto_pay: Flag = False
    comments: Annotated[str | None, Field(max_length=255)] = None
    payment_term: Annotated[str | None, Field(max_length=64)] = None

    _payment_term = field_validator("payment_term")(check_payment_term)

    @model_validator(mode="after")
    def _dates(self) -> "CreateInvoiceRequest":
        if self.due_date is not None and self.due_date < self.invoice_date:
            raise ValueError("dueDate must not be before invoiceDate")
        return self


class BulkCreateInvoicesRequest(CamelModel):
    """`useSingleTransaction: true`: one invalid invoice refuses the request. Otherwise each
    invoice is validated on its own and an invalid one fails alone: `invoices` keeps the valid
    ones and `entries()` gives every invoice, or its refusal, in request order."""

    invoices: Annotated[list[CreateInvoiceRequest], Field(json_schema_extra={"minItems": 1})]
    use_single_transaction: Flag = False
    _refused: dict[int, list[ErrorDetails]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _each_invoice_alone(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        raw = data.get("invoices") if isinstance(data, dict) else None
        atomic = isinstance(data, dict) and True in (
            data.get("useSingleTransaction"),
            data.get("use_single_transaction"),
        )
        if atomic or not isinstance(raw, list) or not raw:
            model: Self = handler(data)
            if not model.invoices:
                raise ValidationError.from_exception_data(
                    cls.__name__,
                    [
                        InitErrorDetails(
                            type="too_short",
                            loc=("invoices",),
                            input=raw,
                            ctx={"field_type": "List", "min_length": 1, "actual_length": 0},
                        )
                    ],
                )
            return model
        valid, refused = [], {}
        for index, invoice in enumerate(raw):
            try:
                valid.append(CreateInvoiceRequest.model_validate(invoice))
            except ValidationError as error:
                refused[index] = error.errors()
        model = handler({**data, "invoices": valid})
        model._refused = refused
        return model

    def entries(self) -> list[CreateInvoiceRequest | ZuoraError]:
        valid = iter(self.invoices)
        return [
            ZuoraError.of_reasons(
                validation_reasons(self._refused[index], ("invoices", index)), 400
            )
            if index in self._refused
            else next(valid)
            for index in range(len(self.invoices) + len(self._refused))
        ]


class PostInvoiceRequest(CamelModel):
    invoice_date: Date | None = None


class UpdateInvoiceRequest(CamelModel):
    """The fields of an invoice that change without touching its amount (Zuora's update
    invoice): `invoiceDate` only while Draft."""

    auto_pay: Flag | None = None
    comments: Annotated[str | None, Field(max_length=255)] = None
    due_date: Date | None = None
    invoice_date: Date | None = None
