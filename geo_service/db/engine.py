"""Engine and session factories; the database URL comes from settings or the embedded cluster."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal, overload

import psycopg
from sqlalchemy import Dialect, Engine, TextClause, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from geo_service.db.cluster import EmbeddedCluster
from geo_service.settings import DatabaseSettings


def resolve_database_url(settings: DatabaseSettings, *, start: bool = True) -> str:
    """Return the URL the API and the CLI connect with (the application role):
    ``GEO_DATABASE_URL`` if set, else the embedded cluster's ``geo_app`` role.

    With ``start`` the embedded cluster is started (idempotently) first.
    """
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = EmbeddedCluster(settings.data_dir)
    if start:
        cluster.start(settings.database_name)
    return cluster.url(settings.database_name, role="app")


def resolve_owner_url(settings: DatabaseSettings, *, start: bool = True) -> str:
    """Return the URL migrations (and restores, demo loads) run with: the schema's owner.

    ``GEO_DATABASE_OWNER_URL`` if set, else ``GEO_DATABASE_URL`` (an external server whose one
    role owns the schema), else the embedded cluster's ``geo_owner`` role.
    """
    if settings.database_owner_url:
        return normalise_url(settings.database_owner_url)
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = EmbeddedCluster(settings.data_dir)
    if start:
        cluster.start(settings.database_name)
    return cluster.url(settings.database_name, role="owner")


def normalise_url(url: str) -> str:
    """Plain ``postgresql://`` URLs mean psycopg 3 here, not psycopg2."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def recreate_database(server_url: str, name: str) -> str:
    """Drop ``name`` (if it exists) on the server of ``server_url``, create it anew, migrate it
    and return its URL. For tests and benchmarks: it destroys what was there.

    Everything runs as ``server_url``'s role, which owns the result; on the embedded cluster
    :func:`recreate_cluster_database` makes a database owned by the owner role instead.
    """
    from geo_service.db.migrate import upgrade_to_head

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"invalid database name: {name!r}")
    root = normalise_url(server_url).rsplit("/", 1)[0]
    admin = create_engine(root + "/postgres", poolclass=NullPool)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{root}/{name}"
    upgrade_to_head(url)
    return url


def recreate_cluster_database(cluster: EmbeddedCluster, name: str) -> str:
    """Drop ``name`` on the running embedded cluster, create it anew owned by the owner role,
    migrate it as that role and return the owner's URL (``cluster.url(name, role=...)`` gives
    the others'). For tests and benchmarks: it destroys what was there.
    """
    from geo_service.db.migrate import upgrade_to_head

    cluster.drop_database(name)
    cluster.ensure_database(name)
    url = cluster.url(name, role="owner")
    upgrade_to_head(url)
    return url


def make_engine(url: str, settings: DatabaseSettings | None = None) -> Engine:
    """Create an engine whose connections carry the API's statement timeout."""
    settings = settings or DatabaseSettings()
    return create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        connect_args=_connect_args(settings),
    )


def _connect_args(settings: DatabaseSettings) -> dict[str, Any]:
    return {
        # Short OLTP queries: parallel workers cost more to start than they save. Stored
        # instants come back in UTC with their offset whatever the server's own TimeZone
        # (issue 19: one rule for every response; local days are computed, never implied).
        "options": f"-c statement_timeout={settings.statement_timeout_ms} "
        "-c max_parallel_workers_per_gather=0 -c TimeZone=UTC",
        "connect_timeout": 5,
    }


def make_async_engine(url: str, settings: DatabaseSettings | None = None) -> AsyncEngine:
    """An asyncio engine (psycopg 3) with the same connection options, for hot single-statement
    reads on the event loop (vector tiles of built layers). Autocommit, and no ping before
    each use: a query is one round trip. A connection found dead fails that one request (503)
    and the pool is invalidated, so the next request reconnects.
    """
    settings = settings or DatabaseSettings()
    return create_async_engine(
        url,
        # No overflow: a connection opened for a burst and closed after it costs the server
        # a backend start (milliseconds of CPU) per request under load; requests beyond the
        # pool wait their turn for one instead (``pool_timeout``, 30 s: then 503).
        pool_size=settings.pool_size,
        max_overflow=0,
        isolation_level="AUTOCOMMIT",
        connect_args=_connect_args(settings),
    )


PROBE_TIMEOUT_S = 2


def make_probe_engine(url: str) -> AsyncEngine:
    """An asyncio engine for health checks: a new connection per check (no pool, so nothing to
    wait for when the application's pool is exhausted), a 2 s connect timeout (libpq's
    smallest) and a 2 s statement timeout.
    """
    return create_async_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "options": f"-c statement_timeout={PROBE_TIMEOUT_S * 1000}",
            "connect_timeout": PROBE_TIMEOUT_S,
        },
    )


@lru_cache(maxsize=512)
def _driver_sql(sql: str, dialect: Dialect) -> str:
    """``sql`` with the driver's placeholders (``%(name)s``), compiled once per text."""
    return str(text(sql).compile(dialect=dialect))


@overload
async def fetch_one(
    conn: AsyncConnection,
    statement: TextClause,
    params: dict[str, Any],
    *,
    optional: Literal[False] = False,
) -> tuple[Any, ...]: ...


@overload
async def fetch_one(
    conn: AsyncConnection, statement: TextClause, params: dict[str, Any], *, optional: bool
) -> tuple[Any, ...] | None: ...


async def fetch_one(
    conn: AsyncConnection, statement: TextClause, params: dict[str, Any], *, optional: bool = False
) -> tuple[Any, ...] | None:
    """The one row of ``statement``, run on the driver's connection (psycopg 3) as a prepared
    statement. For the hottest reads (a heatmap is one statement of under a millisecond),
    where SQLAlchemy's execution layer would add a tenth. Errors come out as SQLAlchemy's
    (``OperationalError`` is a 503), and a connection that failed is invalidated.
    Compiled forms are kept per SQL text, so build the text from a bounded set of shapes.
    No row is an error unless ``optional`` (then None).
    """
    sql = _driver_sql(statement.text, conn.dialect)
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None  # an open connection
    try:
        cursor = await raw.execute(sql, params, prepare=True)
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        wrapped = DBAPIError.instance(sql, params, exc, psycopg.Error)
        if isinstance(exc, psycopg.OperationalError):
            await conn.invalidate(exc)
        raise wrapped from exc
    if row is None:
        if optional:
            return None
        raise DBAPIError.instance(sql, params, psycopg.ProgrammingError("no row"), psycopg.Error)
    return tuple(row)


def database_name(session: Session) -> str:
    """The name of the database a session is bound to (a key for per-database caches)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return str(engine.url.database)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory bound to ``engine``."""
    return sessionmaker(engine, expire_on_commit=False)
