"""Benchmark: vector tiles of the hot spot and heatmap layers, ours vs tipg, and ours with
compression on (the default) vs off, same run.

Every server reads the same PostGIS database (the demo city, ``geo_load`` from bench/load.py).
tipg (developmentseed's OGC tiles server over PostGIS) serves the layers as tables: our hot
spot and heatmap cells (res 8, last 365 days) are materialised into ``bench_hotspots`` and
``bench_heatmap`` so it tiles exactly the same features. Ours serves ``/tiles/hotspots`` and
``/tiles/heatmap`` twice: ``ours`` as deployed (br/gzip on, clients sending
``Accept-Encoding: gzip, br`` and decoding, as browsers do) and ``ours-identity`` with
``GEO_COMPRESS=false`` (clients asking for ``identity``): gzip on by default must not lower the
tile figures. Each server runs as 1 uvicorn process; 16 concurrent clients fetch every tile at
z10..z14 covering the city centre, rounds alternating between servers; we report tiles/s, p50,
p95 and the bytes a tile takes on the wire per layer and server, and the on/off ratios.
Writes bench/results/tiles.json. tipg needs ``pip install -e '.[bench]'``; ``--no-tipg``
measures compression alone.

    .venv/bin/python bench/tiles.py [--clients 16] [--rounds 10] [--no-tipg]
    .venv/bin/python bench/tiles.py --quick --no-tipg --database geo_test   # smallest mode
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
    """The tiles within ``radius_tiles`` of the centre's tile at each zoom."""
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


async def _fetch_all(
    urls: list[str], headers: dict, clients: int
) -> tuple[float, list[float], int]:
    """Fetch ``urls`` with ``clients`` concurrent clients: seconds, latencies, wire bytes."""
    latencies: list[float] = []
    wire = [0]
    queue = list(urls)

    async def worker(http: httpx.AsyncClient) -> None:
        while queue:
            url = queue.pop()
            t0 = time.perf_counter()
            response = await http.get(url)
            response.read()  # decoded (br / gzip) inside the timing, as a map client does
            latencies.append(time.perf_counter() - t0)
            wire[0] += response.num_bytes_downloaded
            assert response.status_code in (200, 204), (url, response.status_code)

    start = time.perf_counter()
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(clients)))
    return time.perf_counter() - start, latencies, wire[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database", default="geo_load")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-tipg", action="store_true", help="compression on/off only")
    parser.add_argument(
        "--quick", action="store_true", help="smallest mode: z10-12, 9 tiles a zoom, 2 rounds"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.clients = 2, min(args.clients, 4)
    args.zooms = range(10, 13) if args.quick else range(10, 15)
    args.radius = 1 if args.quick else 2
    settings = DatabaseSettings()
    base = settings.database_url or EmbeddedCluster(settings.data_dir).url("geo")
    url = base.rsplit("/", 1)[0] + f"/{args.database}"
    upgrade_to_head(url)
    engine = make_engine(url)
    until = datetime.now(UTC)
    with Session(engine) as session:
        if not args.no_tipg:
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
    if not args.no_tipg:
        _materialise(engine, "hotspots", spots["features"])
        _materialise(engine, "heatmap", heat["features"])
    engine.dispose()

    tipg = None
    tipg_port = free_port()
    if not args.no_tipg:
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
        with (
            geo_server(url) as ours,
            geo_server(url, env={"GEO_COMPRESS": "false"}) as ours_identity,
        ):
            servers = {"ours": ours, "ours-identity": ours_identity}
            if tipg is not None:
                wait_until_up(f"http://127.0.0.1:{tipg_port}/healthz")
                servers["tipg"] = f"http://127.0.0.1:{tipg_port}"
            _compare(servers, key, args, results)
    finally:
        if tipg is not None:
            tipg.terminate()
            tipg.wait(timeout=20)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tiles.json").write_text(
        json.dumps(
            {
                "benchmark": "tiles",
                "zooms": f"{args.zooms.start}-{args.zooms.stop - 1}",
                "clients": args.clients,
                "rounds": args.rounds,
                "quick": args.quick,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


def _compare(servers: dict[str, str], key: str, args: argparse.Namespace, results: dict) -> None:
    """Fetch every tile from every server, rounds alternating; fill ``results``."""
    tiles = _tiles(args.zooms, args.radius)
    ours_headers = {"X-API-Key": key, "Accept-Encoding": "gzip, br"}
    identity_headers = {"X-API-Key": key, "Accept-Encoding": "identity"}
    for layer in ("hotspots", "heatmap"):
        servers_urls = [
            (
                "ours",
                [f"{servers['ours']}/tiles/{layer}/{z}/{x}/{y}.mvt?res=8" for z, x, y in tiles],
                ours_headers,
            ),
            (
                "ours-identity",
                [
                    f"{servers['ours-identity']}/tiles/{layer}/{z}/{x}/{y}.mvt?res=8"
                    for z, x, y in tiles
                ],
                identity_headers,
            ),
        ]
        if "tipg" in servers:
            tipg_urls = [
                f"{servers['tipg']}/collections/public.bench_{layer}/tiles/WebMercatorQuad/"
                f"{z}/{x}/{y}"
                for z, x, y in tiles
            ]
            servers_urls.append(("tipg", tipg_urls, {"Accept-Encoding": "gzip, br"}))
        timing: dict[str, tuple[float, list[float], int]] = {}
        for name, urls, headers in servers_urls:
            asyncio.run(_fetch_all(urls[:20], headers, 4))  # warm up
            timing[name] = (0.0, [], 0)
        # Rounds alternate between the servers, so drift on a shared machine hits both.
        for _ in range(args.rounds):
            for name, urls, headers in servers_urls:
                e, ls, wire = asyncio.run(_fetch_all(urls, headers, args.clients))
                t = timing[name]
                timing[name] = (t[0] + e, t[1] + ls, t[2] + wire)
        for name, _, _ in servers_urls:
            elapsed, lat, wire = timing[name]
            results.setdefault(layer, {})[name] = {
                "tiles": len(lat),
                "tiles_per_s": round(len(lat) / elapsed, 1),
                "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
                "p95_ms": round(float(np.percentile(lat, 95)) * 1000, 1),
                "wire_bytes_per_tile": round(wire / len(lat)),
            }
            r = results[layer][name]
            print(
                f"{layer:<9} {name:<13} {r['tiles_per_s']:>7.1f} tiles/s  "
                f"p50 {r['p50_ms']:>6.1f} ms  p95 {r['p95_ms']:>6.1f} ms  "
                f"{r['wire_bytes_per_tile']:>7} B/tile"
            )
        on, off = results[layer]["ours"], results[layer]["ours-identity"]
        results[layer]["compression_on_vs_off"] = {
            "tiles_per_s_ratio": round(on["tiles_per_s"] / off["tiles_per_s"], 3),
            "p95_ratio": round(on["p95_ms"] / off["p95_ms"], 3),
            "wire_bytes_ratio": round(on["wire_bytes_per_tile"] / off["wire_bytes_per_tile"], 3),
        }
        ratio = results[layer]["compression_on_vs_off"]
        print(
            f"{layer:<9} compression on/off: tiles/s x{ratio['tiles_per_s_ratio']}  "
            f"p95 x{ratio['p95_ratio']}  bytes x{ratio['wire_bytes_ratio']}"
        )


if __name__ == "__main__":
    main()
