"""`/v1/credit-memos` and `/v1/debit-memos`: create from an invoice or from charges; post,
unpost, cancel; read and list; apply, unapply and refund a credit memo; write off an invoice or
a debit memo."""

from typing import Annotated

from fastapi import Query, Request

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.memos import creation, service, views, write_offs
from partnerbill.memos import responses as answers
from partnerbill.memos.kinds import CREDIT, DEBIT, MemoKind
from partnerbill.memos.schemas import (
    CreateMemoFromChargesRequest,
    CreateMemoFromInvoiceRequest,
    UpdateMemoRequest,
)
from partnerbill.memos.views import MemoJson
from partnerbill.memos.write_offs import WriteOffRequest
from partnerbill.payments.responses import RefundAnswer
from partnerbill.payments.schemas import ApplyPaymentRequest, CreateRefundRequest
from partnerbill.payments.settlement import RefundJson

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Credit and debit memos"])


def _routes(kind: MemoKind, prefix: str, list_key: str) -> None:
    """The operations credit and debit memos share, under `prefix`."""

    @router.post(
        f"{prefix}/invoice/{{invoice_key}}",
        name=f"create_{list_key}_from_invoice",
        responses=ok(answers.MEMO[list_key]),
    )
    async def create_from_invoice(
        invoice_key: str, request: CreateMemoFromInvoiceRequest, tenant: CurrentTenant
    ) -> MemoJson:
        async with transaction() as conn:
            return await creation.create_from_invoice(conn, tenant, kind, invoice_key, request)

    @router.post(
        prefix, name=f"create_{list_key}_from_charges", responses=ok(answers.MEMO[list_key])
    )
    async def create_from_charges(
        request: CreateMemoFromChargesRequest, tenant: CurrentTenant
    ) -> MemoJson:
        async with transaction() as conn:
            return await creation.create_from_charges(conn, tenant, kind, request)

    @router.put(
        f"{prefix}/{{memo_key}}/post", name=f"post_{list_key}", responses=ok(answers.MEMO[list_key])
    )
    async def post_memo(memo_key: str, tenant: CurrentTenant) -> MemoJson:
        async with transaction() as conn:
            return await service.post_memo(conn, tenant, kind, memo_key)

    @router.put(
        f"{prefix}/{{memo_key}}/unpost",
        name=f"unpost_{list_key}",
        responses=ok(answers.MEMO[list_key]),
    )
    async def unpost_memo(memo_key: str, tenant: CurrentTenant) -> MemoJson:
        async with transaction() as conn:
            return await service.unpost_memo(conn, tenant, kind, memo_key)

    @router.put(
        f"{prefix}/{{memo_key}}/cancel",
        name=f"cancel_{list_key}",
        responses=ok(answers.MEMO[list_key]),
    )
    async def cancel_memo(memo_key: str, tenant: CurrentTenant) -> MemoJson:
        async with transaction() as conn:
            return await service.cancel_memo(conn, tenant, kind, memo_key)

    @router.get(prefix, name=f"list_{list_key}", responses=ok(answers.MEMO_LIST[list_key]))
    async def list_memos(
        tenant: CurrentTenant,
        http_request: Request,
        account_id: Annotated[str | None, Query(alias="accountId")] = None,
        account_number: Annotated[str | None, Query(alias="accountNumber")] = None,
        status: Annotated[str | None, Query()] = None,
        window: PageRequest = page_request(views.DEFAULT_PAGE_SIZE),
    ) -> dict[str, object]:
        async with transaction() as conn:
            rows, more = await views.list_memos(
                conn,
                tenant,
                kind,
                account_key=account_id or account_number,
                status=status,
                window=window,
            )
        return paged(list_key, rows, more, http_request, window)

    @router.get(
        f"{prefix}/{{memo_key}}", name=f"get_{list_key}", responses=ok(answers.MEMO[list_key])
    )
    async def get_memo(memo_key: str, tenant: CurrentTenant) -> MemoJson:
        async with transaction() as conn:
            return await views.get_memo(conn, tenant, kind, memo_key)

    @router.put(
        f"{prefix}/{{memo_key}}", name=f"update_{list_key}", responses=ok(answers.MEMO[list_key])
    )
    async def update_memo(
        memo_key: str, request: UpdateMemoRequest, tenant: CurrentTenant
    ) -> MemoJson:
        async with transaction() as conn:
            return await service.update_memo(conn, tenant, kind, memo_key, request)

    @router.get(
        f"{prefix}/{{memo_key}}/items",
        name=f"get_{list_key}_items",
        responses=ok(answers.MemoItems),
    )
    async def get_memo_items(
        memo_key: str,
        tenant: CurrentTenant,
        http_request: Request,
        window: PageRequest = page_request(views.DEFAULT_PAGE_SIZE),
    ) -> dict[str, object]:
        async with transaction() as conn:
            rows, more = await views.get_memo_items(conn, tenant, kind, memo_key, window)
        return paged("items", rows, more, http_request, window)

    @router.get(
        f"{prefix}/{{memo_key}}/items/{{item_id}}",
        name=f"get_{list_key}_item",
        responses=ok(answers.MemoItemAnswer),
    )
    async def get_memo_item(
        memo_key: str, item_id: str, tenant: CurrentTenant
    ) -> dict[str, object]:
        async with transaction() as conn:
            return await views.get_memo_item(conn, tenant, kind, memo_key, item_id)


_routes(CREDIT, "/v1/credit-memos", "creditmemos")
_routes(DEBIT, "/v1/debit-memos", "debitmemos")


@router.put("/v1/credit-memos/{memo_key}/apply", responses=ok(answers.CreditMemo))
async def apply_credit_memo(
    memo_key: str, request: ApplyPaymentRequest, tenant: CurrentTenant
) -> MemoJson:
    async with transaction() as conn:
        return await service.apply_credit_memo(conn, tenant, memo_key, request, 1)


@router.put("/v1/credit-memos/{memo_key}/unapply", responses=ok(answers.CreditMemo))
async def unapply_credit_memo(
    memo_key: str, request: ApplyPaymentRequest, tenant: CurrentTenant
) -> MemoJson:
    async with transaction() as conn:
        return await service.apply_credit_memo(conn, tenant, memo_key, request, -1)


@router.post("/v1/credit-memos/{memo_key}/refund", responses=ok(RefundAnswer))
async def refund_credit_memo(
    memo_key: str, request: CreateRefundRequest, tenant: CurrentTenant
) -> RefundJson:
    async with transaction() as conn:
        return await service.refund_credit_memo(conn, tenant, memo_key, request)


@router.put("/v1/invoices/{invoice_key}/write-off", responses=ok(answers.WrittenOff))
async def write_off_invoice(
    invoice_key: str, request: WriteOffRequest, tenant: CurrentTenant
) -> dict[str, object]:
    async with transaction() as conn:
        return await write_offs.write_off_invoice(conn, tenant, invoice_key, request)


# Zuora's path for this one has no hyphen in "debitmemos".
@router.put("/v1/debitmemos/{debit_memo_key}/write-off", responses=ok(answers.WrittenOff))
async def write_off_debit_memo(
    debit_memo_key: str, request: WriteOffRequest, tenant: CurrentTenant
) -> dict[str, object]:
    async with transaction() as conn:
        return await write_offs.write_off_debit_memo(conn, tenant, debit_memo_key, request)
