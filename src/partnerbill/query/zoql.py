"""ZOQL and Export ZOQL: parsed by a grammar, checked against the catalogue, compiled to SQL.

`compile_zoql(text, export=False)` reads ZOQL, `export=True` Export ZOQL; either gives one
SELECT over the `zuora` views (unqualified names, run by the caller in `query_transaction`) whose
values are bind parameters only, never text of the query, and the output columns with their
names. Every name is looked up in the catalogue; anything else is a `ZoqlError` naming what is
wrong. The views and the query role are a second wall behind this one.

ZOQL: `select f1, f2 from Object [where ...]`. No joins, `*`, parentheses, `order by` or field
to field comparison; `= != < <= > >= like` and `= null` / `!= null`; `and` binds tighter than
`or`. Strings are quoted with `'` or `"`, a backslash escapes the next character (`\\'`). A
`like` pattern has at most one `%`, at its start or its end; `_` matches one character anywhere.

Export ZOQL: `select <Field | Rel.Field | Rel.* | * | agg(...) [as "alias"]> from Object
[where ...] [group by ...] [having ...] [order by x [asc|desc], ...] [limit n | limit off, n]`.
`is [not] null`, `and`/`or`/`not` with parentheses, field to field comparison, the aggregates
avg, count, max, min, sum (not nested). Strings are quoted with `'`, a quote is doubled (`''`).
`*` is the object's export fields (no foreign keys: `Account.Id` reaches those); `Rel.Field`
joins the parent (a LEFT JOIN: a child without one still shows), a relation used several times
joins once. Only export fields may be named.

Both: keywords and names are case-insensitive, string values case-sensitive. Literals are read
as the compared field's type: a date `YYYY-MM-DD`; a datetime ISO 8601 `YYYY-MM-DDThh:mm:ss`
with optional fraction and `Z` or `±hh:mm` offset, or a date (its midnight); numbers exact
(`Decimal`); booleans `true`/`false`.

Decisions where Zuora is silent or we differ on purpose:
- A datetime with a space instead of the `T` (`'2026-08-01 00:00:00'`) is an error: Zuora
  silently drops such a predicate and returns the whole table.
- A datetime or a date compared with a datetime field, written without an offset, is UTC.
- At most 20,000 characters and 200 conditions in both dialects (Zuora documents the first for
  Export ZOQL, the second for ZOQL); at most 32 levels of parentheses and `not`; relations at
  most two deep (`Account.BillToContact.FirstName` from Invoice); at most 5 `group by` fields.
- ZOQL reaches every catalogue object, the Orders and settlement objects included.
- An unknown object answers Zuora's "The requested data source could not be found" in both
  dialects, as an unknown relation does, followed by the name.
- A number compared with a text field, or a text with a number field that is not a number, is
  an error rather than a conversion; so is a field compared with a field of another kind (a
  date with a datetime, a text with a number).
- A base field may be qualified with its object's name (`Account.Name` from Account, as the
  headers with query labels name it), unless the object has a relation of that name.
- Export ZOQL compares with null only as `is [not] null`: `= null` is an error saying so.
- `!=` is SQL's: a null field matches neither `= x` nor `!= x`. `like` is case-sensitive, and a
  backslash in its pattern is a plain character. Nulls sort last ascending, first descending.
- `count(Field)` counts the rows where the field is not null; `sum` and `avg` take numbers only
  (and give decimals), `min` and `max` any type but boolean. A query with an aggregate or
  `group by` names every other selected, `having` or `order by` field in its `group by`.
- An output column has three names: `api_name` (`AccountNumber` for the base object's field,
  `Account.AccountNumber` for a related one), `qualified` (`Account.AccountNumber` for both),
  and `label` (`Account: Account Number`; a related field is labelled with its relation's
  words, `Bill To Contact: First Name`); an aggregate or an aliased column is its alias in all
  three, an aggregate without one its text (`count(*)`, `sum(Amount)`).
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NoReturn

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from partnerbill.query.catalog import Field, FieldType, QueryObject, by_name

MAX_LENGTH = 20_000
MAX_CONDITIONS = 200
MAX_NESTING = 32
MAX_RELATION_DEPTH = 2
MAX_GROUP_BY = 5
MAX_ALIAS_LENGTH = 255
MAX_BIGINT = 2**63 - 1
NO_SUCH_DATA_SOURCE = "The requested data source could not be found"


class ZoqlError(Exception):
    """A query that cannot run: the message says what and where, in the query's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class OutputColumn:
    api_name: str  # "Name", "Account.AccountNumber", an alias
    label: str  # "Account: Account Number"
    type: FieldType
    qualified: str = ""  # "Account.Name": the object named even for a base field


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    sql: str
    params: dict[str, object]
    columns: list[OutputColumn]
    source: str = ""  # the base object's API name (`Invoice`)


