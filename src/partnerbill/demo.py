"""`partnerbill demo`: a sample reseller loaded into the demo tenant through the HTTP API.

What it loads, as a client would (no SQL): a small catalog (a product with a monthly per-seat
plan and a monthly flat-fee support plan), the reseller (a partner account, the invoice owner),
three partner subscription-owner accounts, one order each creating a subscription billed to the
reseller, an account-level bill run for the reseller (autoPost, run by `serve`'s job worker and
polled until it is done; one invoice, as a run makes one per invoice owner), two payments
applied to it that leave part of it open, and a refresh of the reseller's metrics.

Re-running it loads nothing new: the account numbers are kept in `var/demo-reseller.json`, and
while the reseller saved there still exists on the server the command only says so and prints
them again (delete the file to load another set).
"""

import json
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from partnerbill.tables.billing import BillRunStatus

ORDER_DATE = "2026-01-01"
SEAT_PRICE = Decimal("12.50")
SUPPORT_PRICE = Decimal("99.00")
OWNERS = (("Northwind Clinic", 12), ("Blue Harbor Books", 5), ("Kestrel Robotics", 30))
# Two External payments applied to the reseller's invoice, leaving part of it open.
PAYMENTS = (Decimal("300.00"), Decimal("250.00"))
BILL_RUN_DONE = (
    BillRunStatus.COMPLETED,
    BillRunStatus.POSTED,
    BillRunStatus.ERROR,
    BillRunStatus.CANCELED,
)
BILL_RUN_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.2


class DemoError(RuntimeError):
    """A request of the demo was refused; the message says which and why."""


@dataclass
class LoadedReseller:
    reseller: str
    owners: list[str]
    subscriptions: list[str]
    invoices: list[str]
    payments: list[str]
    already_loaded: bool = False


class _Api:
    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        answer = self.http.post(
            "/oauth/token",
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "client_credentials",
            },
        )
        if answer.status_code != 200:
            raise DemoError(f"POST /oauth/token: {answer.status_code} {answer.text}")
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        answer = self.http.request(
            method,
            path,
            content=None if body is None else json.dumps(body, default=str),
            headers={"Content-Type": "application/json"},
        )
        payload: dict[str, Any] = answer.json()
        if answer.status_code != 200 or payload.get("success", payload.get("Success")) is False:
            raise DemoError(f"{method} {path}: {answer.status_code} {answer.text}")
        return payload

    def object(self, path: str, body: dict[str, Any]) -> str:
        return str(self.call("POST", path, body)["Id"])


def _plan(api: _Api, product: str, name: str, charge: dict[str, Any]) -> tuple[str, str]:
    plan = api.object("/v1/object/product-rate-plan", {"Name": name, "ProductId": product})
    charge_id = api.object(
        "/v1/object/product-rate-plan-charge",
        {
            "ProductRatePlanId": plan,
            "ChargeType": "Recurring",
            "BillingPeriod": "Month",
            "BillingTiming": "In Advance",
            "BillCycleType": "DefaultFromCustomer",
            "TriggerEvent": "ContractEffective",
            **charge,
        },
    )
    return plan, charge_id


def _account(api: _Api, name: str) -> str:
    created = api.call(
        "POST",
        "/v1/accounts",
        {
            "name": name,
            "currency": "USD",
            "billCycleDay": 1,
            "autoPay": False,
            "partnerAccount": True,
            "billToContact": {"firstName": "Demo", "lastName": name.split()[0]},
        },
    )
    return str(created["accountNumber"])


def _order(api: _Api, owner: str, reseller: str, plans: list[dict[str, Any]]) -> str:
    order = api.call(
        "POST",
        "/v1/orders",
        {
            "orderDate": ORDER_DATE,
            "existingAccountNumber": owner,
            "subscriptions": [
                {
                    "orderActions": [
                        {
                            "type": "CreateSubscription",
                            "createSubscription": {
                                "subscriptionOwnerAccountNumber": owner,
                                "invoiceOwnerAccountNumber": reseller,
                                "terms": {"initialTerm": {"termType": "EVERGREEN"}},
                                "subscribeToRatePlans": plans,
                            },
                        }
                    ]
                }
            ],
        },
    )
    return str(order["subscriptionNumbers"][0])


