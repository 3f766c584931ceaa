"""Engine and session factories; the database URL comes from settings or the embedded cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from geo_service.db.cluster import EmbeddedCluster
from geo_service.settings import DatabaseSettings


def resolve_database_url(settings: DatabaseSettings, *, start: bool = True) -> str:
    """Return the URL to use: ``GEO_DATABASE_URL`` if set, else the embedded cluster's.

    With ``start`` the embedded cluster is started (idempotently) first.
    """
    if settings.database_url:
        url = settings.database_url
        # Plain postgresql:// URLs mean psycopg 3 here, not psycopg2.
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    cluster = EmbeddedCluster(settings.data_dir)
    if start:
        return cluster.start(settings.database_name)
    return cluster.url(settings.database_name)


def make_engine(url: str, settings: DatabaseSettings | None = None) -> Engine:
    """Create an engine whose connections carry the API's statement timeout."""
    settings = settings or DatabaseSettings()
    return create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        connect_args={
            # Short OLTP queries: parallel workers cost more to start than they save.
            "options": f"-c statement_timeout={settings.statement_timeout_ms} "
            "-c max_parallel_workers_per_gather=0",
            "connect_timeout": 5,
        },
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory bound to ``engine``."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
