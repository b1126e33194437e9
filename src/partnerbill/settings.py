"""Process settings, read from the environment (prefix-free names a twelve-factor deploy expects).

Per-tenant knobs (refresh interval, lock-wait bound, batch limit) live in the `tenants` table, not
here: they are business settings that the API and the CLI change at run time.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    # Unset: an embedded PostgreSQL is started under `var_dir / "pg"`.
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    var_dir: Path = Field(default=Path("var"), alias="PARTNERBILL_VAR_DIR")
    host: str = Field(default="127.0.0.1", alias="PARTNERBILL_HOST")
    port: int = Field(default=8000, alias="PARTNERBILL_PORT")
    api_workers: int = Field(default=2, alias="PARTNERBILL_API_WORKERS")
    job_concurrency: int = Field(default=2, alias="PARTNERBILL_JOB_CONCURRENCY")
    # `serve`'s worker for query and export jobs: how far below normal its CPU priority is.
    export_niceness: int = Field(default=10, ge=0, le=19, alias="PARTNERBILL_EXPORT_NICENESS")
    # ... and whether its own process runs at the idle scheduling class (Linux SCHED_IDLE).
    export_idle_cpu: bool = Field(default=True, alias="PARTNERBILL_EXPORT_IDLE_CPU")
    # ... and how long a result-file writer rests after each piece, as a multiple of the time
    # the piece took: its database work then shares the CPU with the API's (0: no rest).
    export_rest_ratio: float = Field(
        default=1.0, ge=0, le=10, alias="PARTNERBILL_EXPORT_REST_RATIO"
    )
    # Per process: API workers x (size + overflow) + the job worker must stay well below the
    # server's max_connections (PostgreSQL's default is 100). No overflow by default: under
    # sustained load an overflow connection is opened and closed again and again (the benchmark
    # saw ~20 new PostgreSQL sessions a second with 10 + 10, and half the throughput); a request
    # beyond the pool waits for a connection instead.
    db_pool_size: int = Field(default=20, alias="PARTNERBILL_DB_POOL_SIZE")
    db_pool_overflow: int = Field(default=0, alias="PARTNERBILL_DB_POOL_OVERFLOW")
    # A request that finds every pooled connection taken waits this long, then answers a
    # retryable 503: a stalled database must not hold a request for as long as it stalls.
    db_pool_timeout_seconds: float = Field(default=3.0, alias="PARTNERBILL_DB_POOL_TIMEOUT_SECONDS")
    db_connect_timeout_seconds: int = Field(
        default=5, alias="PARTNERBILL_DB_CONNECT_TIMEOUT_SECONDS"
    )
    # Bounds every statement of an API process, reads included (0: no bound); a row-lock wait is
    # bounded by the tenant's lockWaitMs instead. Job workers run without it: a bill run may
    # rightly take longer.
    statement_timeout_ms: int = Field(default=10_000, alias="PARTNERBILL_STATEMENT_TIMEOUT_MS")
    # Writes run at once per API process (0: no limit), at most; see core/admission.py.
    write_concurrency: int = Field(default=8, alias="PARTNERBILL_WRITE_CONCURRENCY")
    # `adaptive`: fewer while reads are slower than the target; `fixed`: always the above.
    write_admission: Literal["adaptive", "fixed"] = Field(
        default="adaptive", alias="PARTNERBILL_WRITE_ADMISSION"
    )
    read_target_ms: float = Field(default=10.0, gt=0, alias="PARTNERBILL_READ_TARGET_MS")
    # Concurrent partner-account invoices of one process written by one statement
    # (`billing/group_commit.py`).
    group_commit: bool = Field(default=True, alias="PARTNERBILL_GROUP_COMMIT")
    # The database is distributed by tenant (Citus, docs/scale-out.md): many-row writes take the
    # forms it routes to one shard and commits in one phase (multi-row VALUES, document numbers
    # drawn in a statement of their own) instead of one statement over JSON recordsets.
    distributed: bool = Field(default=False, alias="PARTNERBILL_DISTRIBUTED")
    # A job whose worker sent no heartbeat for this long is run again (the worker died mid-job).
    stalled_job_seconds: int = Field(default=60, ge=3, alias="PARTNERBILL_STALLED_JOB_SECONDS")
    # Data Query: the most rows a job may return (Zuora's live limit) and how long each of its
    # statements may run (Zuora's limit per attempt); see query/data_query.py.
    data_query_max_rows: int = Field(default=500_000, ge=1, alias="PARTNERBILL_DATA_QUERY_MAX_ROWS")
    data_query_timeout_ms: int = Field(
        default=3_600_000, ge=1, le=4 * 3600 * 1000, alias="PARTNERBILL_DATA_QUERY_TIMEOUT_MS"
    )
    log_level: str = Field(default="INFO", alias="PARTNERBILL_LOG_LEVEL")
    access_token_seconds: int = Field(default=3600, alias="PARTNERBILL_ACCESS_TOKEN_SECONDS")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
