"""Object Query: `GET /object-query/{objects}` and `/{objects}/{key}` over the query catalogue.

Rules (where Zuora is silent or contradicts itself, the choice made here):

- Parameter names are case-insensitive (`pagesize`, `Filter[]`), as Zuora's guide says; the
  brackets are optional (`fields=id`). A parameter this API does not know is a 400 naming it
  (a mistyped `filters[]` would otherwise silently list everything). The query string is read
  as sent: `+` is a plus sign, never a space (the SDK leaves a datetime's `+01:00` raw).
- `pageSize` 1 to 99, default 10. `fields[]`, `expand[]` take repeated or comma-separated
  values; `<object>.fields[]` names an expanded object by its path (`subscriptions.rateplans`)
  or its last name (`rateplans`). Output follows the catalogue's field order, not `fields[]`'s.
  `includeNullFields` (default false) keeps null fields; an expanded list is always present
  (`[]` when empty).
- `sort[]`: one `field.ASC|DESC` on a filterable field of the base object; the order always
  ends with `Id` in the same direction. The default is `UpdatedDate DESC, Id DESC`. Nulls come
  last ascending and first descending.
- `filter[]`: `field.OP:value`, at most 50 of them, ANDed; OP one of EQ NE LT GT LE GE SW
  IN (`IN:[a,b]`, at most 100 values). Values are typed by the field: dates `YYYY-MM-DD`,
  datetimes ISO 8601 (no offset means UTC; a bare date is its midnight UTC), booleans
  `true|false`, integers, exact decimals. `null` is SQL null (`EQ:null` is "is null",
  `NE:null` "is not null"); `%02%03` is the empty string. EQ, NE, IN and SW compare text
  case-insensitively; ids (the 32 lower-case hex characters every id is) are compared exactly
  after lower-casing the value, so the indexes serve them. NE matches null fields too (null is
  not equal to a value). LT/GT/LE/GE compare text case-sensitively in the database's order.
  SW is for text only, comparisons for every type but booleans. Beyond Zuora, accounts filter
  and sort on `partnerAccount` and `lastMetricsUpdate`.
- Those two fields belong to the Reseller Account feature: for a tenant that has it disabled,
  accounts (listed, by key, or expanded) have no such fields, and naming one in `fields[]`,
  `filter[]` or `sort[]` is a 400 saying the feature is disabled. A request showing accounts
  reads the tenant's switch first (one short read); the others never do.
- `cursor`/`nextPage`: base64 of the keyset as Zuora writes it, `[{"value": ..., "orderBy":
  {"field": "UpdatedDate", "order": "DESC"}}, {"value": "<id>", "orderBy": {"field": "Id",
  ...}}]`, PascalCase names, the exact stored values (datetimes to the microsecond). A cursor
  that is not one of ours, or belongs to another `sort[]`, is a 400 naming `cursor`. Pages are
  keyset ranges, never offsets: page 2,000 costs what page 1 does.
- A key (`/{objects}/{key}`) is the Id or the object's number, matched exactly. By key,
  `sort[]`, `filter[]` and `cursor` are refused (one object has no order or page); `pageSize`
  caps its expanded lists.
- Expanded lists are cut at `pageSize` per parent (Zuora's documented limit), newest first
  (the default order). Each expansion is one query for the whole page (a LATERAL join on the
  parents' keys), never one per parent.
- Answers: camelCase names, decimals as exact JSON numbers, dates `YYYY-MM-DD`, datetimes
  ISO 8601 in UTC written with `Z` (`2026-12-02T01:30:00Z`, the SDK's and Zuora's samples'
  form; a fraction of a second is kept when stored: `...:00.250000Z`). Errors are the v1
  envelope that also carries `code` and `message` at its top level (the SDK's
  CommonErrorResponse for Object Query), HTTP 400 for a bad parameter, 404 for an unknown key.

Reading: every statement is built here from the catalogue, values as bound parameters; no
client text ever becomes SQL. It reads Object Query's own views (`zuora_object_query`, the
`zuora` views' projections without the security barrier, so that a keyset page walks the index
in its order: `query/views.py`) in the query transaction, READ ONLY, as the role that can read
those views only, with the tenant bound; with expansions REPEATABLE READ, so the page and its
expansions see one snapshot.
PostgreSQL writes each object's JSON text (`to_json`: exact numbers, escaped text) and Python
only joins the texts, so a page of 99 costs about what a page of 1 does.
"""

