"""One internal vocabulary for the catalog's enums.

Zuora speaks two: the CRUD object API (`"Per Unit Pricing"`, `"Semi-Annual"`, `"In Advance"`) and
the Orders/GET API (`PerUnit`, `Semi_Annual`, `IN_ADVANCE`). Both parse to the same member; output
uses the Orders/GET spelling (the member's value) except on the CRUD object API, which uses `crud`.
"""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Self

from partnerbill.core.errors import Resource, invalid_value


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def same_word(first: str, second: str) -> bool:
    """Whether two spellings name the same thing, case and punctuation aside."""
    return _key(first) == _key(second)


class ZuoraEnum(StrEnum):
    """A StrEnum whose `parse` accepts either vocabulary, case and punctuation aside."""

    @classmethod
    def crud_names(cls) -> dict[str, str]:
        return {}

    @classmethod
    def parse(cls, text: str) -> Self:
        wanted = _key(text)
        crud = cls.crud_names()
        for member in cls:
            if wanted in (_key(member.value), _key(crud.get(member.value, member.value))):
                return member
        raise ValueError(f"must be one of: {', '.join(m.value for m in cls)}")

    @classmethod
    def parse_field(cls, text: str, field: str, resource: Resource) -> Self:
        """`parse` for a request field: a value outside the vocabulary is a 400 naming it."""
        try:
            return cls.parse(text)
        except ValueError:
            supported = ", ".join(member.crud for member in cls)
            raise invalid_value(
                resource, field, f"'{text}' is not supported; use one of: {supported}."
            ) from None

    @property
    def crud(self) -> str:
        return self.crud_names().get(self.value, self.value)


class ChargeType(ZuoraEnum):
    ONE_TIME = "OneTime"
    RECURRING = "Recurring"
    USAGE = "Usage"


class ChargeModel(ZuoraEnum):
    FLAT_FEE = "FlatFee"
    PER_UNIT = "PerUnit"
    TIERED = "Tiered"
    VOLUME = "Volume"

    @classmethod
    def crud_names(cls) -> dict[str, str]:
        return {
            "FlatFee": "Flat Fee Pricing",
            "PerUnit": "Per Unit Pricing",
            "Tiered": "Tiered Pricing",
            "Volume": "Volume Pricing",
        }


class BillingPeriod(ZuoraEnum):
    MONTH = "Month"
    QUARTER = "Quarter"
    SEMI_ANNUAL = "Semi_Annual"
    ANNUAL = "Annual"
    SPECIFIC_MONTHS = "Specific_Months"
    WEEK = "Week"

    @classmethod
    def crud_names(cls) -> dict[str, str]:
        return {"Semi_Annual": "Semi-Annual", "Specific_Months": "Specific Months"}

    def months(self, specific_months: int | None = None) -> int | None:
        """Months in one period; None for week-based periods."""
        match self:
            case BillingPeriod.MONTH:
                return 1
            case BillingPeriod.QUARTER:
                return 3
            case BillingPeriod.SEMI_ANNUAL:
                return 6
            case BillingPeriod.ANNUAL:
                return 12
            case BillingPeriod.SPECIFIC_MONTHS:
                assert specific_months is not None and specific_months > 0
                return specific_months
            case BillingPeriod.WEEK:
                return None


class BillingTiming(ZuoraEnum):
    IN_ADVANCE = "IN_ADVANCE"
    IN_ARREARS = "IN_ARREARS"

    @classmethod
    def crud_names(cls) -> dict[str, str]:
        return {"IN_ADVANCE": "In Advance", "IN_ARREARS": "In Arrears"}


class TriggerEvent(ZuoraEnum):
    CONTRACT_EFFECTIVE = "ContractEffective"
    SERVICE_ACTIVATION = "ServiceActivation"
    CUSTOMER_ACCEPTANCE = "CustomerAcceptance"
    SPECIFIC_DATE = "SpecificDate"


class EndDateCondition(ZuoraEnum):
    SUBSCRIPTION_END = "Subscription_End"
    FIXED_PERIOD = "Fixed_Period"
    SPECIFIC_END_DATE = "Specific_End_Date"
    ONE_TIME = "One_Time"

    @classmethod
    def crud_names(cls) -> dict[str, str]:
        return {
            "Subscription_End": "SubscriptionEnd",
            "Fixed_Period": "FixedPeriod",
            "Specific_End_Date": "SpecificEndDate",
            "One_Time": "OneTime",
        }


class UpToPeriodsType(ZuoraEnum):
    """The unit of `up_to_periods` for a charge that ends after a fixed period."""

    BILLING_PERIODS = "Billing_Periods"
    DAYS = "Days"
    WEEKS = "Weeks"
    MONTHS = "Months"
    YEARS = "Years"

    @classmethod
    def crud_names(cls) -> dict[str, str]:
        return {"Billing_Periods": "Billing Periods"}


class BillCycleType(ZuoraEnum):
    DEFAULT_FROM_CUSTOMER = "DefaultFromCustomer"
    SPECIFIC_DAY_OF_MONTH = "SpecificDayofMonth"
    SUBSCRIPTION_START_DAY = "SubscriptionStartDay"
    CHARGE_TRIGGER_DAY = "ChargeTriggerDay"


class PriceFormat(ZuoraEnum):
    FLAT_FEE = "FlatFee"
    PER_UNIT = "PerUnit"

    @classmethod
    def crud_names(cls) -> dict[str, str]:
        return {"FlatFee": "Flat Fee", "PerUnit": "Per Unit"}


@dataclass(frozen=True, slots=True)
class Tier:
    """One price tier: units from `starting_unit` to `ending_unit` (None: no upper bound)."""

    tier: int
    starting_unit: Decimal
    ending_unit: Decimal | None
    price: Decimal
    price_format: PriceFormat

    def as_json(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "startingUnit": self.starting_unit,
            "endingUnit": self.ending_unit,
            "price": self.price,
            "priceFormat": self.price_format.value,
        }
