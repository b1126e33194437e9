"""v1 list paging: `page` (1 to 1,000,000) and `pageSize` (1 to 1,000; above 40 it is taken as
40), and `nextPage` as the full URL of the next page when there is one. Every list route takes
one `PageRequest` through `page_request`, so a page beyond the bound is a 400 naming it, never an
offset that overflows."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request

MAX_PAGE_SIZE = 40
MAX_PAGE = 1_000_000
MAX_REQUESTED_PAGE_SIZE = 1_000

Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=MAX_REQUESTED_PAGE_SIZE)]


@dataclass(frozen=True)
class PageRequest:
    """One page asked for: `page` and `pageSize` as asked, and the window of rows it serves."""

    page: int
    page_size: int

    @property
    def limit(self) -> int:
        """The rows the page holds: sizes above 40 are served as 40, as Zuora does."""
        return min(self.page_size, MAX_PAGE_SIZE)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def page_request(default_size: int) -> Any:
    """The `page` and `pageSize` query parameters of a list route as one `PageRequest`,
    `pageSize` defaulting to the resource's `default_size`."""

    def dependency(page: Page = 1, page_size: PageSize = default_size) -> PageRequest:
        return PageRequest(page, page_size)

    return Depends(dependency)


def paged(
    key: str,
    rows: Sequence[Mapping[str, object]],
    more: bool,
    request: Request,
    window: PageRequest,
    *,
    asked_size: bool = False,
) -> dict[str, Any]:
    """A list response: the rows under `key`, and `nextPage` when `more` rows follow. Its
    `pageSize` is the size served, or the size asked with `asked_size` (the catalog's lists)."""
    response: dict[str, Any] = {"success": True, key: rows}
    if more:
        size = window.page_size if asked_size else window.limit
        response["nextPage"] = str(
            request.url.include_query_params(page=window.page + 1, pageSize=size)
        )
    return response
