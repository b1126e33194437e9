"""Payment method requests (Zuora CreatePaymentMethodRequest, UpdatePaymentMethodRequest)."""

from typing import Annotated

from pydantic import Field

from partnerbill.core.input_policy import Key
from partnerbill.core.schemas import CamelModel


class CreatePaymentMethodRequest(CamelModel):
    type: Annotated[str, Field(min_length=1, max_length=32)]
    account_key: Key | None = None
    make_default: bool = False


class UpdatePaymentMethodRequest(CamelModel):
    make_default: bool | None = None
