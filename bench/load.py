"""Benchmark: 60 s of mixed traffic from 32 concurrent clients against uvicorn on loopback.

Traffic mix, per request: 50% ``GET /areas/lookup`` (a random point in the city), 30%
``GET /incidents`` (a ~1 km bbox, 50 newest), 20% ``POST /incidents`` (with an
Idempotency-Key). The server is ``geo-service serve`` in its own processes, over the demo city
(1,500 grids, 500,000 incidents) in a scratch database ``geo_load``. Reports req/s and p50/p99
per endpoint.

Then the framework's floor, in the same run: the point lookup alone for ``--floor-seconds``,
against geo-service and against ``bench/floor_app.py`` (a bare ASGI app doing the same SQL over
psycopg, under uvicorn with the same number of workers), the same clients; ours is reported as
a share of the floor (goal >= 70%). Writes bench/results/load.json.

    .venv/bin/python bench/load.py [--seconds 60] [--clients 32] [--workers 2] [--floor-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path

import httpx
import numpy as np
from common import free_port, geo_server, scratch_database, wait_until_up
from sqlalchemy.orm import Session

from geo_service.db.engine import make_engine  # noqa: E402
from geo_service.demo.city import generate_city  # noqa: E402
from geo_service.demo.load import load_city  # noqa: E402
from geo_service.services.access.auth import create_key, create_user  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


async def _client(
    base: str,
    key: str,
    points: np.ndarray,
    stop_at: float,
    latencies: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    rng = random.Random()
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=30) as http:
        while time.perf_counter() < stop_at:
            lon, lat = points[rng.randrange(len(points))]
            roll = rng.random()
            if roll < 0.5:
                name = "GET /areas/lookup"
                call = http.get("/areas/lookup", params={"lon": lon, "lat": lat})
            elif roll < 0.8:
                name = "GET /incidents"
                bbox = f"{lon - 0.005},{lat - 0.005},{lon + 0.005},{lat + 0.005}"
                call = http.get("/incidents", params={"bbox": bbox, "limit": 50})
            else:
                name = "POST /incidents"
                call = http.post(
                    "/incidents",
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                    json={"category": "sanitation", "location": {"lon": lon, "lat": lat}},
                )
            t0 = time.perf_counter()
            try:
                response = await call
                ok = response.status_code < 300
            except httpx.HTTPError:
                ok = False
            latencies[name].append(time.perf_counter() - t0)
            if not ok:
                errors[name] += 1


async def _lookups(
    base: str, key: str, points: np.ndarray, seconds: float, clients: int
) -> dict[str, float]:
    """Lookups only, ``clients`` at a time for ``seconds``: req/s, p50, p99, errors."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=30) as http:
            while time.perf_counter() < stop_at:
                lon, lat = points[rng.randrange(len(points))]
                t0 = time.perf_counter()
                try:
                    ok = (
                        await http.get("/areas/lookup", params={"lon": lon, "lat": lat})
                    ).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(clients)))
    elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "req_per_s": round(len(ms) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "errors": errors,
    }


def _floor_server(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "uvicorn"),
            "floor_app:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parent,
        env={**os.environ, "FLOOR_DATABASE_URL": url, "FLOOR_POOL": "20"},
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/health")
    return server, base


async def _run(
    base: str, key: str, points: np.ndarray, seconds: float, clients: int
) -> tuple[dict, dict, float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(
        *(_client(base, key, points, stop_at, latencies, errors) for _ in range(clients))
    )
    return latencies, errors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--incidents", type=int, default=500_000)
    parser.add_argument("--floor-seconds", type=float, default=30)
    args = parser.parse_args()

    url = scratch_database("geo_load")
    engine = make_engine(url)
    city = generate_city(seed=42, grids=1500, incidents=args.incidents, end_date=date.today())
    load_city(engine, city)
    with Session(engine) as session:
        user = create_user(session, name="load-bench", role="admin", area_code=None, actor="bench")
        key = create_key(session, user, actor="bench")[1]
        session.commit()
    engine.dispose()
    grids = city.areas[city.areas.level == "grid"]
    points = np.array(
        [
            (p.x, p.y)
            for p in grids.sample(
                1000, replace=True, random_state=1
            ).geometry.representative_point()
        ]
    )

    with geo_server(url, workers=args.workers, env={"GEO_POOL_SIZE": "20"}) as base:
        latencies, errors, elapsed = asyncio.run(
            _run(base, key, points, args.seconds, args.clients)
        )
        ours = asyncio.run(_lookups(base, key, points, args.floor_seconds, args.clients))
    floor_server, floor_base = _floor_server(url, args.workers)
    try:
        floor = asyncio.run(_lookups(floor_base, key, points, args.floor_seconds, args.clients))
    finally:
        floor_server.terminate()
        floor_server.wait(timeout=30)
    share = ours["req_per_s"] / floor["req_per_s"] if floor["req_per_s"] else float("nan")
    print(
        f"lookups alone: geo-service {ours['req_per_s']:,.0f}/s (p50 {ours['p50_ms']} ms, p99 "
        f"{ours['p99_ms']} ms), bare ASGI floor {floor['req_per_s']:,.0f}/s (p50 "
        f"{floor['p50_ms']} ms, p99 {floor['p99_ms']} ms): {share:.0%} of the floor"
    )

    total = sum(len(v) for v in latencies.values())
    per_endpoint = {}
    print(
        f"{total:,} requests in {elapsed:.0f} s = {total / elapsed:,.0f} req/s "
        f"({args.clients} clients, {args.workers} server workers)"
    )
    for name in sorted(latencies):
        lat = np.array(latencies[name]) * 1000
        per_endpoint[name] = {
            "requests": len(lat),
            "req_per_s": round(len(lat) / elapsed, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "errors": errors.get(name, 0),
        }
        e = per_endpoint[name]
        print(
            f"  {name:<20} {e['req_per_s']:>7.1f} req/s  p50 {e['p50_ms']:>6.1f} ms  "
            f"p99 {e['p99_ms']:>6.1f} ms  errors {e['errors']}"
        )
    result = {
        "benchmark": "load",
        "seconds": round(elapsed, 1),
        "clients": args.clients,
        "server_workers": args.workers,
        "requests": total,
        "req_per_s": round(total / elapsed, 1),
        "endpoints": per_endpoint,
        "lookup_vs_floor": {"geo_service": ours, "bare_asgi": floor, "share": round(share, 3)},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
