"""Data Query's SQL: Trino-dialect text checked against the catalogue and written as PostgreSQL.

A query is one read-only statement: a SELECT (or UNION / INTERSECT / EXCEPT of them, WITH
clauses allowed), or one of the catalogue listings `SHOW TABLES [LIKE 'pattern']`,
`SHOW COLUMNS FROM|IN t`, `DESCRIBE t`, `DESC t` (answered from the catalogue, never the
database: DESCRIBE's rows are Column, Type (the Trino type), Extra (empty), Comment (the API
name)). Anything else fails, with a message naming the problem:

- a second statement (`select 1; drop table accounts`), whatever comments hide it;
- any statement or clause that is not a read: INSERT, UPDATE, DELETE, MERGE, CREATE, DROP,
  ALTER, SET, `SELECT ... INTO`, `FOR UPDATE`, bind parameters;
- a table outside the catalogue (`pg_class`), a schema- or catalog-qualified name
  (`public.accounts`, `pg_catalog.pg_user`, `zuora.account`); a WITH name is a table only to
  the query under that WITH;
- a column no table of its scope has ("Column 'x' cannot be resolved"), through aliases; a
  column or function named through a schema (`zuora.account.id`, `pg_catalog.upper(x)`);
- a function outside the allow-list below (`pg_read_file`, `set_config`, `version()`...) or a
  cast to a type outside the Trino types listed; a query nested too deeply to check.

Trino functions PostgreSQL lacks are written as PostgreSQL's equivalent (`date_diff`,
`count_if`, `date_format`...; `at_timezone(ts, zone)` is `ts AT TIME ZONE zone`, the local time
without its zone; `to_uuid32` / `to_uuid36` take the dashes out or put them in). `SHOW
FUNCTIONS` is not supported.

Names are case-insensitive, as in Trino: `Account`, `ACCOUNT` and `account` are one table; a
result column is named as Trino names it (the column or alias, `_colN` for an expression).
The PostgreSQL written reads the `zuora` views by qualified name, so no other relation (not
even a system catalog on the search path) can answer for a catalogue table.

Row limit: a query may return at most `max_rows` rows (500,000 by default: Zuora's limit for
live data). A LIMIT above that (or none) becomes `max_rows + 1`, so the job can tell a result
that is too big (and fail it) from one that fits, without reading more.
"""

import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from partnerbill.query import catalog
from partnerbill.query.views import SCHEMA

# Zuora's limit on a query submitted through the API.
MAX_QUERY_CHARS = 1_000_000
DIALECT = "trino"

# Functions by sqlglot's node type: each one's PostgreSQL form is a plain builtin of the same
# meaning (the tests run every one of them).
# Expr: what sqlglot's node classes (functions and operators alike) derive from.
ALLOWED_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        # aggregates
        exp.Count,
        exp.Sum,
        exp.Avg,
        exp.Min,
        exp.Max,
        exp.CountIf,
        exp.LogicalOr,
        exp.LogicalAnd,
        exp.ArrayAgg,
        exp.GroupConcat,
        exp.Stddev,
        exp.StddevPop,
        exp.StddevSamp,
        exp.Variance,
        exp.VariancePop,
        # conditionals and casts
        exp.Case,
        exp.If,
        exp.Coalesce,
        exp.Nullif,
        exp.Greatest,
        exp.Least,
        exp.Cast,
        exp.TryCast,
        exp.And,
        exp.Or,
        exp.Exists,
        # strings
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Substring,
        exp.Trim,
        exp.Concat,
        exp.ConcatWs,
        exp.Replace,
        exp.StrPosition,
        exp.SplitPart,
        exp.Pad,
        exp.Reverse,
        exp.StartsWith,
        exp.RegexpLike,
        exp.RegexpReplace,
        # math
        exp.Abs,
        exp.Round,
        exp.Floor,
        exp.Ceil,
        exp.Sign,
        exp.Sqrt,
        exp.Pow,
        exp.Exp,
        exp.Ln,
        exp.Mod,
        # dates and times
        exp.CurrentDate,
        exp.CurrentTimestamp,
        exp.Extract,
        exp.TimestampTrunc,
        exp.DateAdd,
        exp.DateDiff,
        exp.Date,
        exp.Year,
        exp.Month,
        exp.Day,
        exp.LastDay,
        exp.TimeToStr,
        exp.StrToTime,
        exp.UnixToTime,
        exp.TimeToUnix,
        exp.FromISO8601Date,
        # window functions
        exp.RowNumber,
        exp.Rank,
        exp.DenseRank,
        exp.Lag,
        exp.Lead,
        exp.FirstValue,
        exp.LastValue,
        exp.NthValue,
        exp.Ntile,
        exp.PercentRank,
        exp.CumeDist,
        # arrays, for IN lists and UNNEST
        exp.Array,
        exp.Unnest,
    }
)


