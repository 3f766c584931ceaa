"""Simulated field devices for the benchmarks: many grid workers, each with its own key,
posting single position fixes over keep-alive HTTP/1.1.

The load generator is a small asyncio HTTP/1.1 client (pre-built request bytes, one parse of
the status line and ``Content-Length``) rather than httpx: on a 2-core machine the generator
shares the CPU with the server and PostgreSQL, and httpx spends about ten times as much per
request. Latencies are measured from when a fix was due, not from when a connection was
free, so a server that falls behind is charged for the wait (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Engine, text


@dataclass(frozen=True)
class Device:
    """A grid worker's phone: its responder, key and home point (WGS84)."""

    responder_id: int
    key: str
    lon: float
    lat: float


def make_devices(engine: Engine, count: int, seed: int = 7) -> list[Device]:
    """``count`` grid workers with a user, a key and a responder each, spread over the grids of
    the version in force (bench set-up: rows written directly, as an import would)."""
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        grids = conn.execute(
            text(
                "SELECT a.code, ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom)), "
                "a.id FROM areas a JOIN boundary_versions v ON v.id = a.version_id "
                "WHERE a.level = 'grid' AND v.status = 'published' ORDER BY a.id"
            )
        ).all()
        first = conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM responders")).scalar_one()
        picks = [grids[i % len(grids)] for i in range(count)]
        conn.execute(
            text(
                "INSERT INTO responders (callsign, kind, home_grid_id, status) "
                "SELECT 'device-' || n, 'grid_worker', g, 'available' "
                "FROM unnest(CAST(:grids AS int[])) WITH ORDINALITY AS t(g, n)"
            ),
            {"grids": [g[3] for g in picks]},
        )
        rids = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM responders WHERE id >= :f ORDER BY id"), {"f": first}
            )
        ]
        users = [
            r[0]
            for r in conn.execute(
                text(
                    "INSERT INTO users (name, role, area_code, responder_id) "
                    "SELECT 'device-' || r, 'grid_worker', c, r "
                    "FROM unnest(CAST(:r AS int[]), CAST(:c AS text[])) AS t(r, c) "
                    "RETURNING id"
                ),
                {"r": rids, "c": [g[0] for g in picks]},
            )
        ]
        prefixes = [secrets.token_hex(6) for _ in users]
        secrets_ = [secrets.token_urlsafe(32) for _ in users]
        conn.execute(
            text(
                "INSERT INTO api_keys (user_id, prefix, secret_sha256, label) "
                "SELECT u, p, s, 'device' FROM unnest(CAST(:u AS int[]), CAST(:p AS text[]), "
                "CAST(:s AS text[])) AS t(u, p, s)"
            ),
            {
                "u": users,
                "p": prefixes,
                "s": [hashlib.sha256(s.encode()).hexdigest() for s in secrets_],
            },
        )
    jitter = rng.normal(0, 0.001, size=(count, 2))
    return [
        Device(rid, f"gs_{p}_{s}", g[1] + dx, g[2] + dy)
        for rid, p, s, g, (dx, dy) in zip(rids, prefixes, secrets_, picks, jitter, strict=True)
    ]


def _request(host: str, device: Device) -> bytes:
    at = datetime.now(UTC).isoformat()
    body = (
        f'{{"positions":[{{"id":{device.responder_id},"lon":{device.lon:.6f},'
        f'"lat":{device.lat:.6f},"at":"{at}"}}]}}'
    ).encode()
    head = (
        f"POST /responders/positions HTTP/1.1\r\nHost: {host}\r\n"
        f"X-API-Key: {device.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


async def _connections(host: str, port: int, n: int) -> asyncio.Queue[_Connection]:
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(n):
        pool.put_nowait(_Connection(*await asyncio.open_connection(host, port)))
    return pool


@dataclass
class FixRun:
    """What a run of fixes measured."""

    sent: int
    errors: int
    seconds: float
    latencies_s: list[float]
    waits_s: list[float] | None = None  # due until a connection was free (paced runs)

    def summary(self) -> dict[str, float]:
        """Fixes per second (answered 200) and latency percentiles (ms)."""
        ms = np.array(self.latencies_s) * 1000
        return {
            "fixes": self.sent,
            "errors": self.errors,
            "fixes_per_s": round((self.sent - self.errors) / self.seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1),
        }


async def _paced(
    host: str, port: int, devices: list[Device], rate: float, seconds: float, connections: int
) -> FixRun:
    pool = await _connections(host, port, connections)
    order = np.random.default_rng(11).permutation(len(devices))
    latencies: list[float] = []
    waits: list[float] = []
    errors = 0
    tasks = set()

    async def one(device: Device, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        waits.append(time.perf_counter() - due)
        try:
            status = await conn.send(_request(host, device))
        except (OSError, asyncio.IncompleteReadError):
            status = 0
        pool.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        errors += status != 200

    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(one(devices[order[i % len(devices)]], due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return FixRun(total, errors, elapsed, latencies, waits)


async def _flat_out(
    host: str, port: int, devices: list[Device], seconds: float, connections: int
) -> FixRun:
    pool = await _connections(host, port, connections)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        conn = await pool.get()
        i = n
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            status = await conn.send(_request(host, devices[i % len(devices)]))
            latencies.append(time.perf_counter() - t0)
            errors += status != 200
            i += connections
        conn.writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(connections)))
    return FixRun(len(latencies), errors, time.perf_counter() - start, latencies)


@contextmanager
def _generator_first() -> Iterator[None]:
    """Run the generator ahead of the server on the shared cores (nice -10 when allowed) and
    without garbage-collection pauses: the devices are other machines, and a generator
    starved of CPU would charge its own lateness to the server."""
    before = os.nice(0)
    try:
        os.nice(-10)
    except PermissionError:
        pass
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        with suppress(PermissionError):
            os.nice(before - os.nice(0))


def paced_fixes(
    base: str, devices: list[Device], *, rate: float, seconds: float, connections: int = 64
) -> FixRun:
    """Fixes due at ``rate`` a second (device after device, each once per
    ``len(devices) / rate`` s) for ``seconds``, over up to ``connections`` connections."""
    host, port = base.removeprefix("http://").split(":")
    with _generator_first():
        return asyncio.run(_paced(host, int(port), devices, rate, seconds, connections))


def flat_out_fixes(
    base: str, devices: list[Device], *, seconds: float, connections: int = 16
) -> FixRun:
    """As many fixes as ``connections`` clients get answered back to back: the ceiling."""
    host, port = base.removeprefix("http://").split(":")
    return asyncio.run(_flat_out(host, int(port), devices, seconds, connections))