import base64
import binascii
import json
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from fastapi import Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.db import autocommit
from partnerbill.core.errors import Resource, ZuoraError, invalid_value, not_found
from partnerbill.core.json import dumps, loads
from partnerbill.core.tenants import Tenant, get_settings
from partnerbill.query.catalog import (
    Expand,
    Field,
    FieldType,
    QueryObject,
    as_seen,
    by_name,
    has_reseller_account_fields,
)
from partnerbill.query.sandbox import query_transaction
from partnerbill.query.views import OBJECT_QUERY_VIEWS

# An API request's bound (the API processes' own statement timeout is the same).
READ_TIMEOUT_MS = 10_000
MAX_PAGE_SIZE = 99
DEFAULT_PAGE_SIZE = 10
MAX_IN_VALUES = 100
MAX_FILTERS = 50
MAX_EXPAND_DEPTH = 4  # orderactions.subscription.rateplans.rateplancharges
MAX_EXPANSIONS = 12
# One expansion of one page reads at most this many objects (99 accounts x 99 invoices x 99
# items would be a million): past it the request is a 400 asking for a smaller page.
MAX_EXPANDED_ROWS = 10_000
MAX_CURSOR_LENGTH = 4096
BIGINT = 2**63
EMPTY_STRING = "\x02\x03"  # Zuora's way to write '' in a filter

PAGE_SIZE, CURSOR, SORT, FILTER, FIELDS, EXPAND, INCLUDE_NULLS = (
    "pageSize",
    "cursor",
    "sort[]",
    "filter[]",
    "fields[]",
    "expand[]",
    "includeNullFields",
)
_PARAMETERS = (PAGE_SIZE, CURSOR, SORT, FILTER, FIELDS, EXPAND, INCLUDE_NULLS)
_NAMES = {name.lower().removesuffix("[]"): name for name in _PARAMETERS}
_KEYED_REFUSED = (SORT, FILTER, CURSOR)


class Op(StrEnum):
    EQ = "EQ"
    NE = "NE"
    LT = "LT"
    GT = "GT"
    LE = "LE"
    GE = "GE"
    SW = "SW"
    IN = "IN"


_COMPARISONS = {Op.LT: "<", Op.GT: ">", Op.LE: "<=", Op.GE: ">="}
_TEXT = (FieldType.TEXT, FieldType.PICKLIST)
# ASCII digits only (`\d` alone would take any script's).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d{1,19}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})", re.ASCII)
_PAGE_SIZE = re.compile(r"\d{1,3}", re.ASCII)
_FILTER = re.compile(r"(?P<field>[A-Za-z0-9_]+)\.(?P<op>[A-Za-z]+):(?P<value>.*)", re.DOTALL)


def bad(parameter: str, message: str) -> ZuoraError:
    return invalid_value(Resource.GENERIC, parameter, message)


# Values -------------------------------------------------------------------------------------


def parse_datetime(raw: str) -> datetime:
    """ISO 8601; no offset is UTC, a bare date its midnight UTC."""
    if _DATE.fullmatch(raw):
        return datetime.combine(date.fromisoformat(raw), time(), UTC)
    if not _DATETIME.fullmatch(raw):
        raise ValueError("a datetime is ISO 8601 (2026-01-31T12:00:00Z)")
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_value(field: Field, raw: str) -> object:
    """The typed value of a filter's text for `field` (ValueError when it is not one)."""
    kind = field.type
    if kind in _TEXT:
        return "" if raw == EMPTY_STRING else raw
    if kind is FieldType.BOOLEAN:
        if raw.lower() not in ("true", "false"):
            raise ValueError("a boolean is true or false")
        return raw.lower() == "true"
    if kind is FieldType.INTEGER:
        if not _INTEGER.fullmatch(raw) or not -BIGINT <= int(raw) < BIGINT:
            raise ValueError("an integer is expected")
        return int(raw)
    if kind is FieldType.DECIMAL:
        if not _DECIMAL.fullmatch(raw):
            raise ValueError("a decimal number is expected (12.50)")
        return Decimal(raw)
    if kind is FieldType.DATE:
        if not _DATE.fullmatch(raw):
            raise ValueError("a date is YYYY-MM-DD")
        return date.fromisoformat(raw)
    return parse_datetime(raw)