def _at_timezone(args: list[exp.Expression]) -> exp.Expression:
    """Trino's at_timezone(ts, zone): the local time in `zone` (a timestamp without zone)."""
    return exp.AtTimeZone(this=args[0], zone=args[1])


def _to_uuid32(args: list[exp.Expression]) -> exp.Expression:
    return exp.Replace(this=args[0], expression=exp.Literal.string("-"), replacement=_empty())


def _to_uuid36(args: list[exp.Expression]) -> exp.Expression:
    digits = _to_uuid32(args)
    return exp.Anonymous(
        this="regexp_replace",
        expressions=[
            digits,
            exp.Literal.string("^(.{8})(.{4})(.{4})(.{4})(.{12})$"),
            exp.Literal.string(r"\1-\2-\3-\4-\5"),
        ],
    )


def _empty() -> exp.Literal:
    return exp.Literal.string("")


# Functions sqlglot does not know, by name, with their PostgreSQL form and argument count.
TRANSLATED_FUNCTIONS: dict[str, tuple[int, Any]] = {
    "at_timezone": (2, _at_timezone),
    "to_uuid32": (1, _to_uuid32),
    "to_uuid36": (1, _to_uuid36),
}

ALLOWED_TYPES = frozenset(
    {
        exp.DataType.Type.BOOLEAN,
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPTZ,
    }
)

# Statements and clauses that are not a read, with the name a message gives them.
FORBIDDEN: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Into, "SELECT ... INTO"),
    (exp.Lock, "FOR UPDATE / FOR SHARE"),
    (exp.Placeholder, "A bind parameter"),
    (exp.Parameter, "A bind parameter"),
    (exp.SessionParameter, "A session parameter"),
    (exp.Insert, "INSERT"),
    (exp.Update, "UPDATE"),
    (exp.Delete, "DELETE"),
    (exp.Merge, "MERGE"),
    (exp.Create, "CREATE"),
    (exp.Drop, "DROP"),
    (exp.Alter, "ALTER"),
    (exp.TruncateTable, "TRUNCATE"),
    (exp.Set, "SET"),
    (exp.Command, "This statement"),
    (exp.Describe, "DESCRIBE"),
    (exp.Transaction, "A transaction statement"),
    (exp.Commit, "COMMIT"),
    (exp.Rollback, "ROLLBACK"),
    (exp.Use, "USE"),
    (exp.Copy, "COPY"),
    (exp.Grant, "GRANT"),
    (exp.Revoke, "REVOKE"),
)

LISTING_COLUMNS = ("Column", "Type", "Extra", "Comment")
_NAME = r'("(?:[^"]|"")+"|[A-Za-z_][\w.$]*)'
_SHOW_TABLES = re.compile(r"SHOW\s+TABLES(?:\s+LIKE\s+'((?:[^']|'')*)')?", re.IGNORECASE)
_SHOW_COLUMNS = re.compile(rf"SHOW\s+COLUMNS\s+(?:FROM|IN)\s+{_NAME}", re.IGNORECASE)
_DESCRIBE = re.compile(rf"(?:DESCRIBE|DESC)\s+{_NAME}", re.IGNORECASE)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_LISTING_START = re.compile(r"\s*(?:SHOW|DESCRIBE|DESC)\b", re.IGNORECASE)


class DataQueryError(Exception):
    """A query Data Query does not run; the message names the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Listing:
    """A catalogue listing's result, made without the database."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Translated:
    """A SELECT as PostgreSQL over the `zuora` views, to run in the query transaction."""

    sql: str


def translate(query: str, *, max_rows: int, read_deleted: bool = False) -> Listing | Translated:
    """Check `query` and give its result (a listing) or its PostgreSQL; raises DataQueryError.
    `read_deleted`: read only deleted rows, which no catalogue table has (each reads empty)."""
    if not query.strip():
        raise DataQueryError("The query is empty.")
    if len(query) > MAX_QUERY_CHARS:
        raise DataQueryError(f"The query is longer than {MAX_QUERY_CHARS} characters.")
    if _LISTING_START.match(_COMMENTS.sub(" ", query)):
        return _listing(query)
    try:
        return Translated(_select(query, max_rows, read_deleted))
    except RecursionError:
        raise DataQueryError("The query is nested too deeply.") from None


