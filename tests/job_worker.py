"""The job worker as a real process, for tests whose jobs must run while a client polls."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def running_worker(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": database_url, "PARTNERBILL_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "partnerbill.cli", "worker"], env=env)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
