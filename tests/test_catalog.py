"""The product catalog: CRUD object API writes and reads, v1 catalog reads, validation with the
object envelope, tenant isolation, paging, `load_rate_plans`, and the real Zuora SDK."""

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import zuora_sdk as sdk
from sqlalchemy import text
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill.catalog.enums import (
    BillCycleType,
    BillingPeriod,
    BillingTiming,
    ChargeModel,
    ChargeType,
    EndDateCondition,
    PriceFormat,
    Tier,
    TriggerEvent,
)
from partnerbill.catalog.views import load_rate_plans
from partnerbill.core import db
from partnerbill.core.errors import Category, ZuoraError
from tests.helpers import ApiClient, client_for, new_tenant

# The SDK's generated models use pydantic APIs deprecated in v2 and type prices as float, while
# money here is Decimal (the SDK sends it as a string): both warnings are the SDK's business.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

CATALOG_TABLES = ("products", "product_rate_plans", "product_rate_plan_charges")


# --- helpers ------------------------------------------------------------------------------------


async def created(api: ApiClient, path: str, body: dict[str, Any]) -> str:
    status, payload = await api.call("POST", path, body, expect=None)
    assert status == 200 and payload.get("Success") is True, (status, payload)
    assert isinstance(payload["Id"], str) and len(payload["Id"]) == 32, payload
    return str(payload["Id"])


def product_body(**fields: Any) -> dict[str, Any]:
    return {
        "Name": "Seats",
        "EffectiveStartDate": "2026-01-01",
        "EffectiveEndDate": "2036-01-01",
        **fields,
    }


def tier(currency: str, price: str, start: str | None = None, end: str | None = None, **more: Any):  # type: ignore[no-untyped-def]
    entry: dict[str, Any] = {"Currency": currency, "Price": Decimal(price), **more}
    if start is not None:
        entry["StartingUnit"] = Decimal(start)
    if end is not None:
        entry["EndingUnit"] = Decimal(end)
    return entry


def charge_body(plan_id: str, *tiers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "ProductRatePlanId": plan_id,
        "Name": "Seat fee",
        "ChargeType": "Recurring",
        "ChargeModel": "Per Unit Pricing",
        "BillingPeriod": "Month",
        "BillCycleType": "DefaultFromCustomer",
        "TriggerEvent": "ContractEffective",
        "ProductRatePlanChargeTierData": {
            "ProductRatePlanChargeTier": list(tiers) or [tier("USD", "12.50")]
        },
        **fields,
    }


async def new_plan(api: ApiClient, **product_fields: Any) -> tuple[str, str]:
    """A product with one rate plan: (product id, plan id)."""
    product_id = await created(api, "/v1/object/product", product_body(**product_fields))
    plan_id = await created(
        api, "/v1/object/product-rate-plan", {"Name": "Monthly", "ProductId": product_id}
    )
    return product_id, plan_id


async def catalog_rows(api: ApiClient) -> dict[str, int]:
    async with db.get_engine().connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :tenant"),
                    {"tenant": api.tenant.id},
                )
                or 0
            )
            for table in CATALOG_TABLES
        }


async def rate_plan_charges(api: ApiClient, plan_id: str) -> list[dict[str, Any]]:
    plan = await api.ok("GET", f"/v1/product-rate-plans/{plan_id}")
    return list(plan["productRatePlanCharges"])


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


# --- validation ---------------------------------------------------------------------------------


def _object_errors(status: int, payload: dict[str, Any], code: str) -> str:
    assert status == 400, (status, payload)
    assert payload["Success"] is False, payload
    errors = payload["Errors"]
    assert errors and errors[0]["Code"] == code, payload
    assert isinstance(errors[0]["Message"], str)
    return str(errors[0]["Message"])


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


# --- not found, isolation, paging ---------------------------------------------------------------


async def test_unknown_keys_answer_404_in_each_api(api: ApiClient) -> None:
    for path in ("product", "product-rate-plan", "product-rate-plan-charge"):
        _, payload = await api.call("GET", f"/v1/object/{path}/{'a' * 32}", expect=404)
        assert payload == {"done": True, "records": [], "size": 0}
    for path in (
        "/v1/catalog/product/NOPE",
        "/v1/rateplan/NOPE/productRatePlan",
        "/v1/product-rate-plans/NOPE",
    ):
        _, payload = await api.call("GET", path, expect=404)
        assert payload["success"] is False
        assert payload["reasons"][0]["code"] % 100 == Category.NOT_FOUND


