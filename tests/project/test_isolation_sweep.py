"""Tenant isolation, swept over the route table (`app.routes`), on the live server.

Tenant A holds an object of every kind (`tests.tenant_seed`). Every route with a key in its path
is called by tenant B with each of A's real keys for it (the id and the number): it must answer
404 in the envelope (category 40), or the CRUD object API's empty result under `/v1/object/`,
and change no row of either tenant. A route added later is swept without anyone listing it: the
test fails when its key has no way to be obtained (`PATH_KEY_KINDS`) or, for a route that needs
a body, no valid body here (`BODIES`). The same calls made by A must then not answer 404, which
proves each key real and each body good enough to reach the lookup.
"""

import itertools
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.app import create_app
from partnerbill.core.answers import OBJECT_API_PREFIX
from partnerbill.ui.routes import UI_PREFIX
from partnerbill.unsupported.routes import REFUSAL_ENDPOINTS
from tests.helpers import ApiClient, assert_envelope, client_for, new_tenant
from tests.tenant_seed import BODY_KEY_KINDS, SeededKeys, path_key_kind, seed_tenant

OBJECT_API_NOT_FOUND = {"done": True, "records": [], "size": 0}
Body = Callable[[SeededKeys], dict[str, Any]]


def _application(keys: SeededKeys) -> dict[str, Any]:
    return {
        "effectiveDate": "2026-11-05",
        "invoices": [{"invoiceId": keys.of("invoice")[0], "amount": "1.00"}],
    }


def _refund(_: SeededKeys) -> dict[str, Any]:
    return {"type": "External", "totalAmount": "1.00", "refundDate": "2026-11-06"}


# A valid body for each keyed route whose body is required (naming A's objects where it names
# any), so that the route gets as far as looking the key up.
BODIES: dict[tuple[str, str], Body] = {
    ("PUT", "/v1/accounts/{account_key}"): lambda _: {"name": "Renamed"},
    ("PUT", "/v1/subscriptions/{subscription_key}"): lambda _: {"notes": "Swept"},
    ("PUT", "/v1/orders/{order_number}"): lambda keys: {
        "orderDate": "2026-11-01",
        "existingAccountNumber": keys.of("account")[0],
        "subscriptions": [
            {
                "subscriptionNumber": keys.of("subscription")[-1],
                "orderActions": [{"type": "RenewSubscription"}],
            }
        ],
    },
    ("PUT", "/v1/subscriptions/{subscription_key}/cancel"): lambda _: {
        "cancellationPolicy": "SpecificDate",
        "cancellationEffectiveDate": "2026-12-01",
    },
    ("PUT", "/v1/subscriptions/{subscription_key}/suspend"): lambda _: {"suspendPolicy": "Today"},
    ("PUT", "/v1/subscriptions/{subscription_key}/resume"): lambda _: {"resumePolicy": "Today"},
    ("PUT", "/v1/payments/{payment_key}/apply"): _application,
    ("PUT", "/v1/payments/{payment_key}/unapply"): _application,
    ("POST", "/v1/payments/{payment_key}/refunds"): _refund,
    ("POST", "/v1/credit-memos/invoice/{invoice_key}"): lambda keys: {
        "items": [{"invoiceItemId": keys.of("invoice_item")[0], "amount": "1.00"}]
    },
    ("POST", "/v1/debit-memos/invoice/{invoice_key}"): lambda _: {
        "items": [{"amount": "1.00", "skuName": "Fee"}]
    },
    ("PUT", "/v1/credit-memos/{memo_key}/apply"): _application,
    ("PUT", "/v1/credit-memos/{memo_key}/unapply"): _application,
    ("POST", "/v1/credit-memos/{memo_key}/refund"): _refund,
    ("PUT", "/v1/contacts/{contact_id}"): lambda _: {"city": "Lyon"},
    ("PUT", "/v1/contacts/{contact_id}/transfer"): lambda keys: {
        "destinationAccountKey": keys.of("account")[0]
    },
    ("PUT", "/v1/invoices/{invoice_key}"): lambda _: {"comments": "Edited"},
    ("PUT", "/v1/payments/{payment_key}"): lambda _: {"comment": "Edited"},
    ("PUT", "/v1/refunds/{refund_key}"): lambda _: {"comment": "Edited"},
    ("PUT", "/v1/payment-methods/{payment_method_id}"): lambda _: {"makeDefault": True},
    ("PUT", "/v1/credit-memos/{memo_key}"): lambda _: {"comment": "Edited"},
    ("PUT", "/v1/debit-memos/{memo_key}"): lambda _: {"comment": "Edited"},
    ("PUT", "/v1/invoices/{invoice_key}/write-off"): lambda _: {},
    ("PUT", "/v1/debitmemos/{debit_memo_key}/write-off"): lambda _: {},
}


