"""The framework's floor for ``bench/load.py``: a bare ASGI app answering the point lookup
(``GET /areas/lookup?lon=&lat=``) with the same SQL as geo-service (the version in force, the
grid holding the point, its chain of parents), over psycopg's async driver, JSON out, no
framework, no validation, no auth. What geo-service adds on top of this is its cost.

Served by uvicorn: ``FLOOR_DATABASE_URL=postgresql://... uvicorn floor_app:app``. The
connections are a plain asyncio queue of ``FLOOR_POOL`` connections (a pool library would
only add its own overhead to the floor being measured).
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import parse_qs

import psycopg

VERSION = (
    "SELECT id FROM boundary_versions WHERE status IN ('published', 'retired') "
    "AND effective_from <= now() AND (effective_to IS NULL OR effective_to > now()) "
    "ORDER BY effective_from DESC LIMIT 1"
)
GRID = (
    "SELECT id FROM areas WHERE version_id = %s AND level = 'grid' "
    "AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY id LIMIT 1"
)
CHAIN = (
    "WITH RECURSIVE chain AS (SELECT id, code, name, level, parent_id FROM areas WHERE id = %s "
    "UNION ALL SELECT a.id, a.code, a.name, a.level, a.parent_id FROM areas a "
    "JOIN chain c ON a.id = c.parent_id) SELECT id, code, name, level FROM chain"
)
_pool: asyncio.Queue[psycopg.AsyncConnection] | None = None


async def _connections() -> asyncio.Queue[psycopg.AsyncConnection]:
    global _pool
    if _pool is None:
        url = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        queue: asyncio.Queue[psycopg.AsyncConnection] = asyncio.Queue()
        for _ in range(int(os.environ.get("FLOOR_POOL", "10"))):
            await queue.put(await psycopg.AsyncConnection.connect(url, autocommit=True))
        _pool = queue
    return _pool


async def app(scope, receive, send) -> None:  # noqa: ANN001
    """The lookup, and 200 on anything else (the health check)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _connections()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] != "/areas/lookup":
        await _send(send, 200, {"status": "ok"})
        return
    query = parse_qs(scope["query_string"].decode())
    lon, lat = float(query["lon"][0]), float(query["lat"][0])
    pool = await _connections()
    conn = await pool.get()
    try:
        version = (await (await conn.execute(VERSION)).fetchone())[0]  # type: ignore[index]
        grid = await (await conn.execute(GRID, (version, lon, lat))).fetchone()
        if grid is None:
            await _send(send, 404, {"detail": "outside every grid"})
            return
        rows = await (await conn.execute(CHAIN, (grid[0],))).fetchall()
    finally:
        pool.put_nowait(conn)
    body = {
        level: {"id": i, "code": code, "name": name, "level": level}
        for i, code, name, level in rows
    }
    await _send(send, 200, body)


async def _send(send, status: int, body: object) -> None:  # noqa: ANN001
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
