"""`GET /v1/billing-documents`: an account's invoices, credit memos and debit memos."""

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request

from partnerbill.billing import responses as answers
from partnerbill.billing.documents import DEFAULT_PAGE_SIZE, list_billing_documents
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.schemas import Date

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Billing Documents"])


@dataclass(frozen=True)
class DocumentFilter:
    account_id: str | None
    account_number: str | None
    document_date: date | None
    status: str | None
    sort: str | None


def _document_filter(
    account_id: Annotated[str | None, Query(alias="accountId", max_length=32)] = None,
    account_number: Annotated[str | None, Query(alias="accountNumber", max_length=70)] = None,
    document_date: Annotated[Date | None, Query(alias="documentDate")] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    sort: Annotated[str | None, Query(max_length=64)] = None,
) -> DocumentFilter:
    return DocumentFilter(account_id, account_number, document_date, status, sort)


@router.get("/v1/billing-documents", responses=ok(answers.BillingDocuments))
async def get_billing_documents(
    tenant: CurrentTenant,
    http_request: Request,
    # A dependency, as the page is: the filters are validated (and named in the reasons of a
    # 400) before the page, as parameters of the route would not be.
    document_filter: DocumentFilter = Depends(_document_filter),
    window: PageRequest = page_request(DEFAULT_PAGE_SIZE),
) -> dict[str, object]:
    async with transaction() as conn:
        documents, more = await list_billing_documents(
            conn,
            tenant,
            account_id=document_filter.account_id,
            account_number=document_filter.account_number,
            document_date=document_filter.document_date,
            status=document_filter.status,
            sort=document_filter.sort,
            window=window,
        )
    return paged("documents", documents, more, http_request, window)
