"""Gauges computed when `/metrics` is scraped, not kept in any process.

- `partnerbill_db_pool_connections{state}`: the answering API process's pool (in use, idle,
  size); each scrape may land on another worker, so this is one process's view.
- `partnerbill_metrics_pending_changes{tenant}` and `partnerbill_metrics_refresh_lag_seconds
  {tenant}`: the partner-account changes not folded yet and the age of the oldest, per tenant
  name, from one grouped query over the change log (no lock taken; a tenant with nothing
  pending is absent; all are absent while the database cannot answer). The existing counters
  stay where they are: lock competition is
  `partnerbill_error_answers_total{category="lock_competition"}` (core/errors.py), refresh
  durations `partnerbill_metrics_refresh_*` (metrics/refresh.py).
"""

from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from partnerbill.core import db

log = structlog.get_logger("partnerbill.scrape")
_PENDING = text(
    "SELECT t.name, count(*), extract(epoch FROM now() - min(c.changed_at)) "
    "FROM metrics_changes c JOIN tenants t ON t.id = c.tenant_id GROUP BY t.name"
)


class ScrapeTimeGauges(Collector):
    def __init__(self, pool: dict[str, int], pending: list[tuple[str, int, float]]) -> None:
        self.pool = pool
        self.pending = pending

    @classmethod
    async def read(cls) -> CollectorRegistry:
        engine = db.get_engine()
        rows: list[Any] = []
        try:
            async with engine.connect() as conn:
                rows = list((await conn.execute(_PENDING)).all())
        except (SQLAlchemyError, OSError) as error:
            # A scrape still answers while the database cannot: the counters (5xx and 503
            # answers among them) matter most then; only the per-tenant gauges are absent.
            log.warning("metrics_scrape_without_database", error=str(error))
        pool = engine.pool
        sizes = {
            "in_use": int(getattr(pool, "checkedout", lambda: 0)()),
            "idle": int(getattr(pool, "checkedin", lambda: 0)()),
            "size": int(getattr(pool, "size", lambda: 0)()),
        }
        registry = CollectorRegistry()
        registry.register(cls(sizes, [(r[0], int(r[1]), float(r[2])) for r in rows]))
        return registry

    def collect(self) -> Iterator[Metric]:
        pool = GaugeMetricFamily(
            "partnerbill_db_pool_connections",
            "Database connections of the API process that answered this scrape.",
            labels=["state"],
        )
        for state, value in self.pool.items():
            pool.add_metric([state], value)
        pending = GaugeMetricFamily(
            "partnerbill_metrics_pending_changes",
            "Partner-account changes not folded into metrics yet, per tenant.",
            labels=["tenant"],
        )
        lag = GaugeMetricFamily(
            "partnerbill_metrics_refresh_lag_seconds",
            "Age of the oldest change not folded yet, per tenant.",
            labels=["tenant"],
        )
        for tenant, count, seconds in self.pending:
            pending.add_metric([tenant], count)
            lag.add_metric([tenant], seconds)
        yield pool
        yield pending
        yield lag
