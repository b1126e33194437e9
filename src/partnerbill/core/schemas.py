"""Request models: camelCase on the wire (Zuora's names), snake_case in code.

Unknown keys are ignored, as the Zuora SDK sends defaults we do not model (`extra="allow"` keeps
them only to pick out custom fields). Custom fields are the keys ending in `__c`.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool
from pydantic.alias_generators import to_camel

from partnerbill.core.errors import Resource, invalid_value

CUSTOM_FIELD_SUFFIX = "__c"
MAX_CUSTOM_FIELD_LENGTH = 255


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="allow",
        str_strip_whitespace=True,
    )

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


Flag = StrictBool
