"""The product catalog read back: unknown keys in each API, tenant isolation, paging,
`load_rate_plans` for orders and subscriptions, and the real Zuora SDK."""

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import zuora_sdk as sdk
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
from tests.catalog.catalog_support import (
    _object_errors,
    charge_body,
    created,
    new_plan,
    product_body,
    tier,
)
from tests.helpers import ApiClient, client_for, new_tenant

# The SDK's generated models use pydantic APIs deprecated in v2 and type prices as float, while
# money here is Decimal (the SDK sends it as a string): both warnings are the SDK's business.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

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
