"""Alembic environment: the URL comes from the config (set by geo-service) or from settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from geo_service.db.engine import resolve_owner_url
from geo_service.db.models import Base
from geo_service.settings import DatabaseSettings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    # migrations run as the schema's owner, never as the application role
    return url or resolve_owner_url(DatabaseSettings())


def _include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    # PostGIS owns spatial_ref_sys and its own tiger/topology schemas.
    return not (type_ == "table" and name == "spatial_ref_sys")


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection (an existing one when geo-service passes it)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=_include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, include_object=_include_object
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