def schema() -> dict[str, object]:
    """The catalogue as sqlglot's schema: table → column → Trino type."""
    return {o.table: {f.column: f.type.trino for f in o.fields} for o in catalog.OBJECTS}


_SCHEMA = schema()


def _listing(query: str) -> Listing:
    text = _COMMENTS.sub(" ", query).strip().rstrip(";").strip()
    if match := _SHOW_TABLES.fullmatch(text):
        pattern = match.group(1)
        tables = sorted(o.table for o in catalog.OBJECTS)
        if pattern is not None:
            tables = [t for t in tables if _like(pattern.replace("''", "'"), t)]
        return Listing(("Table",), tuple((t,) for t in tables))
    match = _SHOW_COLUMNS.fullmatch(text) or _DESCRIBE.fullmatch(text)
    if match is None:
        raise DataQueryError(
            "Only SELECT queries, SHOW TABLES, SHOW COLUMNS FROM <table> and"
            " DESCRIBE <table> are supported."
        )
    name = match.group(1)
    name = name[1:-1].replace('""', '"') if name.startswith('"') else name
    obj = None if "." in name else catalog.by_table(name)
    if obj is None:
        raise DataQueryError(f"Table '{name}' does not exist")
    return Listing(
        LISTING_COLUMNS,
        tuple((f.column, f.type.trino, "", f.name) for f in obj.fields),
    )


def _like(pattern: str, value: str) -> bool:
    regex = "".join(
        ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.lower()
    )
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _parse(query: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(query, read=DIALECT) if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        near = first.get("highlight") or ""
        where = f"line {first.get('line', 1)}:{first.get('col', 1)}: "
        raise DataQueryError(f"{where}mismatched input '{near}'") from None
    except TokenError as error:
        raise DataQueryError(f"Syntax error: {error}") from None
    if not statements:
        raise DataQueryError("The query is empty.")
    if len(statements) > 1:
        raise DataQueryError(f"Only one statement can be run; the query has {len(statements)}.")
    root = statements[0]
    while isinstance(root, exp.Subquery) and not root.alias and root.args.get("limit") is None:
        root = root.this
    if not isinstance(root, exp.Select | exp.SetOperation):
        raise DataQueryError(f"{_forbidden_name(root)} is not supported: only SELECT queries run.")
    return root


def _forbidden_name(node: Any) -> str:
    return next((name for kind, name in FORBIDDEN if isinstance(node, kind)), node.key.upper())


def _check_nodes(root: exp.Expression) -> None:
    for node in root.walk():
        for kind, name in FORBIDDEN:
            if isinstance(node, kind):
                raise DataQueryError(f"{name} is not supported: only SELECT queries run.")
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            translated = TRANSLATED_FUNCTIONS.get(name)
            if translated is None:
                raise DataQueryError(f"Function '{node.name}' not registered")
            if len(node.expressions) != translated[0]:
                raise DataQueryError(
                    f"Function '{node.name}' takes {translated[0]} arguments,"
                    f" not {len(node.expressions)}"
                )
        elif isinstance(node, exp.Func) and type(node) not in ALLOWED_FUNCTIONS:
            raise DataQueryError(f"Function '{node.sql_name().lower()}' not registered")
        elif isinstance(node, exp.DataType) and node.this not in ALLOWED_TYPES:
            raise DataQueryError(f"Unknown type: {node.sql(DIALECT)}")
        elif isinstance(node, exp.Dot) or (
            isinstance(node, exp.Column) and (node.args.get("db") or node.args.get("catalog"))
        ):
            # `schema.table.column`, `schema.function()`: nothing but a table names a column
            raise DataQueryError(f"Column '{node.sql(DIALECT)}' cannot be resolved")


def _tables(root: exp.Expression) -> list[exp.Table]:
    """The query's references to catalogue tables (a WITH name's references excluded). Every
    table node must be one or the other: one scope analysis cannot place is refused."""
    catalogue: list[exp.Table] = []
    placed: set[int] = set()
    for scope in traverse_scope(root):
        for table in scope.tables:
            source = scope.sources.get(table.alias_or_name)
            if source is table:
                catalogue.append(table)
                placed.add(id(table))
            elif isinstance(source, Scope) and source.is_cte:
                placed.add(id(table))
    for table in root.find_all(exp.Table):
        if id(table) not in placed:
            raise DataQueryError(f"Table '{table.sql(DIALECT)}' does not exist")
    return catalogue


def _check_tables(tables: list[exp.Table]) -> None:
    for table in tables:
        if not isinstance(table.this, exp.Identifier):
            raise DataQueryError(f"Table '{table.sql(DIALECT)}' does not exist")
        if table.args.get("db") or table.args.get("catalog"):
            name = ".".join(part.name for part in table.parts)
            raise DataQueryError(f"Table '{name}' does not exist")
        if catalog.by_table(table.name) is None:
            raise DataQueryError(f"Table '{table.name}' does not exist")


def _translate_functions(root: exp.Expression) -> exp.Expression:
    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous):
            _, build = TRANSLATED_FUNCTIONS[node.name.lower()]
            built: exp.Expression = build(list(node.expressions))
            return built
        return node

    return root.transform(rewrite, copy=False)


