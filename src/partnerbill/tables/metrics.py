"""The metrics cache and the change log of partner accounts; only the `metrics` feature writes
them."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Numeric,
    String,
    Table,
    func,
    text,
)

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import tenant_column, tenant_foreign_key, tenant_primary_key

# `balance` is not stored: it is derived on read from the four components (docs/architecture.md,
# Invoice Settlement formula), so it can never disagree with them.
account_metrics = Table(
    "account_metrics",
    metadata,
    tenant_column(),
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
    # When the folded metrics were last compared with a full recompute (`verify_account`).
    Column("last_verified_at", DateTime(timezone=True)),
    tenant_primary_key("account_id"),
    tenant_foreign_key("account_id", "accounts", ondelete="CASCADE"),
)

# Append-only: a partner account's write path inserts one row per affected account, carrying
# what the write changed there, and touches nothing shared. The refresh deletes exactly the rows
# it folds and adds up their deltas. A row with `recompute` says nothing of what changed (rows
# logged before deltas existed, or written by hand): the refresh recomputes the account whole.
metrics_changes = Table(
    "metrics_changes",
    metadata,
    tenant_column(),
    Column("account_id", String(32), nullable=False),
    Column("id", BigInteger, Identity(), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("total_invoice_balance", Numeric, nullable=False, server_default="0"),
    Column("total_debit_memo_balance", Numeric, nullable=False, server_default="0"),
    Column("unapplied_payment_amount", Numeric, nullable=False, server_default="0"),
    Column("unapplied_credit_memo_amount", Numeric, nullable=False, server_default="0"),
    Column("contracted_mrr", Numeric, nullable=False, server_default="0"),
    Column("posted_invoice_date", Date),
    Column("posted_invoice_removed", Boolean, nullable=False, server_default="false"),
    Column("payments_changed", Boolean, nullable=False, server_default="false"),
    Column("recompute", Boolean, nullable=False, server_default="true"),
    tenant_primary_key("account_id", "id"),
    Index(
        "ix_metrics_changes_recompute",
        "tenant_id",
        "account_id",
        postgresql_where=text("recompute"),
    ),
)
