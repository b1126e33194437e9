"""The product catalog: CRUD object API writes read back through every API (the CRUD and the
orders vocabulary), each charge model and billing period, one-time and usage charges."""

from decimal import Decimal
from typing import Any

import pytest

from tests.catalog.catalog_support import (
    charge_body,
    created,
    new_plan,
    product_body,
    rate_plan_charges,
    tier,
)
from tests.helpers import ApiClient

# The SDK's generated models use pydantic APIs deprecated in v2 and type prices as float, while
# money here is Decimal (the SDK sends it as a string): both warnings are the SDK's business.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

# --- create and read back -----------------------------------------------------------------------


async def test_product_plan_and_charge_in_crud_vocabulary_read_back_everywhere(
    api: ApiClient,
) -> None:
    product_id = await created(
        api,
        "/v1/object/product",
        product_body(
            SKU="SEATS-1",
            Category="Add On Services",
            Description="Per-seat licences",
            Region__c="EMEA",
            AllowFeatureChanges=False,
        ),
    )
    plan_id = await created(
        api,
        "/v1/object/product-rate-plan",
        {
            "Name": "Semi-annual",
            "ProductId": product_id,
            "Description": "Billed twice a year",
            "EffectiveStartDate": "2026-02-01",
        },
    )
    charge_id = await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(
            plan_id,
            tier("USD", "12.50"),
            tier("EUR", "11.123456789"),
            BillingPeriod="Semi-Annual",
            BillingTiming="In Arrears",
            BillCycleType="SpecificDayofMonth",
            BillCycleDay=15,
            DefaultQuantity=Decimal("3"),
            UOM="Seat",
            Description="per seat",
            UseDiscountSpecificAccountingCode=False,
            PriceChangeOption="NoChange",
            UpToPeriodsType="Billing Periods",
            EndDateCondition="SubscriptionEnd",
            ListPriceBase="Per Billing Period",
            Tier__c="gold",
        ),
    )

    product = await api.call("GET", f"/v1/object/product/{product_id}")
    assert product[1] | {"CreatedDate": None, "UpdatedDate": None} == {
        "Id": product_id,
        "Name": "Seats",
        "SKU": "SEATS-1",
        "ProductNumber": product[1]["ProductNumber"],
        "Category": "Add On Services",
        "Description": "Per-seat licences",
        "EffectiveStartDate": "2026-01-01",
        "EffectiveEndDate": "2036-01-01",
        "AllowFeatureChanges": False,
        "CreatedDate": None,
        "UpdatedDate": None,
        "Region__c": "EMEA",
    }
    assert product[1]["ProductNumber"].startswith("PC-")

    _, plan = await api.call("GET", f"/v1/object/product-rate-plan/{plan_id}")
    assert plan["ProductId"] == product_id
    assert plan["Name"] == "Semi-annual"
    assert plan["EffectiveStartDate"] == "2026-02-01"
    assert plan["EffectiveEndDate"] == "2036-01-01"  # the product's
    assert plan["ProductRatePlanNumber"].startswith("PRP-")

    _, charge = await api.call("GET", f"/v1/object/product-rate-plan-charge/{charge_id}")
    assert charge["ProductRatePlanId"] == plan_id
    assert charge["ProductRatePlanChargeNumber"].startswith("PRPC-")
    assert charge["ChargeType"] == "Recurring"
    assert charge["ChargeModel"] == "Per Unit Pricing"
    assert charge["BillingPeriod"] == "Semi-Annual"
    assert charge["BillingTiming"] == "In Arrears"
    assert charge["BillCycleType"] == "SpecificDayofMonth"
    assert charge["BillCycleDay"] == 15
    assert charge["TriggerEvent"] == "ContractEffective"
    assert charge["EndDateCondition"] == "SubscriptionEnd"
    assert charge["DefaultQuantity"] == Decimal("3")
    assert charge["UOM"] == "Seat"
    assert charge["Tier__c"] == "gold"
    tiers = {
        t["Currency"]: t
        for t in charge["ProductRatePlanChargeTierData"]["ProductRatePlanChargeTier"]
    }
    assert tiers["USD"]["Price"] == Decimal("12.50")
    assert str(tiers["USD"]["Price"]) == "12.50"  # exact, trailing zero kept
    assert tiers["EUR"]["Price"] == Decimal("11.123456789")
    assert tiers["USD"]["PriceFormat"] == "Per Unit"

    for key in (product_id, "SEATS-1"):
        listed = await api.ok("GET", f"/v1/catalog/product/{key}")
        assert listed["id"] == product_id
        assert listed["sku"] == "SEATS-1"
        assert listed["category"] == "Add On Services"
        assert listed["effectiveStartDate"] == "2026-01-01"
        assert listed["productRatePlans"] == f"/v1/rateplan/{product_id}/productRatePlan"
        assert listed["productFeatures"] == []
        assert listed["Region__c"] == "EMEA"

    by_product = await api.ok("GET", "/v1/rateplan/SEATS-1/productRatePlan")
    assert "nextPage" not in by_product
    (listed_plan,) = by_product["productRatePlans"]
    assert listed_plan["id"] == plan_id
    assert listed_plan["status"] == "Active"
    (v1_charge,) = listed_plan["productRatePlanCharges"]
    assert v1_charge["id"] == charge_id
    assert v1_charge["type"] == "Recurring"
    assert v1_charge["model"] == "PerUnit"
    assert v1_charge["billingPeriod"] == "Semi_Annual"
    assert v1_charge["billingTiming"] == "IN_ARREARS"
    assert v1_charge["billCycleType"] == "SpecificDayofMonth"
    assert v1_charge["billingDay"] == "15"
    assert v1_charge["triggerEvent"] == "ContractEffective"
    assert v1_charge["endDateCondition"] == "Subscription_End"
    assert v1_charge["defaultQuantity"] == Decimal("3")
    assert v1_charge["uom"] == "Seat"
    pricing = {p["currency"]: p for p in v1_charge["pricing"]}
    assert pricing["USD"] == {"currency": "USD", "price": Decimal("12.50"), "tiers": None}
    assert pricing["EUR"]["price"] == Decimal("11.123456789")
    assert sorted(v1_charge["pricingSummary"]) == ["EUR11.123456789/Seat", "USD12.50/Seat"]

    for key in (plan_id, listed_plan["productRatePlanNumber"]):
        one = await api.ok("GET", f"/v1/product-rate-plans/{key}")
        assert one["id"] == plan_id
        assert one["productRatePlanCharges"] == listed_plan["productRatePlanCharges"]

    listing = await api.ok("GET", "/v1/catalog/products")
    assert [p["id"] for p in listing["products"]] == [product_id]


