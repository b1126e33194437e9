"""Application parts of payments, credit memos, invoices and debit memos (see `parts`).

`/v1/payments/{key}/parts` and `/v1/credit-memos/{key}/parts` list what the source has on
each target; `/v1/invoices/{key}/application-parts` and
`/v1/debit-memos/{key}/application-parts` list what each source has on the target;
`/v1/refunds/{key}/parts` names what a refund refunds."""

from fastapi import Request

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.errors import Resource, not_found
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import Documented, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.payments import parts
from partnerbill.payments.responses import (
    PaymentPartAnswer,
    RefundPartAnswer,
    RefundParts,
    SourcePartAnswer,
    SourceParts,
    TargetParts,
)

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Application parts"])


def _source_routes(
    kind: str, prefix: str, resource: Resource, name: str, answer: type[Documented]
) -> None:
    """The parts of a source; one part answers inside `paymentPart` for a payment (as the
    SDK's `GetPaymentPartResponse` reads it) and at the top level for a credit memo."""

    @router.get(f"{prefix}/{{key}}/parts", name=f"get_{name}_parts", responses=ok(SourceParts))
    async def get_source_parts(
        key: str,
        tenant: CurrentTenant,
        http_request: Request,
        window: PageRequest = page_request(20),
    ) -> dict[str, object]:
        async with transaction() as conn:
            source = await parts.document_id(conn, tenant, kind, key)
            rows, more = await parts.parts(
                conn, tenant, side="source", document=source, window=window
            )
        found = [parts.source_part_json(row) for row in rows]
        return paged("parts", found, more, http_request, window)

    @router.get(
        f"{prefix}/{{key}}/parts/{{part_id}}",
        name=f"get_{name}_part",
        responses=ok(answer),
    )
    async def get_source_part(key: str, part_id: str, tenant: CurrentTenant) -> dict[str, object]:
        async with transaction() as conn:
            source = await parts.document_id(conn, tenant, kind, key)
            rows, _ = await parts.parts(
                conn, tenant, side="source", document=source, part_id=part_id
            )
        if not rows:
            raise not_found(resource, "part", part_id)
        part = parts.source_part_json(rows[0])
        if kind == "Payment":
            return {"success": True, "paymentPart": part}
        return {"success": True, **part}


def _target_route(kind: str, prefix: str, name: str) -> None:
    @router.get(
        f"{prefix}/{{key}}/application-parts",
        name=f"get_{name}_application_parts",
        responses=ok(TargetParts),
    )
    async def get_application_parts(
        key: str,
        tenant: CurrentTenant,
        http_request: Request,
        window: PageRequest = page_request(20),
    ) -> dict[str, object]:
        async with transaction() as conn:
            target = await parts.document_id(conn, tenant, kind, key)
            rows, more = await parts.parts(
                conn, tenant, side="target", document=target, window=window
            )
        found = [parts.target_part_json(row) for row in rows]
        return paged("applicationParts", found, more, http_request, window)


_source_routes("Payment", "/v1/payments", Resource.PAYMENT, "payment", PaymentPartAnswer)
_source_routes(
    "CreditMemo", "/v1/credit-memos", Resource.CREDIT_MEMO, "credit_memo", SourcePartAnswer
)
_target_route("Invoice", "/v1/invoices", "invoice")
_target_route("DebitMemo", "/v1/debit-memos", "debit_memo")


@router.get("/v1/refunds/{key}/parts", responses=ok(RefundParts))
async def get_refund_parts(key: str, tenant: CurrentTenant) -> dict[str, object]:
    """A refund has one part: the payment or credit memo it refunds, under the refund's id."""
    async with transaction() as conn:
        refund = await parts.refund(conn, tenant, key)
    return {"success": True, "parts": [parts.refund_part_json(refund)]}


@router.get("/v1/refunds/{key}/parts/{part_id}", responses=ok(RefundPartAnswer))
async def get_refund_part(key: str, part_id: str, tenant: CurrentTenant) -> dict[str, object]:
    async with transaction() as conn:
        refund = await parts.refund(conn, tenant, key)
    if refund["id"] != part_id:
        raise not_found(Resource.PAYMENT, "part", part_id)
    return {"success": True, **parts.refund_part_json(refund)}