async def test_another_tenant_sees_none_of_the_catalog(
    api: ApiClient, engine: Any, app: Any
) -> None:
    product_id = await created(api, "/v1/object/product", product_body(SKU="MINE"))
    plan_id = await created(
        api, "/v1/object/product-rate-plan", {"Name": "Plan", "ProductId": product_id}
    )
    charge_id = await created(api, "/v1/object/product-rate-plan-charge", charge_body(plan_id))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://partnerbill.test"
    ) as http:
        other = await client_for(http, await new_tenant(engine))
        await other.call("GET", f"/v1/object/product/{product_id}", expect=404)
        await other.call("GET", f"/v1/object/product-rate-plan/{plan_id}", expect=404)
        await other.call("GET", f"/v1/object/product-rate-plan-charge/{charge_id}", expect=404)
        await other.call("GET", "/v1/catalog/product/MINE", expect=404)
        await other.call("GET", f"/v1/rateplan/{product_id}/productRatePlan", expect=404)
        await other.call("GET", f"/v1/product-rate-plans/{plan_id}", expect=404)
        assert (await other.ok("GET", "/v1/catalog/products"))["products"] == []
        status, payload = await other.call(
            "POST",
            "/v1/object/product-rate-plan",
            {"Name": "Theirs", "ProductId": product_id},
            expect=None,
        )
        _object_errors(status, payload, "INVALID_ID")
        # SKUs are unique per tenant only.
        await created(other, "/v1/object/product", product_body(SKU="MINE"))
        async with db.get_engine().connect() as conn:
            assert await load_rate_plans(conn, other.tenant, [plan_id]) == {}


async def test_products_and_rate_plans_page(api: ApiClient) -> None:
    product_ids = [
        await created(api, "/v1/object/product", product_body(Name=f"P{i}")) for i in range(5)
    ]
    seen: list[str] = []
    path: str | None = "/v1/catalog/products?pageSize=2"
    pages = 0
    while path is not None:
        page = await api.ok("GET", path)
        assert len(page["products"]) <= 2
        seen += [p["id"] for p in page["products"]]
        path = page.get("nextPage")
        if path is not None:
            assert path.startswith("http://partnerbill.test/v1/catalog/products?")
            assert "page=" in path and "pageSize=2" in path
        pages += 1
    assert pages == 3
    assert seen == product_ids[::-1]  # newest first
    assert len((await api.ok("GET", "/v1/catalog/products?pageSize=100"))["products"]) == 5
    _, payload = await api.call("GET", "/v1/catalog/products?page=0", expect=400)
    assert payload["success"] is False

    for i in range(3):
        await created(
            api, "/v1/object/product-rate-plan", {"Name": f"Plan {i}", "ProductId": product_ids[0]}
        )
    first = await api.ok("GET", f"/v1/rateplan/{product_ids[0]}/productRatePlan?pageSize=2")
    assert [p["name"] for p in first["productRatePlans"]] == ["Plan 0", "Plan 1"]
    second = await api.ok("GET", first["nextPage"].removeprefix("http://partnerbill.test"))
    assert [p["name"] for p in second["productRatePlans"]] == ["Plan 2"]
    assert "nextPage" not in second


# --- for orders and subscriptions ---------------------------------------------------------------


