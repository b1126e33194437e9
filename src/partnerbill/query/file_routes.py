"""`GET /v1/files/{file_id}` and its older spelling `GET /v1/file/{file_id}` (AQuA clients such
as tap-zuora use it): a result file's bytes, streamed chunk by chunk from the database.

- Content-Type is the file's media type, Content-Disposition names it (an attachment),
  Content-Length is its size.
- An id that names no complete, unexpired file of the caller's tenant answers 404 in the v1
  envelope (category 40), like any other unknown key.
- A failure before the first byte (the database cannot serve) answers in the files API's own
  5xx shape, `{"reasons": [{"code": "SystemError", "message": ...}]}`. A failure once streaming
  has begun (the file purged halfway, the database lost) can only cut the response short: the
  client sees fewer bytes than Content-Length.
"""

from typing import Any
from urllib.parse import quote

import structlog
from fastapi.responses import Response, StreamingResponse

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.errors import (
    Category,
    Resource,
    ZuoraError,
    count_error_answer,
    database_failure,
    not_found,
)
from partnerbill.core.json import ZuoraJSONResponse
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tenants import Tenant
from partnerbill.query.files import find_file, read_file

log = structlog.get_logger(__name__)
router = FeatureRouter(tags=["Files"])

# The media types result files are written in; any other is still served as stored. JSON Lines
# is `application/x-ndjson`: a body sent as `application/json` is one JSON document.
FILE_MEDIA_TYPES = (
    "text/csv",
    "application/json",
    "application/x-ndjson",
    "application/gzip",
    "application/zip",
    "application/octet-stream",
)
_FILE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes, as stored.",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}} for media in FILE_MEDIA_TYPES
        },
    },
}


def _content_disposition(name: str) -> str:
    quoted = quote(name)
    if quoted == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename*=utf-8''{quoted}"


def _system_error(status: int, message: str) -> Response:
    return ZuoraJSONResponse(
        {"reasons": [{"code": "SystemError", "message": message}]}, status_code=status
    )


async def _serve(tenant: Tenant, file_id: str) -> Response:
    try:
        file = await find_file(tenant, file_id)
    except Exception as error:
        failure = database_failure(error)
        if failure is None:
            log.exception("result_file_unreadable", file_id=file_id)
            failure = ZuoraError(Resource.GENERIC, Category.INTERNAL, "internal server error")
        count_error_answer(failure)
        return _system_error(failure.http_status, failure.reasons[0].message)
    if file is None:
        raise not_found(Resource.GENERIC, "file", file_id)
    return StreamingResponse(
        read_file(tenant, file),
        media_type=file.media_type,
        headers={
            "Content-Disposition": _content_disposition(file.name),
            "Content-Length": str(file.size_bytes),
        },
    )


@router.get("/v1/files/{file_id}", responses=_FILE_ANSWER, response_class=Response)
async def get_file(file_id: str, tenant: CurrentTenant) -> Response:
    """A result file of a Data Query, AQuA or export job."""
    return await _serve(tenant, file_id)


@router.get("/v1/file/{file_id}", responses=_FILE_ANSWER, response_class=Response)
async def get_file_legacy(file_id: str, tenant: CurrentTenant) -> Response:
    """The same file at the older path AQuA clients use."""
    return await _serve(tenant, file_id)
