"""Run the Alembic migrations programmatically (``geo-service migrate``, tests, demo)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from geo_service.db.rollups import Rebuild, ensure_rollup_zone
from geo_service.i18n import format_message
from geo_service.settings import ApiSettings, DatabaseSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str, timezone: str | None = None) -> Rebuild | None:
    """Migrate the database at ``url`` to the newest revision, then make its rollups count the
    days of ``timezone`` (default ``GEO_TIMEZONE``), rebuilding them when they count another
    zone's (a new database, or a changed ``GEO_TIMEZONE``); the rebuild, if any."""
    command.upgrade(alembic_config(url), "head")
    return ensure_rollup_zone(url, timezone or ApiSettings().timezone)


def migrate_database(settings: DatabaseSettings, timezone: str | None = None) -> str:
    """Migrate the configured database to the newest revision as its owner role (starting the
    embedded cluster if it is the default), rollups in ``timezone`` (default
    ``GEO_TIMEZONE``), and return the owner's URL. A rebuild of the rollups is logged."""
    from geo_service.db.engine import resolve_owner_url

    url = resolve_owner_url(settings, start=True)
    rebuilt = upgrade_to_head(url, timezone)
    if rebuilt is not None:
        log.warning(
            format_message(
                "rebuilt the rollups of {n} incidents from {old_zone} days to {new_zone} days "
                "in {seconds} s",
                n=f"{rebuilt.incidents:,}",
                old_zone=rebuilt.old_zone,
                new_zone=rebuilt.new_zone,
                seconds=f"{rebuilt.seconds:.1f}",
            )
        )
    return url
