"""Time the metrics refresh of one partner account after N posted invoices.

Seeds the invoices through `POST /v1/invoices/batch` (50 per call, a few calls in flight) on a
running server, then asks for the on-demand refresh and prints its duration as the server measured
it, plus the seeding rate. Loopback only; every loop is bounded by the invoice count.

    .venv/bin/python bench/refresh_after_invoices.py --invoices 10000 \
        --client-id ID --client-secret SECRET [--url http://127.0.0.1:8000]
"""

import argparse
import asyncio
import json
import time
from decimal import Decimal

import httpx

BATCH = 50


async def main(url: str, client_id: str, client_secret: str, count: int, clients: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        token = (
            await http.post(
                "/oauth/token",
                data={"client_id": client_id, "client_secret": client_secret},
            )
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        account = (
            await http.post(
                "/v1/accounts",
                json={
                    "name": "Refresh benchmark",
                    "currency": "USD",
                    "billToContact": {"firstName": "Bench", "lastName": "Mark"},
                    "partnerAccount": True,
                },
            )
        ).json()["accountNumber"]
        invoice = {
            "accountNumber": account,
            "invoiceDate": "2026-11-01",
            "status": "Posted",
            "invoiceItems": [{"amount": "12.34", "serviceStartDate": "2026-11-01"}],
        }
        calls = [min(BATCH, count - start) for start in range(0, count, BATCH)]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for size in calls:
            queue.put_nowait(size)

        async def seed() -> None:
            while not queue.empty():
                size = queue.get_nowait()
                response = await http.post(
                    "/v1/invoices/batch",
                    json={"invoices": [invoice] * size, "useSingleTransaction": True},
                )
                assert response.json().get("success") is True, response.text

        started = time.perf_counter()
        await asyncio.gather(*(seed() for _ in range(clients)))
        seeding = time.perf_counter() - started
        refresh = (await http.post(f"/v1/partnerbill/accounts/{account}/refresh-metrics")).json()
        account_json = (await http.get(f"/v1/accounts/{account}")).content
        metrics = json.loads(account_json, parse_float=Decimal)["metrics"]
        expected = Decimal("12.34") * count
        assert metrics["totalInvoiceBalance"] == expected, metrics
        print(
            f"account {account}: {count} posted invoices seeded in {seeding:.1f} s "
            f"({count / seeding:.0f} invoices/s with {clients} clients)"
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
