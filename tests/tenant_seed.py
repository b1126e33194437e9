"""One tenant holding one object of every kind the API has a key for, made through the API: the
real keys (ids and numbers) the fuzz test gives schemathesis and the isolation sweep calls with
from another tenant."""

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from partnerbill.core import db
from partnerbill.core.tenants import Tenant
from partnerbill.query.files import Compression, write_result_file
from tests.catalog_fixtures import order_body
from tests.helpers import ApiClient, invoice_body

ORDER_DATE = "2026-11-01"

# How a route's path key is obtained: the object kind it names, by `{param}`, or by
# `segment/{param}` where the segment before the key decides (the same name for other kinds).
PATH_KEY_KINDS = {
    "{account_key}": "account",
    "{invoice_key}": "invoice",
    "{subscription_key}": "subscription",
    "{order_number}": "order",
    "{job_id}": "async_job",
    "{bill_run_id}": "bill_run",
    "{payment_key}": "payment",
    "{refund_key}": "refund",
    "{product_key}": "product",
    "{product_rate_plan_key}": "product_rate_plan",
    "product/{id}": "product",
    "product-rate-plan/{id}": "product_rate_plan",
    "product-rate-plan-charge/{id}": "product_rate_plan_charge",
    "credit-memos/{memo_key}": "credit_memo",
    "debit-memos/{memo_key}": "debit_memo",
    "debitmemos/{debit_memo_key}": "debit_memo",
    "{file_id}": "result_file",
    "{contact_id}": "contact",
    "{payment_method_id}": "payment_method",
    "{version}": "subscription_version",
    "invoiceOwner/{account_number}": "account_number",
    "subscriptionOwner/{account_number}": "account_number",
    "subscription/{subscription_number}": "subscription_number",
    # A key under another: the parent's segment and key decide.
    "credit-memos/{memo_key}/items/{item_id}": "credit_memo_item",
    "debit-memos/{memo_key}/items/{item_id}": "debit_memo_item",
    "payments/{key}/parts/{part_id}": "payment_part",
    "credit-memos/{key}/parts/{part_id}": "credit_memo_part",
    "refunds/{key}/parts/{part_id}": "refund_part",
    # Object Query: /object-query/{objects}/{key}
    "accounts/{key}": "account",
    "contacts/{key}": "contact",
    "subscriptions/{key}": "subscription",
    "rate-plans/{key}": "rate_plan",
    "rate-plan-charges/{key}": "rate_plan_charge",
    "orders/{key}": "order",
    "order-actions/{key}": "order_action",
    "invoices/{key}": "invoice",
    "invoice-items/{key}": "invoice_item",
    "credit-memos/{key}": "credit_memo",
    "debit-memos/{key}": "debit_memo",
    "payments/{key}": "payment",
    "refunds/{key}": "refund",
    "payment-applications/{key}": "payment_application",
    "credit-memo-applications/{key}": "credit_memo_application",
    "products/{key}": "product",
    "product-rate-plans/{key}": "product_rate_plan",
    "product-rate-plan-charges/{key}": "product_rate_plan_charge",
    "billing-runs/{key}": "bill_run",
    "{query_job_id}": "data_query_job",
    "{batch_job_id}": "aqua_job",
    "{export_id}": "export",
}
# Objects no v1 route names by a key of their own: their ids are read back by Object Query.
OBJECT_QUERY_KINDS = {
    "contact": "contacts",
    "rate_plan": "rate-plans",
    "rate_plan_charge": "rate-plan-charges",
    "order_action": "order-actions",
    "payment_application": "payment-applications",
    "credit_memo_application": "credit-memo-applications",
}
# Body fields naming an object, and its kind.
BODY_KEY_KINDS = {
    "accountId": "account",
    "accountNumber": "account",
    "accountKey": "account",
    "destinationAccountKey": "account",
    "existingAccountNumber": "account",
    "invoiceOwnerAccountKey": "account",
    "invoiceOwnerAccountNumber": "account",
    "invoiceId": "invoice",
    "invoiceItemId": "invoice_item",
    "debitMemoId": "debit_memo",
    "subscriptionNumber": "subscription",
    "productRatePlanId": "product_rate_plan",
    "productRatePlanChargeId": "product_rate_plan_charge",
    "ProductId": "product",
    "ProductRatePlanId": "product_rate_plan",
}