async def test_orders_vocabulary_is_accepted_too(api: ApiClient) -> None:
    _, plan_id = await new_plan(api)
    charge_id = await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(
            plan_id,
            tier("USD", "5"),
            ChargeType="recurring",
            ChargeModel="PerUnit",
            BillingPeriod="Semi_Annual",
            BillingTiming="IN_ARREARS",
            BillCycleType="SubscriptionStartDay",
            TriggerEvent="ServiceActivation",
            EndDateCondition="Fixed_Period",
            UpToPeriods=4,
            UpToPeriodsType="Months",
        ),
    )
    _, charge = await api.call("GET", f"/v1/object/product-rate-plan-charge/{charge_id}")
    assert charge["ChargeModel"] == "Per Unit Pricing"
    assert charge["BillingPeriod"] == "Semi-Annual"
    assert charge["BillingTiming"] == "In Arrears"
    assert charge["EndDateCondition"] == "FixedPeriod"
    assert charge["UpToPeriods"] == 4
    assert charge["UpToPeriodsType"] == "Months"
    assert charge["TriggerEvent"] == "ServiceActivation"
    (v1_charge,) = await rate_plan_charges(api, plan_id)
    assert v1_charge["endDateCondition"] == "Fixed_Period"
    assert v1_charge["upToPeriods"] == 4
    assert v1_charge["upToPeriodsType"] == "Months"
    assert v1_charge["billCycleType"] == "SubscriptionStartDay"
    assert v1_charge["billingDay"] == "SubscriptionStartDay"


