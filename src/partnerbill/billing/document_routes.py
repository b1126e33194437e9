"""`GET /v1/billing-documents`: an account's invoices, credit memos and debit memos."""

from typing import Annotated, Any

from fastapi import Query, Request

from partnerbill.billing import responses as answers
from partnerbill.billing.documents import DEFAULT_PAGE_SIZE, list_billing_documents
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import Page, PageSize, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.schemas import Date

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Billing Documents"])


@router.get("/v1/billing-documents", responses=ok(answers.BillingDocuments))
async def get_billing_documents(
    tenant: CurrentTenant,
    http_request: Request,
    account_id: Annotated[str | None, Query(alias="accountId", max_length=32)] = None,
    account_number: Annotated[str | None, Query(alias="accountNumber", max_length=70)] = None,
    document_date: Annotated[Date | None, Query(alias="documentDate")] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    sort: Annotated[str | None, Query(max_length=64)] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    async with transaction() as conn:
        documents, size, more = await list_billing_documents(
            conn,
            tenant,
            account_id=account_id,
            account_number=account_number,
            document_date=document_date,
            status=status,
            sort=sort,
            page=page,
            page_size=page_size,
        )
    return paged("documents", documents, more, http_request, page, size)
