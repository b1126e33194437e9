"""`transaction()` and `autocommit()` in a request bound to one connection (an Idempotency-Key
request): savepoints of its one transaction, on a real PostgreSQL."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from partnerbill.core import db


async def _probe_rows(conn: AsyncConnection) -> list[int]:
    return list(await conn.scalars(text("SELECT x FROM probe ORDER BY x")))


async def test_blocks_are_savepoints_that_commit_only_with_the_request(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(text("CREATE TEMP TABLE probe (x int) ON COMMIT DROP"))
        with db.bound_to_request(conn):
            async with db.transaction() as block:
                assert block is conn
                await block.execute(text("INSERT INTO probe VALUES (1)"))
            with pytest.raises(DBAPIError):
                async with db.transaction() as block:
                    await block.execute(text("INSERT INTO probe VALUES (2)"))
                    await block.execute(text("SELECT 1 / 0"))
            # A block that catches its failed statement itself (the partner invoice path does)
            # leaves the transaction usable: its savepoint is rolled back.
            async with db.autocommit() as block:
                assert block is conn
                await block.execute(text("INSERT INTO probe VALUES (3)"))
                with pytest.raises(DBAPIError):
                    await block.execute(text("SELECT 1 / 0"))
            async with db.autocommit() as block:
                await block.execute(text("INSERT INTO probe VALUES (4)"))
            assert await _probe_rows(conn) == [1, 4]
        # Outside the binding, blocks have connections of their own again.
        async with db.transaction() as own:
            assert own is not conn
        await conn.rollback()


async def test_a_local_statement_timeout_follows_the_savepoint(engine: AsyncEngine) -> None:
    """The metrics lock wait sets `statement_timeout` locally and restores it; in a savepoint
    that is rolled back (lock competition) the setting goes back by itself."""
    async with engine.connect() as conn:
        await conn.begin()
        before = await conn.scalar(text("SELECT current_setting('statement_timeout')"))
        with db.bound_to_request(conn):
            with pytest.raises(DBAPIError):
                async with db.transaction() as block:
                    await block.execute(text("SELECT set_config('statement_timeout', '50', true)"))
                    await block.execute(text("SELECT pg_sleep(0.2)"))
            assert await conn.scalar(text("SELECT current_setting('statement_timeout')")) == before
            async with db.transaction() as block:
                await block.execute(text("SELECT set_config('statement_timeout', '1234', true)"))
            assert (
                await conn.scalar(text("SELECT current_setting('statement_timeout')")) == "1234ms"
            )
        await conn.rollback()
