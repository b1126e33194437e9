"""query surfaces: order actions, the query role, result files, query jobs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:30:00.000000

- `order_actions`: one row per order action (Object Query, Data Query and Export ZOQL read
  them; orders kept only their answer before).
- The roles `partnerbill_query` (client-written SQL and ZOQL run as it) and
  `partnerbill_object_query` (Object Query), NOLOGIN. Each is granted only its schema of views
  (made by `query/views.py` after every migration), and `set_config` is no longer executable
  by PUBLIC, so a query cannot rebind the tenant the views filter on (the migrating user
  keeps it).
- `query_jobs`, `result_files`, `result_file_chunks`: Data Query, AQuA and export jobs and
  the files they write, chunked in PostgreSQL so that every API process can serve them.
- Keyset indexes for Object Query's default order (UpdatedDate, Id) on the large tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUERY_ROLES = ("partnerbill_query", "partnerbill_object_query")


def upgrade() -> None:
    op.create_table(
        "order_actions",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("subscription_id", sa.String(32), nullable=False),
        sa.Column("subscription_number", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    op.create_index("ix_order_actions_order", "order_actions", ["tenant_id", "order_id"])
    op.create_table(
        "query_jobs",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # dataquery | aqua | export
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("result", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    op.create_index(
        "ix_query_jobs_status", "query_jobs", ["tenant_id", "kind", "status", "created_at"]
    )
    op.create_table(
        "result_files",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("row_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("complete", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    op.create_index("ix_result_files_expiry", "result_files", ["expires_at"])
    op.create_table(
        "result_file_chunks",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("file_id", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "file_id", "sequence"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "file_id"],
            ["result_files.tenant_id", "result_files.id"],
            ondelete="CASCADE",
        ),
    )
    # Chunks are already compressed (or are what the client asked for): no TOAST compression.
    op.execute("ALTER TABLE result_file_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    op.create_index(
        "ix_invoices_account_updated", "invoices", ["tenant_id", "account_id", "updated_at", "id"]
    )
    op.create_index("ix_invoices_updated", "invoices", ["tenant_id", "updated_at", "id"])
    op.create_index("ix_accounts_updated", "accounts", ["tenant_id", "updated_at", "id"])
    for role in QUERY_ROLES:
        # Roles belong to the cluster, not the database: another database may have made it.
        op.execute(
            f"""
            DO $$ BEGIN
              CREATE ROLE {role} NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$
            """
        )
        op.execute(
            f"""
            DO $$ BEGIN
              IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('GRANT {role} TO %I', current_user);
              END IF;
            END $$
            """
        )
    op.execute("REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC")
    op.execute(
        "DO $$ BEGIN EXECUTE format("
        "'GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO %I',"
        " current_user); END $$"
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS zuora CASCADE")
    op.execute("DROP SCHEMA IF EXISTS zuora_object_query CASCADE")
    op.execute("GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO PUBLIC")
    for index, table in (
        ("ix_accounts_updated", "accounts"),
        ("ix_invoices_updated", "invoices"),
        ("ix_invoices_account_updated", "invoices"),
    ):
        op.drop_index(index, table)
    op.drop_table("result_file_chunks")
    op.drop_table("result_files")
    op.drop_table("query_jobs")
    op.drop_table("order_actions")
