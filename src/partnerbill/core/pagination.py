"""v1 list paging: `page` (from 1) and `pageSize` (at most 40, larger is taken as 40), and
`nextPage` as the full URL of the next page when there is one."""

from typing import Any

from fastapi import Request

MAX_PAGE_SIZE = 40


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