def _bill_run(api: _Api, reseller_id: str) -> None:
    run = api.call(
        "POST",
        "/v1/bill-runs",
        {
            "targetDate": ORDER_DATE,
            "autoPost": True,
            "billRunFilters": [{"filterType": "Account", "accountId": reseller_id}],
        },
    )
    deadline = time.monotonic() + BILL_RUN_TIMEOUT_SECONDS
    while run["status"] not in BILL_RUN_DONE:
        if time.monotonic() > deadline:
            raise DemoError("the bill run did not finish: is the job worker running (serve)?")
        time.sleep(POLL_SECONDS)
        run = api.call("GET", f"/v1/bill-runs/{run['id']}")
    if run["status"] not in (BillRunStatus.COMPLETED, BillRunStatus.POSTED):
        raise DemoError(f"the bill run ended {run['status']}: {run.get('errorMessage')}")


def _load(api: _Api) -> LoadedReseller:
    product = api.object(
        "/v1/object/product",
        {
            "Name": "Clinic Cloud",
            "EffectiveStartDate": "2025-01-01",
            "EffectiveEndDate": "2036-01-01",
        },
    )
    seats, seat_charge = _plan(
        api,
        product,
        "Seats (monthly)",
        {
            "Name": "Seat fee",
            "ChargeModel": "Per Unit Pricing",
            "ProductRatePlanChargeTierData": {
                "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": SEAT_PRICE}]
            },
        },
    )
    support, _ = _plan(
        api,
        product,
        "Support (monthly)",
        {
            "Name": "Support fee",
            "ChargeModel": "Flat Fee Pricing",
            "ProductRatePlanChargeTierData": {
                "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": SUPPORT_PRICE}]
            },
        },
    )
    reseller = _account(api, "Demo Reseller Ltd")
    owners = [_account(api, name) for name, _ in OWNERS]
    subscriptions = [
        _order(
            api,
            owner,
            reseller,
            [
                {
                    "productRatePlanId": seats,
                    "chargeOverrides": [
                        {
                            "productRatePlanChargeId": seat_charge,
                            "pricing": {"recurringPerUnit": {"quantity": quantity}},
                        }
                    ],
                },
                {"productRatePlanId": support},
            ],
        )
        for owner, (_, quantity) in zip(owners, OWNERS, strict=True)
    ]
    reseller_id = str(api.call("GET", f"/v1/accounts/{reseller}")["basicInfo"]["id"])
    _bill_run(api, reseller_id)
    documents = api.call("GET", f"/v1/billing-documents?accountNumber={reseller}")["documents"]
    invoices = [d for d in documents if d["documentType"] == "Invoice"]
    payments = []
    remaining = Decimal(str(invoices[0]["balance"]))
    for amount in PAYMENTS:
        applied = min(amount, remaining)
        paid = api.call(
            "POST",
            "/v1/payments",
            {
                "accountNumber": reseller,
                "amount": str(applied),
                "currency": "USD",
                "type": "External",
                "effectiveDate": ORDER_DATE,
                "invoices": [{"invoiceId": invoices[0]["id"], "amount": str(applied)}],
            },
        )
        payments.append(str(paid["number"]))
        remaining -= applied
    api.call("POST", f"/v1/partnerbill/accounts/{reseller}/refresh-metrics")
    return LoadedReseller(
        reseller, owners, subscriptions, [str(i["documentNumber"]) for i in invoices], payments
    )


def load_demo(base_url: str, client_id: str, client_secret: str, saved: Path) -> LoadedReseller:
    """Load the sample reseller, or find the one loaded before (see the module docstring)."""
    api = _Api(base_url, client_id, client_secret)
    if saved.exists():
        before = LoadedReseller(**json.loads(saved.read_text()))
        found = api.http.get(f"/v1/accounts/{before.reseller}")
        if found.status_code == 200 and found.json().get("success") is True:
            before.already_loaded = True
            return before
    loaded = _load(api)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({k: v for k, v in asdict(loaded).items() if k != "already_loaded"}))
    return loaded
