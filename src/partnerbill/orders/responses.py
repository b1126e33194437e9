"""Documented answers of the order routes (OpenAPI only; see `core.responses`)."""

from datetime import date

from partnerbill.core.responses import Documented, Succeeded


class OrderSubscription(Documented):
    subscriptionNumber: str
    subscriptionId: str | None = None
    status: str | None = None
    subscriptionOwnerId: str | None = None
    subscriptionOwnerNumber: str | None = None


class CreatedOrder(Succeeded):
    orderNumber: str
    accountNumber: str
    status: str
    subscriptionNumbers: list[str]
    subscriptions: list[OrderSubscription]
    invoiceNumbers: list[str]
    orderId: str | None = None
    accountId: str | None = None
    subscriptionIds: list[str] | None = None
    invoiceIds: list[str] | None = None


class CancelledOrder(Succeeded):
    orderNumber: str
    accountNumber: str
    status: str


class AcceptedJob(Succeeded):
    jobId: str


class AsyncJob(Succeeded):
    status: str
    errors: list[Documented] | None = None
    result: Documented | None = None


class OrderActionAnswer(Documented):
    id: str
    sequence: int
    type: str


class OrderedSubscription(OrderSubscription):
    sequence: int | None = None
    subscriptionOwnerAccountNumber: str | None = None
    orderActions: list[OrderActionAnswer]


class Order(Documented):
    orderNumber: str
    orderDate: date
    status: str
    category: str | None = None
    description: str | None = None
    existingAccountNumber: str
    subscriptions: list[OrderedSubscription]
    invoiceNumbers: list[str]
    createdDate: str
    updatedDate: str


class OrderAnswer(Succeeded):
    order: Order
