"""A real PostgreSQL per test run: a fresh database on the server named by DATABASE_URL, or on an
embedded server when it is unset (or, with PARTNERBILL_TEST_DATABASE_URL, that database as it
is). Every test gets its own tenant, so tests never see each other's rows and need no cleanup."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from zuora_sdk import Configuration
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill import tasks
from partnerbill.app import create_app
from partnerbill.core import auth, db, migrate
from partnerbill.metrics.refresh import METRICS_DRIFT
from tests.faults import running_server
from tests.helpers import ApiClient, TenantCredentials, new_tenant, new_tenant_on_own_engine

# Connections of the `live_api` client: room for the parallel tests' requests in flight.
LIVE_CONNECTIONS = 64


@pytest.fixture(autouse=True)
def no_metrics_drift(request: pytest.FixtureRequest) -> Iterator[None]:
    """A refresh in this process never finds folded metrics that differ from a recompute: a
    drift is a bug in a write path's deltas, so the test that caused it fails."""
    before = METRICS_DRIFT._value.get()
    yield
    if request.node.get_closest_marker("injects_drift") is None:
        assert METRICS_DRIFT._value.get() == before, "a verification found drifted metrics"


def _server_url(tmp_root: Path) -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return db.sqlalchemy_url(configured)
    return db.start_embedded_server(tmp_root)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    prepared = os.environ.get("PARTNERBILL_TEST_DATABASE_URL")
    if prepared:
        # A database made beforehand and kept, e.g. one distributed by tenant
        # (docs/scale-out.md): migrated here, never created or dropped. Tenants keep tests apart.
        url = db.sqlalchemy_url(prepared)
        migrate.upgrade(url)
        os.environ["DATABASE_URL"] = url
        yield url
        return
    server_url = make_url(_server_url(tmp_path_factory.mktemp("pg")))
    name = f"partnerbill_test_{uuid.uuid4().hex[:12]}"
    admin = db.libpq_url(server_url.set(database="postgres").render_as_string(False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    os.environ["DATABASE_URL"] = url  # what the app (and any server we start) connects to
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    db.set_engine(engine)
    tasks.register()  # this process defers jobs as an API process does
    auth._signing_key = None
    yield engine
    await engine.dispose()
    db.set_engine(None)


@pytest.fixture
async def tenant_credentials(engine: AsyncEngine) -> TenantCredentials:
    """A fresh tenant with an OAuth client."""
    return await new_tenant(engine)


@pytest.fixture(scope="session")
def app(engine: AsyncEngine):  # type: ignore[no-untyped-def]
    return create_app()


@pytest.fixture
async def api(app, tenant_credentials: TenantCredentials) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    """An authenticated client of the in-process app for a fresh tenant."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://partnerbill.test"
    ) as http:
        client = ApiClient(http, tenant_credentials)
        await client.authenticate()
        yield client


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """The real server over real HTTP: uvicorn with two worker processes on the test database."""
    with running_server(database_url, workers=2) as server:
        yield server.base_url


@pytest.fixture
async def live_api(
    live_server: str, tenant_credentials: TenantCredentials
) -> AsyncIterator[ApiClient]:
    """An authenticated client of the real server for a fresh tenant, able to hold
    LIVE_CONNECTIONS requests in flight (its `http` serves other tenants' clients too)."""
    limits = httpx.Limits(
        max_connections=LIVE_CONNECTIONS, max_keepalive_connections=LIVE_CONNECTIONS
    )
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60) as http:
        client = ApiClient(http, tenant_credentials)
        await client.authenticate()
        yield client


def _sdk_tenant(database_url: str) -> TenantCredentials:
    """A tenant for the synchronous zuora-sdk tests, made with an engine of its own (the session
    engine belongs to the async tests' event loop)."""

    return asyncio.run(new_tenant_on_own_engine(database_url))


@pytest.fixture(scope="module")
def sdk_credentials(database_url: str) -> TenantCredentials:
    return _sdk_tenant(database_url)


@pytest.fixture(scope="module")
def zc(live_server: str, sdk_credentials: TenantCredentials) -> Iterator[ZuoraClient]:
    """The official zuora-sdk client on the live server, one per module: `stop_auto_auth` waits
    5 s for the SDK's token-refresh thread."""
    client = ZuoraClient(
        client_id=sdk_credentials.client_id,
        client_secret=sdk_credentials.client_secret,
        env=None,
        config=Configuration(host=live_server),
    )
    client.initialize()
    try:
        yield client
    finally:
        client.stop_auto_auth()