_COMMON = r"""
    NAME: /[A-Za-z_][A-Za-z0-9_]*/
    NUMBER: /[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)/
    COMPARE: "=" | "!=" | "<=" | ">=" | "<" | ">"
    TRUE: "true"i
    FALSE: "false"i
    %import common.WS
    %ignore WS
"""

# ZOQL: a flat list of fields, conditions joined by and/or (and first), no parentheses.
ZOQL_GRAMMAR = (
    r"""
    start: "select"i NAME ("," NAME)* "from"i NAME ("where"i or_cond)?
    or_cond: and_cond ("or"i and_cond)*
    and_cond: comparison ("and"i comparison)*
    comparison: NAME COMPARE value      -> compare
              | NAME "like"i STRING     -> like
    value: STRING | NUMBER | TRUE | FALSE | NULL
    STRING: /'(?:[^'\\]|\\.)*'/s | /"(?:[^"\\]|\\.)*"/s
    NULL: "null"i
    """
    + _COMMON
)

# Export ZOQL. `dotted` is left-recursive so that `Account.*` and `Account.Name` share a prefix.
EXPORT_GRAMMAR = (
    r"""
    start: select_clause "from"i NAME where? group? having? order? limit?
    select_clause: "select"i item ("," item)*
    item: STAR                       -> star
        | dotted "." STAR            -> relation_star
        | (dotted | aggregate) alias? -> selected
    alias: "as"i (QUOTED_NAME | NAME)
    dotted: NAME | dotted "." NAME
    aggregate: COUNT "(" (STAR | dotted) ")" | (AVG | MAX | MIN | SUM) "(" dotted ")"
    where: "where"i or_cond
    group: "group"i "by"i dotted ("," dotted)*
    having: "having"i or_cond
    order: "order"i "by"i order_item ("," order_item)*
    order_item: (dotted | aggregate | QUOTED_NAME) DIRECTION?
    limit: "limit"i INTEGER ("," INTEGER)?
    or_cond: and_cond ("or"i and_cond)*
    and_cond: not_cond ("and"i not_cond)*
    not_cond: NOT not_cond | "(" or_cond ")" | comparison
    comparison: operand COMPARE operand         -> compare
              | operand "like"i STRING          -> like
              | operand "is"i NOT? NULL          -> is_null
    operand: dotted | aggregate | STRING | NUMBER | TRUE | FALSE | NULL
    STAR: "*"
    NULL: "null"i
    NOT: "not"i
    COUNT: "count"i
    AVG: "avg"i
    MAX: "max"i
    MIN: "min"i
    SUM: "sum"i
    DIRECTION: ASC | DESC
    ASC: "asc"i
    DESC: "desc"i
    INTEGER: /[0-9]+/
    STRING: /'(?:[^']|'')*'/
    QUOTED_NAME: /"[^"]*"/
    """
    + _COMMON
)

_ZOQL = Lark(ZOQL_GRAMMAR, parser="lalr", lexer="contextual")
_EXPORT = Lark(EXPORT_GRAMMAR, parser="lalr", lexer="contextual")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(Z|[+-]\d{2}:\d{2})?",
    re.ASCII | re.IGNORECASE,
)
_SPACED_DATETIME = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}", re.ASCII)
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*", re.ASCII)
_NUMERIC = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
_TEXTUAL = frozenset({FieldType.TEXT, FieldType.PICKLIST})
_ORDERED_OPERATORS = frozenset({"<", "<=", ">", ">="})
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SQL_OPERATOR = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _kind(type_: FieldType) -> str:
    """Types that compare with each other share a kind."""
    if type_ in _NUMERIC:
        return "number"
    if type_ in _TEXTUAL:
        return "text"
    return type_.value