async def test_load_rate_plans_by_id_and_number_in_two_queries(api: ApiClient) -> None:
    product_id, plan_id = await new_plan(api, Name="Widgets")
    flat_id = await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(
            plan_id,
            tier("USD", "10"),
            Name="Base",
            ChargeModel="Flat Fee Pricing",
            BillingPeriod="Specific Months",
            SpecificBillingPeriod=2,
        ),
    )
    tiered_id = await created(
        api,
        "/v1/object/product-rate-plan-charge",
        charge_body(
            plan_id,
            tier("USD", "1.25", "0", "100"),
            tier("USD", "1", "100"),
            Name="Units",
            ChargeModel="Tiered Pricing",
            DefaultQuantity=Decimal("5"),
            EndDateCondition="FixedPeriod",
            UpToPeriods=3,
        ),
    )
    other_plan = await created(
        api, "/v1/object/product-rate-plan", {"Name": "Empty", "ProductId": product_id}
    )
    number = (await api.ok("GET", f"/v1/product-rate-plans/{plan_id}"))["productRatePlanNumber"]

    async with db.get_engine().connect() as conn:
        loaded = await load_rate_plans(
            conn, api.tenant, [plan_id, number, other_plan, "PRP-99999999", plan_id]
        )
    assert set(loaded) == {plan_id, number, other_plan}
    assert loaded[plan_id] == loaded[number]
    plan = loaded[plan_id]
    assert (plan.id, plan.number, plan.name) == (plan_id, number, "Monthly")
    assert (plan.product_id, plan.product_name) == (product_id, "Widgets")
    assert loaded[other_plan].charges == ()
    flat, tiered = plan.charges
    assert flat.id == flat_id
    assert flat.charge_type is ChargeType.RECURRING
    assert flat.charge_model is ChargeModel.FLAT_FEE
    assert flat.billing_period is BillingPeriod.SPECIFIC_MONTHS
    assert flat.specific_billing_period == 2
    assert flat.billing_timing is BillingTiming.IN_ADVANCE
    assert flat.bill_cycle_type is BillCycleType.DEFAULT_FROM_CUSTOMER
    assert flat.trigger_event is TriggerEvent.CONTRACT_EFFECTIVE
    assert flat.end_date_condition is EndDateCondition.SUBSCRIPTION_END
    assert flat.tiers_for("USD") == (
        Tier(1, Decimal(0), None, Decimal("10"), PriceFormat.FLAT_FEE),
    )
    assert tiered.id == tiered_id
    assert tiered.default_quantity == Decimal("5")
    assert tiered.end_date_condition is EndDateCondition.FIXED_PERIOD
    assert (tiered.up_to_periods, tiered.up_to_periods_type) == (3, "Billing_Periods")
    assert tiered.tiers_for("USD") == (
        Tier(1, Decimal(0), Decimal(100), Decimal("1.25"), PriceFormat.PER_UNIT),
        Tier(2, Decimal(100), None, Decimal(1), PriceFormat.PER_UNIT),
    )
    with pytest.raises(ZuoraError) as raised:
        tiered.tiers_for("EUR")
    assert raised.value.category is Category.BUSINESS_RULE
    assert "no price in EUR" in str(raised.value)

    async with db.get_engine().connect() as conn:
        assert await load_rate_plans(conn, api.tenant, []) == {}


# --- the real Zuora SDK -------------------------------------------------------------------------


def test_catalog_through_the_sdk(zc: ZuoraClient) -> None:
    product = zc.products_api().create_product(
        sdk.CreateProductRequest(
            name="SDK Product",
            sku="SDK-1",
            effective_start_date=date(2026, 1, 1),
            effective_end_date=date(2036, 1, 1),
            category=sdk.ProductCategory.BASE_PRODUCTS,
        )
    )
    assert product.success is True, product
    plan = zc.product_rate_plans_api().create_product_rate_plan(
        sdk.CreateProductRatePlanRequest(name="SDK Monthly", product_id=product.id)
    )
    assert plan.success is True, plan
    charge = zc.product_rate_plan_charges_api().create_product_rate_plan_charge(
        sdk.CreateProductRatePlanChargeRequest(
            product_rate_plan_id=plan.id,
            name="SDK seat",
            charge_type=sdk.ChargeType.RECURRING,
            charge_model=sdk.ChargeModelProductRatePlanChargeRest.PER_UNIT_PRICING,
            bill_cycle_type=sdk.BillCycleType.DEFAULTFROMCUSTOMER,
            billing_period=sdk.BillingPeriodProductRatePlanChargeRest.MONTH,
            trigger_event=sdk.TriggerEventProductRatePlanChargeRest.CONTRACTEFFECTIVE,
            use_discount_specific_accounting_code=False,
            uom="Seat",
            product_rate_plan_charge_tier_data=sdk.ProductRatePlanChargeTierData(
                product_rate_plan_charge_tier=[
                    sdk.ProductRatePlanChargeTier(currency="USD", price=Decimal("19.99"))
                ]
            ),
        )
    )
    assert charge.success is True, charge

    products = zc.products_api().get_products(page_size=40)
    assert products.success is True
    (listed,) = [p for p in products.products if p.id == product.id]
    assert listed.sku == "SDK-1"
    assert listed.name == "SDK Product"
    assert listed.product_rate_plans == f"/v1/rateplan/{product.id}/productRatePlan"

    plans = zc.product_rate_plans_api().get_rate_plans_by_product("SDK-1")
    (sdk_plan,) = plans.product_rate_plans
    assert sdk_plan.id == plan.id
    (sdk_charge,) = sdk_plan.product_rate_plan_charges
    assert sdk_charge.id == charge.id
    assert sdk_charge.model == "PerUnit"
    assert Decimal(str(sdk_charge.pricing[0].price)) == Decimal("19.99")

    fetched = zc.product_rate_plan_charges_api().get_product_rate_plan_charge(charge.id)
    assert fetched.charge_model == "Per Unit Pricing"
    assert fetched.product_rate_plan_id == plan.id
