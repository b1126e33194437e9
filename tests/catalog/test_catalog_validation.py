"""The product catalog's validation with the object envelope: invalid products and charges are
refused with nothing written, unknown ids, and numbers and SKUs unique per tenant."""

from typing import Any

import pytest

from tests.catalog.catalog_support import (
    CATALOG_TABLES,
    _object_errors,
    catalog_rows,
    charge_body,
    created,
    new_plan,
    product_body,
    tier,
)
from tests.helpers import ApiClient

# The SDK's generated models use pydantic APIs deprecated in v2 and type prices as float, while
# money here is Decimal (the SDK sends it as a string): both warnings are the SDK's business.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"EffectiveStartDate": "2026-01-01", "EffectiveEndDate": "2027-01-01"},
            "MISSING_REQUIRED_VALUE",
            "Name",
        ),
        (product_body(EffectiveEndDate=None), "INVALID_VALUE", "EffectiveEndDate"),
        (product_body(EffectiveEndDate="2025-01-01"), "INVALID_VALUE", "EffectiveEndDate"),
        (product_body(Category="Hardware"), "INVALID_VALUE", "Category"),
        (product_body(Name="x" * 101), "INVALID_VALUE", "Name"),
    ],
)
async def test_invalid_products_are_refused_with_the_object_envelope(
    api: ApiClient, body: dict[str, Any], code: str, field: str
) -> None:
    status, payload = await api.call("POST", "/v1/object/product", body, expect=None)
    assert field in _object_errors(status, payload, code)
    assert await catalog_rows(api) == dict.fromkeys(CATALOG_TABLES, 0)


async def test_unknown_product_id_is_an_invalid_id(api: ApiClient) -> None:
    status, payload = await api.call(
        "POST",
        "/v1/object/product-rate-plan",
        {"Name": "Plan", "ProductId": "0" * 32},
        expect=None,
    )
    assert "ProductId" in _object_errors(status, payload, "INVALID_ID")
    status, payload = await api.call(
        "POST", "/v1/object/product-rate-plan", {"ProductId": "0" * 32}, expect=None
    )
    assert "Name" in _object_errors(status, payload, "MISSING_REQUIRED_VALUE")
    assert await catalog_rows(api) == dict.fromkeys(CATALOG_TABLES, 0)