def relation_label(name: str) -> str:
    """A relation's label (`BillToContact` → `Bill To Contact`), as headers and describe show it."""
    return " ".join(re.findall(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z][a-z0-9]*|[0-9]+", name)) or name


@dataclass(frozen=True, slots=True)
class _Value:
    """A compiled operand: its SQL, its type, and whether it is an aggregate."""

    sql: str
    type: FieldType
    aggregate: bool = False
    text: str = ""  # the canonical name (`Account.Name`, `sum(Amount)`)
    label: str = ""
    qualified: str = ""


@dataclass
class _Compiler:
    base: QueryObject
    export: bool
    updated_since: datetime | None = None
    params: dict[str, object] = field(default_factory=dict)
    joins: dict[tuple[str, ...], tuple[str, QueryObject]] = field(default_factory=dict)
    join_sql: list[str] = field(default_factory=list)
    conditions: int = 0
    having_fields: set[str] = field(default_factory=set)  # fields named outside aggregates

    # -- names ----------------------------------------------------------------------------

    def bind(self, value: object, type_: FieldType) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {type_.postgres})"

    def join(self, relations: list[str]) -> tuple[str, QueryObject, list[str]]:
        """The alias and object reached through `relations` (joined once), and their names as
        the catalogue spells them."""
        own = relations and relations[0].lower() == self.base.name.lower()
        if own and self.base.relation(relations[0]) is None:
            relations = relations[1:]  # `Account.Name` from Account is its own `Name`
        if len(relations) > MAX_RELATION_DEPTH:
            fail(
                f"{'.'.join(relations)}: relations are at most {MAX_RELATION_DEPTH} deep in a query"
            )
        alias, obj = "t0", self.base
        canonical: list[str] = []
        for name in relations:
            relation = obj.relation(name)
            target = by_name(relation.target) if relation else None
            if relation is None or target is None:
                fail(f"{NO_SUCH_DATA_SOURCE}: {'.'.join([*canonical, name])}")
            canonical.append(relation.name)
            path = tuple(r.lower() for r in canonical)
            if path not in self.joins:
                joined = f"t{len(self.joins) + 1}"
                self.joins[path] = (joined, target)
                self.join_sql.append(
                    f"LEFT JOIN {target.table} AS {joined}"
                    f" ON {joined}.id = {alias}.{relation.column}"
                )
            alias, obj = self.joins[path]
        return alias, obj, canonical

    def field_value(self, alias: str, obj: QueryObject, canonical: list[str], f: Field) -> _Value:
        if self.export and not f.export:
            via = next((r.name for r in obj.relations if r.column == f.column), None)
            hint = f" (select {'.'.join([*canonical, via])}.Id)" if via else ""
            fail(f"Field {'.'.join([*canonical, f.name])} cannot be exported{hint}")
        owner_label = relation_label(canonical[-1]) if canonical else obj.display_label
        owner = canonical[-1] if canonical else obj.name
        return _Value(
            sql=f"{alias}.{f.column}",
            type=f.type,
            text=".".join([*canonical, f.name]),
            label=f"{owner_label}: {f.display_label}",
            qualified=".".join([*canonical, f.name]) if canonical else f"{owner}.{f.name}",
        )

    def path(self, names: list[str]) -> _Value:
        alias, obj, canonical = self.join(names[:-1])
        f = obj.field(names[-1])
        if f is None:
            fail(f"Invalid field for query: {'.'.join([*(canonical or [obj.name]), names[-1]])}")
        return self.field_value(alias, obj, canonical, f)

    def star(self, relations: list[str]) -> list[_Value]:
        alias, obj, canonical = self.join(relations)
        return [self.field_value(alias, obj, canonical, f) for f in obj.fields if f.export]

    # -- literals -------------------------------------------------------------------------

    def literal(self, token: Token, type_: FieldType, subject: str, *, export: bool) -> str:
        """A bind parameter holding `token` read as `type_` (the compared field's)."""
        kind = token.type
        if kind == "TRUE" or kind == "FALSE":
            if type_ is not FieldType.BOOLEAN:
                fail(f"{subject} is {type_.value}: it cannot be compared with {token.value}")
            return self.bind(kind == "TRUE", type_)
        if kind == "NUMBER":
            if type_ not in _NUMERIC:
                fail(
                    f"{subject} is {type_.value}: compare it with a quoted value, not {token.value}"
                )
            return self.bind(_number(token.value, subject), FieldType.DECIMAL)
        text = _unquote(token.value, export=export)
        if type_ in _TEXTUAL:
            return self.bind(text, type_)
        if type_ is FieldType.BOOLEAN:
            if text.lower() not in ("true", "false"):
                fail(f"{subject} is boolean: {_show(text)} is neither true nor false")
            return self.bind(text.lower() == "true", type_)
        if type_ in _NUMERIC:
            return self.bind(_number(text, subject), FieldType.DECIMAL)
        if type_ is FieldType.DATE:
            return self.bind(_date(text, subject), type_)
        return self.bind(_datetime(text, subject), type_)


