"""Helpers the benchmarks share: scratch databases and timing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.engine import recreate_database
from geo_service.settings import DatabaseSettings


def scratch_database(name: str) -> str:
    """Drop and create ``name`` next to the configured database, migrated; return its URL."""
    settings = DatabaseSettings()
    server = settings.database_url or EmbeddedCluster(settings.data_dir).start()
    return recreate_database(server, name)


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
