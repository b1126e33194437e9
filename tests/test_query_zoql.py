"""ZOQL and Export ZOQL: what the grammars accept and refuse, the SQL they compile to run on real
rows through the query transaction, hostile input, and describe's XML agreeing with the
compiler over the whole catalogue."""

import random
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from partnerbill.query.catalog import OBJECTS, FieldType, by_name
from partnerbill.query.sandbox import query_transaction
from partnerbill.query.zoql import MAX_LENGTH, CompiledQuery, ZoqlError, compile_zoql
from tests.helpers import ApiClient, assert_envelope, invoice_body
from tests.tenant_seed import seed_tenant

ZOQL_ACCEPTED = [
    "select Id from Account",
    "SELECT Id, Name FROM Account",
    "select id, NAME from account",
    "select AccountId, Amount from Invoice where AccountId = 'abc'",
    "select Id from Account where Name = 'it\\'s'",
    'select Id from Account where Name = "double \\" quoted"',
    "select Id from Account where Name like 'Ac%'",
    "select Id from Account where Name like '%corp'",
    "select Id from Account where Name like 'A_c'",
    "select Id from Account where PartnerAccount = true",
    "select Id from Account where PartnerAccount != FALSE",
    "select Id from Account where PartnerAccount = 'true'",
    "select Id from Account where LastMetricsUpdate = null",
    "select Id from Account where LastMetricsUpdate != null",
    "select Id from Account where Balance >= 10.50 and Balance < 100",
    "select Id from Account where BillCycleDay = 1 or BillCycleDay = 15 and Status = 'Active'",
    "select Id from Account where UpdatedDate > '2026-01-01T00:00:00Z'",
    "select Id from Account where UpdatedDate > '2026-01-01T00:00:00+10:00'",
    "select Id from Account where UpdatedDate > '2026-01-01T00:00:00.123'",
    "select Id from Account where UpdatedDate > '2026-01-01'",
    "select Id from Account where LastInvoiceDate <= '2026-12-31'",
    "select Id from Order where OrderDate = '2026-11-01'",
    "select Id, Type from OrderAction",
    "select Id from Account where Name = 'Zoë 日本'",
    "select Id from Account where Balance > -5",
]

ZOQL_REFUSED = [
    ("select * from Account", "syntax error"),
    ("select Id from Account order by Id", "syntax error"),
    ("select Id from Account group by Id", "syntax error"),
    ("select Account.Name from Invoice", "syntax error"),
    ("select Id from Account where (Name = 'a')", "syntax error"),
    ("select Id from Account where Name = Notes", "syntax error"),
    ("select Id from Account where Name is null", "syntax error"),
    ("select Id from Account where Name <> 'a'", "syntax error"),
    ("select Id from Account where Name in ('a')", "syntax error"),
    ("select Id from Account where Name = 'a''b'", "syntax error"),
    ("select Id from Account where", "ends too early"),
    ("select from Account", "syntax error"),
    ("select Id, from Account", "syntax error"),
    ("select Id Account", "syntax error"),
    ("", "ends too early"),
    ("select Id from Nothing", "The requested data source could not be found: Nothing"),
    ("select Nope from Account", "Invalid field for query: Account.Nope"),
    ("select Id from Account where Nope = 1", "Account.Nope"),
    ("select Id from Account where Name like '%a%'", "one % only"),
    ("select Id from Account where Name like 'a%b'", "one % only"),
    ("select Id from Account where Balance like '1%'", "like applies to text fields only"),
    ("select Id from Account where Balance > 'ten'", "Balance is a number"),
    ("select Id from Account where Name = 5", "Name is text"),
    ("select Id from Account where PartnerAccount > true", "compare it with = or != only"),
    ("select Id from Account where PartnerAccount = 'yes'", "neither true nor false"),
    ("select Id from Account where PartnerAccount = 1", "PartnerAccount is boolean"),
    ("select Id from Account where Name > null", "null is compared with = or != only"),
    ("select Id from Account where LastInvoiceDate = '2026-13-01'", "is not a date"),
    ("select Id from Account where LastInvoiceDate = '2026-01-01T00:00:00'", "YYYY-MM-DD"),
    ("select Id from Account where UpdatedDate > '2026-08-01 00:00:00'", "with a T"),
    ("select Id from Account where UpdatedDate > 'yesterday'", "not ISO 8601"),
    ("select Id from Account where UpdatedDate > '2026-02-30T00:00:00Z'", "not a valid date"),
    ("select Id from Account where UpdatedDate > '0001-01-01T00:00:00+01:00'", "not a valid"),
    ("select Id from Account where UpdatedDate > '9999-12-31T23:00:00-01:30'", "not a valid"),
    ("select Id from Account where UpdatedDate > '2026-01-01T24:00:00Z'", "not a valid"),
    ("select Id from Account where UpdatedDate > '2026-01-01T00:00:00+24:00'", "not a valid"),
]

