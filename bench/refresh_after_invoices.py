"""Time the metrics refresh of one partner account after N posted invoices.

Seeds the invoices through `POST /v1/invoices/batch` (50 per call, a few calls in flight) on a
running server, then asks for the on-demand refresh and prints its duration as the server measured
it, plus the seeding rate. Loopback only; every loop is bounded by the invoice count.

    .venv/bin/python -m bench.refresh_after_invoices --invoices 10000 \
        --client-id ID --client-secret SECRET [--url http://127.0.0.1:8000]
"""

import argparse
import asyncio
from decimal import Decimal
from typing import Any

from bench.common import account, call, connect, in_parallel

BATCH = 50


async def main(url: str, client_id: str, client_secret: str, count: int, clients: int) -> None:
    async with connect(url, client_id, client_secret, clients) as http:
        number = (await account(http, "Refresh benchmark", True))["accountNumber"]
        invoice = {
            "accountNumber": number,
            "invoiceDate": "2026-11-01",
            "status": "Posted",
            "invoiceItems": [{"amount": "12.34", "serviceStartDate": "2026-11-01"}],
        }
        sizes = [min(BATCH, count - start) for start in range(0, count, BATCH)]

        async def seed(i: int) -> dict[str, Any]:
            body = {"invoices": [invoice] * sizes[i], "useSingleTransaction": True}
            return await call(http, "POST", "/v1/invoices/batch", body)

        rate, failures = await in_parallel(len(sizes), clients, seed)
        assert not failures, failures
        refresh = await call(http, "POST", f"/v1/partnerbill/accounts/{number}/refresh-metrics")
        metrics = (await call(http, "GET", f"/v1/accounts/{number}"))["metrics"]
        expected = Decimal("12.34") * count
        assert metrics["totalInvoiceBalance"] == expected, metrics
        print(
            f"account {number}: {count} posted invoices seeded at {rate * BATCH:.0f} invoices/s "
            f"({clients} clients, {BATCH} per call)"
        )
        print(
            f"refresh folded {refresh['foldedChanges']} changes in {refresh['durationMs']} ms; "
            f"totalInvoiceBalance {metrics['totalInvoiceBalance']} (expected {expected})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.client_id, args.client_secret, args.invoices, args.clients))
