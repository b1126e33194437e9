"""Contacts by id: create, read, edit, transfer, scrub, delete.

Where a contact lives and the lock every change takes are `accounts.contacts`: the bill-to and
sold-to contacts are JSON on the account row, the others rows of `account_contacts`. So:
- GET answers Zuora's ContactResponse wherever the contact lives (`asBillTo` / `asSoldTo` say
  which roles it holds; a shared one holds both).
- POST adds a contact to an account (at most 100 per account); `asBillTo` / `asSoldTo` make it
  the account's bill-to / sold-to contact at once, and the one it replaces stays a contact.
- PUT merges the given fields into the contact; a shared contact is edited in both roles.
- Transfer moves a contact to another account of the tenant; delete removes it. Both are refused
  (business rule) for a bill-to or sold-to contact: make another contact take the role first
  (`PUT /v1/accounts/{key}` with `billToContactId` / `soldToContactId`).
- Scrub replaces the contact's personal data (names, addresses, phones, e-mails) with fixed
  dummy values, in place; the contact keeps its id and roles and can then be deleted.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.contacts import (
    AccountContacts,
    account_of_contact,
    add_contact,
    additional_contacts,
    assign_roles,
    check_room,
    lock_accounts,
    read_account,
)
from partnerbill.accounts.schemas import Contact
from partnerbill.contacts.schemas import CreateContactRequest, TransferContactRequest
from partnerbill.core.errors import Resource, business_rule, invalid_value, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.tenants import Tenant
from partnerbill.tables.accounts import ContactJson, account_contacts, accounts

CONTACT = Resource.CONTACT
# What a scrub leaves in each personal field the contact has.
SCRUBBED = "Scrubbed"
PERSONAL_FIELDS = (
    "firstName",
    "lastName",
    "nickname",
    "address1",
    "address2",
    "city",
    "state",
    "county",
    "zipCode",
    "workEmail",
    "personalEmail",
    "workPhone",
    "homePhone",
    "mobilePhone",
    "otherPhone",
    "fax",
)
_REQUEST_ONLY = {
    "account_id",
    "account_number",
    "contact_description",
    "as_bill_to",
    "as_sold_to",
    "as_ship_to",
}


@dataclass(slots=True)
class Located:
    """A contact, the account holding it, and whether it is one of the account's other contacts
    (not its bill-to or sold-to)."""

    account: AccountContacts
    contact: ContactJson
    additional: bool


def _in(account: AccountContacts, contact_id: str, others: dict[str, ContactJson]) -> Located:
    role = account.role_of(contact_id)
    if role is not None:
        return Located(account, role, additional=False)
    return Located(account, others[contact_id], additional=True)


async def _locate(conn: AsyncConnection, tenant: Tenant, contact_id: str, *, lock: bool) -> Located:
    # Read where it is, then (to change it) lock that account and look again: a concurrent
    # transfer may have moved it meanwhile, and after the lock nothing can.
    for _ in range(3):
        account_id = await account_of_contact(conn, tenant, contact_id)
        if account_id is None:
            break
        if lock:
            (account,) = await lock_accounts(conn, tenant, [account_id], CONTACT)
        elif (found := await read_account(conn, tenant, account_id)) is not None:
            account = found
        else:
            continue
        others = await additional_contacts(conn, tenant, account.id, {contact_id})
        if account.role_of(contact_id) is not None or contact_id in others:
            return _in(account, contact_id, others)
    raise not_found(CONTACT, "contact", contact_id)


def _answer(located: Located) -> dict[str, Any]:
    contact, account = located.contact, located.account
    fields = {key: value for key, value in contact.items() if key != "description"}
    if "description" in contact:
        fields["contactDescription"] = contact["description"]
    return {
        "success": True,
        **fields,
        "accountId": account.id,
        "accountNumber": account.account_number,
        "asBillTo": account.bill_to["id"] == contact["id"],
        "asSoldTo": account.sold_to["id"] == contact["id"],
        "asShipTo": False,
    }


def _fields(request: Contact) -> ContactJson:
    """The contact JSON a request gives (Zuora's `contactDescription` kept as `description`,
    as account requests name it)."""
    fields = {
        **request.model_dump(
            exclude_none=True, exclude=set(request.model_extra or {}) | _REQUEST_ONLY
        ),
        **request.custom_fields(),
    }
    fields.pop("id", None)
    described = getattr(request, "contact_description", None)
    if described is None:
        described = (request.model_extra or {}).get("contactDescription")
    if isinstance(described, str):
        fields["description"] = described[:100]
    return fields


async def _store(conn: AsyncConnection, tenant: Tenant, located: Located) -> None:
    """Write the located contact's JSON back where it lives."""
    contact, account = located.contact, located.account
    if located.additional:
        await conn.execute(
            update(account_contacts)
            .where(
                account_contacts.c.tenant_id == tenant.id, account_contacts.c.id == contact["id"]
            )
            .values(contact=contact, updated_at=func.now())
        )
        return
    values: dict[str, Any] = {"updated_at": func.now()}
    if account.bill_to["id"] == contact["id"]:
        values["bill_to_contact"] = contact
    if account.sold_to["id"] == contact["id"]:
        values["sold_to_contact"] = contact
    await _write_account(conn, tenant, account.id, values)


