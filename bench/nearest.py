"""Benchmark: k=5 nearest available responders among 20,000, exact geodesic ranking.

Ours: ``GET /responders/nearest`` (index k-NN on geography, then an exact ellipsoid re-rank)
through ``geo-service serve`` with 32 concurrent clients, and the service layer alone.
Baseline, same run, same data: brute-force SQL (``ORDER BY ST_Distance(geography) LIMIT 5``
over every available responder). Rankings must be identical. Travel time: ``by=travel_time``
at the service layer (p50/p95), and the recall of its top 5 against ranking every available
responder with one full one-to-all Dijkstra. Writes bench/results/nearest.json.

    .venv/bin/python bench/nearest.py [--responders 20000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx
import numpy as np
from common import geo_server, scratch_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.engine import make_engine
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.dispatch.responders import NearestQuery, nearest
from geo_service.services.dispatch.routing import nearest_by_travel_time, road_graph

RESULTS = Path(__file__).resolve().parent / "results"
STALE_S = 10**7


def _brute(conn, lon: float, lat: float) -> list[int]:  # noqa: ANN001
    return list(
        conn.execute(
            text(
                "SELECT id FROM responders WHERE status = 'available' AND position IS NOT NULL "
                "ORDER BY ST_Distance(CAST(position AS geography), "
                "CAST(ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS geography)), id LIMIT 5"
            ),
            {"x": lon, "y": lat},
        ).scalars()
    )


async def _api(base: str, key: str, points: np.ndarray, clients: int) -> tuple[float, list]:
    latencies: list[float] = []
    queue = list(points)

    async def worker(http: httpx.AsyncClient) -> None:
        while queue:
            lon, lat = queue.pop()
            t0 = time.perf_counter()
            r = await http.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 5})
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(clients)))
    return time.perf_counter() - start, latencies


def _travel_time(engine, points: np.ndarray) -> dict:  # noqa: ANN001
    """by=travel_time at the service layer: p50/p95, and recall of its top 5 against ranking
    every available responder by one full one-to-all Dijkstra (no straight-line prefilter)."""
    times, hits = [], 0
    with Session(engine) as session:
        graph = road_graph(session)
        every = session.execute(
            text(
                "SELECT id, ST_X(position), ST_Y(position) FROM responders "
                "WHERE status = 'available' AND position IS NOT NULL"
            )
        ).all()
        ids = np.array([r[0] for r in every])
        lon = np.array([r[1] for r in every])
        lat = np.array([r[2] for r in every])
        for x, y in points:
            q = NearestQuery(lon=float(x), lat=float(y), k=5)
            t0 = time.perf_counter()
            ours = nearest_by_travel_time(session, q, scope=None, stale_s=STALE_S)
            times.append((time.perf_counter() - t0) * 1000)
            eta = graph.etas_to(lon, lat, float(x), float(y))["eta_s"]
            full = ids[np.lexsort((ids, eta))][:5].tolist()
            hits += len({c["id"] for c in ours} & set(full))
    return {
        "queries": len(points),
        "graph_nodes": graph.nodes,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "recall_top5_vs_full_dijkstra": round(hits / (5 * len(points)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responders", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--travel-queries", type=int, default=300)
    args = parser.parse_args()
    url = scratch_database("geo_nearest")
    engine = make_engine(url)
    city = generate_city(seed=5, grids=1500, incidents=1000, households_per_grid=5)
    load_city(engine, city)
    minx, miny, maxx, maxy = city.areas.total_bounds
    with engine.begin() as conn:
        extra = args.responders - conn.execute(text("SELECT count(*) FROM responders")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO responders (callsign, kind, status, position, position_at) "
                "SELECT 'SYN-' || g, 'patrol', "
                "CASE WHEN random() < 0.8 THEN 'available' ELSE 'busy' END, "
                "ST_SetSRID(ST_MakePoint(:x0 + random() * (:x1 - :x0), "
                ":y0 + random() * (:y1 - :y0)), 4326), now() FROM generate_series(1, :n) g"
            ),
            {"x0": minx, "x1": maxx, "y0": miny, "y1": maxy, "n": max(0, extra)},
        )
        conn.execute(text("UPDATE responders SET position_at = now()"))
        conn.execute(text("ANALYZE responders"))
    rng = np.random.default_rng(1)
    points = np.column_stack(
        [rng.uniform(minx, maxx, args.queries), rng.uniform(miny, maxy, args.queries)]
    )
    service_ms, brute_ms, identical = [], [], 0
    with Session(engine) as session, engine.connect() as conn:
        for lon, lat in points:
            t0 = time.perf_counter()
            ours = nearest(
                session,
                NearestQuery(lon=float(lon), lat=float(lat), k=5),
                scope=None,
                stale_s=STALE_S,
            )
            service_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            brute = _brute(conn, float(lon), float(lat))
            brute_ms.append((time.perf_counter() - t0) * 1000)
            identical += [c["id"] for c in ours] == brute
        user = create_user(
            session, name="nearest-bench", role="dispatcher", area_code=None, actor="bench"
        )
        key = create_key(session, user, actor="bench")[1]
        session.commit()
    travel = _travel_time(engine, points[: args.travel_queries])
    with geo_server(url) as base:
        asyncio.run(_api(base, key, points[:100], 4))  # warm up
        elapsed, lat_api = asyncio.run(_api(base, key, points, args.clients))
    engine.dispose()
    out = {
        "benchmark": "nearest",
        "responders": args.responders,
        "queries": args.queries,
        "identical_rankings": f"{identical}/{args.queries}",
        "service_ms": {
            "p50": round(float(np.percentile(service_ms, 50)), 2),
            "p99": round(float(np.percentile(service_ms, 99)), 2),
        },
        "brute_force_sql_ms": {
            "p50": round(float(np.percentile(brute_ms, 50)), 2),
            "p99": round(float(np.percentile(brute_ms, 99)), 2),
        },
        "api": {
            "clients": args.clients,
            "req_per_s": round(len(lat_api) / elapsed, 1),
            "p50_ms": round(float(np.percentile(lat_api, 50)) * 1000, 1),
            "p99_ms": round(float(np.percentile(lat_api, 99)) * 1000, 1),
        },
    }
    out["travel_time"] = travel
    out["speedup_p50"] = round(out["brute_force_sql_ms"]["p50"] / out["service_ms"]["p50"], 1)
    print(json.dumps(out, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nearest.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
