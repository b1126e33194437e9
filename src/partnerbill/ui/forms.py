"""HTML forms to the API's request bodies, and the API's refusals back to the form's fields.

A form's input names are the API's field names (`billToContact.firstName`), so a pydantic
location or a ZuoraError's field name is the input it belongs to. Nothing here validates:
the request models and the services do, exactly as for the API.
"""

import re
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from partnerbill.core.errors import ZuoraError
from partnerbill.core.schemas import CUSTOM_FIELD_SUFFIX, field_name, validation_reasons

FORM_ERROR = "_form"  # an error that names no field: shown above the form
CUSTOM_FIELDS = "customFields"  # the textarea of `name__c = value` lines
CONTACT_FIELDS = (
    "firstName",
    "lastName",
    "workEmail",
    "workPhone",
    "address1",
    "city",
    "state",
    "zipCode",
    "country",
)
PROFILE_FIELDS = (
    "paymentTerm",
    "batch",
    "crmId",
    "salesRep",
    "purchaseOrderNumber",
    "notes",
)
_FIELD_MESSAGE = re.compile(r"^'?(?P<field>[A-Za-z_][\w.\[\]]*)'?: ")


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value


def _contact(form: FormData, prefix: str) -> dict[str, Any]:
    return {
        field: value
        for field in CONTACT_FIELDS
        if (value := _text(form, f"{prefix}.{field}")) is not None
    }


def _custom_fields(form: FormData) -> tuple[dict[str, str], str | None]:
    """The `name__c = value` lines; the problem with a line that is not one, if any."""
    found: dict[str, str] = {}
    for number, line in enumerate((_text(form, CUSTOM_FIELDS) or "").splitlines(), 1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip().endswith(CUSTOM_FIELD_SUFFIX):
            return found, f"line {number}: write name{CUSTOM_FIELD_SUFFIX} = value"
        found[name.strip()] = value.strip()
    return found, None


def account_body(
    form: FormData, *, creating: bool, reseller_account_enabled: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The POST/PUT /v1/accounts body the form describes, and problems only the form has."""
    body: dict[str, Any] = {}
    for name in ("name", "accountNumber", "currency") if creating else ("name",):
        if (value := _text(form, name)) is not None:
            body[name] = value
    for name in PROFILE_FIELDS:
        if (value := _text(form, name)) is not None:
            body[name] = value
    day = _text(form, "billCycleDay")
    if day is not None:
        # A whole number goes as a number; anything else as typed, for the model to refuse.
        body["billCycleDay"] = int(day) if day.strip().isdigit() else day
    body["autoPay"] = form.get("autoPay") == "on"
    if reseller_account_enabled:
        partner = form.get("partnerAccount") == "on"
        # An edit sends the flag only when it changes: a switch waits out document writes.
        if creating or partner != (form.get("partnerAccountWas") == "on"):
            body["partnerAccount"] = partner
    bill_to = _contact(form, "billToContact")
    if creating or bill_to:
        body["billToContact"] = bill_to
    if form.get("soldToSameAsBillTo") != "on":
        sold_to = _contact(form, "soldToContact")
        if creating or sold_to:
            body["soldToContact"] = sold_to
    custom, problem = _custom_fields(form)
    body.update(custom)
    return body, ({CUSTOM_FIELDS: problem} if problem else {})


def validation_errors(error: ValidationError) -> dict[str, str]:
    """Pydantic's errors by input name, worded as the API words them."""
    problems = error.errors()
    found: dict[str, str] = {}
    for problem, reason in zip(problems, validation_reasons(problems), strict=False):
        found.setdefault(field_name(problem["loc"]), reason.message)
    return found


def refusal_errors(error: ZuoraError, inputs: set[str]) -> dict[str, str]:
    """A service's refusal by the input it names (custom fields: their textarea); the rest
    above the form."""
    found: dict[str, str] = {}
    for reason in error.reasons:
        match = _FIELD_MESSAGE.match(reason.message)
        field = match.group("field") if match else FORM_ERROR
        if field.endswith(CUSTOM_FIELD_SUFFIX):
            field = CUSTOM_FIELDS
        elif field not in inputs:
            field = FORM_ERROR
        found.setdefault(field, reason.message)
    return found
