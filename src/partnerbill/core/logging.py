"""structlog: JSON lines on stderr carrying the request id.

Every API request writes one `request` line (logger `partnerbill.access`, see app.py's
`RequestBoundary`); every API and worker process writes `process_started` and `process_stopped`
lines naming its kind (`api`, `worker`) and pid, so a log shows which process served what."""

import logging
import os
import sys

import structlog

process_log = structlog.get_logger("partnerbill.process")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", level=level, stream=sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def process_started(kind: str, **details: object) -> None:
    process_log.info("process_started", process=kind, pid=os.getpid(), **details)


def process_stopped(kind: str) -> None:
    process_log.info("process_stopped", process=kind, pid=os.getpid())
