"""Contacts by id.

An account's contacts are kept as JSON on its row (`bill_to_contact`, `sold_to_contact`; one
contact shared by both when the account was created without a sold-to). So every contact is
today the bill-to or the sold-to contact of its account, and:
- GET finds the account whose bill-to or sold-to contact has the id, and answers Zuora's
  ContactResponse (`asBillTo` / `asSoldTo` say which roles it holds).
- PUT merges the given fields into that JSON in one UPDATE under the account's row lock; a
  shared contact is edited in both roles at once, as it is one contact.
- DELETE is always refused with a business-rule error: Zuora never deletes an account's bill-to
  or sold-to contact.
"""

from typing import Any

from sqlalchemy import String, case, cast, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.schemas import ContactUpdate
from partnerbill.accounts.tables import accounts
from partnerbill.core.errors import Resource, business_rule, not_found
from partnerbill.core.tenants import Tenant

CONTACT = Resource.CONTACT


def _of(contact_id: str) -> Any:
    return or_(
        accounts.c.bill_to_contact["id"].astext == contact_id,
        accounts.c.sold_to_contact["id"].astext == contact_id,
    )


async def _find(
    conn: AsyncConnection, tenant: Tenant, contact_id: str, *, lock: bool = False
) -> Row[Any, Any, Any, Any]:
    statement = select(
        accounts.c.id,
        accounts.c.account_number,
        accounts.c.bill_to_contact,
        accounts.c.sold_to_contact,
    ).where(accounts.c.tenant_id == tenant.id, _of(contact_id))
    if lock:
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).first()
    if row is None:
        raise not_found(CONTACT, "contact", contact_id)
    return row


def _answer(row: Row[Any, Any, Any, Any], contact_id: str) -> dict[str, Any]:
    bill_to = row.bill_to_contact["id"] == contact_id
    sold_to = row.sold_to_contact["id"] == contact_id
    contact = row.bill_to_contact if bill_to else row.sold_to_contact
    fields = {key: value for key, value in contact.items() if key != "description"}
    if "description" in contact:
        fields["contactDescription"] = contact["description"]
    return {
        "success": True,
        **fields,
        "id": contact_id,
        "accountId": row.id,
        "accountNumber": row.account_number,
        "asBillTo": bill_to,
        "asSoldTo": sold_to,
    }


async def get_contact(conn: AsyncConnection, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    return _answer(await _find(conn, tenant, contact_id), contact_id)


async def update_contact(
    conn: AsyncConnection, tenant: Tenant, contact_id: str, request: ContactUpdate
) -> dict[str, Any]:
    await _find(conn, tenant, contact_id, lock=True)
    patch = {
        **request.model_dump(exclude_none=True, exclude=set(request.model_extra or {})),
        **request.custom_fields(),
    }
    patch.pop("id", None)
    # Zuora's contact requests name the description `contactDescription`; the account's JSON
    # keeps it as `description`, as account requests name it.
    described = (request.model_extra or {}).get("contactDescription")
    if isinstance(described, str):
        patch["description"] = described[:100]
    value = cast(literal(patch, type_=JSONB), JSONB)
    columns = {}
    for name in ("bill_to_contact", "sold_to_contact"):
        column = accounts.c[name]
        columns[name] = case(
            (column["id"].astext == cast(literal(contact_id), String), column.op("||")(value)),
            else_=column,
        )
    await conn.execute(
        update(accounts).where(accounts.c.tenant_id == tenant.id, _of(contact_id)).values(**columns)
    )
    return _answer(await _find(conn, tenant, contact_id), contact_id)


async def delete_contact(conn: AsyncConnection, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    await _find(conn, tenant, contact_id)
    raise business_rule(CONTACT, "The bill-to or sold-to contact of an account cannot be deleted.")