EXPORT_ACCEPTED = [
    "select * from Account",
    "SELECT * FROM account",
    "select *, Account.Id from Invoice",
    "select Account.* from Invoice",
    "select Account.*, Account.BillToContact.* from Invoice",
    "select InvoiceNumber, Account.AccountNumber, Account.PartnerAccount from Invoice",
    "select account.accountnumber, ACCOUNT.partneraccount from invoice",
    "select Account.BillToContact.FirstName from Invoice",
    "select OrderNumber, Account.AccountNumber, Account.PartnerAccount,"
    " Account.LastMetricsUpdate from Order",
    "select Order.OrderNumber, SubscriptionOwnerAccount.PartnerAccount,"
    " InvoiceOwnerAccount.PartnerAccount from OrderAction",
    "select Name, InvoiceOwner.PartnerAccount from Subscription",
    "select Id from Account where PartnerAccount = true and (Balance > 0 or not Status = 'x')",
    "select Id from Account where not (Name = 'a' or Name = 'b')",
    "select Id from Account where not not Name = 'a'",
    "select Id from Account where LastMetricsUpdate is null",
    "select Id from Account where LastMetricsUpdate is not null",
    "select Id from Account where Name like '%a%b_'",
    "select Id from Account where Name = 'it''s'",
    "select Id from Account where Name = 'back\\slash'",
    "select Id from Account where Balance = TotalInvoiceBalance",
    "select Id from Invoice where Amount > Balance",
    "select Id from Invoice where Account.Name = Account.BillToContact.FirstName",
    "select Id from Account where 10 < Balance",
    "select Id from Account where UpdatedDate >= '2026-11-29T00:00:00Z'"
    " and UpdatedDate < '2026-12-29T00:00:00Z'",
    "select Id from Account where UpdatedDate > '2026-11-29T00:00:00-08:00'",
    "select Id from Account where LastInvoiceDate = '2026-11-01'",
    "select Id from Account where AutoPay = false",
    "select Id from Account order by UpdatedDate asc",
    "select Id from Account order by UpdatedDate ASC, Id desc",
    "select Id from Account limit 5",
    "select Id from Account limit 5, 10",
    "select Id from Account limit 9223372036854775807",
    "select Id from Account limit 0000000000000000000000005",
    "select Id from Account where Name = 'a' order by Name limit 1",
    "select count(*) from Account",
    'select count(*) as "n", sum(Balance) as "total" from Account',
    "select Currency, count(*), sum(Balance), avg(Balance), min(Name), max(UpdatedDate)"
    " from Account group by Currency",
    "select Account.AccountNumber, sum(Amount) as total from Invoice"
    " group by Account.AccountNumber having sum(Amount) > 10 order by total desc",
    'select Status, count(*) as "n" from Invoice group by Status order by "n"',
    "select Status, Currency from Invoice group by Status, Currency having Status = 'Posted'",
    "select count(Id) from Invoice",
    "select Id from Account where Id = 'x'",
]

