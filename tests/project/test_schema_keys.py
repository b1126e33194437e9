"""The migrated schema is ready to be distributed by tenant: every primary key, unique index and
foreign key of a table with a `tenant_id` column leads with `tenant_id` (so each stays within one
tenant's shard), except the tables a distributed deployment keeps whole on every node because
they are looked up before the tenant is known."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.project.reference_tables import REFERENCE_TABLES

KEYS = text(
    """
    SELECT r.relname AS table_name, i.relname AS key_name, a.attname AS first_column
    FROM pg_index x
    JOIN pg_class r ON r.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = r.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = x.indkey[0]
    WHERE n.nspname = current_schema() AND x.indisunique
      AND EXISTS (SELECT FROM pg_attribute t
                  WHERE t.attrelid = r.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
    UNION ALL
    SELECT r.relname, c.conname, a.attname
    FROM pg_constraint c
    JOIN pg_class r ON r.oid = c.conrelid
    JOIN pg_namespace n ON n.oid = r.relnamespace
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = c.conkey[1]
    WHERE n.nspname = current_schema() AND c.contype = 'f'
      AND EXISTS (SELECT FROM pg_attribute t
                  WHERE t.attrelid = r.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
    """
)


async def test_every_key_of_a_tenant_table_leads_with_tenant_id(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        keys = (await conn.execute(KEYS)).all()
    tables = {row.table_name for row in keys}
    assert {"invoices", "accounts", "idempotency_keys", "metrics_changes"} <= tables
    offending = sorted(
        (row.table_name, row.key_name, row.first_column)
        for row in keys
        if row.first_column != "tenant_id" and row.table_name not in REFERENCE_TABLES
    )
    assert offending == []
    assert tables >= REFERENCE_TABLES  # each still exists, or drop it from the list
