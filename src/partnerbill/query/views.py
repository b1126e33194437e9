"""The `zuora` schema: one view per catalogue object, the only relations the query role reads.

The views are made from `query/catalog.py` by every migration run that ends at the head
revision (`migrations/env.py`), in the migration's transaction: they hold no data, so dropping
and making them again is how a catalogue change reaches the database, with no migration to
write for it.

Each view filters on the tenant bound to the reading transaction
(`current_setting('partnerbill.query_tenant', true)`, set by `query/sandbox.py`): with nothing
bound it shows no rows. The views are `security_barrier`: a query's own conditions (a cast that
fails, a division by zero) run only on the bound tenant's rows, so not even an error message
carries another tenant's value. They run with their owner's rights, so the query role needs no
grant on any table.
"""

from sqlalchemy import Connection

from partnerbill.query.catalog import OBJECTS, QueryObject

SCHEMA = "zuora"
QUERY_ROLE = "partnerbill_query"
TENANT_SETTING = "partnerbill.query_tenant"
# Two processes migrating one database at once (tests, a rolling deploy) take turns.
VIEWS_LOCK_KEY = 0x7A756F7261  # "zuora"


def view_sql(obj: QueryObject) -> str:
    columns = ",\n  ".join(
        f"CAST({field.sql} AS {field.type.postgres}) AS {field.column}" for field in obj.fields
    )
    return (
        f"CREATE VIEW {SCHEMA}.{obj.table} WITH (security_barrier) AS SELECT\n  {columns}\n"
        f"FROM {obj.source}\n"
        f"WHERE {obj.tenant} = current_setting('{TENANT_SETTING}', true)"
    )


def install_query_views(conn: Connection) -> None:
    """Drop and make the `zuora` schema's views, and grant them (only them) to the query role.
    Column comments hold the API names (Data Query's DESCRIBE shows them)."""
    run = conn.exec_driver_sql
    run(f"SELECT pg_advisory_xact_lock({VIEWS_LOCK_KEY})")
    run(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    run(f"CREATE SCHEMA {SCHEMA}")
    for obj in OBJECTS:
        run(view_sql(obj))
        for field in obj.fields:
            # Catalogue names are identifiers of ours ([A-Za-z0-9]), safe to write inline.
            run(f"COMMENT ON COLUMN {SCHEMA}.{obj.table}.{field.column} IS '{field.name}'")
    run(f"REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC")
    run(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {QUERY_ROLE}")
    run(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {QUERY_ROLE}")