EXPORT_REFUSED = [
    ("select AccountId from Invoice", "AccountId cannot be exported (select Account.Id)"),
    ("select Id from Invoice where AccountId = 'x'", "AccountId cannot be exported"),
    ("select BillToId from Account", "BillToId cannot be exported (select BillToContact.Id)"),
    ("select Account.BillToId from Invoice", "(select Account.BillToContact.Id)"),
    ("select AccountId from OrderAction", "(select SubscriptionOwnerAccount.Id)"),
    ("select ProductRatePlanChargeId from InvoiceItem", "ProductRatePlanChargeId cannot be"),
    ("select Foo.Name from Invoice", "The requested data source could not be found: Foo"),
    ("select Foo.* from Invoice", "The requested data source could not be found: Foo"),
    ("select Account.Foo.Name from Invoice", "could not be found: Account.Foo"),
    ("select Id from Nowhere", "The requested data source could not be found: Nowhere"),
    ("select Account.Nope from Invoice", "Invalid field for query: Account.Nope"),
    ("select Nope from Invoice", "Invalid field for query: Invoice.Nope"),
    (
        "select Account.BillToContact.Account.Name from Invoice",
        "relations are at most 2 deep",
    ),
    ("select Id from Account where UpdatedDate > '2026-08-01 00:00:00'", "with a T"),
    ("select Id from Account where UpdatedDate > '2026-08-01T00:00'", "not ISO 8601"),
    ("select Id from Account where Name = 'it\\'s'", "syntax error"),
    ("select Id from Account where Name is 'a'", "syntax error"),
    ("select Id from Account where Name = null", "as is null or is not null"),
    ("select Id from Account where null is null", "is null applies to a field"),
    ("select Id from Account where (Name = 'a'", "ends too early"),
    ("select Id from Account where Name = 'a')", "syntax error"),
    ("select sum(max(Balance)) from Account", "syntax error"),
    ("select Id from Account limit -1", "syntax error"),
    ("select Id from Account limit 1.5", "syntax error"),
    ("select Id from Account order by Id sideways", "syntax error"),
    ("select Id, count(*) from Account", "Id must be in group by"),
    ("select Name from Account group by Currency", "Name must be in group by"),
    ("select Currency from Account group by Currency order by Name", "must be in group by"),
    ("select Currency from Account group by Currency having Name = 'a'", "not in group by"),
    ("select Id from Account having count(*) > 1", "having needs group by"),
    ("select Id from Account order by count(*)", "an aggregate orders a grouped query only"),
    ("select Id from Account where Balance > 1.5.5", "syntax error"),
    ("select Id from Account where Balance > '١٢'", "Balance is a number"),
    ("select Id from Account where LastInvoiceDate = '٢٠٢٦-01-01'", "not YYYY-MM-DD"),
    ("select Id from Account where count(*) > 1", "cannot be used in where"),
    (
        "select Currency from Account group by Id, Name, Status, Currency, Batch, Notes",
        "at most 5",
    ),
    ('select Name as "a", Id as "A" from Account', 'The alias "A" is used twice'),
    ('select Name as "" from Account', "cannot be empty"),
    ('select Name from Account order by "nope"', "no column has that alias"),
    ("select sum(Name) from Account", "sum applies to number fields only"),
    ("select avg(UpdatedDate) from Account", "avg applies to number fields only"),
    ("select max(PartnerAccount) from Account", "does not apply to boolean fields"),
    ("select Id from Account where Name = Balance", "cannot be compared with"),
    ("select Id from Account where 'a' = 'b'", "a comparison needs a field"),
    ("select Id from Account where PartnerAccount < true", "compare it with = or != only"),
    ("select Id from Account where Balance like 'a%'", "like applies to text fields only"),
    ("select Id from Account where 'a' like 'b'", "like applies to a field"),
    ("select Id from Account where LastInvoiceDate > 5", "compare it with a quoted value"),
    ("select Id from Account where Balance = '1e5'", "Balance is a number"),
    ("select Id from Account where Balance = 'NaN'", "Balance is a number"),
    ("select Id from Account limit 99999999999999999999", "limit is too large"),
    ("select Id from Account limit 9223372036854775808", "limit is too large"),
    ("select Id from Account limit " + "9" * 6000, "limit is too large"),
    ("select Id from Account limit 1, " + "0" * 30 + "9" * 19, "limit is too large"),
    ('select Name as "a\nb" from Account', "printable characters"),
    ('select Name as "' + "a" * 256 + '" from Account', "at most 255"),
    ("select Id from Account where Name = 'a' order by", "ends too early"),
    ("select Id from Account;", "syntax error"),
    ("select Id from Account; delete from accounts", "syntax error"),
    ("select Id from Account where Name = 'a' -- comment", "syntax error"),
    ("select Id from Account /* c */", "syntax error"),
    ("select Id from (select Id from Account)", "syntax error"),
    ("select Id from Account a", "syntax error"),
    ("select Id from Account join Invoice", "syntax error"),
    ("select Id from Account union select Id from Invoice", "syntax error"),
    ("select Id from Account where Id in ('a', 'b')", "syntax error"),
    ("select pg_sleep(10) from Account", "syntax error"),
    ("select Id from zuora.account", "syntax error"),
]


@pytest.mark.parametrize("query", ZOQL_ACCEPTED)
def test_zoql_accepts(query: str) -> None:
    compiled = compile_zoql(query, export=False)
    assert compiled.sql.startswith("SELECT ")
    assert compiled.columns


@pytest.mark.parametrize(("query", "message"), ZOQL_REFUSED)
def test_zoql_refuses(query: str, message: str) -> None:
    with pytest.raises(ZoqlError) as refused:
        compile_zoql(query, export=False)
    assert message in refused.value.message


@pytest.mark.parametrize("query", EXPORT_ACCEPTED)
def test_export_zoql_accepts(query: str) -> None:
    compiled = compile_zoql(query, export=True)
    assert compiled.sql.startswith("SELECT ")
    assert compiled.columns


