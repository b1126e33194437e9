"""`/v1/batch-query/` (AQuA): submit a job, read it, cancel it. Its files are served by
`GET /v1/files/{id}` and `GET /v1/file/{id}`; the rules are in `query.aqua`."""

from typing import Annotated, Any

from fastapi import Body
from fastapi.responses import Response

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import autocommit, transaction
from partnerbill.core.json import DecimalJSONRoute, ZuoraJSONResponse
from partnerbill.core.responses import Documented, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.query import aqua

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["AQuA"])


class AquaBatch(Documented):
    batchId: str
    name: str
    query: str
    batchType: str
    status: str
    fileId: str | None = None
    recordCount: int | None = None
    full: bool | None = None
    message: str | None = None


class AquaJob(Documented):
    """A job, or a refused submit (HTTP 200 with `status: error`, `errorCode` and `message`, or
    `success: false` with `code` and `message`, and no `id`)."""

    id: str | None = None
    status: str | None = None
    batches: list[AquaBatch] | None = None
    errorCode: str | None = None
    message: str | None = None


def _refusal(refused: aqua.AquaRefused) -> Response:
    return ZuoraJSONResponse(refused.answer)


@router.post("/v1/batch-query/", responses=ok(AquaJob))
async def create_aqua_job(
    tenant: CurrentTenant, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any] | Response:
    try:
        async with transaction() as conn:
            return await aqua.submit(conn, tenant, body)
    except aqua.AquaRefused as refused:
        return _refusal(refused)


@router.get("/v1/batch-query/jobs/{batch_job_id}", responses=ok(AquaJob))
async def get_aqua_job(batch_job_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with autocommit() as conn:
        return await aqua.get(conn, tenant, batch_job_id)


@router.delete("/v1/batch-query/jobs/{batch_job_id}", responses=ok(AquaJob))
async def cancel_aqua_job(batch_job_id: str, tenant: CurrentTenant) -> dict[str, Any] | Response:
    try:
        async with transaction() as conn:
            return await aqua.cancel(conn, tenant, batch_job_id)
    except aqua.AquaRefused as refused:
        return _refusal(refused)