@pytest.mark.parametrize(
    ("fields", "tiers", "code", "needle"),
    [
        ({"ChargeModel": "Bogus Pricing"}, [], "INVALID_VALUE", "'ChargeModel'"),
        ({"ChargeModel": "Overage Pricing"}, [], "INVALID_VALUE", "not supported"),
        ({"ChargeType": "Others"}, [], "INVALID_VALUE", "'ChargeType'"),
        ({"BillingPeriod": None}, [], "MISSING_REQUIRED_VALUE", "'BillingPeriod'"),
        ({"BillingPeriod": "Subscription Term"}, [], "INVALID_VALUE", "'BillingPeriod'"),
        (
            {"BillingPeriod": "Specific Months"},
            [],
            "MISSING_REQUIRED_VALUE",
            "SpecificBillingPeriod",
        ),
        ({"BillingTiming": "Sometimes"}, [], "INVALID_VALUE", "'BillingTiming'"),
        ({"BillCycleType": "SpecificDayofMonth"}, [], "MISSING_REQUIRED_VALUE", "BillCycleDay"),
        ({"BillCycleType": "TermEndDay"}, [], "INVALID_VALUE", "'BillCycleType'"),
        (
            {"BillCycleDay": 32, "BillCycleType": "SpecificDayofMonth"},
            [],
            "INVALID_VALUE",
            "BillCycleDay",
        ),
        ({"TriggerEvent": "Whenever"}, [], "INVALID_VALUE", "'TriggerEvent'"),
        ({"EndDateCondition": "FixedPeriod"}, [], "MISSING_REQUIRED_VALUE", "UpToPeriods"),
        ({"ListPriceBase": "Per Month"}, [], "INVALID_VALUE", "'ListPriceBase'"),
        ({"ProductRatePlanChargeTierData": None}, [], "MISSING_REQUIRED_VALUE", "TierData"),
        ({"ProductRatePlanId": "f" * 32}, [], "INVALID_ID", "ProductRatePlanId"),
        ({}, [tier("USD", "-1")], "INVALID_VALUE", "Price"),
        ({}, [tier("XXX", "1")], "INVALID_VALUE", "Currency"),
        ({}, [tier("USD", "1"), tier("USD", "2")], "INVALID_VALUE", "one price per currency"),
        ({}, [tier("USD", "1.0000000001")], "INVALID_VALUE", "9 decimal places"),
        (
            {"ChargeModel": "Flat Fee Pricing"},
            [tier("USD", "1.001")],
            "INVALID_VALUE",
            "scale of USD",
        ),
        (
            {"ChargeModel": "Flat Fee Pricing"},
            [tier("JPY", "1.5")],
            "INVALID_VALUE",
            "scale of JPY",
        ),
        (
            {"ChargeModel": "Tiered Pricing"},
            [tier("USD", "1", "0", "10"), tier("USD", "1", "12", "20")],
            "INVALID_VALUE",
            "contiguous",
        ),
        (
            {"ChargeModel": "Tiered Pricing"},
            [tier("USD", "1", "0"), tier("USD", "1", "11", "20")],
            "MISSING_REQUIRED_VALUE",
            "EndingUnit",
        ),
        (
            {"ChargeModel": "Volume Pricing"},
            [tier("USD", "1", "-1", "10")],
            "INVALID_VALUE",
            "StartingUnit",
        ),
        (
            {"ChargeModel": "Volume Pricing"},
            [tier("USD", "1", "5", "4")],
            "INVALID_VALUE",
            "EndingUnit",
        ),
        (
            {"ChargeModel": "Volume Pricing"},
            [tier("USD", "1")],
            "MISSING_REQUIRED_VALUE",
            "StartingUnit",
        ),
        (
            {"ChargeModel": "Tiered Pricing"},
            [tier("USD", "1", "0", PriceFormat="Per Hour")],
            "INVALID_VALUE",
            "PriceFormat",
        ),
        ({"Custom__c": {"nested": 1}}, [], "INVALID_VALUE", "Custom__c"),
    ],
)
async def test_invalid_charges_are_refused_and_nothing_is_written(
    api: ApiClient, fields: dict[str, Any], tiers: list[dict[str, Any]], code: str, needle: str
) -> None:
    _, plan_id = await new_plan(api)
    before = await catalog_rows(api)
    body = charge_body(plan_id, *tiers, **fields)
    body = {key: value for key, value in body.items() if value is not None}
    status, payload = await api.call(
        "POST", "/v1/object/product-rate-plan-charge", body, expect=None
    )
    assert needle in _object_errors(status, payload, code), payload
    assert await catalog_rows(api) == before


async def test_chosen_numbers_and_skus_are_unique_per_tenant(api: ApiClient) -> None:
    await created(api, "/v1/object/product", product_body(SKU="DUP", ProductNumber="P-1"))
    for fields, field in (({"SKU": "DUP"}, "SKU"), ({"ProductNumber": "P-1"}, "ProductNumber")):
        status, payload = await api.call(
            "POST", "/v1/object/product", product_body(**fields), expect=None
        )
        assert field in _object_errors(status, payload, "INVALID_VALUE")
    _, plan_id = await new_plan(api)
    plan_number = (await api.ok("GET", f"/v1/product-rate-plans/{plan_id}"))[
        "productRatePlanNumber"
    ]
    product_id = (await api.ok("GET", "/v1/catalog/products"))["products"][0]["id"]
    status, payload = await api.call(
        "POST",
        "/v1/object/product-rate-plan",
        {"Name": "Again", "ProductId": product_id, "ProductRatePlanNumber": plan_number},
        expect=None,
    )
    assert "ProductRatePlanNumber" in _object_errors(status, payload, "INVALID_VALUE")