@pytest.mark.parametrize(("query", "message"), EXPORT_REFUSED)
def test_export_zoql_refuses(query: str, message: str) -> None:
    with pytest.raises(ZoqlError) as refused:
        compile_zoql(query, export=True)
    assert message in refused.value.message


def test_values_are_bound_typed_never_written_into_the_sql() -> None:
    compiled = compile_zoql(
        "select Id from Account where Name = 'x'' or 1=1 --' and Balance > 1.10"
        " and UpdatedDate >= '2026-11-29T10:00:00+02:00' and LastInvoiceDate = '2026-11-01'"
        " and PartnerAccount = true",
        export=True,
    )
    assert "1=1" not in compiled.sql and "2026" not in compiled.sql
    assert list(compiled.params.values()) == [
        "x' or 1=1 --",
        Decimal("1.10"),
        datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
        date(2026, 11, 1),
        True,
    ]
    assert "CAST(:p1 AS numeric)" in compiled.sql
    assert "CAST(:p2 AS timestamptz)" in compiled.sql


def test_a_datetime_without_offset_is_utc_and_a_date_is_its_midnight() -> None:
    compiled = compile_zoql(
        "select Id from Account where UpdatedDate > '2026-01-02T03:04:05'"
        " and UpdatedDate < '2026-02-01'",
        export=True,
    )
    assert list(compiled.params.values()) == [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    ]


def test_relations_join_once_with_left_joins_and_canonical_names() -> None:
    compiled = compile_zoql(
        "select account.accountnumber, Account.PartnerAccount, ACCOUNT.BILLTOCONTACT.firstname,"
        " Account.BillToContact.LastName from invoice where Account.Name = 'a'",
        export=True,
    )
    assert compiled.sql.count("LEFT JOIN account ") == 1
    assert compiled.sql.count("LEFT JOIN contact ") == 1
    assert "JOIN" not in compiled.sql.replace("LEFT JOIN", "")
    assert [c.api_name for c in compiled.columns] == [
        "Account.AccountNumber",
        "Account.PartnerAccount",
        "Account.BillToContact.FirstName",
        "Account.BillToContact.LastName",
    ]
    assert compiled.columns[0].label == "Account: Account Number"
    assert compiled.columns[1].type is FieldType.BOOLEAN
    assert compiled.columns[2].label == "Bill To Contact: First Name"


def test_output_column_names_for_base_fields_aggregates_and_aliases() -> None:
    plain = compile_zoql("select accountnumber, partneraccount from account", export=False)
    assert [(c.api_name, c.qualified, c.label, c.type) for c in plain.columns] == [
        ("AccountNumber", "Account.AccountNumber", "Account: Account Number", FieldType.TEXT),
        ("PartnerAccount", "Account.PartnerAccount", "Account: Partner Account", FieldType.BOOLEAN),
    ]
    grouped = compile_zoql(
        'select Currency, count(*), sum(Balance) as "Total", max(LastInvoiceDate) from Account'
        " group by Currency",
        export=True,
    )
    assert [(c.api_name, c.type) for c in grouped.columns] == [
        ("Currency", FieldType.PICKLIST),
        ("count(*)", FieldType.INTEGER),
        ("Total", FieldType.DECIMAL),
        ("max(LastInvoiceDate)", FieldType.DATE),
    ]
    assert grouped.columns[2].label == grouped.columns[2].qualified == "Total"


def test_a_base_field_may_be_qualified_with_its_objects_name() -> None:
    qualified = compile_zoql("select Account.Name, account.* from Account", export=True)
    plain = compile_zoql("select Name, * from Account", export=True)
    assert qualified.sql == plain.sql and qualified.columns == plain.columns
    assert "JOIN" not in qualified.sql
    # Contact has a relation named Account: there `Account.Name` is the account's name.
    contact = compile_zoql("select Contact.FirstName, Account.Name from Contact", export=True)
    assert [c.api_name for c in contact.columns] == ["FirstName", "Account.Name"]
    assert contact.sql.count("LEFT JOIN account") == 1


def test_star_is_the_export_fields_without_foreign_keys() -> None:
    for obj in OBJECTS:
        compiled = compile_zoql(f"select * from {obj.name}", export=True)
        assert [c.api_name for c in compiled.columns] == [f.name for f in obj.fields if f.export]
        assert all(f.export or f.name not in compiled.sql for f in obj.fields)
    invoice = compile_zoql("select * from Invoice", export=True)
    assert "AccountId" not in [c.api_name for c in invoice.columns]


