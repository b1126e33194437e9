"""`/v1/bill-runs`."""

from typing import Annotated

from fastapi import Body

from partnerbill.billing import bill_runs
from partnerbill.billing.bill_runs import BillRunJson, CreateBillRunRequest
from partnerbill.billing.responses import BillRun
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.schemas import CamelModel, Date

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Bill runs"])


class PostBillRunRequest(CamelModel):
    invoice_date: Date | None = None


@router.post("/v1/bill-runs", responses=ok(BillRun))
async def create_bill_run(request: CreateBillRunRequest, tenant: CurrentTenant) -> BillRunJson:
    async with transaction() as conn:
        return await bill_runs.create_bill_run(conn, tenant, request)


@router.get("/v1/bill-runs/{bill_run_id}", responses=ok(BillRun))
async def get_bill_run(bill_run_id: str, tenant: CurrentTenant) -> BillRunJson:
    async with transaction() as conn:
        return await bill_runs.get_bill_run(conn, tenant, bill_run_id)


@router.put("/v1/bill-runs/{bill_run_id}/post", responses=ok(BillRun))
async def post_bill_run(
    bill_run_id: str,
    tenant: CurrentTenant,
    body: Annotated[PostBillRunRequest | None, Body()] = None,
) -> BillRunJson:
    async with transaction() as conn:
        return await bill_runs.post_bill_run(
            conn, tenant, bill_run_id, body.invoice_date if body else None
        )


@router.put("/v1/bill-runs/{bill_run_id}/cancel", responses=ok(BillRun))
async def cancel_bill_run(bill_run_id: str, tenant: CurrentTenant) -> BillRunJson:
    async with transaction() as conn:
        return await bill_runs.cancel_bill_run(conn, tenant, bill_run_id)
