"""Documented answers of the account routes (OpenAPI only; see `core.responses`).

The Reseller Account feature's fields (`partnerAccount`, `lastMetricsUpdate`, `metricsFreshness`)
are optional: a tenant with the feature disabled gets answers without them.
"""

from datetime import date
from typing import Annotated

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from partnerbill.core.responses import Documented, Money, Succeeded

_WITH_FEATURE = "Absent when the tenant has the Reseller Account feature disabled."


class CreatedAccount(Succeeded):
    accountId: str
    accountNumber: str
    billToContactId: str | None = None
    soldToContactId: str | None = None


class Contact(Documented):
    id: str | None = None
    firstName: str | None = None
    lastName: str | None = None


class MetricsFreshness(Documented):
    pendingChanges: int
    pendingChangesCapped: bool
    oldestPendingChange: str | None = None


class BasicInfo(Documented):
    id: str
    accountNumber: str
    name: str
    status: str
    batch: str | None = None
    crmId: str | None = None
    notes: str | None = None
    partnerAccount: Annotated[bool | SkipJsonSchema[None], Field(description=_WITH_FEATURE)] = None
    lastMetricsUpdate: Annotated[str | None, Field(description=_WITH_FEATURE)] = None


class BillingAndPayment(Documented):
    billCycleDay: int
    currency: str
    paymentTerm: str | None = None
    autoPay: bool | None = None


class AccountMetrics(Documented):
    balance: Money
    currency: str
    contractedMrr: Money
    creditBalance: Money
    totalDebitMemoBalance: Money
    totalInvoiceBalance: Money
    unappliedCreditMemoAmount: Money
    unappliedPaymentAmount: Money


class Account(Succeeded):
    basicInfo: BasicInfo
    billingAndPayment: BillingAndPayment
    metrics: AccountMetrics
    metricsFreshness: Annotated[
        MetricsFreshness | SkipJsonSchema[None], Field(description=_WITH_FEATURE)
    ] = None
    billToContact: Contact | None = None
    soldToContact: Contact | None = None


class SummaryBasicInfo(BasicInfo):
    currency: str
    billCycleDay: int
    balance: str
    lastInvoiceDate: date | None = None
    lastPaymentAmount: str | None = None
    lastPaymentDate: date | None = None


class SummaryInvoice(Documented):
    id: str
    invoiceNumber: str
    invoiceDate: date
    dueDate: date | None = None
    amount: Money
    balance: Money
    status: str


class SummaryPayment(Documented):
    id: str
    paymentNumber: str
    paymentType: str | None = None
    status: str
    effectiveDate: date | None = None
    amount: Money


class AccountSummary(Succeeded):
    basicInfo: SummaryBasicInfo
    metricsFreshness: Annotated[
        MetricsFreshness | SkipJsonSchema[None], Field(description=_WITH_FEATURE)
    ] = None
    billToContact: Contact | None = None
    soldToContact: Contact | None = None
    subscriptions: list[Documented]
    invoices: list[SummaryInvoice]
    payments: list[SummaryPayment]
    usage: list[Documented]


class RefreshedMetrics(Succeeded):
    accountId: str
    accountNumber: str
    foldedChanges: int
    lastMetricsUpdate: Annotated[str | None, Field(description=_WITH_FEATURE)] = None
    durationMs: float
