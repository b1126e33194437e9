"""The tenant column and keys of a tenant table: its `tenant_id` column, and its primary, unique
and foreign keys each leading with `tenant_id`, so every key stays within one tenant (and one
tenant's shard when the tables are distributed by tenant). The alembic revisions are the schema;
these only build the SQLAlchemy tables that mirror it."""

from typing import Any

from sqlalchemy import Column, ForeignKeyConstraint, PrimaryKeyConstraint, String, UniqueConstraint

TENANT_ID = "tenant_id"


def tenant_column() -> Column[str]:
    return Column(TENANT_ID, String(32), nullable=False)


def tenant_primary_key(*columns: str) -> PrimaryKeyConstraint:
    """The primary key `(tenant_id, *columns)`."""
    return PrimaryKeyConstraint(TENANT_ID, *columns)


def tenant_unique(*columns: str) -> UniqueConstraint:
    """The unique key `(tenant_id, *columns)`."""
    return UniqueConstraint(TENANT_ID, *columns)


def tenant_foreign_key(column: str, table: str, **options: Any) -> ForeignKeyConstraint:
    """`(tenant_id, column)` referencing `table(tenant_id, id)`; `options` as
    `ForeignKeyConstraint` takes them (`ondelete`)."""
    return ForeignKeyConstraint(
        [TENANT_ID, column], [f"{table}.{TENANT_ID}", f"{table}.id"], **options
    )
