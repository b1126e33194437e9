"""Alembic, driven from code: `partnerbill migrate` and the test fixtures call `upgrade`."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from partnerbill.core.db import sqlalchemy_url

# Shipped inside the package, so a built wheel migrates as well as a checkout.
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic runs synchronously: psycopg 3 serves both the async app and this sync use.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