def test_limits_on_length_conditions_and_nesting() -> None:
    padding = " " * (MAX_LENGTH - len("select Id from Account"))
    compile_zoql("select Id from Account" + padding, export=True)
    with pytest.raises(ZoqlError, match="at most 20,000"):
        compile_zoql("select Id from Account" + padding + " ", export=True)
    with pytest.raises(ZoqlError, match="at most 20,000"):
        compile_zoql("select Id from Account where Name = '" + "x" * 30_000 + "'", export=False)

    for export in (False, True):
        two_hundred = " or ".join(f"Name = 'n{i}'" for i in range(200))
        compile_zoql(f"select Id from Account where {two_hundred}", export=export)
        with pytest.raises(ZoqlError, match="more than 200 conditions"):
            compile_zoql(
                f"select Id from Account where {two_hundred} and Name = 'last'", export=export
            )

    compile_zoql("select Id from Account where " + "(" * 30 + "Name = 'a'" + ")" * 30, export=True)
    with pytest.raises(ZoqlError, match="32 deep"):
        compile_zoql(
            "select Id from Account where " + "(" * 40 + "Name = 'a'" + ")" * 40, export=True
        )
    with pytest.raises(ZoqlError, match="32 deep"):
        compile_zoql("select Id from Account where " + "not " * 4000 + "Name = 'a'", export=True)
    deep = "select Id from Account where " + "(" * 9000 + "Name = 'a'" + ")" * 9000
    with pytest.raises(ZoqlError):
        compile_zoql(deep, export=True)
    with pytest.raises(ZoqlError):
        compile_zoql("select " + ".".join(["Account"] * 5000) + ".Name from Invoice", export=True)


@pytest.mark.parametrize(
    "query",
    [
        "select Id from Account where Name = 'a\x00b'",
        "select Id from Account where Name = '\ud800'",
        "select Id from Account where Name = '\x00'",
    ],
)
def test_nul_and_invalid_unicode_are_refused(query: str) -> None:
    for export in (False, True):
        with pytest.raises(ZoqlError):
            compile_zoql(query, export=export)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.booleans())
def test_any_text_compiles_or_is_a_zoql_error(query: str, export: bool) -> None:
    try:
        compile_zoql(query, export=export)
    except ZoqlError as error:
        assert error.message


_WORDS = [
    "select", "from", "where", "and", "or", "not", "(", ")", ",", ".", "*", "=", "!=", "<",
    ">=", "like", "is", "null", "true", "false", "group", "by", "having", "order", "asc",
    "desc", "limit", "count", "sum", "as", "Account", "Invoice", "Id", "Name", "Balance",
    "PartnerAccount", "UpdatedDate", "'a'", "'2026-01-01'", "'2026-01-01T00:00:00Z'", "1",
    "-2.5", '"x"', "BillToContact", "Amount", "'%a'", "\\'", "''",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=25), st.booleans())
def test_any_sequence_of_query_words_compiles_or_is_a_zoql_error(
    words: list[str], export: bool
) -> None:
    try:
        compile_zoql(" ".join(words), export=export)
    except ZoqlError as error:
        assert error.message


# -- run on real rows -------------------------------------------------------------------------


async def run(api: ApiClient, compiled: CompiledQuery) -> list[tuple[Any, ...]]:
    async with query_transaction(api.tenant, timeout_ms=10_000) as conn:
        result = await conn.execute(text(compiled.sql), compiled.params)
        return [tuple(row) for row in result]


async def rows(api: ApiClient, query: str, *, export: bool = True) -> list[tuple[Any, ...]]:
    return await run(api, compile_zoql(query, export=export))


HOSTILE_NAMES = ["x' or 1=1 --", "back\\slash", "Zoë 日本 ☃", 'quote "double"', "50% off_"]


@pytest.fixture
async def books(api: ApiClient) -> dict[str, Any]:
    """Two accounts with invoices (one a partner, refreshed so its metrics are stamped), and
    accounts with hostile names."""
    partner = await api.create_account(partner=True, name="Partner One")
    plain = await api.create_account(name="Plain Two")
    hostile = [await api.create_account(name=name) for name in HOSTILE_NAMES]
    invoices = [
        await api.ok("POST", "/v1/invoices", invoice_body(partner["accountNumber"], *amounts))
        for amounts in (("100.00", "50.00"), ("25.50",))
    ]
    invoices.append(
        await api.ok("POST", "/v1/invoices", invoice_body(plain["accountNumber"], "10.00"))
    )
    await api.refresh(partner["accountNumber"])
    return {"partner": partner, "plain": plain, "hostile": hostile, "invoices": invoices}


