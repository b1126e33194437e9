"""What differs between credit and debit memos for the operations they share (`MemoKind`),
and the two kinds."""

from dataclasses import dataclass

from sqlalchemy import Table

from partnerbill.core.errors import (
    Resource,
)
from partnerbill.tables.memos import (
    credit_memo_items,
    credit_memos,
    debit_memo_items,
    debit_memos,
)


@dataclass(frozen=True, slots=True)
class MemoKind:
    """What differs between credit and debit memos for the operations they share."""

    name: str  # in messages
    table: Table
    items: Table
    resource: Resource
    sequence: str
    prefix: str

    @property
    def is_credit(self) -> bool:
        return self.table is credit_memos


CREDIT = MemoKind(
    "credit memo", credit_memos, credit_memo_items, Resource.CREDIT_MEMO, "credit_memo_number", "CM"
)


DEBIT = MemoKind(
    "debit memo", debit_memos, debit_memo_items, Resource.DEBIT_MEMO, "debit_memo_number", "DM"
)
