"""Alembic environment: the metadata of every feature's tables."""

from alembic import context
from sqlalchemy import engine_from_config, pool

import partnerbill.accounts.tables
import partnerbill.billing.tables
import partnerbill.core.tables
import partnerbill.metrics.tables  # noqa: F401  (each import registers its tables)
from partnerbill.core.db import metadata

config = context.config


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
