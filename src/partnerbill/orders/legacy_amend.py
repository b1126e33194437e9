"""Legacy amend: `PUT /v1/subscriptions/{key}` as one order.

Zuora's UpdateSubscriptionRequest becomes one order on the subscription, so it follows every
rule of the Orders path (versions, segments, metrics, locks): each `add[]` entry is an AddProduct
action, each `remove[]` a RemoveProduct, each `update[]` an UpdateProduct (a charge is named by
its `ratePlanChargeId`, as the subscription's GET shows it), and the term fields together one
TermsAndConditions action (`currentTerm` sets the current term's length, `termType` switches
TERMED / EVERGREEN, `termStartDate` moves its start). The order date is the earliest contract
effective date of the actions (today for terms alone). `notes` replaces the subscription's notes.

`runBilling` / `invoice` bill the subscription through `targetDate` / `invoiceTargetDate`
(default: the latest effective date). `preview: true` runs the same order inside a savepoint that
is rolled back, billed as a draft, and answers the invoice it would create and the deltas;
nothing stays. `change[]` (in-place plan replacement) and `collect` are refused naming the field.

An error found while the order runs names the legacy field (`add[0].productRatePlanId`), not the
order action it became.
"""

import re
from datetime import date
from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.clock import today
from partnerbill.core.errors import Resource, ZuoraError, invalid_value, missing_field, not_found
from partnerbill.core.tenants import Tenant, get_settings
from partnerbill.orders.preview import PreviewInvoiceItem, preview_invoice
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.orders.service import create_order
from partnerbill.subscriptions.schemas import (
    LegacyActionDates,
    LegacyRatePlanKey,
    LegacyUpdateRatePlan,
    LegacyUpdateRequest,
)
from partnerbill.subscriptions.views import SubscriptionJson, subscription_json
from partnerbill.tables.subscriptions import rate_plan_charges, subscriptions

SUBSCRIPTION = Resource.SUBSCRIPTION
# An order action's field path in an error: its index, its action key (`addProduct`), the rest.
_ACTION_FIELD = re.compile(r"'subscriptions\[0\]\.orderActions\[(\d+)\](?:\.[A-Za-z]+)?([^']*)'")


def trigger_dates(
    contract_effective: date | None,
    service_activation: date | None,
    customer_acceptance: date | None,
) -> list[dict[str, Any]]:
    """An order action's `triggerDates` from a legacy request's three dates (those given)."""
    return [
        {"name": name, "triggerDate": day}
        for name, day in (
            ("ContractEffective", contract_effective),
            ("ServiceActivation", service_activation),
            ("CustomerAcceptance", customer_acceptance),
        )
        if day is not None
    ]


def _trigger_dates(entry: LegacyActionDates) -> list[dict[str, Any]]:
    return trigger_dates(
        entry.contract_effective_date, entry.service_activation_date, entry.customer_acceptance_date
    )


def _plan_key(entry: LegacyRatePlanKey) -> dict[str, Any]:
    return {
        key: value
        for key, value in (
            ("ratePlanId", entry.rate_plan_id),
            ("subscriptionRatePlanNumber", entry.subscription_rate_plan_number),
        )
        if value is not None
    }


async def _charge_numbers(
    conn: AsyncConnection, tenant: Tenant, subscription_id: str, request: LegacyUpdateRequest
) -> dict[str, str]:
    """Charge id (any segment's, as the GET shows them) → its charge number."""
    ids = {c.rate_plan_charge_id for u in request.update for c in u.charge_update_details}
    if not ids:
        return {}
    rows = await conn.execute(
        select(rate_plan_charges.c.id, rate_plan_charges.c.charge_number).where(
            rate_plan_charges.c.tenant_id == tenant.id,
            rate_plan_charges.c.subscription_id == subscription_id,
            rate_plan_charges.c.id.in_(sorted(ids)),
        )
    )
    return {row.id: row.charge_number for row in rows}


