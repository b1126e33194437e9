"""Tenant settings over the API (ours): `GET`/`PUT /v1/partnerbill/settings`."""

from typing import Annotated, Any

from pydantic import Field

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import TenantSettingsResponse, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.schemas import CamelModel
from partnerbill.core.tenants import get_settings, update_settings


class TenantSettingsUpdate(CamelModel):
    metrics_refresh_interval_seconds: Annotated[int | None, Field(strict=True)] = None
    lock_wait_ms: Annotated[int | None, Field(strict=True)] = None
    invoice_batch_limit: Annotated[int | None, Field(strict=True)] = None
    order_sync_limit: Annotated[int | None, Field(strict=True)] = None
    order_async_limit: Annotated[int | None, Field(strict=True)] = None
    reseller_account_enabled: Annotated[bool | None, Field(strict=True)] = None


router = FeatureRouter(route_class=DecimalJSONRoute, tags=["partnerbill"])


@router.get("/v1/partnerbill/settings", responses=ok(TenantSettingsResponse))
async def read_tenant_settings(tenant: CurrentTenant) -> dict[str, Any]:
    """The tenant's metrics refresh interval, lock-wait bound and invoice batch limit."""
    async with transaction() as conn:
        settings = await get_settings(conn, tenant)
    return {"success": True, **settings.as_json()}


@router.put("/v1/partnerbill/settings", responses=ok(TenantSettingsResponse))
async def change_tenant_settings(
    request: TenantSettingsUpdate, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        settings = await update_settings(
            conn,
            tenant,
            metrics_refresh_interval_seconds=request.metrics_refresh_interval_seconds,
            lock_wait_ms=request.lock_wait_ms,
            invoice_batch_limit=request.invoice_batch_limit,
            order_sync_limit=request.order_sync_limit,
            order_async_limit=request.order_async_limit,
            reseller_account_enabled=request.reseller_account_enabled,
        )
    return {"success": True, **settings.as_json()}
