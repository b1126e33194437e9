"""Request models: camelCase on the wire (Zuora's names), snake_case in code.

Unknown keys are ignored, as the Zuora SDK sends defaults we do not model (`extra="allow"` keeps
them only to pick out custom fields). Custom fields are the keys ending in `__c`.

Every model applies the input policy (`core.input_policy`) to every value it holds, declared
fields and extras alike: a NUL byte, an integer, decimal or date out of range is refused with
the field's full location, so one model of a batch can fail alone.
"""

import re
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from partnerbill.core.errors import Category, Reason, Resource, error_code, invalid_value
from partnerbill.core.input_policy import printable, value_problem

CUSTOM_FIELD_SUFFIX = "__c"
MAX_CUSTOM_FIELD_LENGTH = 255
MAX_REASONS = 20
_LOCATION_SOURCES = ("body", "query", "path", "header")


def field_name(loc: Sequence[str | int]) -> str:
    """A validation location as the client wrote it: `invoices[3].invoiceItems[0].amount`."""
    parts = list(loc[1:] if loc and loc[0] in _LOCATION_SOURCES else loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def validation_reasons(
    errors: Sequence[ErrorDetails], prefix: tuple[str | int, ...] = ()
) -> list[Reason]:
    """Pydantic's errors as envelope reasons naming each field (22 missing, 20 the rest);
    `prefix` locates a model validated on its own inside the request (a batch's invoice)."""
    reasons = []
    for problem in errors[:MAX_REASONS]:
        if problem["type"] == "json_invalid":
            detail = problem.get("ctx", {}).get("error", "invalid JSON")
            message = f"'body': malformed JSON ({detail})."
            reasons.append(Reason(error_code(Resource.GENERIC, Category.INVALID_VALUE), message))
            continue
        field = field_name((*prefix, *problem["loc"]))
        if problem["type"] == "missing":
            code = error_code(Resource.GENERIC, Category.MISSING_FIELD)
            message = f"'{field}' is required."
        else:
            code = error_code(Resource.GENERIC, Category.INVALID_VALUE)
            message = f"'{field}': {problem['msg']}."
        reasons.append(Reason(code, message))
    return reasons


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="allow",
        str_strip_whitespace=True,
    )

    @model_validator(mode="after")
    def _input_policy(self) -> Self:
        for name, value in self.__dict__.items():
            # Most fields of a request are absent: a None needs no call (it runs per model).
            if value is not None and (found := value_problem(value)) is not None:
                alias = type(self).model_fields[name].alias or name
                raise _policy_error(self, (alias, *found[0]), found[1], value)
        for name, value in (self.__pydantic_extra__ or {}).items():
            # As a one-key object, so an extra's own name is checked too (a custom field's).
            if (found := value_problem({name: value})) is not None:
                raise _policy_error(self, found[0] or (printable(name),), found[1], value)
        return self

    def custom_fields(self) -> dict[str, Any]:
        """The request's custom fields; each must be a scalar (text, number, boolean or null)."""
        found = {
            key: value
            for key, value in (self.model_extra or {}).items()
            if key.endswith(CUSTOM_FIELD_SUFFIX)
        }
        for key, value in found.items():
            if isinstance(value, dict | list) or (
                isinstance(value, str) and len(value) > MAX_CUSTOM_FIELD_LENGTH
            ):
                raise invalid_value(
                    Resource.GENERIC,
                    key,
                    f"a custom field takes a text of at most {MAX_CUSTOM_FIELD_LENGTH} "
                    "characters, a number, a boolean or null.",
                )
        return found


def _policy_error(
    model: BaseModel, loc: tuple[str | int, ...], message: str, value: Any
) -> ValidationError:
    """An input-policy refusal located at the offending field, as pydantic's own errors are."""
    return ValidationError.from_exception_data(
        type(model).__name__,
        [InitErrorDetails(type=PydanticCustomError("input_policy", message), loc=loc, input=value)],
    )


Flag = StrictBool


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_as_text(value: object) -> object:
    """Lax pydantic reads a JSON number, or a text of digits, as a Unix time (`0` and `"0"` are
    1970-01-01): a date is written `YYYY-MM-DD`, and anything else is refused as a mistake
    rather than guessed."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_type", "a date is written as text, YYYY-MM-DD")
    return value


Date = Annotated[date, BeforeValidator(_date_as_text)]
