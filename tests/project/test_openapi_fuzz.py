"""schemathesis against the live server's own OpenAPI document, over real HTTP.

One test per operation of `/openapi.json`, in schemathesis' phases: the document's examples,
coverage (boundary values, missing and wrong-typed fields, undeclared methods) and fuzzing
(`PARTNERBILL_FUZZ_EXAMPLES` generated requests, default 10: the CI budget), schema-valid and
schema-invalid. Requests carry a real bearer token of a fresh tenant that holds an object of every
kind (`tests.tenant_seed`); path keys and body fields naming objects are more often than not
replaced by those real keys, so requests get past the lookups. An operation's test stops at its
first failing request; shrinking it to the smallest is off unless `PARTNERBILL_FUZZ_SHRINK=1`.
Each answer must pass schemathesis' checks (no 5xx; status code, content type, headers and body
as documented; valid input accepted, invalid input refused; auth enforced; undeclared methods
refused with 405 and `Allow`) and, when it is an error, be the Zuora envelope with a request id.

Relaxed for Zuora semantics, and only this: `positive_data_acceptance` also accepts 400. Rules
that depend on stored state (an amount with more decimals than *the account's* currency has, a
date before *the subscription's* start, a term the catalog plan does not allow) cannot be stated
in a JSON schema, so schema-valid input may still be a request error; it must then be a 400 with
the envelope (checked here), never a 5xx.

A longer run by hand:
`PARTNERBILL_FUZZ_EXAMPLES=200 .venv/bin/pytest tests/project/test_openapi_fuzz.py`.
"""

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, Response

from partnerbill.app import create_app
from partnerbill.core.answers import OBJECT_API_PREFIX
from tests.helpers import TenantCredentials, client_for, new_tenant_on_own_engine
from tests.tenant_seed import BODY_KEY_KINDS, SeededKeys, path_key_kind, seed_tenant

EXAMPLES = int(os.environ.get("PARTNERBILL_FUZZ_EXAMPLES", "10"))
# Shrinking finds the smallest failing input; it costs many more requests, so only on demand.
SHRINK = os.environ.get("PARTNERBILL_FUZZ_SHRINK") == "1"
# schemathesis' default for schema-valid input, and 400 (see above).
ACCEPTED = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]


