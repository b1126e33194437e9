"""The query views: one per catalogue object, in two schemas, each readable by one role only.

- `zuora` (role `partnerbill_query`): what client-written SQL and ZOQL read (Data Query, AQuA,
  exports).
- `zuora_object_query` (role `partnerbill_object_query`): what Object Query reads, whose SQL is
  all built by the server from the catalogue.

The views are made from `query/catalog.py` by every migration run that ends at the head
revision (`migrations/env.py`), in the migration's transaction: they hold no data, so dropping
and making them again is how a catalogue change reaches the database, with no migration to
write for it.

Each view filters on the tenant bound to the reading transaction
(`current_setting('partnerbill.query_tenant', true)`, set by `query/sandbox.py`): with nothing
bound it shows no rows. The views are `security_barrier`: a query's own conditions (a cast that
fails, a division by zero) run only on the bound tenant's rows, so not even an error message
carries another tenant's value. They run with their owner's rights, so the query roles need no
grant on any table.

Object Query's views are the same projections without the barrier: PostgreSQL never flattens a
security-barrier view, so through one a keyset page cannot walk an index in the page's order and
sorts every matching row (about 150 ms over an account's 200,000 invoices, against under a
millisecond flattened). No client text reaches them, so there is no client condition to guard
against; they still show only the bound tenant's rows, to a role that can read nothing else.
"""

from dataclasses import dataclass

from sqlalchemy import Connection

from partnerbill.query.catalog import OBJECTS, QueryObject

TENANT_SETTING = "partnerbill.query_tenant"
# Two processes migrating one database at once (tests, a rolling deploy) take turns.
VIEWS_LOCK_KEY = 0x7A756F7261  # "zuora"


@dataclass(frozen=True, slots=True)
class ViewSet:
    schema: str
    role: str
    barrier: bool


CLIENT_VIEWS = ViewSet("zuora", "partnerbill_query", barrier=True)
OBJECT_QUERY_VIEWS = ViewSet("zuora_object_query", "partnerbill_object_query", barrier=False)
VIEW_SETS = (CLIENT_VIEWS, OBJECT_QUERY_VIEWS)
SCHEMA = CLIENT_VIEWS.schema


def view_sql(obj: QueryObject, views: ViewSet) -> str:
    columns = ",\n  ".join(
        f"CAST({field.sql} AS {field.type.postgres}) AS {field.column}" for field in obj.fields
    )
    options = " WITH (security_barrier)" if views.barrier else ""
    return (
        f"CREATE VIEW {views.schema}.{obj.table}{options} AS SELECT\n  {columns}\n"
        f"FROM {obj.source}\n"
        f"WHERE {obj.tenant} = current_setting('{TENANT_SETTING}', true)"
    )


def install_query_views(conn: Connection) -> None:
    """Drop and make both schemas' views, and grant each schema (only it) to its role.
    Column comments hold the API names (Data Query's DESCRIBE shows them)."""
    run = conn.exec_driver_sql
    run(f"SELECT pg_advisory_xact_lock({VIEWS_LOCK_KEY})")
    for views in VIEW_SETS:
        run(f"DROP SCHEMA IF EXISTS {views.schema} CASCADE")
        run(f"CREATE SCHEMA {views.schema}")
        for obj in OBJECTS:
            run(view_sql(obj, views))
            for field in obj.fields:
                # Catalogue names are identifiers of ours ([A-Za-z0-9]), safe to write inline.
                run(
                    f"COMMENT ON COLUMN {views.schema}.{obj.table}.{field.column} IS '{field.name}'"
                )
        run(f"REVOKE ALL ON SCHEMA {views.schema} FROM PUBLIC")
        run(f"GRANT USAGE ON SCHEMA {views.schema} TO {views.role}")
        run(f"GRANT SELECT ON ALL TABLES IN SCHEMA {views.schema} TO {views.role}")
