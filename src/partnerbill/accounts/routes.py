"""`/v1/accounts` (Zuora) and `/v1/partnerbill/accounts/{key}/refresh-metrics` (ours)."""

from typing import Any

from partnerbill.accounts import responses as answers
from partnerbill.accounts import service
from partnerbill.accounts.schemas import CreateAccountRequest, UpdateAccountRequest
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import autocommit, transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import Succeeded, ok
from partnerbill.core.routing import FeatureRouter

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Accounts"])


@router.post("/v1/accounts", responses=ok(answers.CreatedAccount))
async def create_account(request: CreateAccountRequest, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.create_account(conn, tenant, request)


@router.put("/v1/accounts/{account_key}", responses=ok(Succeeded))
async def update_account(
    account_key: str, request: UpdateAccountRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        await service.update_account(conn, tenant, account_key, request)
    return {"success": True}


@router.get("/v1/accounts/{account_key}", responses=ok(answers.Account))
async def get_account(account_key: str, tenant: CurrentTenant) -> dict[str, Any]:
    # One statement: no transaction to begin and commit around it.
    async with autocommit() as conn:
        return await service.get_account(conn, tenant, account_key)


@router.get("/v1/accounts/{account_key}/summary", responses=ok(answers.AccountSummary))
async def get_account_summary(account_key: str, tenant: CurrentTenant) -> service.AccountSummary:
    async with transaction() as conn:
        return await service.get_account_summary(conn, tenant, account_key)


@router.post(
    "/v1/partnerbill/accounts/{account_key}/refresh-metrics",
    tags=["partnerbill"],
    responses=ok(answers.RefreshedMetrics),
)
async def refresh_account_metrics(account_key: str, tenant: CurrentTenant) -> dict[str, Any]:
    """Fold the account's pending metric changes now (partner accounts; harmless on others)."""
    async with transaction() as conn:
        return await service.refresh_metrics(conn, tenant, account_key)
