"""Alembic environment: the URL comes from the config (set by geo-service) or from settings.

``target_metadata`` is the whole schema (``geo_service.db.models``). What Alembic cannot
compare, or what is not ours, stays out of the comparison:

* ``spatial_ref_sys`` (PostGIS owns it);
* the partitions of ``incident_cum_year`` (made on demand per year by a trigger; the parent
  table is declared, with its partitioning);
* trigger functions, triggers, grants and roles are not metadata objects at all: they live in
  the migrations only.

The rule is ``geo_service.db.schema.include_object``, shared with ``tests/db/test_schema.py``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from geo_service.db.engine import resolve_owner_url
from geo_service.db.schema import compare_options
from geo_service.settings import DatabaseSettings

config = context.config
# One set of comparison options with the schema test (geo_service/db/schema.py).
COMPARE_OPTIONS: dict[str, Any] = compare_options()
target_metadata = COMPARE_OPTIONS["target_metadata"]


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    # migrations run as the schema's owner, never as the application role
    return url or resolve_owner_url(DatabaseSettings())


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(url=_url(), literal_binds=True, **COMPARE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection (an existing one when geo-service passes it)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **COMPARE_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, **COMPARE_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
