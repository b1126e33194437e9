"""Contact requests, field for field with Zuora's CreateContactRequest / UpdateContactRequest
and the transfer request."""

from typing import Annotated

from pydantic import Field, model_validator

from partnerbill.accounts.schemas import Contact
from partnerbill.core.schemas import CamelModel, Flag


class CreateContactRequest(Contact):
    account_id: Annotated[str | None, Field(min_length=1, max_length=32)] = None
    account_number: Annotated[str | None, Field(min_length=1, max_length=70)] = None
    contact_description: Annotated[str | None, Field(max_length=100)] = None
    as_bill_to: Flag | None = None
    as_sold_to: Flag | None = None
    # Ship-to contacts are a role partnerbill's accounts do not have.
    as_ship_to: Flag | None = None

    @model_validator(mode="after")
    def _account_and_roles(self) -> "CreateContactRequest":
        if self.account_id is None and self.account_number is None:
            raise ValueError("accountId: give the account's id or its number (accountNumber)")
        if self.as_ship_to:
            raise ValueError("asShipTo: partnerbill accounts have no ship-to contact")
        return self


class TransferContactRequest(CamelModel):
    destination_account_key: Annotated[str, Field(min_length=1, max_length=70)]
