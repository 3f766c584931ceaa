"""Helpers the benchmarks share: scratch databases and timing."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

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


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB), from /proc (Linux)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except FileNotFoundError:
            continue
    return total


def wait_until_up(url: str, tries: int = 150) -> None:
    """Poll ``url`` until it answers below 500 (about 30 s at most)."""
    for _ in range(tries):
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def geo_server(
    database_url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``geo-service serve`` on ``database_url`` (rate limits lifted, escalation off, plus
    ``env``); yield its base URL."""
    with geo_server_process(database_url, workers=workers, env=env) as (base, _):
        yield base


@contextmanager
def geo_server_process(
    database_url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``geo_server``, yielding the base URL and the server process (its memory is read)."""
    port = free_port()
    env = {
        **os.environ,
        "GEO_DATABASE_URL": database_url,
        "GEO_JWT_SECRET": "bench",
        "GEO_LIMIT_REQUESTS_PER_MINUTE": "10000000",
        "GEO_LIMIT_BURST": "1000000",
        "GEO_DISPATCH_ESCALATION_INTERVAL_S": "0",
        **(env or {}),
    }
    exe = Path(sys.executable).parent / "geo-service"
    cmd = [str(exe), "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health")
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)
