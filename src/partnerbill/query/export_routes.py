"""`/v1/object/export` (data-source exports over the CRUD object API); the rules are in
`query.export`."""

from typing import Any

from partnerbill.catalog.responses import CreatedObject
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import autocommit, transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import Documented, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.query import export
from partnerbill.query.export import CreateExportRequest

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Exports"])


class Export(Documented):
    Id: str
    Format: str
    Query: str
    Status: str
    Zip: bool
    CreatedDate: str
    FileId: str | None = None
    Size: int | None = None
    StatusReason: str | None = None


@router.post("/v1/object/export", responses=ok(CreatedObject))
async def create_export(request: CreateExportRequest, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        export_id = await export.create(conn, tenant, request)
    return {"Success": True, "Id": export_id}


@router.get("/v1/object/export/{export_id}", responses=ok(Export))
async def get_export(export_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with autocommit() as conn:
        return await export.get(conn, tenant, export_id)
