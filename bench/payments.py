"""Payments/s with parallel clients on one partner account vs one non-partner account (same run,
variants interleaved). Each payment is applied to one of the account's posted invoices, so it
moves the account's totalInvoiceBalance: synchronously under the metrics row lock for the
non-partner account, in the change log for the partner. Loopback only; loops bounded by count.

    .venv/bin/python -m bench.payments --client-id ID --client-secret SECRET \
        [--url http://127.0.0.1:8000] [--payments 800] [--clients 16] [--rounds 2]
"""

import argparse
import asyncio
from typing import Any

from bench.common import account, call, connect, in_parallel

INVOICES_PER_CALL = 50


async def main(args: argparse.Namespace) -> None:
    async with connect(args.url, args.client_id, args.client_secret, args.clients) as http:
        invoices: dict[str, list[str]] = {}
        accounts: dict[str, str] = {}
        for variant, partner in (("partner", True), ("non-partner", False)):
            created = await account(http, f"Payments {variant}", partner)
            accounts[variant] = created["accountNumber"]
            invoice = {
                "accountNumber": created["accountNumber"],
                "invoiceDate": "2026-11-01",
                "status": "Posted",
                "invoiceItems": [{"amount": "1000.00", "serviceStartDate": "2026-11-01"}],
            }
            ids: list[str] = []
            needed = args.payments * args.rounds
            while len(ids) < needed // 10 + 1:  # ten 10.00 payments per 1,000.00 invoice...
                batch = await call(
                    http,
                    "POST",
                    "/v1/invoices/batch",
                    {"invoices": [invoice] * INVOICES_PER_CALL, "useSingleTransaction": True},
                )
                ids += [i["id"] for i in batch["invoices"]]
            invoices[variant] = ids
        rates: dict[str, list[float]] = {"partner": [], "non-partner": []}
        errors: dict[str, dict[str, int]] = {"partner": {}, "non-partner": {}}
        for round_number in range(args.rounds):
            for variant in rates:
                targets = invoices[variant]
                offset = round_number * args.payments
                bodies = [
                    {
                        "accountNumber": accounts[variant],
                        "amount": "10.00",
                        "currency": "USD",
                        "type": "External",
                        "invoices": [
                            {"invoiceId": targets[(offset + i) % len(targets)], "amount": "10.00"}
                        ],
                    }
                    for i in range(args.payments)
                ]

                async def pay(i: int, bodies: list[dict[str, Any]] = bodies) -> dict[str, Any]:
                    return await call(http, "POST", "/v1/payments", bodies[i])

                rate, failed = await in_parallel(args.payments, args.clients, pay)
                rates[variant].append(rate)
                for code, n in failed.items():
                    errors[variant][code] = errors[variant].get(code, 0) + n
        for variant, values in rates.items():
            print(
                f"{variant:12} payments/s per round: {', '.join(f'{r:.1f}' for r in values)}; "
                f"failures by code: {errors[variant] or 'none'}"
            )
        ratio = [p / n for p, n in zip(rates["partner"], rates["non-partner"], strict=True)]
        print("partner / non-partner ratio per round: " + ", ".join(f"{r:.2f}" for r in ratio))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--payments", type=int, default=800)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
