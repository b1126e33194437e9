"""Object ids: Zuora-style 32 lowercase hex characters, time-ordered (UUIDv7)."""

from uuid_utils import uuid7


def new_id() -> str:
    # uuid_utils' own UUID type: about 6x faster than its stdlib-compatible one, and only the
    # hex text is kept.
    return str(uuid7().hex)