def answer_value(kind: FieldType, value: object) -> object:
    """A stored value as the answer (and a cursor) writes it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _cursor_value(field: Field, value: object) -> object:
    """A cursor's JSON value back as a typed value (ValueError when it is not one)."""
    if value is None:
        return None
    kind = field.type
    if kind in _TEXT and isinstance(value, str) and "\x00" not in value:
        return value
    if kind is FieldType.BOOLEAN and isinstance(value, bool):
        return value
    if kind is FieldType.INTEGER and type(value) is int and -BIGINT <= value < BIGINT:
        return value
    if kind is FieldType.DECIMAL and type(value) in (int, Decimal):
        number = Decimal(value)  # type: ignore[arg-type]
        if number.is_finite() and abs(number.adjusted()) <= 40:
            return number
    if kind in (FieldType.DATE, FieldType.DATETIME) and isinstance(value, str):
        return parse_value(field, value)
    raise ValueError(f"not a value of {field.name}")


def _is_identifier(field: Field) -> bool:
    """Ids and foreign keys: lower-case hex, compared exactly."""
    return field.name == "Id" or not field.export


# The request --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    op: Op
    values: tuple[object, ...]  # one, or IN's list; None is null


@dataclass(frozen=True, slots=True)
class SortKey:
    field: Field
    descending: bool

    @property
    def order(self) -> str:
        return "DESC" if self.descending else "ASC"


@dataclass(slots=True)
class Expansion:
    """An expanded object of the answer, with its own expansions."""

    expand: Expand
    obj: QueryObject
    path: str  # subscriptions.rateplans
    fields: tuple[Field, ...]
    children: list["Expansion"] = field(default_factory=list)


@dataclass(slots=True)
class ObjectQuery:
    obj: QueryObject
    fields: tuple[Field, ...]
    filters: list[Filter]
    keyset: tuple[SortKey, ...]  # the sort field (unless Id), then Id
    after: tuple[object, ...] | None  # the cursor's values, in keyset order
    page_size: int
    include_nulls: bool
    expansions: list[Expansion]


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """(canonical name, value) of each parameter, percent-decoded with `+` kept a plus."""
    pairs = []
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            name = unquote(name, errors="strict")
            value = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise bad(name, "is not UTF-8 text") from None
        lowered = name.lower()
        if lowered.endswith(".fields[]") or lowered.endswith(".fields"):
            pairs.append((lowered.removesuffix("[]"), value))
            continue
        canonical = _NAMES.get(lowered.removesuffix("[]"))
        if canonical is None:
            raise bad(name, "is not a parameter of Object Query")
        pairs.append((canonical, value))
    return pairs


def _one(pairs: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in pairs if key == name]
    if len(values) > 1:
        raise bad(name, "is given more than once")
    return values[0] if values else None


def _listed(pairs: list[tuple[str, str]], name: str) -> list[str]:
    return [item.strip() for key, value in pairs if key == name for item in value.split(",")]


def _no_field(obj: QueryObject, name: str, parameter: str) -> ZuoraError:
    catalogued = by_name(obj.name)
    if catalogued is not None and catalogued.field(name) is not None:  # left out by `as_seen`
        return bad(
            parameter,
            f"'{name}' is a field of the Reseller Account feature, which this tenant has disabled",
        )
    return bad(parameter, f"'{name}' is not a field of {obj.name}")


