"""The official zuora-sdk's whole surface for the objects partnerbill stores, enumerated from the
installed SDK: every operation is served by a route, either the implementation or a deliberate
"not supported" answer, and the README's coverage table says so per SDK area.

The operations are read from the SDK's generated `_<operation>_serialize` methods (the method and
`resource_path` they build). The deliberate refusals are called over real HTTP without arguments
the SDK would need models for, so this test speaks raw HTTP on purpose."""

import inspect
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import zuora_sdk
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path

from partnerbill.unsupported.routes import UNSUPPORTED
from tests.helpers import ApiClient

# The SDK areas of the objects partnerbill stores.
SDK_AREAS = (
    "AccountsApi",
    "OrdersApi",
    "SubscriptionsApi",
    "InvoicesApi",
    "PaymentsApi",
    "RefundsApi",
    "CreditMemosApi",
    "DebitMemosApi",
    "BillRunApi",
    "BillingDocumentsApi",
    "ContactsApi",
    "PaymentMethodsApi",
)
README = Path(__file__).resolve().parents[2] / "README.md"
_PARAMETER = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class Operation:
    area: str
    name: str
    method: str
    path: str

    @property
    def concrete_path(self) -> str:
        """The path with each parameter filled, as a request would carry it."""
        return _PARAMETER.sub("X1", self.path)


def sdk_operations() -> list[Operation]:
    operations = []
    for area in SDK_AREAS:
        for name, function in inspect.getmembers(getattr(zuora_sdk, area), inspect.isfunction):
            if not (name.startswith("_") and name.endswith("_serialize")):
                continue
            source = inspect.getsource(function)
            method = re.search(r"method='(\w+)'", source)
            path = re.search(r"resource_path='([^']+)'", source)
            assert method and path, f"{area}.{name}: the SDK's generated code changed shape"
            operations.append(Operation(area, name[1 : -len("_serialize")], method[1], path[1]))
    return operations


OPERATIONS = sdk_operations()
_UNSUPPORTED_KEYS = {(u.method, _PARAMETER.sub("X1", u.path)) for u in UNSUPPORTED}


def _serving_routes(app: FastAPI, operation: Operation) -> list[str]:
    """The routes that serve the operation's request: the most specific match, as Starlette
    picks literal segments (`/v1/invoices/pdf-status`) only when declared before parameters."""
    matching = [
        (route.path.count("{"), route.path)
        for route in iter_route_contexts(app.routes)
        if route.methods
        and operation.method in route.methods
        and compile_path(route.path)[0].match(operation.concrete_path)
    ]
    fewest = min((parameters for parameters, _ in matching), default=0)
    return [path for parameters, path in matching if parameters == fewest]


def is_unsupported(operation: Operation) -> bool:
    return (operation.method, operation.concrete_path) in _UNSUPPORTED_KEYS


def test_the_sdk_surface_is_the_one_this_test_was_written_for() -> None:
    # zuora-sdk 3.21.0: a changed count means the SDK moved; re-read what it now offers.
    assert len(OPERATIONS) == 194
    assert len(set(OPERATIONS)) == len(OPERATIONS)


def key(operation: Operation) -> str:
    return f"{operation.area}.{operation.name}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=key)
def test_every_sdk_operation_has_exactly_one_route(app: FastAPI, operation: Operation) -> None:
    routes = _serving_routes(app, operation)
    assert routes, f"{operation.method} {operation.path} would answer 404"
    assert len(routes) == 1, f"{operation.method} {operation.path} is served twice: {routes}"


def test_every_refusal_names_an_sdk_operation() -> None:
    offered = {(o.method, o.concrete_path) for o in OPERATIONS}
    assert offered >= _UNSUPPORTED_KEYS, _UNSUPPORTED_KEYS - offered
    assert len(_UNSUPPORTED_KEYS) == len(UNSUPPORTED)


@pytest.mark.parametrize(
    "operation",
    [o for o in OPERATIONS if is_unsupported(o)],
    ids=key,
)
async def test_a_refusal_is_a_business_rule_answer_saying_why(
    live_api: ApiClient, operation: Operation
) -> None:
    status, payload = await live_api.call(
        operation.method, operation.concrete_path, {} if operation.method != "GET" else None
    )
    assert status == 200
    assert payload["success"] is False
    (reason,) = payload["reasons"]
    assert reason["code"] % 100 == 30
    assert reason["message"].startswith("Not supported: ")
    assert len(reason["message"]) > len("Not supported: ") + 20

    unauthenticated = await live_api.http.request(operation.method, operation.concrete_path)
    assert unauthenticated.status_code == 401


def coverage_table() -> str:
    rows = [
        "| SDK area | operations | implemented | not supported |",
        "|---|---:|---:|---:|",
    ]
    totals: Counter[str] = Counter()
    for area in SDK_AREAS:
        mine = [o for o in OPERATIONS if o.area == area]
        refused = sum(1 for o in mine if is_unsupported(o))
        built = len(mine) - refused
        totals.update(total=len(mine), built=built, refused=refused)
        rows.append(f"| `{area}` | {len(mine)} | {built} | {refused} |")
    rows.append(f"| **all** | {totals['total']} | {totals['built']} | {totals['refused']} |")
    return "\n".join(rows)


def test_the_readme_coverage_table_is_the_measured_one() -> None:
    readme = README.read_text()
    shown = readme.split("<!-- sdk-coverage -->\n")[1].split("\n<!-- /sdk-coverage -->")[0]
    assert shown == coverage_table(), coverage_table()
