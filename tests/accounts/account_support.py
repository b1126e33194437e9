"""Accounts over the v1 API as the account tests write and read them: a full account body with
contacts, the nine metric fields, error categories, an account and its summary."""

import re
from typing import Any

from tests.helpers import ApiClient

ID = re.compile(r"^[0-9a-f]{32}$")
V1_DATETIME = "%Y-%m-%d %H:%M:%S"
METRIC_FIELDS = {
    "balance",
    "currency",
    "contractedMrr",
    "creditBalance",
    "reservedPaymentAmount",
    "totalDebitMemoBalance",
    "totalInvoiceBalance",
    "unappliedCreditMemoAmount",
    "unappliedPaymentAmount",
}

BILL_TO = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "address1": "1 Navy Way",
    "address2": "Suite 7",
    "city": "Arlington",
    "state": "VA",
    "zipCode": "22202",
    "country": "United States",
    "workEmail": "grace@example.com",
    "workPhone": "+1 555 0100",
}
SOLD_TO = {
    "firstName": "Alan",
    "lastName": "Turing",
    "address1": "Bletchley Park",
    "city": "Milton Keynes",
    "zipCode": "MK3 6EB",
    "country": "United Kingdom",
    "workEmail": "alan@example.com",
}


def full_account_body(**fields: Any) -> dict[str, Any]:
    """Everything a real integration sends when it creates a reseller's customer."""
    return {
        "name": "Acme Reseller GmbH",
        "accountNumber": "ACME-0001",
        "currency": "EUR",
        "billCycleDay": 15,
        "paymentTerm": "Net 30",
        "autoPay": False,
        "batch": "Batch7",
        "notes": "Migrated from the legacy system",
        "crmId": "0015g00000XyZabAAB",
        "salesRep": "Jane Seller",
        "invoiceDeliveryPrefsEmail": True,
        "partnerAccount": True,
        "region__c": "EMEA",
        "billToContact": dict(BILL_TO),
        "soldToContact": dict(SOLD_TO),
        **fields,
    }


def code_category(payload: dict[str, Any]) -> int:
    return int(payload["reasons"][0]["code"]) % 100


async def get_account(api: ApiClient, key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/accounts/{key}")


async def summary(api: ApiClient, key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/accounts/{key}/summary")
