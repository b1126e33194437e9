"""The bill run job."""

from procrastinate import Blueprint

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core.tenants import Tenant

billing_tasks = Blueprint()


@billing_tasks.task(queue="billruns", name="run_bill_run")
async def run_bill_run(tenant_id: str, tenant_number: int, bill_run_id: str) -> None:
    await execute_bill_run(Tenant(id=tenant_id, number=tenant_number), bill_run_id)
