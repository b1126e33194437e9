"""Documented answers of the payment method routes (OpenAPI only; see `core.responses`)."""

from partnerbill.core.responses import Documented, Succeeded


class Created(Succeeded):
    id: str


class PaymentMethodFields(Documented):
    id: str
    accountKey: str
    type: str
    status: str
    isDefault: bool
    createdOn: str
    updatedOn: str


class PaymentMethodAnswer(Succeeded, PaymentMethodFields):
    pass


class AccountPaymentMethods(Succeeded):
    defaultPaymentMethodId: str | None = None
    returnedPaymentMethodType: list[PaymentMethodFields]
