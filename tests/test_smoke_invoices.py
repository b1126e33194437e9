from decimal import Decimal

from tests.helpers import ApiClient, invoice_body


async def test_partner_invoice_is_deferred_until_refresh(api: ApiClient) -> None:
    account = await api.create_account(partner=True)
    number = account["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number, "10.10", "0.1"))
    assert invoice["amount"] == Decimal("10.20")
    assert (await api.metrics(number))["totalInvoiceBalance"] == 0
    await api.refresh(number)
    metrics = await api.metrics(number)
    assert metrics["totalInvoiceBalance"] == Decimal("10.20")
    assert metrics["balance"] == Decimal("10.20")
