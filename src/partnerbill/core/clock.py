"""Today's date for documents dated by default (UTC, as every v1 datetime here)."""

from datetime import UTC, date, datetime


def today() -> date:
    return datetime.now(UTC).date()
