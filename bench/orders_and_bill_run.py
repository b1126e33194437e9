"""Orders/s on one partner invoice owner vs one non-partner invoice owner (same run, variants
interleaved), and the time of an account-level bill run over N subscriptions.

Each order creates one subscription for its own partner subscription owner and bills it
(`runBilling`) to the shared invoice owner, so every order writes that owner's metrics: in the
same transaction for the non-partner owner (serialized on its metrics row), in the change log for
the partner. Drives a running server on loopback; every loop is bounded by its count.

    .venv/bin/python -m bench.orders_and_bill_run --client-id ID --client-secret SECRET \
        [--url http://127.0.0.1:8000] [--orders 320] [--clients 32] [--subscriptions 1000]
"""

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.common import account, call, connect, in_parallel

PRODUCT = {"Name": "Bench", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2099-12-31"}
CHARGE = {
    "Name": "Seat",
    "ChargeType": "Recurring",
    "ChargeModel": "Per Unit Pricing",
    "BillingPeriod": "Month",
    "BillCycleType": "DefaultFromCustomer",
    "TriggerEvent": "ContractEffective",
    "DefaultQuantity": "1",
    "ProductRatePlanChargeTierData": {
        "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": "10"}]
    },
}


def _order(owner: str, invoice_owner: str, plan_id: str, run_billing: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderDate": "2026-01-01",
        "existingAccountNumber": owner,
        "subscriptions": [
            {
                "orderActions": [
                    {
                        "type": "CreateSubscription",
                        "createSubscription": {
                            "invoiceOwnerAccountNumber": invoice_owner,
                            "subscribeToProducts": [{"productRatePlanId": plan_id}],
                        },
                    }
                ]
            }
        ],
    }
    if run_billing:
        body["processingOptions"] = {"runBilling": True}
    return body


async def _orders(
    http: httpx.AsyncClient,
    owners: list[str],
    invoice_owner: str,
    plan_id: str,
    count: int,
    clients: int,
    run_billing: bool,
) -> tuple[float, dict[str, int]]:
    """`count` orders from `clients` parallel clients: (orders/s, failures by reason code)."""

    async def order(i: int) -> dict[str, Any]:
        body = _order(owners[i % len(owners)], invoice_owner, plan_id, run_billing)
        return await call(http, "POST", "/v1/orders", body)

    return await in_parallel(count, clients, order)


async def main(args: argparse.Namespace) -> None:
    async with connect(args.url, args.client_id, args.client_secret, args.clients) as http:
        product = await call(http, "POST", "/v1/object/product", PRODUCT)
        plan = await call(
            http,
            "POST",
            "/v1/object/product-rate-plan",
            {"Name": "Monthly", "ProductId": product["Id"]},
        )
        await call(
            http,
            "POST",
            "/v1/object/product-rate-plan-charge",
            {**CHARGE, "ProductRatePlanId": plan["Id"]},
        )
        owners = [
            (await account(http, f"Owner {i}", True))["accountNumber"] for i in range(args.clients)
        ]
        partner = (await account(http, "Partner invoice owner", True))["accountNumber"]
        plain = (await account(http, "Non-partner invoice owner", False))["accountNumber"]
        rates: dict[str, list[float]] = {"partner": [], "non-partner": []}
        errors: dict[str, dict[str, int]] = {"partner": {}, "non-partner": {}}
        for _ in range(args.rounds):  # interleaved: the machine is shared and noisy
            for variant, invoice_owner in (("partner", partner), ("non-partner", plain)):
                rate, failed = await _orders(
                    http, owners, invoice_owner, plan["Id"], args.orders, args.clients, True
                )
                rates[variant].append(rate)
                for code, n in failed.items():
                    errors[variant][code] = errors[variant].get(code, 0) + n
        for variant in rates:
            print(
                f"{variant:12} orders/s per round: "
                + ", ".join(f"{r:.1f}" for r in rates[variant])
                + f"; failures by code: {errors[variant] or 'none'}"
            )
        ratio = [p / n for p, n in zip(rates["partner"], rates["non-partner"], strict=True)]
        print("partner / non-partner ratio per round: " + ", ".join(f"{r:.2f}" for r in ratio))

        reseller = await account(http, "Bill run invoice owner", True)
        await _orders(
            http,
            owners,
            reseller["accountNumber"],
            plan["Id"],
            args.subscriptions,
            args.clients,
            False,
        )
        run = await call(
            http,
            "POST",
            "/v1/bill-runs",
            {
                "targetDate": "2026-01-01",
                "autoPost": True,
                "billRunFilters": [{"filterType": "Account", "accountId": reseller["accountId"]}],
            },
        )
        started = time.perf_counter()
        deadline = started + 600
        while run["status"] in ("Pending", "Processing") and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
            run = await call(http, "GET", f"/v1/bill-runs/{run['id']}")
        print(
            f"bill run over {args.subscriptions} subscriptions: {run['status']} in "
            f"{time.perf_counter() - started:.2f} s (defer to done, polled every 50 ms; "
            f"{run['invoiceCount']} invoice)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--orders", type=int, default=320)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--subscriptions", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
