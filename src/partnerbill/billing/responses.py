"""Documented answers of the invoice and bill-run routes (OpenAPI only; see `core.responses`)."""

from datetime import date

from partnerbill.core.responses import Documented, ErrorEnvelope, Money, Succeeded


class Invoice(Succeeded):
    id: str
    invoiceNumber: str
    accountId: str
    accountNumber: str
    invoiceDate: date
    dueDate: date | None = None
    status: str
    currency: str
    amount: Money
    amountWithoutTax: Money | None = None
    taxAmount: Money | None = None
    balance: Money
    comments: str | None = None
    postedDate: str | None = None


class BatchInvoice(Documented):
    """One invoice of a batch: created, or its own failure envelope."""

    success: bool
    id: str | None = None
    invoiceNumber: str | None = None


class InvoiceBatch(Succeeded):
    invoices: list[Invoice | ErrorEnvelope]


class InvoiceItem(Documented):
    id: str
    chargeName: str | None = None
    chargeType: str | None = None
    description: str | None = None
    chargeAmount: str
    taxAmount: str
    balance: str
    quantity: Money | None = None
    unitPrice: Money | None = None
    serviceStartDate: date | None = None
    serviceEndDate: date | None = None
    productRatePlanChargeId: str | None = None
    subscriptionId: str | None = None


class InvoiceItems(Succeeded):
    invoiceItems: list[InvoiceItem]
    nextPage: str | None = None


class BillRun(Succeeded):
    id: str
    billRunNumber: str
    name: str | None = None
    status: str
    targetDate: date | None = None
    invoiceDate: date | None = None
    autoPost: bool
    chargeTypeToExclude: list[str]
    billRunFilters: list[Documented]
    batches: list[str]
    billCycleDay: int | str | None = None  # a day, or AllBillCycleDays
    invoiceCount: int
    errorMessage: str | None = None


class BillingDocument(Documented):
    id: str
    documentType: str
    documentNumber: str
    documentDate: date
    amount: Money
    balance: Money
    status: str
    currency: str
    accountId: str


class BillingDocuments(Succeeded):
    documents: list[BillingDocument]
    nextPage: str | None = None
