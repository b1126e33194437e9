"""On a database distributed by tenant (docs/scale-out.md) a statement goes to one shard only when
every tenant table in it is restricted by the tenant id itself, bound as a parameter: a table
restricted only through another table's `tenant_id` (a correlated subquery, a join) makes the
statement go to every shard. The statements of the hot reads and writes are held to that here,
on their SQL text."""

from typing import Any

import pytest
import sqlglot
from sqlalchemy.dialects import postgresql
from sqlglot import exp

from partnerbill.accounts import service as accounts_service
from partnerbill.billing import bill_runs
from partnerbill.billing import creation as invoice_creation
from partnerbill.billing import service as billing_service
from partnerbill.billing import views as invoice_views
from partnerbill.core.db import metadata
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from tests.project.reference_tables import REFERENCE_TABLES

TENANT_TABLES = {
    table.name
    for table in metadata.tables.values()
    if "tenant_id" in table.c and table.name not in REFERENCE_TABLES
}

STATEMENTS: dict[str, Any] = {
    "account read by number": accounts_service._FIND_WITH_METRICS[0],
    "account read by id or number": accounts_service._FIND_WITH_METRICS[1],
    "account metrics read": metrics.READ_METRICS,
    "invoice read": invoice_views._INVOICE_BY_KEY,
    "invoice lock": billing_service._INVOICE_FOR_UPDATE,
    "partner invoice insert": invoice_creation._INSERT_INVOICES,
    "partner invoice guard": invoice_creation._GUARDED_ACCOUNTS,
    "bill-run cancel roll-back": bill_runs._ROLL_BACK_CHARGED_THROUGH,
    **{f"metrics fold {key}": statement for key, statement in metric_refresh._FOLD.items()},
}


def _sql(statement: Any) -> str:
    return str(statement.compile(dialect=postgresql.dialect(paramstyle="named")))


def _scope(node: exp.Expression) -> exp.Expression | None:
    """The statement or subquery `node` belongs to."""
    return node.find_ancestor(exp.Select, exp.Update, exp.Delete, exp.Insert)


def _tenant_column(node: exp.Expr) -> exp.Column | None:
    return node if isinstance(node, exp.Column) and node.name == "tenant_id" else None


def _parameter(node: exp.Expr) -> bool:
    return isinstance(node.this if isinstance(node, exp.Cast) else node, exp.Placeholder)


def _unbound_tables(sql: str) -> list[str]:
    """The tenant tables of `sql` whose tenant id is not bound within their own statement or
    subquery: `<table>.tenant_id = :parameter` there (an unqualified `tenant_id` where it is the
    only table), or an equality with the tenant id of a table bound there (a join, which Citus
    routes with it). A correlated `inner.tenant_id = outer.tenant_id` binds nothing."""
    tree = sqlglot.parse_one(sql, read="postgres")
    unbound = []
    for scope in {_scope(table) for table in tree.find_all(exp.Table)}:
        if scope is None or isinstance(scope, exp.Insert):
            continue  # inserted rows carry their tenant id as values
        tables = {t.alias_or_name: t.name for t in scope.find_all(exp.Table) if _scope(t) is scope}
        equalities = [eq for eq in scope.find_all(exp.EQ) if _scope(eq) is scope]
        bound = set()
        for eq in equalities:
            for side, other in ((eq.left, eq.right), (eq.right, eq.left)):
                column = _tenant_column(side)
                if column is not None and _parameter(other):
                    bound |= (
                        {column.table}
                        if column.table
                        else set(tables)
                        if len(tables) == 1
                        else set()
                    )
        joined = [
            (left.table, right.table)
            for eq in equalities
            if (left := _tenant_column(eq.left))
            and (right := _tenant_column(eq.right))
            and {left.table, right.table} <= set(tables)
        ]
        for _ in joined:
            bound |= {b for a, b in joined if a in bound} | {a for a, b in joined if b in bound}
        unbound += sorted(
            a for a, name in tables.items() if name in TENANT_TABLES and a not in bound
        )
    return sorted(unbound)


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_every_tenant_table_of_the_statement_binds_the_tenant_id(name: str) -> None:
    assert _unbound_tables(_sql(STATEMENTS[name])) == []


def test_a_tenant_id_only_correlated_is_found() -> None:
    """The check itself: the form the account read had before."""
    sql = (
        "SELECT a.id, (SELECT count(*) FROM metrics_changes m WHERE m.tenant_id = a.tenant_id "
        "AND m.account_id = a.id) FROM accounts a WHERE a.tenant_id = :tenant_id"
    )
    assert _unbound_tables(sql) == ["m"]