def _route_table() -> list[tuple[str, str, list[str], bool, list[str]]]:
    """(method, path, path keys, body required, query parameter names) of every route the app
    has, documented or not."""
    table = []
    for route in iter_route_contexts(create_app().routes):
        if route.path.startswith(UI_PREFIX):
            continue  # signed in by session cookie: tests/ui/test_ui_users.py sweeps them
        if route.endpoint in REFUSAL_ENDPOINTS:
            continue  # "not supported" reads nothing: tests/project/test_sdk_coverage.py calls them
        keys = re.findall(r"{(\w+)}", route.path)
        body = getattr(route, "body_field", None)
        required = body is not None and body.field_info.is_required()
        dependant = getattr(route, "dependant", None)
        query = [param.alias for param in dependant.query_params] if dependant else []
        for method in sorted(route.methods):
            table.append((method, route.path, keys, required, query))
    return table


ROUTES = _route_table()
KEYED = [(method, path, keys, body) for method, path, keys, body, _ in ROUTES if keys]
LISTS = [
    (path, [name for name in query if name in BODY_KEY_KINDS])
    for method, path, keys, _, query in ROUTES
    if method == "GET" and not keys and any(name in BODY_KEY_KINDS for name in query)
]


def test_every_keyed_route_has_a_way_to_get_a_key_and_a_body() -> None:
    assert len(KEYED) >= 45, KEYED  # the sweep really covers the route table
    for method, path, keys, body_required in KEYED:
        for key in keys:
            assert path_key_kind(path, key) is not None, f"{method} {path}: no key for {{{key}}}"
        if body_required:
            assert (method, path) in BODIES, f"{method} {path}: no body in BODIES"
    assert set(BODIES) <= {(method, path) for method, path, _, _ in KEYED}, "stale BODIES"


async def _fingerprint(engine: AsyncEngine, *tenant_ids: str) -> dict[str, str]:
    """Every tenant-scoped table's rows of the tenants, hashed, and the job queue's size."""
    async with engine.connect() as conn:
        tables = (
            await conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = "
                    "'tenant_id' AND table_schema = current_schema() ORDER BY table_name"
                )
            )
        ).all()
        prints = {
            table: str(
                await conn.scalar(
                    text(
                        f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                        f"FROM {table} t WHERE tenant_id = ANY(:tenants)"
                    ),
                    {"tenants": list(tenant_ids)},
                )
            )
            for table in tables
        }
        prints["procrastinate_jobs"] = str(
            await conn.scalar(text("SELECT count(*) FROM procrastinate_jobs"))
        )
    assert len(prints) > 15, prints
    return prints


@pytest.fixture
async def tenants(live_server: str, engine: AsyncEngine) -> AsyncIterator[tuple[ApiClient, ...]]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        owner = await client_for(http, await new_tenant(engine))
        other = await client_for(http, await new_tenant(engine))
        yield owner, other


def _calls(keys: SeededKeys) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(route, method, URL, body) for every keyed route and every real key of it."""
    calls = []
    for method, path, names, _ in KEYED:
        body_of = BODIES.get((method, path))
        body = body_of(keys) if body_of else None
        choices = [keys.of(path_key_kind(path, name) or "") for name in names]
        for values in itertools.product(*choices):
            url = path
            for name, value in zip(names, values, strict=True):
                url = url.replace(f"{{{name}}}", value)
            calls.append((f"{method} {path}", method, url, body))
    return calls


async def test_another_tenant_gets_404_from_every_keyed_route_and_changes_nothing(
    tenants: tuple[ApiClient, ApiClient], engine: AsyncEngine
) -> None:
    owner, other = tenants
    keys = await seed_tenant(owner)
    calls = _calls(keys)
    assert {route for route, *_ in calls} == {f"{m} {p}" for m, p, _, _ in KEYED}
    before = await _fingerprint(engine, owner.tenant.id, other.tenant.id)

    for route, method, url, body in calls:
        status, payload = await other.call(method, url, body, expect=None)
        assert status == 404, (route, url, status, payload)
        if url.startswith(OBJECT_API_PREFIX):
            assert payload == OBJECT_API_NOT_FOUND, (route, url, payload)
        else:
            assert_envelope(payload, 40)

    assert await _fingerprint(engine, owner.tenant.id, other.tenant.id) == before
    for index in range(len(calls)):
        # An amendment makes a new subscription version with an id of its own: A's calls use
        # the current one.
        number = keys.of("subscription")[1]
        keys.keys["subscription"][0] = (await owner.ok("GET", f"/v1/subscriptions/{number}"))["id"]
        route, method, url, body = _calls(keys)[index]
        status, payload = await owner.call(method, url, body, expect=None)
        assert status != 404 and status < 500, (route, url, status, payload)


async def test_another_tenants_keys_filter_every_list_to_nothing(
    tenants: tuple[ApiClient, ApiClient],
) -> None:
    """List routes filtered by an object (`?accountId=`, ...) given A's keys list nothing."""
    owner, other = tenants
    keys = await seed_tenant(owner)
    assert LISTS, ROUTES
    for path, filters in LISTS:
        for name in filters:
            # `...Id` filters take the id, `...Number` ones the number.
            value = keys.of(BODY_KEY_KINDS[name])[1 if name.endswith("Number") else 0]
            _, owned = await owner.call("GET", f"{path}?{name}={value}")
            status, payload = await other.call("GET", f"{path}?{name}={value}", expect=None)
            listed = [v for v in payload.values() if isinstance(v, list)]
            assert status == 200 and listed == [[]], (path, name, value, status, payload)
            assert any(v for v in owned.values() if isinstance(v, list)), (path, name, owned)
