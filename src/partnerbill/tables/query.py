"""Query jobs (Data Query, AQuA, export) and the result files they write.

A result file is stored in PostgreSQL as numbered chunks of at most about 1 MiB, so every API
process can serve any file, and a file is served only once it is `complete`. Order actions,
which the query surfaces also read, are the orders feature's table.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import tenant_column, tenant_foreign_key, tenant_primary_key

query_jobs = Table(
    "query_jobs",
    metadata,
    tenant_column(),
    Column("id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),  # dataquery | aqua | export
    # accepted | in_progress | completed | failed | cancelled
    Column("status", String(16), nullable=False),
    Column("request", JSONB, nullable=False),
    Column("result", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), server_default=func.now()),
    tenant_primary_key("id"),
    Index("ix_query_jobs_status", "tenant_id", "kind", "status", "created_at"),
)

result_files = Table(
    "result_files",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("size_bytes", BigInteger, nullable=False, server_default="0"),
    Column("row_count", BigInteger, nullable=False, server_default="0"),
    Column("complete", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    tenant_primary_key("id"),
    Index("ix_result_files_expiry", "expires_at"),
)

result_file_chunks = Table(
    "result_file_chunks",
    metadata,
    tenant_column(),
    Column("file_id", String(32), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    tenant_primary_key("file_id", "sequence"),
    tenant_foreign_key("file_id", "result_files", ondelete="CASCADE"),
)
