"""v1 list paging: `page` (1 to 1,000,000) and `pageSize` (1 to 1,000; above 40 it is taken as
40), and `nextPage` as the full URL of the next page when there is one. Every list route takes
`Page` and `PageSize`, so a page beyond the bound is a 400 naming it, never an offset that
overflows."""

from typing import Annotated, Any

from fastapi import Query, Request

MAX_PAGE_SIZE = 40
MAX_PAGE = 1_000_000
MAX_REQUESTED_PAGE_SIZE = 1_000

Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=MAX_REQUESTED_PAGE_SIZE)]


def paged(
    key: str, rows: list[dict[str, Any]], more: bool, request: Request, page: int, page_size: int
) -> dict[str, Any]:
    """A list response: the rows under `key`, and `nextPage` when `more` rows follow."""
    response: dict[str, Any] = {"success": True, key: rows}
    if more:
        response["nextPage"] = str(
            request.url.include_query_params(page=page + 1, pageSize=page_size)
        )
    return response
