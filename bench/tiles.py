"""Benchmark: vector tiles of the hot spot and heatmap layers, ours vs tipg, same run.

Both servers read the same PostGIS database (the demo city, ``geo_load`` from bench/load.py, or
made here). tipg (developmentseed's OGC tiles server over PostGIS) serves the layers as tables:
our hot spot and heatmap cells (res 8, last 365 days) are materialised into ``bench_hotspots``
and ``bench_heatmap`` so it tiles exactly the same features. Ours serves ``/tiles/hotspots`` and
``/tiles/heatmap``. Each server runs as 1 uvicorn process; 16 concurrent clients fetch every
tile at z10..z14 covering the city centre; we report tiles/s and p95 per layer and server.
Writes bench/results/tiles.json. Needs ``pip install -e '.[bench]'`` (tipg).

    .venv/bin/python bench/tiles.py [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from common import free_port, geo_server, wait_until_up
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.cluster_tools import libpq_url
from geo_service.db.engine import make_engine
from geo_service.db.migrate import upgrade_to_head
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.layers.heatmap import HeatmapQuery, h3_heatmap
from geo_service.services.layers.hotspots import HotspotQuery, h3_hotspots
from geo_service.settings import DatabaseSettings

RESULTS = Path(__file__).resolve().parent / "results"
CENTRE = (114.30, 30.59)


def _tiles(zooms: range, radius_tiles: int = 2) -> list[tuple[int, int, int]]:
    out = []
    for z in zooms:
        n = 2**z
        cx = int((CENTRE[0] + 180) / 360 * n)
        cy = int((1 - math.asinh(math.tan(math.radians(CENTRE[1]))) / math.pi) / 2 * n)
        r = min(radius_tiles, z)
        out += [(z, x, y) for x in range(cx - r, cx + r + 1) for y in range(cy - r, cy + r + 1)]
    return out


def _materialise(engine, layer: str, features: list[dict]) -> None:  # noqa: ANN001
    table = f"bench_{layer}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(
            text(
                f"CREATE TABLE {table} (h3 text PRIMARY KEY, count int, z float8, "
                "class text, geom geometry(Polygon, 4326))"
            )
        )
        for f in features:
            p = f["properties"]
            conn.execute(
                text(
                    f"INSERT INTO {table} VALUES (:h, :n, :z, :c, "
                    "ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326))"
                ),
                {
                    "h": p["h3"],
                    "n": p["count"],
                    "z": p.get("z"),
                    "c": p.get("class"),
                    "g": json.dumps(f["geometry"]),
                },
            )
        conn.execute(text(f"CREATE INDEX ON {table} USING gist (geom)"))
        conn.execute(text(f"ANALYZE {table}"))


async def _fetch_all(urls: list[str], headers: dict, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = list(urls)

    async def worker(http: httpx.AsyncClient) -> None:
        while queue:
            url = queue.pop()
            t0 = time.perf_counter()
            response = await http.get(url)
            latencies.append(time.perf_counter() - t0)
            assert response.status_code in (200, 204), (url, response.status_code)

    start = time.perf_counter()
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(clients)))
    return time.perf_counter() - start, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database", default="geo_load")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    settings = DatabaseSettings()
    base = settings.database_url or EmbeddedCluster(settings.data_dir).url("geo")
    url = base.rsplit("/", 1)[0] + f"/{args.database}"
    upgrade_to_head(url)
    engine = make_engine(url)
    until = datetime.now(UTC)
    with Session(engine) as session:
        spots = h3_hotspots(
            session, HotspotQuery(res=8, since=until - timedelta(days=365), until=until)
        )
        heat = h3_heatmap(
            session, HeatmapQuery(res=8, since=until - timedelta(days=365), until=until)
        )
        user = create_user(
            session, name=f"tile-bench-{os.getpid()}", role="analyst", area_code=None, actor="bench"
        )
        key = create_key(session, user, actor="bench")[1]
        session.commit()
    _materialise(engine, "hotspots", spots["features"])
    _materialise(engine, "heatmap", heat["features"])
    engine.dispose()

    tipg_port = free_port()
    tipg_env = {
        **os.environ,
        "DATABASE_URL": libpq_url(url),
        "TIPG_DB_TABLES": '["public.bench_hotspots", "public.bench_heatmap"]',
    }
    uvicorn = Path(sys.executable).parent / "uvicorn"
    tipg = subprocess.Popen(
        [str(uvicorn), "tipg.main:app", "--port", str(tipg_port), "--log-level", "warning"],
        env=tipg_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict = {}
    try:
        with geo_server(url) as ours:
            wait_until_up(f"http://127.0.0.1:{tipg_port}/healthz")
            _compare(ours, f"http://127.0.0.1:{tipg_port}", key, args, results)
    finally:
        tipg.terminate()
        tipg.wait(timeout=20)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tiles.json").write_text(
        json.dumps(
            {"benchmark": "tiles", "zooms": "10-14", "clients": args.clients, "results": results},
            indent=2,
        )
        + "\n"
    )


def _compare(ours: str, tipg: str, key: str, args: argparse.Namespace, results: dict) -> None:
    """Fetch every tile from both servers, rounds alternating; fill ``results``."""
    tiles = _tiles(range(10, 15))
    for layer in ("hotspots", "heatmap"):
        ours_urls = [f"{ours}/tiles/{layer}/{z}/{x}/{y}.mvt?res=8" for z, x, y in tiles]
        tipg_urls = [
            f"{tipg}/collections/public.bench_{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"
            for z, x, y in tiles
        ]
        servers_urls = (
            ("ours", ours_urls, {"X-API-Key": key}),
            ("tipg", tipg_urls, {}),
        )
        timing: dict[str, tuple[float, list[float]]] = {}
        for name, urls, headers in servers_urls:
            asyncio.run(_fetch_all(urls[:20], headers, 4))  # warm up
            timing[name] = (0.0, [])
        # Rounds alternate between the servers, so drift on a shared machine hits both.
        for _ in range(args.rounds):
            for name, urls, headers in servers_urls:
                e, ls = asyncio.run(_fetch_all(urls, headers, args.clients))
                timing[name] = (timing[name][0] + e, timing[name][1] + ls)
        for name, _, _ in servers_urls:
            elapsed, lat = timing[name]
            results.setdefault(layer, {})[name] = {
                "tiles": len(lat),
                "tiles_per_s": round(len(lat) / elapsed, 1),
                "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
                "p95_ms": round(float(np.percentile(lat, 95)) * 1000, 1),
            }
            r = results[layer][name]
            print(
                f"{layer:<9} {name:<5} {r['tiles_per_s']:>7.1f} tiles/s  "
                f"p50 {r['p50_ms']:>6.1f} ms  p95 {r['p95_ms']:>6.1f} ms"
            )


if __name__ == "__main__":
    main()
