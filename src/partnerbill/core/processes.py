"""Process supervision for `partnerbill serve`: its children die with it, and a dead job worker
is started again.

Rules:
- `serve` exports its pid as PARTNERBILL_SUPERVISOR_PID; every child it starts (uvicorn's API
  workers, the job worker) calls `die_with_supervisor` first thing, which asks Linux to send it
  SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), so even `kill -9` of `serve` leaves no
  orphan holding the port or the database.
- `Supervised` restarts its command whenever it exits while `serve` runs, after a `Backoff`
  delay: 1 s, then twice as long after each quick death, up to 30 s (the job worker reconnects
  to a lost database on the same schedule).
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

SUPERVISOR_PID_ENV = "PARTNERBILL_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1
FIRST_RESTART_DELAY_SECONDS = 1.0
LONGEST_RESTART_DELAY_SECONDS = 30.0
# A child that ran this long before dying was healthy: its next restart waits the first delay.
HEALTHY_RUN_SECONDS = 60.0


class Backoff:
    """How long to wait before starting something again that just stopped."""

    def __init__(self) -> None:
        self.delay = FIRST_RESTART_DELAY_SECONDS
        self.started_at = time.monotonic()

    def started(self) -> None:
        self.started_at = time.monotonic()

    def next_delay(self) -> float:
        if time.monotonic() - self.started_at >= HEALTHY_RUN_SECONDS:
            self.delay = FIRST_RESTART_DELAY_SECONDS
        delay = self.delay
        self.delay = min(delay * 2, LONGEST_RESTART_DELAY_SECONDS)
        return delay


def die_with_supervisor() -> None:
    """In a child of `serve`: get SIGTERM when `serve` dies, however it dies. No-op elsewhere."""
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    if not supervisor or int(supervisor) == os.getpid() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The supervisor may have died before the request took effect: then nobody will signal us.
    if os.getppid() != int(supervisor):
        raise SystemExit(f"partnerbill serve (pid {supervisor}) is gone; not starting")


class Supervised:
    """A child process kept running by a thread of `serve` until `stop`.

    Linux delivers the parent-death signal when the *thread* that started the child ends, so
    the child is started from this thread, which lives as long as supervision does."""

    def __init__(self, name: str, command: list[str], report: Callable[[str], None]) -> None:
        self.name = name
        self.command = command
        self.report = report
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._keep_running, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _keep_running(self) -> None:
        backoff = Backoff()
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                backoff.started()
                self.process = subprocess.Popen(self.command)
            code = self.process.wait()
            if self._stopping.is_set():
                return
            delay = backoff.next_delay()
            self.report(
                f"{self.name} (pid {self.process.pid}) exited with {code}; "
                f"restarting in {delay:g} s"
            )
            if self._stopping.wait(delay):
                return

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the child (a graceful stop), SIGKILL it after `timeout`; no more restarts."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(timeout=5)
