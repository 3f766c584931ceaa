"""Helpers the benchmarks share: scratch databases and timing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.engine import make_engine
from geo_service.db.migrate import upgrade_to_head
from geo_service.settings import DatabaseSettings


def scratch_database(name: str) -> str:
    """Drop and create ``name`` next to the configured database, migrated; return its URL."""
    settings = DatabaseSettings()
    if settings.database_url:
        base = settings.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        cluster = EmbeddedCluster(settings.data_dir)
        cluster.start()
        base = cluster.url("geo")
    admin = make_engine(base.rsplit("/", 1)[0] + "/postgres")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = base.rsplit("/", 1)[0] + f"/{name}"
    upgrade_to_head(url)
    return url


def best_seconds(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def median_ms(fn: Callable[[], Any], repeat: int = 7) -> tuple[float, Any]:
    """The median of ``repeat`` runs (milliseconds) and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out