async def test_plain_zoql_runs_on_real_rows(api: ApiClient, books: dict[str, Any]) -> None:
    partner, plain = books["partner"], books["plain"]
    assert await rows(
        api, "select AccountNumber, PartnerAccount from Account where PartnerAccount = true",
        export=False,
    ) == [(partner["accountNumber"], True)]  # fmt: skip
    found = await rows(
        api,
        "select AccountNumber from Account where Name = 'Plain Two' or PartnerAccount = true"
        " and Name = 'nobody'",
        export=False,
    )
    assert found == [(plain["accountNumber"],)]
    stamped = await rows(
        api, "select Name from Account where LastMetricsUpdate != null", export=False
    )
    assert stamped == [("Partner One",)]
    assert sorted(
        await rows(api, "select Name from Account where Name like 'P%'", export=False)
    ) == [("Partner One",), ("Plain Two",)]
    assert sorted(
        await rows(api, "select Name from Account where Name like '%Two'", export=False)
    ) == [("Plain Two",)]
    assert await rows(api, "select Name from Account where Name like 'plain%'", export=False) == []
    assert await rows(api, "select Name from Account where Name like 'Pl_in%'", export=False) == [
        ("Plain Two",)
    ]
    amounts = await rows(
        api,
        f"select Amount from Invoice where AccountId = '{partner['accountId']}' and Amount > 26",
        export=False,
    )
    assert amounts == [(Decimal("150.00"),)]


async def test_invoice_reaches_its_accounts_partner_flag(
    api: ApiClient, books: dict[str, Any]
) -> None:
    found = await rows(
        api,
        "select InvoiceNumber, Amount, Account.AccountNumber, Account.PartnerAccount,"
        " Account.LastMetricsUpdate from Invoice order by Amount desc",
    )
    partner, plain = books["partner"]["accountNumber"], books["plain"]["accountNumber"]
    assert [(r[1], r[2], r[3]) for r in found] == [
        (Decimal("150.00"), partner, True),
        (Decimal("25.50"), partner, True),
        (Decimal("10.00"), plain, False),
    ]
    assert isinstance(found[0][4], datetime) and found[2][4] is None
    partner_only = await rows(
        api, "select InvoiceNumber from Invoice where Account.PartnerAccount = true"
    )
    assert len(partner_only) == 2
    first_names = await rows(
        api, "select Account.BillToContact.FirstName, Account.Name from Invoice order by Amount"
    )
    assert first_names[0] == ("Ada", "Plain Two")


async def test_aggregates_group_by_having_order_and_limit(
    api: ApiClient, books: dict[str, Any]
) -> None:
    partner, plain = books["partner"]["accountNumber"], books["plain"]["accountNumber"]
    totals = await rows(
        api,
        'select Account.AccountNumber, sum(Amount) as "Total", count(*) from Invoice'
        ' group by Account.AccountNumber order by "Total" desc',
    )
    assert totals == [(partner, Decimal("175.50"), 2), (plain, Decimal("10.00"), 1)]
    having = await rows(
        api,
        "select Account.AccountNumber, count(*) from Invoice group by Account.AccountNumber"
        " having count(*) > 1",
    )
    assert having == [(partner, 2)]
    (summary,) = await rows(
        api, "select count(*), min(Amount), max(Amount), avg(Amount) from Invoice"
    )
    assert summary[:3] == (3, Decimal("10.00"), Decimal("150.00"))
    assert isinstance(summary[3], Decimal) and round(summary[3], 6) == Decimal("61.833333")
    ascending = await rows(api, "select Name from Account order by Name asc")
    descending = await rows(api, "select Name from Account order by Name DESC")
    assert ascending == descending[::-1]
    assert sorted(n for (n,) in ascending) == sorted(["Partner One", "Plain Two", *HOSTILE_NAMES])
    paged = await rows(api, "select Amount from Invoice order by Amount limit 1, 1")
    assert paged == [(Decimal("25.50"),)]
    assert await rows(api, "select Amount from Invoice order by Amount limit 2") == [
        (Decimal("10.00"),),
        (Decimal("25.50"),),
    ]


async def test_hostile_strings_are_values(api: ApiClient, books: dict[str, Any]) -> None:
    numbers = {a["accountNumber"]: n for a, n in zip(books["hostile"], HOSTILE_NAMES, strict=True)}
    for number, name in numbers.items():
        export = "select AccountNumber from Account where Name = '" + name.replace("'", "''") + "'"
        assert await rows(api, export) == [(number,)], name
        escaped = name.replace("\\", "\\\\").replace("'", "\\'")
        plain = f"select AccountNumber from Account where Name = '{escaped}'"
        assert await rows(api, plain, export=False) == [(number,)], name
    # A backslash in a pattern is a plain character; % and _ are the wildcards.
    assert await rows(api, "select Name from Account where Name like 'back\\sl%'") == [
        ("back\\slash",)
    ]
    assert await rows(api, "select Name from Account where Name like '50%'") == [("50% off_",)]
    assert await rows(api, "select Name from Account where Name = 'x'' or ''1''=''1'") == []
    assert await rows(api, "select Name from Account where Name = 'zoë 日本 ☃'") == []