def fail(message: str) -> NoReturn:
    raise ZoqlError(message)


def _show(text: str) -> str:
    """A value quoted in a message, cut short."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _unquote(quoted: str, *, export: bool) -> str:
    body = quoted[1:-1]
    if export:
        return body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body, flags=re.DOTALL)


def _number(text: str, subject: str) -> Decimal:
    """Exact; compared as numeric even with an integer field (`BillCycleDay > 1.5`)."""
    if not _NUMBER.fullmatch(text):
        fail(f"{subject} is a number: {_show(text)} is not one")
    return Decimal(text.strip())


def _date(text: str, subject: str) -> date:
    if _DATETIME.fullmatch(text) or _SPACED_DATETIME.match(text):
        fail(f"{subject} is a date: write {_show(text)} as YYYY-MM-DD")
    if not _DATE.fullmatch(text):
        fail(f"{subject} is a date: {_show(text)} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{subject} is a date: {_show(text)} is not a date")


def _datetime(text: str, subject: str) -> datetime:
    if _SPACED_DATETIME.match(text):
        fail(
            f"{subject} is a datetime: write {_show(text)} in ISO 8601 with a T between the"
            " date and the time (2026-08-01T00:00:00Z)"
        )
    if _DATE.fullmatch(text):
        try:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        except ValueError:
            fail(f"{subject} is a datetime: {_show(text)} is not a date")
    match = _DATETIME.fullmatch(text)
    if match is None:
        fail(
            f"{subject} is a datetime: {_show(text)} is not ISO 8601"
            " (YYYY-MM-DDThh:mm:ss, with Z or ±hh:mm)"
        )
    day, time, offset = match.groups()
    zone = "+00:00" if offset is None or offset.upper() == "Z" else offset
    try:
        # In UTC it must still fall in years 1 to 9999, as every datetime read back does.
        return datetime.fromisoformat(f"{day}T{time}{zone}").astimezone(UTC)
    except (ValueError, OverflowError):
        fail(f"{subject} is a datetime: {_show(text)} is not a valid date and time")


def _names(node: Tree[Any]) -> list[str]:
    """The names of a `dotted` node, read without recursion (`a.b.c` nests to the left)."""
    names: list[str] = []
    while True:
        names.append(str(node.children[-1]))
        if len(node.children) == 1:
            break
        node = node.children[0]
    return names[::-1]


def _parse(parser: Lark, text: str) -> Tree[Any]:
    if len(text) > MAX_LENGTH:
        fail(f"The query is {len(text)} characters long: at most {MAX_LENGTH:,} are allowed")
    if "\x00" in text:
        fail("The query contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        fail("The query is not valid Unicode text")
    try:
        return parser.parse(text)
    except UnexpectedEOF:
        fail("There is a syntax error in the query: it ends too early")
    except UnexpectedCharacters as error:
        fail(
            f"There is a syntax error in the query at line {error.line} column {error.column}:"
            f" unexpected {_show(text[error.pos_in_stream or 0 :][:20])}"
        )
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        if token is None or token.type == "$END":
            fail("There is a syntax error in the query: it ends too early")
        fail(
            f"There is a syntax error in the query at line {token.line} column {token.column}:"
            f" unexpected {_show(str(token))}"
        )
    except (LarkError, RecursionError):
        fail("There is a syntax error in the query")


def _object(name: str) -> QueryObject:
    obj = by_name(name)
    if obj is None:
        fail(f"{NO_SUCH_DATA_SOURCE}: {name}")
    return obj


def compile_zoql(
    text: str, *, export: bool, updated_since: datetime | None = None
) -> CompiledQuery:
    """The SQL of ZOQL (`export=False`) or Export ZOQL `text`; `ZoqlError` if it cannot run.
    `updated_since` (an aware datetime) keeps only the base object's rows updated after it, as
    an incremental (stateful AQuA) run reads them."""
    assert updated_since is None or updated_since.tzinfo is not None
    if export:
        return _compile_export(_parse(_EXPORT, text), updated_since)
    return _compile_zoql(_parse(_ZOQL, text), updated_since)


# -- ZOQL ---------------------------------------------------------------------------------


def _compile_zoql(tree: Tree[Any], updated_since: datetime | None) -> CompiledQuery:
    tokens = [c for c in tree.children if isinstance(c, Token)]
    condition = next((c for c in tree.children if isinstance(c, Tree)), None)
    base = _object(str(tokens[-1]))
    compiler = _Compiler(base, export=False, updated_since=updated_since)
    columns = [compiler.path([str(t)]) for t in tokens[:-1]]
    where = _zoql_condition(compiler, condition) if condition is not None else None
    return _assemble(compiler, columns, where=where)


def _zoql_condition(compiler: _Compiler, or_cond: Tree[Any]) -> str:
    alternatives = []
    for and_cond in or_cond.children:
        terms = [_zoql_comparison(compiler, c) for c in and_cond.children]
        alternatives.append(" AND ".join(terms))
    if len(alternatives) == 1:
        return alternatives[0]
    return " OR ".join(f"({a})" for a in alternatives)


def _count_condition(compiler: _Compiler) -> None:
    compiler.conditions += 1
    if compiler.conditions > MAX_CONDITIONS:
        fail(f"The query has more than {MAX_CONDITIONS} conditions")


def _zoql_comparison(compiler: _Compiler, node: Tree[Any]) -> str:
    _count_condition(compiler)
    name, *rest = node.children
    subject = compiler.path([str(name)])
    if node.data == "like":
        pattern = _unquote(str(rest[0]), export=False)
        percents = pattern.count("%")
        if percents > 1 or (percents == 1 and not (pattern[0] == "%" or pattern[-1] == "%")):
            fail(
                f"like {_show(pattern)}: ZOQL allows one % only, at the start or the end"
                " of the pattern"
            )
        return _like(compiler, subject, pattern)
    operator, value = rest
    token = value.children[0]
    assert isinstance(token, Token)
    if token.type == "NULL":
        if operator == "=":
            return f"{subject.sql} IS NULL"
        if operator == "!=":
            return f"{subject.sql} IS NOT NULL"
        fail(f"{subject.text} {operator} null: null is compared with = or != only")
    _check_operator(subject, str(operator))
    parameter = compiler.literal(token, subject.type, subject.text, export=False)
    return f"{subject.sql} {_SQL_OPERATOR[str(operator)]} {parameter}"


def _check_operator(subject: _Value, operator: str) -> None:
    if subject.type is FieldType.BOOLEAN and operator in _ORDERED_OPERATORS:
        fail(f"{subject.text} is boolean: compare it with = or != only")


def _like(compiler: _Compiler, subject: _Value, pattern: str) -> str:
    if subject.type not in _TEXTUAL:
        fail(f"{subject.text} is {subject.type.value}: like applies to text fields only")
    # A backslash is PostgreSQL's LIKE escape; in a ZOQL pattern it is a plain character.
    parameter = compiler.bind(pattern.replace("\\", "\\\\"), FieldType.TEXT)
    return f"{subject.sql} LIKE {parameter}"


# -- Export ZOQL --------------------------------------------------------------------------


@dataclass
class _Selected:
    value: _Value
    alias: str | None = None


def _compile_export(tree: Tree[Any], updated_since: datetime | None) -> CompiledQuery:
    select_clause, name, *clauses = tree.children
    compiler = _Compiler(_object(str(name)), export=True, updated_since=updated_since)
    selected = _select_items(compiler, select_clause)
    aliases = {s.alias.lower(): s.value for s in selected if s.alias is not None}
    parts = {c.data: c for c in clauses}

    where = None
    if "where" in parts:
        where = _condition(compiler, parts["where"].children[0], having=False, depth=0)

    groups: list[_Value] = []
    if "group" in parts:
        group_nodes = parts["group"].children
        if len(group_nodes) > MAX_GROUP_BY:
            fail(f"group by takes at most {MAX_GROUP_BY} fields")
        groups = [compiler.path(_names(g)) for g in group_nodes]
    grouped = bool(groups) or any(s.value.aggregate for s in selected)
    group_sql = {g.sql for g in groups}
    if grouped:
        for s in selected:
            if not s.value.aggregate and s.value.sql not in group_sql:
                fail(f"{s.value.text} must be in group by, or inside an aggregate function")

    having = None
    if "having" in parts:
        if not grouped:
            fail("having needs group by or an aggregate function")
        having = _condition(compiler, parts["having"].children[0], having=True, depth=0)
        if compiler.having_fields - group_sql:
            fail("having names a field that is not in group by")

    order: list[str] = []
    if "order" in parts:
        for item in parts["order"].children:
            target, *direction = item.children
            if isinstance(target, Token):  # a quoted alias
                value = aliases.get(target[1:-1].lower())
                if value is None:
                    fail(f"order by {target}: no column has that alias")
            elif (
                target.data == "dotted"
                and len(target.children) == 1
                and (str(target.children[0]).lower() in aliases)
            ):
                value = aliases[str(target.children[0]).lower()]
            else:
                value = _operand_value(compiler, target, aggregates=True)
            if value.aggregate and not grouped:
                fail(f"order by {value.text}: an aggregate orders a grouped query only")
            if grouped and not value.aggregate and value.sql not in group_sql:
                fail(f"order by {value.text}: it must be in group by or an aggregate")
            way = " DESC" if direction and str(direction[0]).lower() == "desc" else " ASC"
            order.append(value.sql + way)

    limit = offset = None
    if "limit" in parts:
        digits = [str(n).lstrip("0") or "0" for n in parts["limit"].children]
        # Compared as text first: int() refuses very long digit strings.
        if any(len(d) > len(str(MAX_BIGINT)) or int(d) > MAX_BIGINT for d in digits):
            fail("limit is too large")
        numbers = [int(d) for d in digits]
        if len(numbers) == 2:
            offset, limit = numbers
        else:
            (limit,) = numbers

    return _assemble(
        compiler,
        [s.value for s in selected],
        aliases=[s.alias for s in selected],
        where=where,
        groups=[g.sql for g in groups],
        having=having,
        order=order,
        limit=limit,
        offset=offset,
    )


def _select_items(compiler: _Compiler, select_clause: Tree[Any]) -> list[_Selected]:
    selected: list[_Selected] = []
    seen_aliases: set[str] = set()
    for item in select_clause.children:
        if item.data == "star":
            selected.extend(_Selected(v) for v in compiler.star([]))
        elif item.data == "relation_star":
            selected.extend(_Selected(v) for v in compiler.star(_names(item.children[0])))
        else:
            target, *alias_node = item.children
            value = _operand_value(compiler, target, aggregates=True)
            alias = None
            if alias_node:
                raw = str(alias_node[0].children[0])
                alias = raw[1:-1] if raw.startswith('"') else raw
                if not alias.strip():
                    fail("An alias cannot be empty")
                if len(alias) > MAX_ALIAS_LENGTH or not alias.isprintable():
                    fail(
                        f"An alias is at most {MAX_ALIAS_LENGTH} printable characters:"
                        f" {_show(alias)}"
                    )
                if alias.lower() in seen_aliases:
                    fail(f'The alias "{alias}" is used twice')
                seen_aliases.add(alias.lower())
            selected.append(_Selected(value, alias))
    return selected


def _operand_value(compiler: _Compiler, node: Tree[Any], *, aggregates: bool) -> _Value:
    """A `dotted` field or an `aggregate` (allowed in select, having and order by only)."""
    if node.data == "dotted":
        return compiler.path(_names(node))
    if not aggregates:
        fail("An aggregate function cannot be used in where; use having")
    function, argument = node.children
    name = str(function).lower()
    if isinstance(argument, Token):  # count(*)
        return _Value("count(*)", FieldType.INTEGER, True, "count(*)", "count(*)", "count(*)")
    inner = compiler.path(_names(argument))
    text = f"{name}({inner.text})"
    if name == "count":
        return _Value(f"count({inner.sql})", FieldType.INTEGER, True, text, text, text)
    if name in ("sum", "avg"):
        if inner.type not in _NUMERIC:
            fail(f"{text}: {name} applies to number fields only")
        return _Value(f"{name}({inner.sql})", FieldType.DECIMAL, True, text, text, text)
    if inner.type is FieldType.BOOLEAN:
        fail(f"{text}: {name} does not apply to boolean fields")
    return _Value(f"{name}({inner.sql})", inner.type, True, text, text, text)


def _condition(compiler: _Compiler, node: Tree[Any], *, having: bool, depth: int) -> str:
    if depth > MAX_NESTING:
        fail(f"The query nests parentheses and not more than {MAX_NESTING} deep")
    if node.data == "or_cond":
        parts = [_condition(compiler, c, having=having, depth=depth) for c in node.children]
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    if node.data == "and_cond":
        parts = [_condition(compiler, c, having=having, depth=depth) for c in node.children]
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
    if node.data == "not_cond":
        first = node.children[0]
        if isinstance(first, Token):  # not ...
            inner = _condition(compiler, node.children[1], having=having, depth=depth + 1)
            return f"(NOT {inner})"
        return _condition(compiler, first, having=having, depth=depth + 1)
    return _comparison(compiler, node, having=having)


def _operand(compiler: _Compiler, node: Tree[Any], *, having: bool) -> _Value | Token:
    child = node.children[0]
    if isinstance(child, Token):
        return child
    value = _operand_value(compiler, child, aggregates=having)
    if having and not value.aggregate:
        compiler.having_fields.add(value.sql)
    return value


def _comparison(compiler: _Compiler, node: Tree[Any], *, having: bool) -> str:
    _count_condition(compiler)
    left = _operand(compiler, node.children[0], having=having)
    if node.data == "is_null":
        if not isinstance(left, _Value):
            fail(f"is null applies to a field, not to {left.value}")
        negated = len(node.children) == 3
        return f"{left.sql} IS {'NOT ' if negated else ''}NULL"
    if node.data == "like":
        if not isinstance(left, _Value):
            fail(f"like applies to a field, not to {left.value}")
        return _like(compiler, left, _unquote(str(node.children[1]), export=True))
    operator = str(node.children[1])
    right = _operand(compiler, node.children[2], having=having)
    if any(isinstance(side, Token) and side.type == "NULL" for side in (left, right)):
        fail("Compare with null as is null or is not null")
    if isinstance(left, Token):
        if isinstance(right, Token):
            fail(f"{left.value} {operator} {right.value}: a comparison needs a field")
        left, right, operator = right, left, _FLIPPED[operator]
    assert isinstance(left, _Value)
    _check_operator(left, operator)
    if isinstance(right, _Value):
        if _kind(left.type) != _kind(right.type):
            fail(
                f"{left.text} ({left.type.value}) cannot be compared with"
                f" {right.text} ({right.type.value})"
            )
        _check_operator(right, operator)
        return f"{left.sql} {_SQL_OPERATOR[operator]} {right.sql}"
    parameter = compiler.literal(right, left.type, left.text, export=True)
    return f"{left.sql} {_SQL_OPERATOR[operator]} {parameter}"


# -- SQL ----------------------------------------------------------------------------------


def _assemble(
    compiler: _Compiler,
    values: list[_Value],
    *,
    aliases: list[str | None] | None = None,
    where: str | None = None,
    groups: list[str] | None = None,
    having: str | None = None,
    order: list[str] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> CompiledQuery:
    aliases = aliases or [None] * len(values)
    columns = [
        OutputColumn(alias, alias, v.type, alias)
        if alias is not None
        else OutputColumn(v.text, v.label, v.type, v.qualified)
        for v, alias in zip(values, aliases, strict=True)
    ]
    select = ", ".join(f"{v.sql} AS c{i}" for i, v in enumerate(values))
    sql = [f"SELECT {select}", f"FROM {compiler.base.table} AS t0", *compiler.join_sql]
    if compiler.updated_since is not None:
        compiler.params["updated_since"] = compiler.updated_since
        since = "t0.updateddate > CAST(:updated_since AS timestamptz)"
        where = f"{since} AND ({where})" if where else since
    if where:
        sql.append(f"WHERE {where}")
    if groups:
        sql.append("GROUP BY " + ", ".join(groups))
    if having:
        sql.append(f"HAVING {having}")
    if order:
        sql.append("ORDER BY " + ", ".join(order))
    if limit is not None:
        compiler.params["limit"] = limit
        sql.append("LIMIT :limit")
    if offset is not None:
        compiler.params["offset"] = offset
        sql.append("OFFSET :offset")
    return CompiledQuery("\n".join(sql), compiler.params, columns, compiler.base.name)
