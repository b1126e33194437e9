"""The metrics property test's model: the strategies its rules draw from, the catalog plan, and
what the model holds of each account, subscription, invoice, debit memo, payment and credit
memo, against which `test_metrics_properties.py` checks the stored documents and metrics."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
)

from partnerbill.core.errors import Resource
from partnerbill.metrics.service import AccountMetrics

T = TypeVar("T")

ACCOUNTS = 3
BASE_DATE = date(2026, 1, 1)

amounts = st.integers(min_value=1, max_value=500_000).map(lambda cents: Decimal(cents).scaleb(-2))
days = st.integers(min_value=0, max_value=40).map(lambda n: BASE_DATE + timedelta(days=n))
account_indexes = st.integers(min_value=0, max_value=ACCOUNTS - 1)
quantities = st.integers(min_value=0, max_value=40)
# The catalog charge's per-unit monthly price: odd cents, so prorated lines round.
UNIT_PRICE = Decimal("7.33")
ORDER_LIMIT = 50

# Days after a subscription's start (a few before it too) for its amendments' dates.
offsets = st.integers(min_value=-3, max_value=45).map(lambda n: timedelta(days=n))

# Order actions on an existing subscription, as the model sees them.
update_actions = st.tuples(st.just("update"), quantities, offsets)
remove_actions = st.tuples(st.just("remove"))
cancel_actions = st.tuples(st.just("cancel"), offsets)
transfer_actions = st.tuples(
    st.just("transfer"), st.none() | account_indexes, st.none() | account_indexes
)
order_actions = st.one_of(update_actions, remove_actions, cancel_actions, transfer_actions)


@dataclass(frozen=True)
class CatalogPlan:
    rate_plan_id: str
    charge_id: str


@dataclass
class ModelInvoice:
    id: str
    account: int
    amount: Decimal
    invoice_date: date
    status: str  # Draft | Posted | Canceled
    balance: Decimal | None = None  # amount - what payments and credit memos have on it
    # Its items (id -> amount), read from the database the first time a memo needs them.
    items: dict[str, Decimal] | None = None

    def __post_init__(self) -> None:
        if self.balance is None:
            self.balance = self.amount


@dataclass
class ModelDebitMemo:
    id: str
    account: int
    amount: Decimal
    status: str  # Draft | Posted | Canceled
    invoice: str | None = None  # the invoice it was created from; None when standalone
    balance: Decimal = Decimal(0)  # set to the amount on creation

    def __post_init__(self) -> None:
        self.balance = self.amount


@dataclass
class ModelSource:
    """A payment (Processed | Canceled) or a credit memo (Draft | Posted | Canceled): what it
    has applied to each target (invoice or debit memo id, net of unapplications) and refunded."""

    id: str
    kind: str  # Payment | CreditMemo
    account: int
    amount: Decimal
    status: str
    applied: dict[str, Decimal] = field(default_factory=dict)
    refunded: Decimal = Decimal(0)
    effective_date: date | None = None  # payments: for the last payment
    seq: int = 0  # payments: creation order, the tie-break among same-day payments
    invoice: str | None = None  # credit memos from an invoice
    items: list[tuple[str | None, Decimal]] = field(default_factory=list)  # credit memo items

    @property
    def applied_total(self) -> Decimal:
        return sum(self.applied.values(), Decimal(0))

    @property
    def unapplied(self) -> Decimal:
        return self.amount - self.applied_total - self.refunded

    @property
    def active(self) -> bool:
        """Counts in the metrics and can be applied, unapplied and refunded."""
        return self.status == ("Processed" if self.kind == "Payment" else "Posted")

    @property
    def resource(self) -> Resource:
        return Resource.PAYMENT if self.kind == "Payment" else Resource.CREDIT_MEMO


def cents(amount: Decimal) -> int:
    return int(amount * 100)


def money(cents_: int) -> Decimal:
    return Decimal(cents_).scaleb(-2)


# What a rule expects of a write: None (success) or the business-rule error (resource and a
# fragment of its message), with nothing written.
Failure = tuple[Resource, str] | None


@dataclass
class ModelSubscription:
    id: str  # the row's stable id: charge segments and invoice lines refer to it
    version_id: str  # the id clients see: a new one per version (per amending order)
    number: str
    owner: int  # subscription owner: contractedMrr
    invoice_owner: int  # invoice owner: the invoices billing makes
    start: date  # contract effective date
    quantity: int
    rate_plan_id: str
    charge_number: str
    removed: bool = False
    cancelled: bool = False

    @property
    def mrr(self) -> Decimal:
        """What the subscription adds to its owner's contractedMrr (0 once cancelled, even with
        a future cancellation date, and 0 once its only rate plan is removed)."""
        if self.cancelled or self.removed:
            return Decimal(0)
        return UNIT_PRICE * self.quantity


@dataclass
class ModelAccount:
    id: str
    number: str
    partner: bool
    # Partner only: change rows written since the last refresh / switch.
    pending: int = 0
    # Partner only: what the stored cache must hold until the next refresh.
    cached: AccountMetrics | None = None


# The invoice ids the rules draw from: a bundle is known by its name, whichever class of the
# machine holds the rule that fills it or draws from it.
invoices = Bundle("invoices")