def _update_action(
    entry: LegacyUpdateRatePlan, index: int, numbers: dict[str, str]
) -> dict[str, Any]:
    charge_updates = []
    for c_index, change in enumerate(entry.charge_update_details):
        number = numbers.get(change.rate_plan_charge_id)
        if number is None:
            raise invalid_value(
                SUBSCRIPTION,
                f"update[{index}].chargeUpdateDetails[{c_index}].ratePlanChargeId",
                f"'{change.rate_plan_charge_id}' is not a charge of this subscription.",
            )
        price = change.model_dump(
            by_alias=True, exclude_none=True, include={"quantity", "tiers"}
        ) | ({"listPrice": change.price} if change.price is not None else {})
        update: dict[str, Any] = {"chargeNumber": number}
        if price:
            # The pricing key only carries the values: the charge keeps its own charge model.
            update["pricing"] = {"recurringPerUnit": price}
        if change.description is not None:
            update["description"] = change.description
        charge_updates.append(update)
    return {
        "type": "UpdateProduct",
        "triggerDates": _trigger_dates(entry),
        "updateProduct": {
            **_plan_key(entry),
            "chargeUpdates": charge_updates,
            "specificUpdateDate": entry.specific_update_date,
        },
    }


def _given_or_kept(given: object, current: SubscriptionJson, field: str) -> object:
    """A term's part as the request gives it, else as the subscription has it; a subscription
    without one (an evergreen subscription has no renewal term) needs the request to give it."""
    value = given if given is not None else current.get(field)
    if value is None:
        raise missing_field(SUBSCRIPTION, field)
    return value


def _terms_action(request: LegacyUpdateRequest, current: SubscriptionJson) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "autoRenew": request.auto_renew,
        "renewalSetting": request.renewal_setting,
        "invoiceSeparately": request.invoice_separately,
    }
    if request.renewal_term is not None or request.renewal_term_period_type is not None:
        terms["renewalTerms"] = [
            {
                "period": _given_or_kept(request.renewal_term, current, "renewalTerm"),
                "periodType": _given_or_kept(
                    request.renewal_term_period_type, current, "renewalTermPeriodType"
                ),
            }
        ]
    if any(
        value is not None
        for value in (
            request.current_term,
            request.current_term_period_type,
            request.term_type,
            request.term_start_date,
        )
    ):
        terms["lastTerm"] = {
            "termType": request.term_type or current["termType"],
            "period": _given_or_kept(request.current_term, current, "currentTerm"),
            "periodType": _given_or_kept(
                request.current_term_period_type, current, "currentTermPeriodType"
            ),
            "startDate": request.term_start_date,
        }
    return {"type": "TermsAndConditions", "termsAndConditions": terms}


def _legacy_paths(error: ZuoraError, paths: list[str]) -> ZuoraError:
    """Rename the order's field paths in the error's reasons to the legacy request's: an
    `add[i]` / `remove[i]` / `update[i]` entry keeps the rest of the path; the term fields'
    action is named by the field that sets the term (`currentTerm`), notes by `notes`."""

    def legacy(found: re.Match[str]) -> str:
        path = paths[int(found.group(1))]
        return f"'{path}{found.group(2)}'" if path.endswith("]") else f"'{path}'"

    for reason in error.reasons:
        reason.message = _ACTION_FIELD.sub(legacy, reason.message)
    return error


async def _order_body(
    conn: AsyncConnection,
    tenant: Tenant,
    subscription_id: str,
    current: SubscriptionJson,
    request: LegacyUpdateRequest,
) -> tuple[dict[str, Any], list[str], date]:
    """The order (as a CreateOrderRequest body), each action's legacy path, and the latest
    effective date."""
    numbers = await _charge_numbers(conn, tenant, subscription_id, request)
    actions: list[dict[str, Any]] = []
    paths: list[str] = []
    for index, added in enumerate(request.add):
        plan = added.model_dump(
            by_alias=True, exclude_none=True, exclude=set(LegacyActionDates.model_fields)
        )
        actions.append(
            {"type": "AddProduct", "triggerDates": _trigger_dates(added), "addProduct": plan}
        )
        paths.append(f"add[{index}]")
    for index, removed in enumerate(request.remove):
        actions.append(
            {
                "type": "RemoveProduct",
                "triggerDates": _trigger_dates(removed),
                "removeProduct": _plan_key(removed),
            }
        )
        paths.append(f"remove[{index}]")
    for index, updated in enumerate(request.update):
        actions.append(_update_action(updated, index, numbers))
        paths.append(f"update[{index}]")
    if request.changes_terms():
        actions.append(_terms_action(request, current))
        paths.append("currentTerm")
    effective = [
        e.contract_effective_date for e in (*request.add, *request.remove, *request.update)
    ]
    order_date = min(effective, default=today())
    entry: dict[str, Any] = {"subscriptionNumber": current["subscriptionNumber"]}
    if not actions and request.notes is None:
        raise invalid_value(
            SUBSCRIPTION, "add", "give at least one change (add, remove, update, terms or notes)."
        )
    if not actions:
        # Notes alone: an empty TermsAndConditions carries them as the order's one action.
        actions.append({"type": "TermsAndConditions", "termsAndConditions": {}})
        paths.append("notes")
    entry["orderActions"] = actions
    if request.notes is not None:
        entry["notes"] = request.notes
    latest = max(effective, default=order_date)
    target = request.target_date or request.invoice_target_date or latest
    body = {
        "orderDate": order_date,
        "existingAccountNumber": current["accountNumber"],
        "subscriptions": [entry],
        "processingOptions": {
            "runBilling": request.run_billing or request.invoice or request.preview,
            "billingOptions": {
                "targetDate": target,
                "documentDate": request.document_date,
                "generateDraftInvoice": request.preview,
            },
        },
    }
    return body, paths, target


