"""The product catalog as the catalog tests write and count it: CRUD bodies for products, rate
plans and charges with their tiers, a plan made in one go, the catalog's rows, and the object
envelope's errors."""

from decimal import Decimal
from typing import Any

from sqlalchemy import text

from partnerbill.core import db
from tests.helpers import ApiClient

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


def _object_errors(status: int, payload: dict[str, Any], code: str) -> str:
    assert status == 400, (status, payload)
    assert payload["Success"] is False, payload
    errors = payload["Errors"]
    assert errors and errors[0]["Code"] == code, payload
    assert isinstance(errors[0]["Message"], str)
    return str(errors[0]["Message"])
