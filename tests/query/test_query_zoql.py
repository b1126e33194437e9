"""ZOQL and Export ZOQL: what the grammars accept and refuse, the SQL they compile to (bound
values, joins, column names, limits), and hostile or random input compiled or refused."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnerbill.query.catalog import OBJECTS, FieldType
from partnerbill.query.zoql import MAX_LENGTH, ZoqlError, compile_zoql

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
