"""Benchmark: the living city as a soak test, and position fixes at Wuhan's scale.

1. Soak: ``geo-service simulate``'s model at ``--speed`` (20x) for ``--minutes`` (30) of wall
   time against ``geo-service serve`` (1 worker, escalation on every 30 s) over the demo city
   (1,500 grids, 500,000 incidents, loaded into the scratch database ``geo_soak``). Reports
   p50/p99 per endpoint, 5xx answers, reports made vs incidents stored (none lost, none twice)
   and the server's resident memory sampled every 30 s (start, end, slope per hour).
   A probe each wall minute asks for the nearest responders near a random grid and for the
   console's counts (a dispatcher's view); at the end, escalations of the soak's incidents are
   checked against their stage targets (none may come early).
2. Fixes: Wuhan's 16,274 grid workers' phones, each with its own grid-worker key, one fix
   every 30 s: 540 single ``POST /responders/positions`` a second, paced for ``--fix-seconds``
   (60) over ``--clients`` (32) connections, latency counted from when each fix was due
   (``bench/devices.py``); then the ceiling (fixes back to back) and the same fixes in batches
   of 500 (the baseline in the same run: the batch path), against ``serve`` with 1 and with 2
   workers. Goal: >= 540 single fixes/s with p99 < 200 ms on 2 cores.
   ``--minutes 0`` runs only this part.

Writes bench/results/soak.json.

    .venv/bin/python bench/soak.py [--minutes 30] [--speed 20] [--fix-seconds 60] [--clients 32]
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np
from common import geo_server_process, rss_mb, scratch_database
from devices import flat_out_fixes, make_devices, paced_fixes
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.engine import make_engine
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.intake.incidents import STAGE_TARGET_S
from geo_service.simulate.city import Simulation
from geo_service.simulate.gateway import Gateway
from geo_service.simulate.run import run

RESULTS = Path(__file__).resolve().parent / "results"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WUHAN_GRID_WORKERS = 16_274
WUHAN_FIXES_PER_S = WUHAN_GRID_WORKERS / 30


def _timed_client(base: str, key: str, latencies: dict[str, list[float]]) -> httpx.Client:
    """A client that records each request's latency under its method and route."""

    def start(request: httpx.Request) -> None:
        request.extensions["t0"] = time.perf_counter()

    def done(response: httpx.Response) -> None:
        path = response.request.url.path
        parts = ["{id}" if p.isdigit() or UUID.fullmatch(p) else p for p in path.split("/")]
        name = f"{response.request.method} {'/'.join(parts)}"
        latencies[name].append(time.perf_counter() - response.request.extensions["t0"])

    return httpx.Client(
        base_url=base,
        headers={"X-API-Key": key},
        timeout=60,
        event_hooks={"request": [start], "response": [done]},
    )


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = np.array(values) * 1000
    return {
        "requests": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def soak(
    base: str,
    key: str,
    pid: int,
    minutes: float,
    speed: float,
    engine,  # noqa: ANN001
    points: np.ndarray,
) -> dict:
    """The simulator against the server; latencies, errors, lost/duplicate reports, memory."""
    latencies: dict[str, list[float]] = defaultdict(list)
    client = _timed_client(base, key, latencies)
    gateway = Gateway(client)
    start = datetime.now(UTC)
    simulation = Simulation(gateway, start=start, seed=20)
    simulation.setup()
    memory: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        began = time.monotonic()
        while not done.is_set():
            memory.append((time.monotonic() - began, rss_mb(pid)))
            done.wait(30)

    watch: list[dict] = []
    rng = np.random.default_rng(3)

    def probe() -> None:
        """What a dispatcher would see each wall minute: candidates near a random grid,
        and the console's counts."""
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as http:
            while not done.wait(60):
                lon, lat = points[rng.integers(len(points))]
                near = http.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 5})
                summary = http.get("/console/summary")
                watch.append(
                    {
                        "candidates": len(near.json().get("candidates", [])),
                        "why": near.json().get("why"),
                        "summary": summary.json() if summary.status_code == 200 else None,
                    }
                )

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    t0 = time.monotonic()
    run(simulation, speed=speed, seconds=minutes * 60)
    elapsed = time.monotonic() - t0
    done.set()
    sampler.join()
    prober.join()
    memory.append((elapsed, rss_mb(pid)))
    client.close()
    key_prefix = f"simulate-20-{start.isoformat()}-%"
    with engine.connect() as conn:
        stored, distinct = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT request_key) FROM incidents "
                "WHERE request_key LIKE :k"
            ),
            {"k": key_prefix},
        ).one()
    with engine.connect() as conn:
        # Escalated only when really late: the first climb of each incident reported during
        # the soak, against its stage's target (the incidents' own timestamps).
        early, escalated = conn.execute(
            text(
                f"""
                SELECT count(*) FILTER (WHERE first_at < i.reported_at
                                        + make_interval(secs => {STAGE_TARGET_S.format(i="i")})),
                       count(*)
                FROM incidents i JOIN LATERAL (
                    SELECT min(a.at) AS first_at FROM audit_log a
                    WHERE a.entity = 'incident' AND a.entity_id = i.id::text
                      AND a.action = 'escalate') e ON e.first_at IS NOT NULL
                WHERE i.request_key LIKE :k
                """
            ),
            {"k": key_prefix},
        ).one()
    hours = np.array([t for t, _ in memory]) / 3600
    mb = np.array([m for _, m in memory])
    slope = float(np.polyfit(hours, mb, 1)[0]) if len(mb) > 2 else 0.0
    counts = simulation.totals.counts
    return {
        "wall_minutes": round(elapsed / 60, 1),
        "speed": speed,
        "simulated_hours": round(simulation.t / 3600, 2),
        "grids": len(simulation.grid_shapes),
        "responders": len(simulation.units),
        "counts": dict(counts),
        "server_errors_5xx": len(gateway.tally.server_errors),
        "first_errors": gateway.tally.server_errors[:5],
        "reported": counts["reported"],
        "stored": int(stored),
        "duplicates": int(stored) - int(distinct),
        "lost": counts["reported"] - int(distinct),
        "escalated": int(escalated),
        "escalated_before_target": int(early),
        "watch": {
            "probes": len(watch),
            "nearest_with_candidates": sum(w["candidates"] > 0 for w in watch),
            "why_none": [w["why"] for w in watch if w["candidates"] == 0][:5],
            "console_last": watch[-1]["summary"] if watch else None,
        },
        "memory_mb": {
            "start": round(float(mb[0]), 1),
            "end": round(float(mb[-1]), 1),
            "max": round(float(mb.max()), 1),
            "slope_mb_per_hour": round(slope, 1),
        },
        "endpoints": {name: _percentiles(v) for name, v in sorted(latencies.items())},
    }


