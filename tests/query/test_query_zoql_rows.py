"""ZOQL and Export ZOQL on real rows: the SQL they compile to run through the query transaction,
hostile strings as values, aggregates, datetime windows and generated queries; and describe's
XML agreeing with the compiler over the whole catalogue."""

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from partnerbill.query.catalog import OBJECTS, FieldType, by_name
from partnerbill.query.sandbox import query_transaction
from partnerbill.query.zoql import CompiledQuery, ZoqlError, compile_zoql
from tests.helpers import ApiClient, assert_envelope, invoice_body
from tests.tenant_seed import seed_tenant

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