async def _current(conn: AsyncConnection, tenant: Tenant, key: str) -> tuple[str, SubscriptionJson]:
    """The subscription's own id and its latest version, by its number or a version's id."""
    found = (
        await conn.execute(
            select(subscriptions.c.id, subscriptions.c.subscription_number).where(
                subscriptions.c.tenant_id == tenant.id,
                (subscriptions.c.version_id == key) | (subscriptions.c.subscription_number == key),
            )
        )
    ).first()
    if found is None:
        raise not_found(SUBSCRIPTION, "subscription", key)
    return found.id, await subscription_json(conn, tenant, found.subscription_number)


def _delta(
    after: SubscriptionJson,
    before: SubscriptionJson,
    name: Literal["contractedMrr", "totalContractedValue"],
) -> Decimal:
    return Decimal(after[name]) - Decimal(before[name])


class UpdateSubscriptionResponse(TypedDict):
    """The amendment's ids, or its preview's invoice (what it would bill)."""

    success: bool
    totalDeltaMrr: Decimal
    totalDeltaTcv: Decimal
    invoiceTargetDate: NotRequired[date]
    amount: NotRequired[Decimal]
    amountWithoutTax: NotRequired[Decimal]
    taxAmount: NotRequired[Decimal]
    invoiceItems: NotRequired[list[PreviewInvoiceItem]]
    subscriptionId: NotRequired[str]
    orderNumbers: NotRequired[list[str]]
    invoiceId: NotRequired[str]


async def update_subscription(
    conn: AsyncConnection, tenant: Tenant, key: str, request: LegacyUpdateRequest
) -> UpdateSubscriptionResponse:
    """The UpdateSubscriptionResponse of the amendment (or of its preview)."""
    subscription_id, before = await _current(conn, tenant, key)
    body, paths, target = await _order_body(conn, tenant, subscription_id, before, request)
    limit = (await get_settings(conn, tenant)).order_sync_limit
    savepoint = await conn.begin_nested() if request.preview else None
    try:
        order = await create_order(
            conn, tenant, CreateOrderRequest.model_validate(body), limit=limit, return_ids=True
        )
        after = await subscription_json(conn, tenant, before["subscriptionNumber"])
        invoices = (
            [await preview_invoice(conn, tenant, i, target) for i in order["invoiceIds"]]
            if request.preview
            else []
        )
    except ZuoraError as error:
        raise _legacy_paths(error, paths) from None
    finally:
        if savepoint is not None:
            await savepoint.rollback()
    response: UpdateSubscriptionResponse = {
        "success": True,
        "totalDeltaMrr": _delta(after, before, "contractedMrr"),
        "totalDeltaTcv": _delta(after, before, "totalContractedValue"),
    }
    if request.preview:
        invoice = invoices[0] if invoices else None
        response |= {
            "invoiceTargetDate": target,
            "amount": invoice["amount"] if invoice else Decimal(0),
            "amountWithoutTax": invoice["amountWithoutTax"] if invoice else Decimal(0),
            "taxAmount": Decimal(0),
            "invoiceItems": invoice["invoiceItems"] if invoice else [],
        }
        return response
    response |= {"subscriptionId": after["id"], "orderNumbers": [order["orderNumber"]]}
    if order["invoiceIds"]:
        response["invoiceId"] = order["invoiceIds"][0]
    return response