async def _seeded_tenant(
    database_url: str, base_url: str
) -> tuple[TenantCredentials, str, SeededKeys]:
    credentials = await new_tenant_on_own_engine(database_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        api = await client_for(http, credentials)
        return credentials, api.token, await seed_tenant(api)


@pytest.fixture(scope="module")
def fuzz_tenant(live_server: str, database_url: str) -> tuple[TenantCredentials, str, SeededKeys]:
    """A fresh tenant holding one object of every kind, its bearer token, and their keys."""
    return asyncio.run(_seeded_tenant(database_url, live_server))


# Every key field of the document allows strings of these lengths (none has a pattern): a string
# this long is valid there, and replacing it cannot hide the invalid value of a negative case.
ANY_KEY_FIELD_ALLOWS = range(1, 33)


def _with_real_keys(value: Any, keys: SeededKeys) -> Any:
    """`value` with every field naming an object (`accountId`, `invoiceId`, ...) set to a real
    key of the seeded tenant, at any depth; not where the generated value was out of bounds (a
    negative case's invalid value must reach the server)."""
    if isinstance(value, dict):
        return {
            name: keys.of(BODY_KEY_KINDS[name])[0]
            if name in BODY_KEY_KINDS
            and isinstance(field, str)
            and len(field) in ANY_KEY_FIELD_ALLOWS
            else _with_real_keys(field, keys)
            for name, field in value.items()
        }
    if isinstance(value, list):
        return [_with_real_keys(item, keys) for item in value]
    return value


@schemathesis.check
def zuora_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every error answer is the Zuora envelope with a request id (the CRUD object API's own
    PascalCase failure or empty result under `/v1/object/`, but 401)."""
    assert response.headers.get("zuora-request-id"), "no Zuora-Request-Id header"
    if response.status_code < 400:
        return True
    payload = response.json()
    assert isinstance(payload, dict), payload
    if case.operation.path.startswith(OBJECT_API_PREFIX) and response.status_code != 401:
        if response.status_code == 404:
            assert payload == {"done": True, "records": [], "size": 0}, payload
        else:
            assert payload.get("Success") is False and payload.get("Errors"), payload
        return True
    assert payload.get("success") is False, payload
    assert isinstance(payload.get("requestId"), str) and payload["requestId"], payload
    reasons = payload.get("reasons")
    assert isinstance(reasons, list) and reasons, payload
    for reason in reasons:
        assert isinstance(reason.get("code"), int), reason
        assert 10_000_000 <= reason["code"] <= 99_999_999, reason
        assert isinstance(reason.get("message"), str) and reason["message"], reason
    return True


# Generated from the app's own document, which the live server serves (checked below); the
# requests go to the live server.
schema = schemathesis.openapi.from_dict(
    create_app().openapi(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": EXAMPLES,
                "with-security-parameters": False,
                "no-shrink": not SHRINK,
                "database": "none",
            },
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
            "operations": [
                {
                    # With useSingleTransaction false each invoice is judged on its own, as in
                    # Zuora: a batch of invalid invoices answers 200 with each one's errors,
                    # which a JSON schema cannot say (the batch tests check those answers).
                    "include-path": "/v1/invoices/batch",
                    "include-method": "POST",
                    "checks": {"negative_data_rejection": {"enabled": False}},
                }
            ],
            # Generating the large order bodies is slow; that says nothing about the server.
            "suppress-health-check": ["all"],
            # No state kept between runs (it would replay earlier failures first): each run is
            # the same for CI and by hand.
            "cache": {"enabled": False},
        }
    ),
)
# The seeded tenant's keys, once its fixture has run (the hooks draw from them).
SEEDED: dict[str, SeededKeys] = {}


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    keys = SEEDED["keys"]
    choices = [path_parameters]
    for name in path_parameters:
        kind = path_key_kind(context.operation.path, name)
        if kind is not None:
            choices += [{**path_parameters, name: key} for key in keys.of(kind)]
    return st.sampled_from(choices)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return st.sampled_from([body, _with_real_keys(body, SEEDED["keys"])])


@pytest.fixture(scope="module")
def target(
    live_server: str, fuzz_tenant: tuple[TenantCredentials, str, SeededKeys]
) -> tuple[str, dict[str, str]]:
    """The live server's URL and the seeded tenant's bearer header."""
    SEEDED["keys"] = fuzz_tenant[2]
    return live_server, {"Authorization": f"Bearer {fuzz_tenant[1]}"}


@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: Case, target: tuple[str, dict[str, str]]
) -> None:
    base_url, bearer = target
    case.call_and_validate(
        base_url=base_url, headers=bearer, additional_checks=[zuora_envelope], timeout=30
    )


def test_live_server_serves_this_document(live_server: str) -> None:
    assert httpx.get(f"{live_server}/openapi.json").json() == create_app().openapi()


def test_document_states_auth_answers_and_errors() -> None:
    """What the fuzzing relies on: every operation documents its success body, the bearer
    security (but the token route), and the error answers with their envelope."""
    raw = schema.raw_schema
    assert {"oauth2", "bearer"} <= set(raw["components"]["securitySchemes"])
    operations = [
        (path, method, operation)
        for path, item in raw["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) >= 60
    for path, method, operation in operations:
        responses = operation["responses"]
        success = responses.get("200") or responses["202"]
        assert success["content"]["application/json"]["schema"], (method, path)
        assert "422" not in responses, (method, path)
        assert "401" in responses, (method, path)
        if path == "/oauth/token":
            assert operation["security"] == [], path
            continue
        assert operation["security"] == [{"oauth2": []}, {"bearer": []}], (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
            assert "400" in responses, (method, path)


def _key_field_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if name in BODY_KEY_KINDS:
                yield from (p for p in prop.get("anyOf", [prop]) if p.get("type") == "string")
        for child in node.values():
            yield from _key_field_schemas(child)
    elif isinstance(node, list):
        for child in node:
            yield from _key_field_schemas(child)


def test_every_key_field_allows_what_the_body_hook_replaces() -> None:
    schemas = list(_key_field_schemas(create_app().openapi()))
    assert len(schemas) > 20
    for field in schemas:
        assert field.get("minLength", 0) <= ANY_KEY_FIELD_ALLOWS.start, field
        assert field.get("maxLength", 10**9) >= ANY_KEY_FIELD_ALLOWS.stop - 1, field
        assert "pattern" not in field, field