async def test_two_hundred_conditions_run(api: ApiClient, books: dict[str, Any]) -> None:
    many = " or ".join(f"Name = 'n{i}'" for i in range(199))
    found = await rows(api, f"select Name from Account where {many} or Name = 'Plain Two'")
    assert found == [("Plain Two",)]


async def test_datetime_windows_select_exactly(api: ApiClient, books: dict[str, Any]) -> None:
    (updated,) = (await rows(api, "select UpdatedDate from Account where Name = 'Plain Two'"))[0]
    stamp = updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert await rows(api, f"select Name from Account where UpdatedDate = '{stamp}'") == [
        ("Plain Two",)
    ]
    window = await rows(
        api,
        "select count(*) from Account where UpdatedDate >= '2000-01-01T00:00:00Z'"
        " and UpdatedDate < '2100-01-01T00:00:00+14:00'",
    )
    assert window == [(2 + len(HOSTILE_NAMES),)]


async def test_updated_since_keeps_the_base_objects_later_rows(
    api: ApiClient, books: dict[str, Any]
) -> None:
    stamps = await rows(api, "select Name, UpdatedDate from Account order by UpdatedDate")
    since = dict(stamps)["Plain Two"]  # itself not updated after
    wanted = {"Partner One", "Plain Two", HOSTILE_NAMES[-1]}
    for export in (True, False):
        names = " or ".join(f"Name = '{name}'" for name in sorted(wanted))
        compiled = compile_zoql(
            f"select Name from Account where {names}", export=export, updated_since=since
        )
        assert compiled.source == "Account"
        found = {name for (name,) in await run(api, compiled)}
        assert found == {name for name, updated in stamps if updated > since and name in wanted}
        assert "Plain Two" not in found and found
    everything = compile_zoql("select Name from Account", export=True, updated_since=since)
    assert len(await run(api, everything)) == len([u for _, u in stamps if u > since]) > 0


async def test_generated_queries_compile_and_run_or_are_refused(
    api: ApiClient, books: dict[str, Any]
) -> None:
    """Random queries over Account's fields and literals: whatever compiles runs in PostgreSQL
    without an error."""
    account = by_name("Account")
    assert account is not None
    names = [f.name for f in account.fields if f.export] + ["BillToContact.FirstName"]
    literals = [
        "'a'",
        "'2026-01-01'",
        "'2026-01-01T00:00:00Z'",
        "'0001-01-01T00:00:00-14:00'",
        "'9999-12-31T23:59:59+14:00'",
        "1",
        "-2.5",
        "1" + "0" * 400,
        "true",
        "'true'",
    ]
    operators = ["=", "!=", "<", "<=", ">", ">="]
    chooser = random.Random(7)
    compiled: dict[bool, int] = {False: 0, True: 0}  # by grouped
    for _ in range(400):
        conditions = []
        for _ in range(chooser.randint(1, 4)):
            left = chooser.choice(names)
            kind = chooser.random()
            if kind < 0.2:
                conditions.append(f"{left} is {chooser.choice(['', 'not '])}null")
            elif kind < 0.35:
                conditions.append(f"{left} like '{chooser.choice(['a%', '%b', '_'])}'")
            elif kind < 0.5:
                conditions.append(f"{left} {chooser.choice(operators)} {chooser.choice(names)}")
            else:
                literal = chooser.choice(literals)
                conditions.append(f"{left} {chooser.choice(operators)} {literal}")
        joiner = chooser.choice([" and ", " or "])
        where = joiner.join(conditions)
        grouped = chooser.random() < 0.5
        if not grouped:
            query = f"select {chooser.choice(names)} from Account where {where}"
            query += f" order by {chooser.choice(names)} {chooser.choice(['asc', 'desc'])}"
        else:
            group = chooser.choice(names)
            aggregate = f"{chooser.choice(['count', 'sum', 'avg', 'min', 'max'])}"
            aggregate += f"({chooser.choice(names)})"
            having = f"{aggregate} {chooser.choice(operators)} {chooser.choice(literals)}"
            query = (
                f"select {group}, {aggregate}, count(*) from Account where {where}"
                f" group by {group} having {having} order by {aggregate} desc limit 3"
            )
        try:
            query_sql = compile_zoql(query, export=True)
        except ZoqlError:
            continue
        compiled[grouped] += 1
        await run(api, query_sql)
    assert compiled[False] > 20 and compiled[True] > 10, compiled


