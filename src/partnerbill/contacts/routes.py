"""`/v1/contacts/{contactId}`: read, edit, delete (see service for the rules)."""

from typing import Any

from fastapi import APIRouter

from partnerbill.accounts.schemas import ContactUpdate
from partnerbill.contacts import responses as answers
from partnerbill.contacts import service
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import Succeeded, ok

router = APIRouter(route_class=DecimalJSONRoute, tags=["Contacts"])


@router.get("/v1/contacts/{contact_id}", responses=ok(answers.ContactAnswer))
async def get_contact(contact_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.get_contact(conn, tenant, contact_id)


@router.put("/v1/contacts/{contact_id}", responses=ok(answers.ContactAnswer))
async def update_contact(
    contact_id: str, request: ContactUpdate, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.update_contact(conn, tenant, contact_id, request)


@router.delete("/v1/contacts/{contact_id}", responses=ok(Succeeded))
async def delete_contact(contact_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.delete_contact(conn, tenant, contact_id)
