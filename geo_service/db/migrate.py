"""Run the Alembic migrations programmatically (``geo-service migrate``, tests, demo)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from geo_service.settings import DatabaseSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision."""
    # "heads": revisions written in parallel branch from one parent until a merge revision
    # joins them; upgrading every head is the same as "head" when there is one.
    command.upgrade(alembic_config(url), "heads")


def migrate_database(settings: DatabaseSettings) -> str:
    """Migrate the configured database to the newest revision as its owner role (starting the
    embedded cluster if it is the default) and return the owner's URL."""
    from geo_service.db.engine import resolve_owner_url

    url = resolve_owner_url(settings, start=True)
    upgrade_to_head(url)
    return url