def batches(base: str, key: str, ids: list[int], points: np.ndarray, seconds: float) -> dict:
    """The baseline: the same fixes, 500 a request, from one client."""
    latencies = []
    sent = 0
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as http:
        stop_at = time.perf_counter() + seconds
        began = time.perf_counter()
        i = 0
        while time.perf_counter() < stop_at:
            now = datetime.now(UTC).isoformat()
            body = {
                "positions": [
                    {
                        "id": ids[(i + j) % len(ids)],
                        "lon": points[(i + j) % len(points)][0],
                        "lat": points[(i + j) % len(points)][1],
                        "at": now,
                    }
                    for j in range(500)
                ]
            }
            t0 = time.perf_counter()
            response = http.post("/responders/positions", json=body)
            latencies.append(time.perf_counter() - t0)
            if response.status_code == 200:
                sent += 500
            i += 500
        elapsed = time.perf_counter() - began
    return {"fixes_per_s": round(sent / elapsed, 1), **_percentiles(latencies)}


def fixes(
    url: str,
    engine,  # noqa: ANN001
    key: str,
    ids: list[int],
    points: np.ndarray,
    seconds: float,
    connections: int,
) -> dict:
    """Wuhan's grid workers' phones: 16,274 devices, each with its own key, a fix each every
    30 s (540/s), one request per fix, paced (latency from when the fix was due), against
    ``serve`` with 1 and 2 workers; the ceiling (back to back); the same fixes 500 a request."""
    devices = make_devices(engine, WUHAN_GRID_WORKERS)
    out: dict = {"devices": len(devices), "goal_fixes_per_s": round(WUHAN_FIXES_PER_S, 1)}
    for workers in (1, 2):
        with geo_server_process(url, workers=workers) as (base, _):
            flat_out_fixes(base, devices[:2000], seconds=3)  # warm: pools, prepared statements
            paced = paced_fixes(
                base, devices, rate=WUHAN_FIXES_PER_S, seconds=seconds, connections=connections
            ).summary()
            ceiling = flat_out_fixes(base, devices, seconds=min(seconds, 30)).summary()
            batch = batches(base, key, ids, points, min(seconds, 30))
        out[f"workers_{workers}"] = {"paced": paced, "ceiling": ceiling, "batches_of_500": batch}
        print(
            f"fixes, {workers} worker(s): {paced['fixes_per_s']:,.0f}/s paced from "
            f"{len(devices):,} devices, p50 {paced['p50_ms']} ms, p99 {paced['p99_ms']} ms "
            f"(goal {WUHAN_FIXES_PER_S:.0f}/s, p99 < 200 ms); ceiling "
            f"{ceiling['fixes_per_s']:,.0f}/s (p99 {ceiling['p99_ms']} ms); batches of 500 "
            f"{batch['fixes_per_s']:,.0f}/s"
        )
    return {"fixes": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--speed", type=float, default=20)
    parser.add_argument("--fix-seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32, help="connections of the devices")
    parser.add_argument("--incidents", type=int, default=500_000)
    args = parser.parse_args()

    url = scratch_database("geo_soak")
    engine = make_engine(url)
    city = generate_city(seed=42, grids=1500, incidents=args.incidents)
    load_city(engine, city)
    with Session(engine) as session:
        user = create_user(
            session, name="soak-bench", role="dispatcher", area_code=None, actor="bench"
        )
        key = create_key(session, user, actor="bench")[1]
        session.commit()
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM responders ORDER BY id"))]
    grids = city.areas[city.areas.level == "grid"]
    points = np.array([(p.x, p.y) for p in grids.geometry.representative_point()], dtype=float)
    result: dict = {"benchmark": "soak", "date": date.today().isoformat()}
    env = {"GEO_DISPATCH_ESCALATION_INTERVAL_S": "30"}
    if args.minutes > 0:
        _soak_and_print(result, url, env, key, args, engine, points)
    if args.fix_seconds > 0:
        result.update(fixes(url, engine, key, ids, points, args.fix_seconds, args.clients))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    engine.dispose()


def _soak_and_print(result, url, env, key, args, engine, points) -> None:  # noqa: ANN001
    """The soak against ``serve`` (1 worker, escalation every 30 s), printed."""
    with geo_server_process(url, env=env) as (base, server):
        result["soak"] = soak(base, key, server.pid, args.minutes, args.speed, engine, points)
        s = result["soak"]
        print(
            f"soak: {s['wall_minutes']} min at {s['speed']:g}x = {s['simulated_hours']} h "
            f"simulated; {s['reported']:,} reported, {s['stored']:,} stored, lost {s['lost']}, "
            f"duplicates {s['duplicates']}, 5xx {s['server_errors_5xx']}; memory "
            f"{s['memory_mb']['start']} -> {s['memory_mb']['end']} MB "
            f"({s['memory_mb']['slope_mb_per_hour']:+} MB/h)"
        )
        w = s["watch"]
        print(
            f"  escalated {s['escalated']:,} of the soak's incidents, "
            f"{s['escalated_before_target']} before their target; nearest offered candidates "
            f"in {w['nearest_with_candidates']} of {w['probes']} minute probes; console at the "
            f"end: {w['console_last']}"
        )
        for name, e in s["endpoints"].items():
            print(
                f"  {name:<40} {e['requests']:>7,}  p50 {e['p50_ms']:>7.1f} ms  "
                f"p99 {e['p99_ms']:>7.1f} ms"
            )


if __name__ == "__main__":
    main()
