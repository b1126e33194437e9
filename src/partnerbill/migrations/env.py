"""Alembic environment: the metadata of every feature's tables."""

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import engine_from_config, pool

# Each tables module registers its tables on the shared metadata.
import partnerbill.core.tables
import partnerbill.tables.accounts
import partnerbill.tables.billing
import partnerbill.tables.catalog
import partnerbill.tables.memos
import partnerbill.tables.metrics
import partnerbill.tables.orders
import partnerbill.tables.payment_methods
import partnerbill.tables.payments
import partnerbill.tables.query
import partnerbill.tables.subscriptions
import partnerbill.tables.users  # noqa: F401
from partnerbill.core.db import metadata
from partnerbill.query.views import install_query_views

config = context.config


def _ours(name: str | None, type_: str, parent_names: object) -> bool:
    """procrastinate's tables come from its own schema SQL (migration 0001), not our metadata."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, include_name=_ours)
        with context.begin_transaction():
            context.run_migrations()
            # The query views follow the catalogue, not a revision: made anew at the head.
            head = ScriptDirectory.from_config(config).get_current_head()
            if context.get_context().get_current_revision() == head:
                install_query_views(connection)


run_migrations_online()