# -- the whole catalogue and describe --------------------------------------------------------


async def describe(api: ApiClient, path: str) -> ElementTree.Element:
    response = await api.http.get(path, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<')
    return ElementTree.fromstring(response.content)


async def test_describe_lists_every_object(api: ApiClient) -> None:
    root = await describe(api, "/v1/describe")
    assert root.tag == "objects"
    listed = root.findall("./object")
    assert [o.findtext("name") for o in listed] == [o.name for o in OBJECTS]
    account = listed[0]
    assert account.findtext("label") == "Account"
    assert account.get("href") == "http://partnerbill.test/v1/describe/Account"


async def test_describe_account_shows_the_reseller_fields_for_export(api: ApiClient) -> None:
    root = await describe(api, "/v1/describe/Account")
    assert root.tag == "object" and root.findtext("name") == "Account"
    fields = {f.findtext("name"): f for f in root.findall("./fields/field")}
    for name, label, type_ in [
        ("PartnerAccount", "Partner Account", "boolean"),
        ("LastMetricsUpdate", "Last Metrics Update", "datetime"),
        ("Id", "ID", "text"),
        ("UpdatedDate", "Updated Date", "datetime"),
        ("Balance", "Account Balance", "decimal"),
    ]:
        field = fields[name]
        assert field.findtext("label") == label
        assert field.findtext("type") == type_
        assert field.findtext("required") == "false"
        assert "export" in [c.text for c in field.findall("./contexts/context")]
    assert "export" not in [c.text for c in fields["BillToId"].findall("./contexts/context")]
    related = root.findall("./related-objects/object")
    assert [(r.findtext("name"), r.findtext("label")) for r in related] == [
        ("BillToContact", "Bill To Contact"),
        ("SoldToContact", "Sold To Contact"),
    ]
    assert related[0].get("href") == "http://partnerbill.test/v1/describe/Contact"


async def test_describe_agrees_with_export_zoql_on_every_object(api: ApiClient) -> None:
    """Every export field of every described object selects, and every related object joins,
    on a tenant holding an object of every kind; the fields without the export context are
    refused by Export ZOQL and accepted by ZOQL."""
    await seed_tenant(api)
    types = {t.value for t in FieldType}
    for obj in (await describe(api, "/v1/describe")).findall("./object"):
        name = obj.findtext("name")
        root = await describe(api, f"/v1/describe/{name}")
        assert root.find("related-objects") is not None, name
        exported, others = [], []
        for field in root.findall("./fields/field"):
            assert field.findtext("type") in types
            contexts = [c.text for c in field.findall("./contexts/context")]
            (exported if "export" in contexts else others).append(field.findtext("name"))
        assert {"Id", "UpdatedDate"} <= set(exported), name
        every = await rows(api, f"select {', '.join(exported)} from {name}")
        assert every == await rows(api, f"select * from {name}"), name
        for field_name in exported:
            await rows(api, f"select {field_name} from {name} where {field_name} is not null")
        for field_name in others:
            with pytest.raises(ZoqlError, match="cannot be exported"):
                compile_zoql(f"select {field_name} from {name}", export=True)
        await rows(api, f"select {', '.join(exported + others)} from {name}", export=False)
        for relation in root.findall("./related-objects/object"):
            rel = relation.findtext("name")
            joined = await rows(api, f"select Id, {rel}.Id from {name}")
            assert len(joined) == len(every), (name, rel)
            await rows(api, f"select {rel}.* from {name}")
    # The seeded objects are there to be seen, joined to their parents.
    invoice_accounts = await rows(api, "select Account.Id from Invoice")
    assert invoice_accounts and all(account_id for (account_id,) in invoice_accounts)
    items = await rows(api, "select Invoice.InvoiceNumber, Account.AccountNumber from InvoiceItem")
    assert items and all(number and account for number, account in items)


async def test_describe_needs_a_token_and_knows_only_catalogue_objects(api: ApiClient) -> None:
    for path in ("/v1/describe", "/v1/describe/Account"):
        response = await api.http.get(path)
        assert response.status_code == 401
    response = await api.http.get(
        "/v1/describe/NoSuchObject", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 404
    assert_envelope(response.json(), 40)
    posted = await api.http.post(
        "/v1/describe/Account", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert posted.status_code == 405
