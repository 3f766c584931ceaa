"""Run the Alembic migrations programmatically (``geo-service migrate``, tests, demo)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision."""
    command.upgrade(alembic_config(url), "head")
