"""Documented answers of the contact routes (OpenAPI only; see `core.responses`)."""

from partnerbill.core.responses import Succeeded


class ContactAnswer(Succeeded):
    id: str
    accountId: str
    accountNumber: str
    firstName: str
    lastName: str
    asBillTo: bool
    asSoldTo: bool
    asShipTo: bool
