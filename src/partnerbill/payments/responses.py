"""Documented answers of the payment and refund routes (OpenAPI only; see `core.responses`)."""

from datetime import date

from partnerbill.core.responses import Documented, Money, Succeeded


class Payment(Documented):
    id: str
    number: str
    accountId: str
    accountNumber: str | None = None
    amount: Money
    appliedAmount: Money
    unappliedAmount: Money
    refundAmount: Money
    status: str
    type: str
    effectiveDate: date
    currency: str
    referenceId: str | None = None
    comment: str | None = None


class PaymentAnswer(Succeeded, Payment):
    pass


class Payments(Succeeded):
    payments: list[Payment]
    nextPage: str | None = None


class Refund(Documented):
    id: str
    number: str
    amount: Money
    status: str
    type: str
    methodType: str | None = None
    paymentId: str | None = None
    creditMemoId: str | None = None
    accountId: str
    refundDate: date
    referenceId: str | None = None
    comment: str | None = None


class RefundAnswer(Succeeded, Refund):
    pass


class Refunds(Succeeded):
    refunds: list[Refund]
    nextPage: str | None = None


class SourcePart(Documented):
    id: str
    amount: Money
    invoiceId: str | None = None
    debitMemoId: str | None = None
    createdDate: str
    updatedDate: str


class SourcePartAnswer(Succeeded, SourcePart):
    pass


class PaymentPartAnswer(Succeeded):
    paymentPart: SourcePart


class SourceParts(Succeeded):
    parts: list[SourcePart]
    nextPage: str | None = None


class TargetPart(Documented):
    appliedAmount: Money
    paymentId: str | None = None
    creditMemoId: str | None = None
    createdDate: str
    updatedDate: str


class TargetParts(Succeeded):
    applicationParts: list[TargetPart]
    nextPage: str | None = None


class RefundPart(Documented):
    id: str
    amount: Money
    paymentId: str | None = None
    creditMemoId: str | None = None
    createdDate: str
    updatedDate: str


class RefundPartAnswer(Succeeded, RefundPart):
    pass


class RefundParts(Succeeded):
    parts: list[RefundPart]
