"""Catalog requests of the CRUD object API (`/v1/object/...`): PascalCase, as the Zuora SDK sends.

Enum fields stay text here; the service parses them in either vocabulary (`catalog.enums`) so an
unsupported value is refused with a message naming the field and the supported values. Fields the
SDK adds that we do not model (`UseDiscountSpecificAccountingCode`, `PriceChangeOption`, NetSuite
fields, …) are ignored.
"""

from decimal import Decimal
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_pascal

from partnerbill.core.input_policy import Periods, Word
from partnerbill.core.schemas import CamelModel, Date

MAX_TIERS_PER_CHARGE = 1000


class PascalModel(CamelModel):
    model_config = ConfigDict(alias_generator=to_pascal)


class CreateProductRequest(PascalModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    effective_start_date: Date
    effective_end_date: Date
    sku: Annotated[str | None, Field(alias="SKU", min_length=1, max_length=50)] = None
    product_number: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    category: Word | None = None
    description: Annotated[str | None, Field(max_length=500)] = None


class CreateProductRatePlanRequest(PascalModel):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    product_id: Annotated[str, Field(min_length=1, max_length=32)]
    effective_start_date: Date | None = None
    effective_end_date: Date | None = None
    description: Annotated[str | None, Field(max_length=500)] = None
    product_rate_plan_number: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class ChargeTierRequest(PascalModel):
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    price: Decimal
    starting_unit: Decimal | None = None
    ending_unit: Decimal | None = None
    price_format: Word | None = None
    tier: int | None = None


class ChargeTierDataRequest(PascalModel):
    product_rate_plan_charge_tier: Annotated[
        list[ChargeTierRequest], Field(min_length=1, max_length=MAX_TIERS_PER_CHARGE)
    ]


class CreateProductRatePlanChargeRequest(PascalModel):
    product_rate_plan_id: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    charge_type: Word
    charge_model: Word
    product_rate_plan_charge_tier_data: ChargeTierDataRequest
    bill_cycle_type: Word | None = None
    bill_cycle_day: int | None = None
    billing_period: Word | None = None
    specific_billing_period: Periods | None = None
    billing_timing: Word | None = None
    trigger_event: Word | None = None
    end_date_condition: Word | None = None
    up_to_periods: Periods | None = None
    up_to_periods_type: Word | None = None
    default_quantity: Decimal | None = None
    uom: Annotated[str | None, Field(alias="UOM", max_length=25)] = None
    list_price_base: Word | None = None
    description: Annotated[str | None, Field(max_length=500)] = None
    product_rate_plan_charge_number: Annotated[str | None, Field(min_length=1, max_length=100)] = (
        None
    )
