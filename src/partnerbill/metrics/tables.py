"""The metrics cache and the change log of partner accounts. Only `metrics.service` writes them."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
)

from partnerbill.core.db import metadata

# `balance` is not stored: it is derived on read from the four components (DESIGN §3,
# Invoice Settlement formula), so it can never disagree with them.
account_metrics = Table(
    "account_metrics",
    metadata,
    Column("tenant_id", String(32), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("total_invoice_balance", Numeric, nullable=False, server_default="0"),
    Column("total_debit_memo_balance", Numeric, nullable=False, server_default="0"),
    Column("unapplied_payment_amount", Numeric, nullable=False, server_default="0"),
    Column("unapplied_credit_memo_amount", Numeric, nullable=False, server_default="0"),
    Column("credit_balance", Numeric, nullable=False, server_default="0"),
    Column("reserved_payment_amount", Numeric, nullable=False, server_default="0"),
    Column("contracted_mrr", Numeric, nullable=False, server_default="0"),
    Column("last_invoice_date", Date),
    Column("last_payment_date", Date),
    Column("last_payment_amount", Numeric),
    Column("last_metrics_update", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant_id", "account_id"),
    ForeignKeyConstraint(
        ["tenant_id", "account_id"], ["accounts.tenant_id", "accounts.id"], ondelete="CASCADE"
    ),
)

# Append-only: a partner account's write path inserts one row per affected account and touches
# nothing shared. The refresh deletes exactly the rows it folded.
metrics_changes = Table(
    "metrics_changes",
    metadata,
    Column("tenant_id", String(32), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("id", BigInteger, Identity(), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "account_id", "id"),
)