_UNNAMED = re.compile(r"_col_(\d+)")
_PLACEHOLDER = "__partnerbill_col_"


def _name_outputs(root: exp.Expression) -> None:
    """Give every unnamed result expression a placeholder, replaced by `_colN` (its position)
    once stars are expanded: Trino names a column by its column or alias, else `_colN`."""
    first = root
    while isinstance(first, exp.SetOperation):
        first = first.this
    if not isinstance(first, exp.Select):
        return
    projections = []
    for i, projection in enumerate(first.expressions):
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star):
            projection = exp.alias_(projection, f"{_PLACEHOLDER}{i}", quoted=True)
        projections.append(projection)
    first.set("expressions", projections)


def _number_outputs(root: exp.Expression) -> None:
    first = root
    while isinstance(first, exp.SetOperation):
        first = first.this
    if not isinstance(first, exp.Select):
        return
    for i, projection in enumerate(first.expressions):
        if isinstance(projection, exp.Alias) and (
            projection.alias.startswith(_PLACEHOLDER) or _UNNAMED.fullmatch(projection.alias)
        ):
            projection.set("alias", exp.to_identifier(f"_col{i}", quoted=True))


def _clamp_limit(root: exp.Expression, max_rows: int) -> None:
    bound = max_rows + 1
    limit = root.args.get("limit")
    if root.args.get("fetch") is not None:
        return  # FETCH FIRST n ROWS: the job still stops reading at the limit
    if limit is None:
        root.set("limit", exp.Limit(expression=exp.Literal.number(bound)))
        return
    value = limit.expression
    if not (isinstance(value, exp.Literal) and value.is_int) or int(value.this) > bound:
        limit.set("expression", exp.Literal.number(bound))


def _select(query: str, max_rows: int, read_deleted: bool) -> str:
    root = _parse(query)
    _check_nodes(root)
    root = normalize_identifiers(root, dialect=DIALECT)
    _check_tables(_tables(root))
    _name_outputs(root)
    try:
        root = qualify(
            root,
            dialect=DIALECT,
            schema=_SCHEMA,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=True,
        )
    except OptimizeError as error:
        raise DataQueryError(_column_message(str(error))) from None
    except SqlglotError as error:
        raise DataQueryError(str(error)) from None
    _number_outputs(root)
    root = _translate_functions(root)
    for table in _tables(root):
        table.set("db", exp.to_identifier(SCHEMA, quoted=True))
        if read_deleted:
            alias = table.alias or table.name
            table.set("alias", None)
            empty = exp.select("*").from_(table.copy()).where(exp.false())
            table.replace(empty.subquery(exp.to_identifier(alias, quoted=True)))
    _clamp_limit(root, max_rows)
    return root.sql("postgres", unsupported_level=sqlglot.ErrorLevel.RAISE, comments=False)


_UNRESOLVED = re.compile(r"Column '([^']+)' could not be resolved")
_UNKNOWN = re.compile(r"Unknown column: (\S+)")


def _column_message(message: str) -> str:
    """sqlglot's message in Trino's words ("Column 'x' cannot be resolved")."""
    match = _UNRESOLVED.search(message) or _UNKNOWN.search(message)
    if match:
        return f"Column '{match.group(1)}' cannot be resolved"
    return message.split(". Line:")[0]
