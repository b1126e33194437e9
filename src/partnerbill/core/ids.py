"""Object ids: Zuora-style 32 lowercase hex characters, time-ordered (UUIDv7)."""

from uuid_utils.compat import uuid7


def new_id() -> str:
    return uuid7().hex