async def _write_account(
    conn: AsyncConnection, tenant: Tenant, account_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(accounts)
        .where(accounts.c.tenant_id == tenant.id, accounts.c.id == account_id)
        .values(**values)
    )


async def get_contact(conn: AsyncConnection, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    return _answer(await _locate(conn, tenant, contact_id, lock=False))


async def create_contact(
    conn: AsyncConnection, tenant: Tenant, request: CreateContactRequest
) -> dict[str, Any]:
    key = request.account_id or request.account_number
    assert key is not None  # the request's validator demands one
    (account,) = await lock_accounts(conn, tenant, [key], CONTACT)
    if request.account_number is not None and request.account_number != account.account_number:
        raise invalid_value(
            CONTACT, "accountNumber", f"does not match the account of accountId '{key}'"
        )
    await check_room(conn, tenant, account, CONTACT)
    contact = {"id": new_id(), **_fields(request)}
    await add_contact(conn, tenant, account.id, contact)
    roles = {
        "billToContactId": contact["id"] if request.as_bill_to else None,
        "soldToContactId": contact["id"] if request.as_sold_to else None,
    }
    if any(roles.values()):
        values = await assign_roles(conn, tenant, account, roles, CONTACT)
        await _write_account(conn, tenant, account.id, {**values, "updated_at": func.now()})
        account = AccountContacts(
            account.id, account.account_number, values["bill_to_contact"], values["sold_to_contact"]
        )
    others = {} if any(roles.values()) else {contact["id"]: contact}
    return _answer(_in(account, contact["id"], others))


async def update_contact(
    conn: AsyncConnection, tenant: Tenant, contact_id: str, request: Contact
) -> dict[str, Any]:
    located = await _locate(conn, tenant, contact_id, lock=True)
    located.contact = {**located.contact, **_fields(request), "id": contact_id}
    await _store(conn, tenant, located)
    return _answer(located)


async def scrub_contact(conn: AsyncConnection, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    located = await _locate(conn, tenant, contact_id, lock=True)
    located.contact = {
        **located.contact,
        **{name: SCRUBBED for name in PERSONAL_FIELDS if located.contact.get(name) is not None},
    }
    await _store(conn, tenant, located)
    return {"success": True}


def _refuse_role(located: Located, action: str) -> None:
    if not located.additional:
        raise business_rule(
            CONTACT,
            f"The bill-to or sold-to contact of an account cannot be {action}: make another"
            " contact the account's bill-to or sold-to contact first.",
        )


async def transfer_contact(
    conn: AsyncConnection, tenant: Tenant, contact_id: str, request: TransferContactRequest
) -> dict[str, Any]:
    source_id = await account_of_contact(conn, tenant, contact_id)
    if source_id is None:
        raise not_found(CONTACT, "contact", contact_id)
    source, destination = await lock_accounts(
        conn, tenant, [source_id, request.destination_account_key], CONTACT
    )
    others = await additional_contacts(conn, tenant, source.id, {contact_id})
    if source.role_of(contact_id) is None and contact_id not in others:
        raise not_found(CONTACT, "contact", contact_id)  # moved meanwhile: try again
    _refuse_role(_in(source, contact_id, others), "transferred")
    if destination.id != source.id:
        await check_room(conn, tenant, destination, CONTACT)
        await conn.execute(
            update(account_contacts)
            .where(account_contacts.c.tenant_id == tenant.id, account_contacts.c.id == contact_id)
            .values(account_id=destination.id, updated_at=func.now())
        )
    return {"success": True}


async def delete_contact(conn: AsyncConnection, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    located = await _locate(conn, tenant, contact_id, lock=True)
    _refuse_role(located, "deleted")
    await conn.execute(
        delete(account_contacts).where(
            account_contacts.c.tenant_id == tenant.id, account_contacts.c.id == contact_id
        )
    )
    return {"success": True}
