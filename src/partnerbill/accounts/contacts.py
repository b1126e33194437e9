"""Where an account's contacts live, and moving them between roles.

The bill-to and sold-to contacts are JSON on the account row (one shared object when the account
has no separate sold-to); every other contact of the account is a row of `account_contacts`. A
contact id lives in exactly one of the two places, and every change to an account's contacts —
adding one, switching a role, editing, scrubbing, transferring or deleting one — first takes the
account row `FOR NO KEY UPDATE` (`lock_accounts`; why that lock: `core/locking.py`). So what is
read after it cannot move underneath.

An account holds at most `CONTACTS_PER_ACCOUNT` contacts, as Zuora's does.
"""

from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, Row, String, delete, func, insert, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, business_rule, invalid_value, not_found
from partnerbill.core.locking import for_no_key_update, lock_rows_in_id_order
from partnerbill.core.tenants import Tenant
from partnerbill.tables.accounts import ContactJson, account_contacts, accounts

CONTACTS_PER_ACCOUNT = 100

# As the expression indexes of the two roles are written (a bound 'id' would not match them).
_ROLE_IDS: tuple[ColumnElement[str], ...] = (
    literal_column("accounts.bill_to_contact ->> 'id'", String),
    literal_column("accounts.sold_to_contact ->> 'id'", String),
)


@dataclass(frozen=True, slots=True)
class AccountContacts:
    """An account's bill-to and sold-to contacts (read under `lock_accounts` to change them)."""

    id: str
    account_number: str
    bill_to: ContactJson
    sold_to: ContactJson

    def role_of(self, contact_id: str) -> ContactJson | None:
        """The JSON of the bill-to or sold-to contact with this id, or None."""
        if self.bill_to["id"] == contact_id:
            return self.bill_to
        if self.sold_to["id"] == contact_id:
            return self.sold_to
        return None


_COLUMNS = (
    accounts.c.id,
    accounts.c.account_number,
    accounts.c.bill_to_contact,
    accounts.c.sold_to_contact,
)


class RoleContacts(TypedDict):
    """The account's bill-to and sold-to contacts, as the account row's columns."""

    bill_to_contact: ContactJson
    sold_to_contact: ContactJson


async def lock_accounts(
    conn: AsyncConnection, tenant: Tenant, keys: list[str], resource: Resource
) -> list[AccountContacts]:
    """The accounts by id or number, in the order of `keys`, locked `FOR NO KEY UPDATE` in id
    order; refused (not found) when a key names no account."""
    rows = (
        await lock_rows_in_id_order(
            conn,
            tenant,
            accounts,
            accounts.c.id.in_(keys) | accounts.c.account_number.in_(keys),
            resource,
            columns=_COLUMNS,
            strength=for_no_key_update,
        )
    ).all()
    found = {key: _contacts(row) for row in rows for key in (row.id, row.account_number)}
    for key in keys:
        if key not in found:
            raise not_found(resource, "account", key)
    return [found[key] for key in keys]


async def read_account(
    conn: AsyncConnection, tenant: Tenant, account_id: str
) -> AccountContacts | None:
    """The account by id, without a lock (for reads)."""
    statement = select(*_COLUMNS).where(
        accounts.c.tenant_id == tenant.id, accounts.c.id == account_id
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else _contacts(row)


def _contacts(row: Row[Any, Any, Any, Any] | Row[Any]) -> AccountContacts:
    return AccountContacts(row.id, row.account_number, row.bill_to_contact, row.sold_to_contact)


async def account_of_contact(conn: AsyncConnection, tenant: Tenant, contact_id: str) -> str | None:
    """The id of the account holding the contact (in either place), read without a lock."""
    in_roles = select(accounts.c.id).where(
        accounts.c.tenant_id == tenant.id, or_(*(role == contact_id for role in _ROLE_IDS))
    )
    additional = select(account_contacts.c.account_id).where(
        account_contacts.c.tenant_id == tenant.id, account_contacts.c.id == contact_id
    )
    found = await conn.execute(in_roles.union_all(additional).limit(1))
    return found.scalar_one_or_none()


async def additional_contacts(
    conn: AsyncConnection, tenant: Tenant, account_id: str, ids: set[str] | None = None
) -> dict[str, ContactJson]:
    """The account's contacts besides bill-to and sold-to (only `ids` when given), by id."""
    statement = select(account_contacts.c.id, account_contacts.c.contact).where(
        account_contacts.c.tenant_id == tenant.id, account_contacts.c.account_id == account_id
    )
    if ids is not None:
        statement = statement.where(account_contacts.c.id.in_(sorted(ids)))
    return {row.id: row.contact for row in await conn.execute(statement.order_by("id"))}


async def count_contacts(conn: AsyncConnection, tenant: Tenant, account: AccountContacts) -> int:
    roles = 1 if account.bill_to["id"] == account.sold_to["id"] else 2
    additional = await conn.scalar(
        select(func.count()).where(
            account_contacts.c.tenant_id == tenant.id, account_contacts.c.account_id == account.id
        )
    )
    return roles + int(additional or 0)


async def check_room(
    conn: AsyncConnection, tenant: Tenant, account: AccountContacts, resource: Resource
) -> None:
    if await count_contacts(conn, tenant, account) >= CONTACTS_PER_ACCOUNT:
        raise business_rule(
            resource,
            f"Account {account.account_number} already has {CONTACTS_PER_ACCOUNT} contacts,"
            " the most an account can hold.",
        )


async def add_contact(
    conn: AsyncConnection, tenant: Tenant, account_id: str, contact: ContactJson
) -> None:
    await conn.execute(
        insert(account_contacts).values(
            tenant_id=tenant.id, id=contact["id"], account_id=account_id, contact=contact
        )
    )


async def assign_roles(
    conn: AsyncConnection,
    tenant: Tenant,
    account: AccountContacts,
    roles: dict[str, str | None],
    resource: Resource,
) -> RoleContacts:
    """Make the contacts named by id the account's bill-to (`roles["billToContactId"]`) and
    sold-to (`roles["soldToContactId"]`); None keeps a role's contact. The contacts taken into a
    role leave `account_contacts`, a contact left without a role joins it. Answers the account
    columns to write (`bill_to_contact`, `sold_to_contact`); the caller writes them."""
    current = {account.bill_to["id"]: account.bill_to, account.sold_to["id"]: account.sold_to}
    wanted = {key for key in roles.values() if key is not None and key not in current}
    found = await additional_contacts(conn, tenant, account.id, wanted) if wanted else {}
    for field, key in roles.items():
        if key is not None and key not in current and key not in found:
            raise invalid_value(
                resource, field, f"'{key}' is not a contact of account {account.account_number}"
            )
    pool = {**current, **found}
    bill_to = pool[roles.get("billToContactId") or account.bill_to["id"]]
    sold_to = pool[roles.get("soldToContactId") or account.sold_to["id"]]
    kept = {bill_to["id"], sold_to["id"]}
    if found:
        await conn.execute(
            delete(account_contacts).where(
                account_contacts.c.tenant_id == tenant.id,
                account_contacts.c.id.in_(sorted(found)),
            )
        )
    for contact_id, contact in current.items():
        if contact_id not in kept:
            await add_contact(conn, tenant, account.id, contact)
    return {"bill_to_contact": bill_to, "sold_to_contact": sold_to}