@pytest.mark.parametrize(
    ("model", "tiers", "expected_model", "expected_pricing"),
    [
        (
            "Flat Fee Pricing",
            [tier("USD", "99.99")],
            "FlatFee",
            {"currency": "USD", "price": Decimal("99.99"), "tiers": None},
        ),
        (
            "Per Unit Pricing",
            [tier("JPY", "0.000000001")],
            "PerUnit",
            {"currency": "JPY", "price": Decimal("0.000000001"), "tiers": None},
        ),
        (
            "Tiered Pricing",
            [
                tier("USD", "10", "0", "10"),
                tier("USD", "8", "11", "20"),
                tier("USD", "100", "20", PriceFormat="Flat Fee"),
            ],
            "Tiered",
            {
                "currency": "USD",
                "price": None,
                "tiers": [
                    {
                        "tier": 1,
                        "startingUnit": Decimal("0"),
                        "endingUnit": Decimal("10"),
                        "price": Decimal("10"),
                        "priceFormat": "PerUnit",
                    },
                    {
                        "tier": 2,
                        "startingUnit": Decimal("11"),
                        "endingUnit": Decimal("20"),
                        "price": Decimal("8"),
                        "priceFormat": "PerUnit",
                    },
                    {
                        "tier": 3,
                        "startingUnit": Decimal("20"),
                        "endingUnit": None,
                        "price": Decimal("100"),
                        "priceFormat": "FlatFee",
                    },
                ],
            },
        ),
        (
            "Volume",
            # Listed out of order: tiers are ordered by their starting unit.
            [tier("EUR", "1.5", "101"), tier("EUR", "2.25", "1", "100")],
            "Volume",
            {
                "currency": "EUR",
                "price": None,
                "tiers": [
                    {
                        "tier": 1,
                        "startingUnit": Decimal("1"),
                        "endingUnit": Decimal("100"),
                        "price": Decimal("2.25"),
                        "priceFormat": "PerUnit",
                    },
                    {
                        "tier": 2,
                        "startingUnit": Decimal("101"),
                        "endingUnit": None,
                        "price": Decimal("1.5"),
                        "priceFormat": "PerUnit",
                    },
                ],
            },
        ),
    ],
)
async def test_each_charge_model(
    api: ApiClient,
    model: str,
    tiers: list[dict[str, Any]],
    expected_model: str,
    expected_pricing: dict[str, Any],
) -> None:
    _, plan_id = await new_plan(api)
    charge_id = await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(plan_id, *tiers, ChargeModel=model, UOM="Each"),
    )
    (charge,) = await rate_plan_charges(api, plan_id)
    assert charge["id"] == charge_id
    assert charge["model"] == expected_model
    assert charge["pricing"] == [expected_pricing]
    assert len(charge["pricingSummary"]) == 1
    if expected_model == "FlatFee":
        assert charge["defaultQuantity"] is None
        assert charge["pricingSummary"] == ["USD99.99"]
    if expected_model == "Tiered":
        assert charge["pricingSummary"] == [
            "0 to 10 Each: USD10/Each; 11 to 20 Each: USD8/Each; 20 or more Each: USD100 flat fee"
        ]


@pytest.mark.parametrize(
    ("period", "extra", "crud", "v1"),
    [
        ("Month", {}, "Month", "Month"),
        ("Quarter", {}, "Quarter", "Quarter"),
        ("Semi-Annual", {}, "Semi-Annual", "Semi_Annual"),
        ("Annual", {}, "Annual", "Annual"),
        ("Specific Months", {"SpecificBillingPeriod": 18}, "Specific Months", "Specific_Months"),
        ("Week", {}, "Week", "Week"),
    ],
)
async def test_each_billing_period(
    api: ApiClient, period: str, extra: dict[str, Any], crud: str, v1: str
) -> None:
    _, plan_id = await new_plan(api)
    charge_id = await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(plan_id, BillingPeriod=period, **extra),
    )
    _, charge = await api.call("GET", f"/v1/object/product-rate-plan-charge/{charge_id}")
    assert charge["BillingPeriod"] == crud
    assert charge["SpecificBillingPeriod"] == extra.get("SpecificBillingPeriod")
    (v1_charge,) = await rate_plan_charges(api, plan_id)
    assert v1_charge["billingPeriod"] == v1
    assert v1_charge["specificBillingPeriod"] == extra.get("SpecificBillingPeriod")


async def test_one_time_and_usage_charges(api: ApiClient) -> None:
    _, plan_id = await new_plan(api)
    await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(
            plan_id,
            tier("USD", "250"),
            Name="Setup",
            ChargeType="OneTime",
            ChargeModel="Flat Fee Pricing",
            BillingPeriod="Month",  # the SDK always sends one; a one-time charge has none
        ),
    )
    await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(
            plan_id, tier("USD", "0.002"), Name="API calls", ChargeType="Usage", UOM="Call"
        ),
    )
    setup, usage = await rate_plan_charges(api, plan_id)
    assert setup["type"] == "OneTime"
    assert setup["billingPeriod"] is None
    assert setup["endDateCondition"] == "One_Time"
    assert usage["type"] == "Usage"
    assert usage["billingPeriod"] == "Month"
    assert usage["pricing"][0]["price"] == Decimal("0.002")
