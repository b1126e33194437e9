"""`/v1/contacts`: create, read, edit, transfer, scrub, delete (see service for the rules)."""

from typing import Any

from partnerbill.accounts.schemas import ContactUpdate
from partnerbill.contacts import responses as answers
from partnerbill.contacts import service
from partnerbill.contacts.schemas import CreateContactRequest, TransferContactRequest
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import Succeeded, ok
from partnerbill.core.routing import FeatureRouter

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Contacts"])


@router.post("/v1/contacts", responses=ok(answers.ContactAnswer))
async def create_contact(request: CreateContactRequest, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.create_contact(conn, tenant, request)


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


@router.put("/v1/contacts/{contact_id}/transfer", responses=ok(Succeeded))
async def transfer_contact(
    contact_id: str, request: TransferContactRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.transfer_contact(conn, tenant, contact_id, request)


@router.put("/v1/contacts/{contact_id}/scrub", responses=ok(Succeeded))
async def scrub_contact(contact_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.scrub_contact(conn, tenant, contact_id)


@router.delete("/v1/contacts/{contact_id}", responses=ok(Succeeded))
async def delete_contact(contact_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.delete_contact(conn, tenant, contact_id)
