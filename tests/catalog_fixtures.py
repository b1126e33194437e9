"""Small builders for catalog rate plans, accounts and orders, shared by subscription and billing
tests. Catalog objects go through the CRUD object API (PascalCase), orders through `/v1/orders`."""

from decimal import Decimal
from typing import Any

from tests.helpers import ApiClient

Money = str | int | Decimal


async def created(api: ApiClient, path: str, body: dict[str, Any]) -> str:
    """POST a CRUD object; its id."""
    status, payload = await api.call("POST", path, body, expect=None)
    assert status == 200 and payload.get("Success") is True, (status, payload)
    return str(payload["Id"])


def tier(
    price: Money,
    start: Money | None = None,
    end: Money | None = None,
    price_format: str | None = None,
    currency: str = "USD",
) -> dict[str, Any]:
    """One ProductRatePlanChargeTier entry."""
    entry: dict[str, Any] = {"Currency": currency, "Price": Decimal(str(price))}
    if start is not None:
        entry["StartingUnit"] = Decimal(str(start))
    if end is not None:
        entry["EndingUnit"] = Decimal(str(end))
    if price_format is not None:
        entry["PriceFormat"] = price_format
    return entry


def _charge(
    charge_type: str,
    model: str,
    price: Money | None,
    tiers: list[dict[str, Any]] | None,
    **extra: Any,
) -> dict[str, Any]:
    assert (price is None) != (tiers is None), "give a price or tiers"
    return {
        "Name": f"{charge_type} {model}",
        "ChargeType": charge_type,
        "ChargeModel": model,
        "BillCycleType": "DefaultFromCustomer",
        "TriggerEvent": "ContractEffective",
        "ProductRatePlanChargeTierData": {
            "ProductRatePlanChargeTier": tiers if tiers is not None else [tier(price)]  # type: ignore[arg-type]
        },
        **extra,
    }


def recurring_charge(
    price: Money | None = None,
    model: str = "Per Unit Pricing",
    period: str = "Month",
    timing: str = "In Advance",
    *,
    tiers: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A recurring charge body (without ProductRatePlanId); `tiers` for tiered/volume models."""
    return _charge(
        "Recurring", model, price, tiers, BillingPeriod=period, BillingTiming=timing, **extra
    )


def one_time_charge(
    price: Money | None = None,
    model: str = "Flat Fee Pricing",
    *,
    tiers: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return _charge("OneTime", model, price, tiers, **extra)


def usage_charge(price: Money = "0.10", model: str = "Per Unit Pricing", **extra: Any) -> dict:  # type: ignore[type-arg]
    return _charge("Usage", model, price, None, BillingPeriod="Month", UOM="Each", **extra)


async def rate_plan(api: ApiClient, *charges: dict[str, Any], name: str = "Plan") -> str:
    """A new product with one rate plan holding `charges` (default: one monthly 10 per unit);
    the rate plan's id."""
    product_id = await created(
        api,
        "/v1/object/product",
        {
            "Name": f"{name} product",
            "EffectiveStartDate": "2020-01-01",
            "EffectiveEndDate": "2040-01-01",
        },
    )
    plan_id = await created(
        api, "/v1/object/product-rate-plan", {"Name": name, "ProductId": product_id}
    )
    for charge in charges or (recurring_charge("10"),):
        await created(
            api, "/v1/object/product-rate-plan-charge", {**charge, "ProductRatePlanId": plan_id}
        )
    return plan_id


async def plan_charge_ids(api: ApiClient, plan_id: str) -> list[str]:
    """The product rate plan charge ids of a rate plan, in creation order."""
    plan = await api.ok("GET", f"/v1/product-rate-plans/{plan_id}")
    return [str(c["id"]) for c in plan["productRatePlanCharges"]]


async def new_account(api: ApiClient, bill_cycle_day: int = 1, **fields: Any) -> dict[str, Any]:
    """A synchronous USD account: the create response (accountId, accountNumber)."""
    return await api.create_account(billCycleDay=bill_cycle_day, **fields)


def order_body(
    account_number: str,
    plan_id: str,
    order_date: str,
    *,
    charge_overrides: list[dict[str, Any]] | None = None,
    run_billing: bool = False,
    target_date: str | None = None,
    **create_subscription_fields: Any,
) -> dict[str, Any]:
    """A one-subscription NewSales order for an existing account subscribing to one rate plan;
    `create_subscription_fields` go into `createSubscription` (default terms: EVERGREEN)."""
    plan: dict[str, Any] = {"productRatePlanId": plan_id}
    if charge_overrides:
        plan["chargeOverrides"] = charge_overrides
    create: dict[str, Any] = {
        "terms": {"initialTerm": {"termType": "EVERGREEN"}},
        "subscribeToProducts": [plan],
        **create_subscription_fields,
    }
    body: dict[str, Any] = {
        "orderDate": order_date,
        "existingAccountNumber": account_number,
        "subscriptions": [
            {"orderActions": [{"type": "CreateSubscription", "createSubscription": create}]}
        ],
    }
    if run_billing:
        body["processingOptions"] = {
            "runBilling": True,
            "billingOptions": {"targetDate": target_date or order_date},
        }
    return body


def amendment(
    account_number: str,
    subscription_number: str,
    order_date: str,
    *actions: dict[str, Any],
    run_billing: bool = False,
    target_date: str | None = None,
) -> dict[str, Any]:
    """An order amending one existing subscription with `actions` (full order-action objects)."""
    body: dict[str, Any] = {
        "orderDate": order_date,
        "existingAccountNumber": account_number,
        "subscriptions": [
            {"subscriptionNumber": subscription_number, "orderActions": list(actions)}
        ],
    }
    if run_billing:
        body["processingOptions"] = {
            "runBilling": True,
            "billingOptions": {"targetDate": target_date or order_date},
        }
    return body


def quantity_override(charge_id: str, quantity: Money, pricing: str = "recurringPerUnit") -> dict:  # type: ignore[type-arg]
    """A chargeOverride setting the quantity of a per-unit/tiered/volume charge."""
    return {
        "productRatePlanChargeId": charge_id,
        "pricing": {pricing: {"quantity": Decimal(str(quantity))}},
    }