def _fields_of(obj: QueryObject, names: list[str], parameter: str) -> tuple[Field, ...]:
    names = [name for name in names if name]
    if not names:
        return obj.fields
    chosen = set()
    for name in names:
        found = obj.field(name)
        if found is None:
            raise _no_field(obj, name, parameter)
        chosen.add(found.name)
    return tuple(f for f in obj.fields if f.name in chosen)


def _page_size(pairs: list[tuple[str, str]]) -> int:
    raw = _one(pairs, PAGE_SIZE)
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not _PAGE_SIZE.fullmatch(raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise bad(PAGE_SIZE, f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def _include_nulls(pairs: list[tuple[str, str]]) -> bool:
    raw = _one(pairs, INCLUDE_NULLS)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise bad(INCLUDE_NULLS, "must be true or false")
    return raw.lower() == "true"


def _filterable(obj: QueryObject, name: str, parameter: str) -> Field:
    found = obj.field(name)
    if found is None:
        raise _no_field(obj, name, parameter)
    if not found.filterable:
        raise bad(parameter, f"'{found.camel}' of {obj.name} cannot be filtered or sorted on")
    return found


def _filter(obj: QueryObject, raw: str) -> Filter:
    match = _FILTER.fullmatch(raw)
    if match is None:
        raise bad(FILTER, f"'{raw}' is not field.OP:value")
    target = _filterable(obj, match["field"], FILTER)
    try:
        op = Op(match["op"].upper())
    except ValueError:
        raise bad(FILTER, f"'{match['op']}' is not one of {', '.join(Op)}") from None
    named = f"'{target.camel}'"
    if op is Op.SW and target.type not in _TEXT:
        raise bad(FILTER, f"SW applies to text; {named} is a {target.type}")
    if op in _COMPARISONS and target.type is FieldType.BOOLEAN:
        raise bad(FILTER, f"{op} does not apply to {named}, a boolean")
    value = match["value"]
    if op is Op.IN:
        if not (value.startswith("[") and value.endswith("]")) or value == "[]":
            raise bad(FILTER, f"IN takes a list, [a,b], for {named}")
        items = value[1:-1].split(",")
        if len(items) > MAX_IN_VALUES:
            raise bad(FILTER, f"IN takes at most {MAX_IN_VALUES} values for {named}")
    else:
        items = [value]
    values: list[object] = []
    for item in items:
        if item.lower() == "null":
            if op not in (Op.EQ, Op.NE, Op.IN):
                raise bad(FILTER, f"{op} cannot compare {named} with null")
            values.append(None)
            continue
        try:
            values.append(parse_value(target, item))
        except ValueError as error:
            raise bad(FILTER, f"{named}: '{item}' is not valid: {error}") from None
    return Filter(target, op, tuple(values))


def _keyset(obj: QueryObject, pairs: list[tuple[str, str]]) -> tuple[SortKey, ...]:
    sorts = [value for value in _listed(pairs, SORT) if value]
    ident = obj.field("Id")
    assert ident is not None
    if not sorts:
        updated = obj.field("UpdatedDate")
        assert updated is not None
        return SortKey(updated, True), SortKey(ident, True)
    if len(sorts) > 1:
        raise bad(SORT, "takes one field")
    name, _, order = sorts[0].rpartition(".")
    if order.upper() not in ("ASC", "DESC") or not name:
        raise bad(SORT, f"'{sorts[0]}' is not field.ASC or field.DESC")
    chosen = _filterable(obj, name, SORT)
    descending = order.upper() == "DESC"
    if chosen is ident:
        return (SortKey(ident, descending),)
    return SortKey(chosen, descending), SortKey(ident, descending)


def encode_cursor(keyset: Sequence[SortKey], values: Sequence[object]) -> str:
    keys = [
        {
            "value": answer_value(key.field.type, value),
            "orderBy": {"field": key.field.name, "order": key.order},
        }
        for key, value in zip(keyset, values, strict=True)
    ]
    return base64.b64encode(dumps(keys)).decode()


def decode_cursor(keyset: Sequence[SortKey], raw: str) -> tuple[object, ...]:
    """The keyset values a cursor continues after (a 400 naming `cursor` when it is not one
    of this list's cursors)."""
    try:
        if len(raw) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        decoded = base64.b64decode(raw.replace("-", "+").replace("_", "/"), validate=True)
        keys = loads(decoded)
        if not isinstance(keys, list) or len(keys) != len(keyset):
            raise ValueError("not this list's keyset")
        values = []
        for key, item in zip(keyset, keys, strict=True):
            if not isinstance(item, dict) or set(item) != {"value", "orderBy"}:
                raise ValueError("not a keyset entry")
            if item["orderBy"] != {"field": key.field.name, "order": key.order}:
                raise ValueError("not this sort's keyset")
            values.append(_cursor_value(key.field, item["value"]))
        if values[-1] is None:
            raise ValueError("no Id")
        return tuple(values)
    except (ValueError, binascii.Error, json.JSONDecodeError, InvalidOperation, RecursionError):
        raise bad(CURSOR, "is not a cursor of this list (use the nextPage it answered)") from None


def _expansions(
    obj: QueryObject, pairs: list[tuple[str, str]], reseller_account_enabled: bool
) -> tuple[list[Expansion], dict[str, Expansion]]:
    roots: list[Expansion] = []
    by_path: dict[str, Expansion] = {}
    for raw in _listed(pairs, EXPAND):
        if not raw:
            continue
        names = raw.lower().split(".")
        if len(names) > MAX_EXPAND_DEPTH:
            raise bad(EXPAND, f"'{raw}' is deeper than {MAX_EXPAND_DEPTH} levels")
        parent: QueryObject = obj
        siblings = roots
        for depth in range(len(names)):
            path = ".".join(names[: depth + 1])
            node = by_path.get(path)
            if node is None:
                expand = parent.expand(names[depth])
                if expand is None:
                    raise bad(EXPAND, f"'{raw}': {parent.name} has no '{names[depth]}' to expand")
                catalogued = by_name(expand.target)
                assert catalogued is not None, expand
                target = as_seen(catalogued, reseller_account_enabled=reseller_account_enabled)
                node = Expansion(expand, target, path, target.fields)
                by_path[path] = node
                siblings.append(node)
                if len(by_path) > MAX_EXPANSIONS:
                    raise bad(EXPAND, f"expands at most {MAX_EXPANSIONS} objects")
            parent, siblings = node.obj, node.children
    return roots, by_path


def _expanded_fields(pairs: list[tuple[str, str]], by_path: dict[str, Expansion]) -> None:
    for name, _ in pairs:
        if not name.endswith(".fields"):
            continue
        prefix = name.removesuffix(".fields")
        nodes = [
            node for path, node in by_path.items() if prefix in (path, path.rsplit(".", 1)[-1])
        ]
        if not nodes:
            raise bad(f"{prefix}.fields[]", f"'{prefix}' is not an expanded object")
        for node in nodes:
            node.fields = _fields_of(node.obj, _listed(pairs, name), f"{prefix}.fields[]")


def parse(
    obj: QueryObject, raw_query: bytes, *, keyed: bool, reseller_account_enabled: bool = True
) -> ObjectQuery:
    """The request's parameters, checked: a 400 naming the first bad one. The objects are as a
    tenant with the Reseller Account feature `reseller_account_enabled` sees them."""
    obj = as_seen(obj, reseller_account_enabled=reseller_account_enabled)
    pairs = query_pairs(raw_query)
    if keyed:
        for name in _KEYED_REFUSED:
            if any(key == name for key, _ in pairs):
                raise bad(name, "does not apply to one object by key")
    keyset = _keyset(obj, pairs)
    cursor = _one(pairs, CURSOR)
    roots, by_path = _expansions(obj, pairs, reseller_account_enabled)
    _expanded_fields(pairs, by_path)
    filters = [value for key, value in pairs if key == FILTER]
    if len(filters) > MAX_FILTERS:
        raise bad(FILTER, f"takes at most {MAX_FILTERS} filters")
    return ObjectQuery(
        obj=obj,
        fields=_fields_of(obj, _listed(pairs, FIELDS), FIELDS),
        filters=[_filter(obj, value) for value in filters],
        keyset=keyset,
        after=None if cursor is None else decode_cursor(keyset, cursor),
        page_size=_page_size(pairs),
        include_nulls=_include_nulls(pairs),
        expansions=roots,
    )


# SQL ----------------------------------------------------------------------------------------


class Params:
    """Bound parameters of one statement, named p0, p1, ..."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object, kind: FieldType | None = None) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"CAST(:{name} AS {kind.postgres})" if kind else f":{name}"


def relation(obj: QueryObject) -> str:
    """The object's Object Query view (the bound tenant's rows)."""
    return f"{OBJECT_QUERY_VIEWS.schema}.{obj.table} AS {obj.table}"


def _condition(condition: Filter, params: Params) -> str:
    target, op = condition.field, condition.op
    column, kind = target.column, target.type
    text_field = kind in _TEXT
    identifier = text_field and _is_identifier(target)

    def bind(value: object) -> str:
        if identifier:
            return params.add(str(value).lower(), kind)
        if text_field:
            return f"lower({params.add(value, kind)})"
        return params.add(value, kind)

    subject = f"lower({column})" if text_field and not identifier else column
    if op is Op.IN:
        present = [value for value in condition.values if value is not None]
        parts = [f"{subject} IN ({', '.join(bind(value) for value in present)})"] if present else []
        if len(present) < len(condition.values):
            parts.append(f"{column} IS NULL")
        return f"({' OR '.join(parts)})"
    value = condition.values[0]
    if value is None:
        return f"{column} IS NULL" if op is Op.EQ else f"{column} IS NOT NULL"
    if op is Op.EQ:
        return f"{subject} = {bind(value)}"
    if op is Op.NE:
        return f"{subject} IS DISTINCT FROM {bind(value)}"
    if op is Op.SW:
        return f"starts_with(lower({column}), lower({params.add(value, kind)}))"
    return f"{column} {_COMPARISONS[op]} {params.add(value, kind)}"


def _after(keyset: Sequence[SortKey], values: Sequence[object], params: Params) -> str:
    """Rows past the cursor's, in the keyset's order. A row comparison, which the index
    serves as one range, whenever nulls cannot follow."""
    last = keyset[-1]
    ident = params.add(values[-1], last.field.type)
    beyond = "<" if last.descending else ">"
    if len(keyset) == 1:
        return f"id {beyond} {ident}"
    first, value = keyset[0], values[0]
    column = first.field.column
    if value is None:
        # Nulls are last ascending (only nulls follow), first descending (all others follow).
        if first.descending:
            return f"(({column} IS NULL AND id < {ident}) OR {column} IS NOT NULL)"
        return f"({column} IS NULL AND id > {ident})"
    row = f"({column}, id) {beyond} ({params.add(value, first.field.type)}, {ident})"
    return row if first.descending else f"({row} OR {column} IS NULL)"


def _order(keyset: Sequence[SortKey]) -> str:
    return ", ".join(f"{key.field.column} {key.order}" for key in keyset)


ANSWER = "answer__"  # the column holding a row's JSON text (no catalogue column ends so)
# Arguments of one concat_ws: PostgreSQL takes at most 100 per call.
_MEMBERS_PER_CALL = 90


def _json_value(f: Field) -> str:
    """The field's JSON text, written by PostgreSQL: numbers with their exact digits, dates
    YYYY-MM-DD, datetimes in UTC with Z and their microseconds when they have any."""
    if f.type is FieldType.DATETIME:
        utc = f"({f.column} AT TIME ZONE 'UTC')"
        fraction = (
            f"CASE WHEN date_trunc('second', {utc}) = {utc} THEN '' ELSE to_char({utc}, '.US') END"
        )
        return f"""to_json(to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || {fraction} || 'Z')::text"""
    return f"to_json({f.column})::text"


def _json_object(fields: Sequence[Field], include_nulls: bool) -> str:
    """An SQL expression for the object's JSON text. A member of a null field is null, and
    concat_ws leaves it out, unless nulls are kept."""
    members = [
        f"""'"{f.camel}":' || """
        + (f"coalesce({_json_value(f)}, 'null')" if include_nulls else _json_value(f))
        for f in fields
    ]
    calls = [
        f"NULLIF(concat_ws(',', {', '.join(members[i : i + _MEMBERS_PER_CALL])}), '')"
        for i in range(0, len(members), _MEMBERS_PER_CALL)
    ] or ["NULL"]
    return f"'{{' || concat_ws(',', {', '.join(calls)}) || '}}'"


def _select(fields: Sequence[Field], include_nulls: bool, *keys: str) -> str:
    """The answer's JSON text, then the columns the page's keyset and joins need."""
    return ", ".join([f"{_json_object(fields, include_nulls)} AS {ANSWER}", *dict.fromkeys(keys)])


def _join_columns(expansions: list[Expansion]) -> list[str]:
    """Columns the expansions join on, selected even when `fields[]` leaves them out."""
    return [node.expand.column for node in expansions]


def page_sql(query: ObjectQuery) -> tuple[str, dict[str, object]]:
    params = Params()
    conditions = [_condition(condition, params) for condition in query.filters]
    if query.after is not None:
        conditions.append(_after(query.keyset, query.after, params))
    columns = _select(
        query.fields,
        query.include_nulls,
        *(key.field.column for key in query.keyset),
        *_join_columns(query.expansions),
    )
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # Limits are our own integers, written inline: a prepared statement's generic plan then
    # still knows how few rows it wants (and walks the index).
    limit = int(query.page_size) + 1
    sql = (
        f"SELECT {columns} FROM {relation(query.obj)}{where}"
        f" ORDER BY {_order(query.keyset)} LIMIT {limit}"
    )
    return sql, params.values


def key_sql(query: ObjectQuery, key: str) -> tuple[str, dict[str, object]]:
    params = Params()
    bound = params.add(key, FieldType.TEXT)
    matches = [f"id = {bound}"]
    number = query.obj.field(query.obj.number) if query.obj.number else None
    if number is not None:
        matches.append(f"{number.column} = {bound}")
    columns = _select(query.fields, query.include_nulls, "id", *_join_columns(query.expansions))
    sql = (
        f"SELECT {columns} FROM {relation(query.obj)} WHERE {' OR '.join(matches)}"
        f" ORDER BY id = {bound} DESC LIMIT 1"
    )
    return sql, params.values


def _expansion_sql(
    node: Expansion, keys: list[str], query: ObjectQuery
) -> tuple[str, dict[str, object]]:
    params = Params()
    target = node.expand.target_column
    columns = _select(node.fields, query.include_nulls, target, *_join_columns(node.children))
    bound = params.add(keys, None)
    cap = MAX_EXPANDED_ROWS + 1
    if not node.expand.many:
        sql = (
            f"SELECT {columns} FROM {relation(node.obj)}"
            f" WHERE {target} = ANY(CAST({bound} AS text[])) LIMIT {cap}"
        )
        return sql, params.values
    # Each parent's newest `pageSize` children, each through the index on its key.
    sql = (
        f"SELECT c.* FROM unnest(CAST({bound} AS text[])) AS parent(key)"
        f" CROSS JOIN LATERAL (SELECT {columns} FROM {relation(node.obj)}"
        f" WHERE {target} = parent.key ORDER BY updateddate DESC, id DESC"
        f" LIMIT {int(query.page_size)}) AS c LIMIT {cap}"
    )
    return sql, params.values


# Reading and answering -----------------------------------------------------------------------


Row = dict[str, Any]


async def _rows(conn: AsyncConnection, sql: str, params: dict[str, object]) -> list[Row]:
    result = await conn.execute(text(sql), params)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def _with_member(answer: str, name: str, value: str) -> str:
    """An object's JSON text with one more member."""
    return f'{answer[:-1]}{"," if len(answer) > 2 else ""}"{name}":{value}}}'


async def _expand(
    conn: AsyncConnection,
    expansions: list[Expansion],
    parents: list[Row],
    query: ObjectQuery,
) -> None:
    """Adds each expansion to the parents' answers (`parents[i][ANSWER]`), deepest first: one
    query per expansion for all the parents."""
    for node in expansions:
        column = node.expand.column
        keys = sorted({row[column] for row in parents if row[column] is not None})
        children: list[Row] = []
        if keys:
            children = await _rows(conn, *_expansion_sql(node, keys, query))
        if len(children) > MAX_EXPANDED_ROWS:
            raise bad(
                EXPAND,
                f"'{node.path}' is over {MAX_EXPANDED_ROWS} objects for this page;"
                " ask a smaller pageSize",
            )
        if node.children and children:
            await _expand(conn, node.children, children, query)
        grouped: dict[str, list[str]] = {}
        for child in children:
            grouped.setdefault(child[node.expand.target_column], []).append(child[ANSWER])
        name = node.expand.answer_key
        for row in parents:
            found = grouped.get(row[column], []) if row[column] is not None else []
            if node.expand.many:
                value = f"[{','.join(found)}]"
            elif found:
                value = found[0]
            elif query.include_nulls:
                value = "null"
            else:
                continue
            row[ANSWER] = _with_member(row[ANSWER], name, value)


class JSONText(Response):
    """An answer whose JSON text is already written."""

    media_type = "application/json"


def _shows_reseller_account_fields(obj: QueryObject, expansions: list[Expansion]) -> bool:
    return has_reseller_account_fields(obj) or any(
        _shows_reseller_account_fields(node.obj, node.children) for node in expansions
    )


async def _parsed(
    tenant: Tenant, obj: QueryObject, raw_query: bytes, *, keyed: bool
) -> ObjectQuery:
    """The request parsed as `tenant` sees the objects. Only a request showing an object with
    Reseller Account fields reads the tenant's switch, after the request proved valid."""
    query = parse(obj, raw_query, keyed=keyed)
    if _shows_reseller_account_fields(query.obj, query.expansions):
        async with autocommit() as conn:
            enabled = (await get_settings(conn, tenant)).reseller_account_enabled
        if not enabled:
            query = parse(obj, raw_query, keyed=keyed, reseller_account_enabled=False)
    return query


def _reading(query: ObjectQuery, tenant: Tenant) -> AbstractAsyncContextManager[AsyncConnection]:
    """The query transaction on Object Query's views; one snapshot when there are expansions."""
    return query_transaction(
        tenant,
        timeout_ms=READ_TIMEOUT_MS,
        views=OBJECT_QUERY_VIEWS,
        snapshot=bool(query.expansions),
    )


async def query_list(tenant: Tenant, obj: QueryObject, raw_query: bytes) -> Response:
    """`GET /object-query/{objects}`: one page, and `nextPage` when more rows follow."""
    query = await _parsed(tenant, obj, raw_query, keyed=False)
    async with _reading(query, tenant) as conn:
        rows = await _rows(conn, *page_sql(query))
        more = len(rows) > query.page_size
        rows = rows[: query.page_size]
        if rows:
            await _expand(conn, query.expansions, rows, query)
    page = f'{{"data":[{",".join(row[ANSWER] for row in rows)}]'
    if more:
        cursor = encode_cursor(query.keyset, [rows[-1][key.field.column] for key in query.keyset])
        page += f',"nextPage":"{cursor}"'  # base64: nothing to escape
    return JSONText(f"{page}}}")


async def query_key(tenant: Tenant, obj: QueryObject, key: str, raw_query: bytes) -> Response:
    """`GET /object-query/{objects}/{key}`: the object with that Id or number."""
    query = await _parsed(tenant, obj, raw_query, keyed=True)
    async with _reading(query, tenant) as conn:
        rows = await _rows(conn, *key_sql(query, key))
        if not rows:
            raise not_found(Resource.GENERIC, obj.name, key)
        await _expand(conn, query.expansions, rows, query)
    return JSONText(rows[0][ANSWER])
