"""The task registry: every feature's job blueprint, for the job app (`core.jobs`). The API
(`create_app`) and the job worker (`partnerbill worker`) call `register` before they defer or run
a job; jobs are deferred by name (`namespace:name`), so a feature defers another's job without
importing it, and `core` imports no feature.
"""

from partnerbill.billing.tasks import billing_tasks
from partnerbill.core.jobs import register_tasks
from partnerbill.metrics.tasks import metrics_tasks
from partnerbill.orders.tasks import order_tasks
from partnerbill.query.tasks import loaded_query_tasks

FEATURE_TASKS = [
    (metrics_tasks, "metrics"),
    (order_tasks, "orders"),
    (billing_tasks, "billing"),
    (loaded_query_tasks(), "query"),
]


def register() -> None:
    register_tasks(FEATURE_TASKS)
