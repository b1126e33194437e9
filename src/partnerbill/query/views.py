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

On a database distributed by tenant (`PARTNERBILL_DISTRIBUTED`, docs/scale-out.md) an owner's
rights end at the coordinator: the workers run each shard's part of a query as the query role
itself. There the wall is row-level security instead: the views run with the reader's rights
(`security_invoker`), each query role is granted only the base-table columns its views read
(`information_schema.view_column_usage`), and every base table has a policy showing the role the
bound tenant's rows only, evaluated on the shard. Past a parser gap, a query reaches at most the
catalogue's columns of its own tenant's rows. On plain PostgreSQL the grants and policies are
taken away again, so switching the setting off restores the owner's wall.
"""

from dataclasses import dataclass

from sqlalchemy import Connection

from partnerbill.query.catalog import OBJECTS, QueryObject
from partnerbill.settings import get_settings

TENANT_SETTING = "partnerbill.query_tenant"
# Two processes migrating one database at once (tests, a rolling deploy) take turns.
VIEWS_LOCK_KEY = 0x7A756F7261  # "zuora"
# The row-level security policy of the distributed form, on every base table the views read.
TENANT_POLICY = "partnerbill_query_tenant"
BASE_SCHEMA = "public"


@dataclass(frozen=True, slots=True)
class ViewSet:
    schema: str
    role: str
    barrier: bool


CLIENT_VIEWS = ViewSet("zuora", "partnerbill_query", barrier=True)
OBJECT_QUERY_VIEWS = ViewSet("zuora_object_query", "partnerbill_object_query", barrier=False)
VIEW_SETS = (CLIENT_VIEWS, OBJECT_QUERY_VIEWS)
SCHEMA = CLIENT_VIEWS.schema


def view_sql(obj: QueryObject, views: ViewSet, *, invoker: bool = False) -> str:
    columns = ",\n  ".join(
        f"CAST({field.sql} AS {field.type.postgres}) AS {field.column}" for field in obj.fields
    )
    chosen = [
        name
        for name, on in (("security_barrier", views.barrier), ("security_invoker", invoker))
        if on
    ]
    options = f" WITH ({', '.join(chosen)})" if chosen else ""
    return (
        f"CREATE VIEW {views.schema}.{obj.table}{options} AS SELECT\n  {columns}\n"
        f"FROM {obj.source}\n"
        f"WHERE {obj.tenant} = current_setting('{TENANT_SETTING}', true)"
    )


def install_query_views(conn: Connection) -> None:
    """Drop and make both schemas' views, and grant each schema (only it) to its role; in the
    distributed form, the base-table grants and tenant policies under them too. Column comments
    hold the API names (Data Query's DESCRIBE shows them)."""
    run = conn.exec_driver_sql
    run(f"SELECT pg_advisory_xact_lock({VIEWS_LOCK_KEY})")
    distributed = get_settings().distributed
    for views in VIEW_SETS:
        run(f"DROP SCHEMA IF EXISTS {views.schema} CASCADE")
        run(f"CREATE SCHEMA {views.schema}")
        for obj in OBJECTS:
            run(view_sql(obj, views, invoker=distributed))
            for field in obj.fields:
                # Catalogue names are identifiers of ours ([A-Za-z0-9]), safe to write inline.
                run(
                    f"COMMENT ON COLUMN {views.schema}.{obj.table}.{field.column} IS '{field.name}'"
                )
        run(f"REVOKE ALL ON SCHEMA {views.schema} FROM PUBLIC")
        run(f"GRANT USAGE ON SCHEMA {views.schema} TO {views.role}")
        run(f"GRANT SELECT ON ALL TABLES IN SCHEMA {views.schema} TO {views.role}")
    _grant_base_tables(conn, _columns_read(conn) if distributed else set())


# (role, base table, column)
Grant = tuple[str, str, str]


def _columns_read(conn: Connection) -> set[Grant]:
    """Each role's base-table columns its views read."""
    roles = {views.schema: views.role for views in VIEW_SETS}
    used = conn.exec_driver_sql(
        "SELECT view_schema, table_name, column_name FROM information_schema.view_column_usage"
        " WHERE view_schema = ANY(%(schemas)s) AND table_schema = %(schema)s",
        {"schemas": list(roles), "schema": BASE_SCHEMA},
    )
    return {(roles[schema], table, column) for schema, table, column in used}


def _grant_base_tables(conn: Connection, wanted: set[Grant]) -> None:
    """Make the query roles' grants on base tables `wanted` (none on plain PostgreSQL), each
    table granted a tenant policy for them. Unchanged, nothing is touched (on Citus every change
    is DDL on each shard); changed, all is taken away first, so a column the catalogue no longer
    reads loses its grant."""
    run = conn.exec_driver_sql
    roles = [views.role for views in VIEW_SETS]
    granted = {
        (role, table, column)
        for role, table, column in run(
            "SELECT grantee, table_name, column_name FROM information_schema.column_privileges"
            " WHERE table_schema = %(schema)s AND grantee = ANY(%(roles)s)",
            {"schema": BASE_SCHEMA, "roles": roles},
        )
    }
    with_policy = set(
        run(
            "SELECT tablename FROM pg_policies"
            " WHERE schemaname = %(schema)s AND policyname = %(policy)s",
            {"schema": BASE_SCHEMA, "policy": TENANT_POLICY},
        ).scalars()
    )
    tables = {table for _, table, _ in wanted}
    if granted == wanted and with_policy == tables:
        return
    for table in sorted(with_policy):
        run(f"DROP POLICY {TENANT_POLICY} ON {BASE_SCHEMA}.{table}")
        run(f"ALTER TABLE {BASE_SCHEMA}.{table} DISABLE ROW LEVEL SECURITY")
    for role, table in sorted({(role, table) for role, table, _ in granted}):
        run(f"REVOKE ALL ON {BASE_SCHEMA}.{table} FROM {role}")
    for table in sorted(tables):
        run(f"ALTER TABLE {BASE_SCHEMA}.{table} ENABLE ROW LEVEL SECURITY")
        run(
            f"CREATE POLICY {TENANT_POLICY} ON {BASE_SCHEMA}.{table} FOR SELECT"
            f" TO {', '.join(roles)}"
            f" USING (tenant_id = current_setting('{TENANT_SETTING}', true))"
        )
    columns: dict[tuple[str, str], list[str]] = {}
    for role, table, column in sorted(wanted):
        columns.setdefault((role, table), []).append(column)
    for (role, table), names in columns.items():
        run(f"GRANT SELECT ({', '.join(names)}) ON {BASE_SCHEMA}.{table} TO {role}")