def path_key_kind(path: str, param: str) -> str | None:
    """The object kind the `{param}` of a route path names, or None when the map has none."""
    segments = path.split("/")
    where = segments.index(f"{{{param}}}")
    for start in (where - 3, where - 1):
        kind = PATH_KEY_KINDS.get("/".join(segments[max(start, 0) : where + 1]))
        if kind is not None:
            return kind
    return PATH_KEY_KINDS.get(f"{{{param}}}")


@dataclass
class SeededKeys:
    """Object kind → its keys in the seeded tenant (id first, then number where it has one)."""

    keys: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, *keys: object) -> None:
        self.keys.setdefault(kind, []).extend(str(key) for key in keys if key)

    def of(self, kind: str) -> list[str]:
        return self.keys[kind]

    def all(self) -> set[str]:
        return {key for keys in self.keys.values() for key in keys}


async def _object(api: ApiClient, kind: str, body: dict[str, Any]) -> str:
    status, payload = await api.call("POST", f"/v1/object/{kind}", body, expect=None)
    assert status == 200 and payload.get("Success") is True, (status, payload)
    return str(payload["Id"])


async def seed_tenant(api: ApiClient) -> SeededKeys:
    """An account with a product, a subscription (by an order), a posted invoice with its
    payment and refund, a credit memo applied to it and a debit memo, a pending bill run, an
    async order job, a result file, and Data Query, AQuA and export jobs."""
    seeded = SeededKeys()
    account = await api.create_account(billCycleDay=1)
    seeded.add("account", account["accountId"], account["accountNumber"])
    seeded.add("account_number", account["accountNumber"])
    method = await api.ok(
        "POST", "/v1/payment-methods", {"type": "Check", "accountKey": account["accountId"]}
    )
    seeded.add("payment_method", method["id"])

    product = await _object(
        api,
        "product",
        {"Name": "Seat", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2040-01-01"},
    )
    plan = await _object(api, "product-rate-plan", {"Name": "Monthly", "ProductId": product})
    charge = await _object(
        api,
        "product-rate-plan-charge",
        {
            "ProductRatePlanId": plan,
            "Name": "Seat fee",
            "ChargeType": "Recurring",
            "ChargeModel": "Flat Fee Pricing",
            "BillCycleType": "DefaultFromCustomer",
            "TriggerEvent": "ContractEffective",
            "BillingPeriod": "Month",
            "BillingTiming": "In Advance",
            "ProductRatePlanChargeTierData": {
                "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": "10"}]
            },
        },
    )
    seeded.add("product", product)
    seeded.add("product_rate_plan", plan)
    seeded.add("product_rate_plan_charge", charge)

    order = await api.ok(
        "POST", "/v1/orders?returnIds=true", order_body(account["accountNumber"], plan, ORDER_DATE)
    )
    seeded.add("order", order["orderNumber"], order.get("orderId"))
    number = order["subscriptionNumbers"][0]
    subscription = await api.ok("GET", f"/v1/subscriptions/{number}")
    seeded.add("subscription", subscription["id"], number)
    seeded.add("subscription_number", number)
    seeded.add("subscription_version", str(subscription["version"]))

    invoice = await api.ok(
        "POST", "/v1/invoices", invoice_body(account["accountNumber"], "100.00", "50.00")
    )
    seeded.add("invoice", invoice["id"], invoice["invoiceNumber"])
    items = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items")
    seeded.add("invoice_item", *(item["id"] for item in items["invoiceItems"]))

    credit = await api.ok(
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        {"items": [{"invoiceItemId": items["invoiceItems"][0]["id"], "amount": "5.00"}]},
    )
    seeded.add("credit_memo", credit["id"], credit["number"])
    await api.ok("PUT", f"/v1/credit-memos/{credit['id']}/post")
    await api.ok(
        "PUT",
        f"/v1/credit-memos/{credit['id']}/apply",
        {
            "effectiveDate": "2026-11-05",
            "invoices": [{"invoiceId": invoice["id"], "amount": "2.00"}],
        },
    )
    debit = await api.ok(
        "POST",
        f"/v1/debit-memos/invoice/{invoice['id']}",
        {"items": [{"amount": "7.00", "skuName": "Late fee"}], "autoPost": True},
    )
    seeded.add("debit_memo", debit["id"], debit["number"])
    for kind, memo in (("credit_memo", credit), ("debit_memo", debit)):
        memo_items = await api.ok("GET", f"/v1/{kind.replace('_', '-')}s/{memo['id']}/items")
        seeded.add(f"{kind}_item", *(item["id"] for item in memo_items["items"]))
    credit_parts = await api.ok("GET", f"/v1/credit-memos/{credit['id']}/parts")
    seeded.add("credit_memo_part", *(part["id"] for part in credit_parts["parts"]))

    payment = await api.ok(
        "POST",
        "/v1/payments",
        {
            "accountId": account["accountId"],
            "amount": "60.00",
            "currency": "USD",
            "type": "External",
            "effectiveDate": "2026-11-05",
            "invoices": [{"invoiceId": invoice["id"], "amount": "30.00"}],
        },
    )
    seeded.add("payment", payment["id"], payment["number"])
    refund = await api.ok(
        "POST",
        f"/v1/payments/{payment['id']}/refunds",
        {"type": "External", "totalAmount": "10.00", "refundDate": "2026-11-06"},
    )
    seeded.add("refund", refund["id"], refund["number"])
    payment_parts = await api.ok("GET", f"/v1/payments/{payment['id']}/parts")
    seeded.add("payment_part", *(part["id"] for part in payment_parts["parts"]))
    refund_parts = await api.ok("GET", f"/v1/refunds/{refund['id']}/parts")
    seeded.add("refund_part", *(part["id"] for part in refund_parts["parts"]))

    bill_run = await api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "targetDate": ORDER_DATE,
            "billRunFilters": [{"filterType": "Account", "accountId": account["accountId"]}],
        },
    )
    seeded.add("bill_run", bill_run["id"], bill_run["billRunNumber"])

    _, job = await api.call(
        "POST",
        "/v1/async/orders",
        order_body(account["accountNumber"], plan, ORDER_DATE),
        expect=202,
    )
    seeded.add("async_job", job["jobId"])
    seeded.add("result_file", await _result_file(api.tenant))

    for kind, path in OBJECT_QUERY_KINDS.items():
        _, page = await api.call("GET", f"/object-query/{path}?fields[]=id")
        assert page["data"], (path, page)
        seeded.add(kind, *(row["id"] for row in page["data"]))
    data_query = await api.ok(
        "POST", "/query/jobs", {"query": "select 1", "outputFormat": "JSON", "compression": "NONE"}
    )
    seeded.add("data_query_job", data_query["data"]["id"])
    _, aqua_job = await api.call(
        "POST",
        "/v1/batch-query/",
        {"queries": [{"name": "accounts", "query": "select Id from Account", "type": "zoql"}]},
    )
    seeded.add("aqua_job", aqua_job["id"])
    _, export = await api.call(
        "POST", "/v1/object/export", {"Format": "csv", "Query": "select Id from Account"}
    )
    seeded.add("export", export["Id"])
    return seeded


async def _result_file(tenant: Tenant) -> str:
    """A stored result file. Only query jobs write them, and the seed runs no worker: the real
    writer is run here, on a connection of its own (callers' engines belong to other loops)."""

    async def content() -> AsyncIterator[bytes]:
        yield b"Id,Name\n1,Seed\n"

    engine = db.create_engine(os.environ["DATABASE_URL"])
    try:
        async with engine.begin() as conn:
            with db.bound_to_request(conn):
                stored = await write_result_file(
                    tenant,
                    "seed.csv",
                    "text/csv",
                    content(),
                    compression=Compression.NONE,
                    expires_in=timedelta(days=1),
                )
    finally:
        await engine.dispose()
    return stored.id
