"""Benchmark: whole-city res-8 heatmap over 2,000,000 incidents in 2 years.

Ours: ``GET /heatmap/h3?res=8&format=json`` through the API: ``geo-service serve`` (uvicorn,
one process) on loopback, read from the cumulative arrays. Two keep-alive clients time it:
the standard library's ``http.client`` (a lean client, like GDAL's or a browser's, that adds
little of its own) for the headline figure, and ``httpx`` (which itself adds about 0.5 ms
per request in Python) for comparison.
Baseline, same run, same database: the naive ``GROUP BY h3_8`` (each point's own res-8
cell, migration 0021) over the raw incidents in the window. Windows: the last 90 days, and
the whole two years. Answers must be equal. We also report the service layer alone (no
HTTP). Compression, same run: the headline server runs as deployed (br/gzip on) and the lean
client sends ``Accept-Encoding: gzip, br`` and decodes the body inside the timing, as browsers
and GDAL do; a second server with ``GEO_COMPRESS=false`` is timed with ``identity``; gzip on
by default must not lower the figure (``compression_on_vs_off``), and the bytes on the wire
shrink. Writes bench/results/heatmap.json.

    .venv/bin/python bench/heatmap.py [--incidents 2000000] [--days 730] [--reuse]
    .venv/bin/python bench/heatmap.py --quick --database geo_heat_quick   # smallest mode

``--reuse`` keeps the database (``geo_heat``) of an earlier run with the same size (loading 2M
incidents takes about two minutes). ``--quick``: 20,000 incidents over 120 days, 11 repeats.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import statistics
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import brotli
import h3.api.basic_int as h3i
import httpx
from common import geo_server, median_ms, scratch_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.engine import make_engine
from geo_service.db.migrate import upgrade_to_head
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.layers.heatmap import HeatmapQuery, h3_heatmap_json
from geo_service.settings import DatabaseSettings

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--reuse", action="store_true", help="keep an earlier database")
    parser.add_argument("--database", default="geo_heat", help="the scratch database's name")
    parser.add_argument(
        "--quick", action="store_true", help="smallest mode: 20,000 incidents, 120 days"
    )
    args = parser.parse_args()
    if args.quick:
        args.incidents, args.days = 20_000, 120
    repeat = 11 if args.quick else 41
    end = date(2026, 11, 1)
    url, load_s = _reused(args) if args.reuse else (None, None)
    if url is None:
        url = scratch_database(args.database)
        city = generate_city(
            seed=42, grids=1500, incidents=args.incidents, days=args.days, end_date=end
        )
        t0 = time.perf_counter()
        load_city(make_engine(url), city)
        load_s = time.perf_counter() - t0
    engine = make_engine(url)
    with Session(engine) as session:
        user = create_user(
            session,
            name=f"heat-bench-{time.time_ns()}",
            role="analyst",
            area_code=None,
            actor="bench",
        )
        key = create_key(session, user, actor="bench")[1]
        session.commit()
    results = {}
    until = f"{end.isoformat()}T00:00:00Z"
    with (
        geo_server(url) as base,
        geo_server(url, env={"GEO_COMPRESS": "false"}) as identity_base,
        httpx.Client(base_url=base, headers={"X-API-Key": key}) as client,
        engine.connect() as conn,
        Session(engine) as session,
    ):
        lean = http.client.HTTPConnection(base.removeprefix("http://"))
        lean_identity = http.client.HTTPConnection(identity_base.removeprefix("http://"))
        for label, days in (("90 days", 90), (f"{args.days} days", args.days)):
            since = f"{(end - timedelta(days=days)).isoformat()}T00:00:00Z"
            params = {"res": 8, "since": since, "until": until, "format": "json"}
            path = f"/heatmap/h3?{urlencode(params)}"
            _get(lean, path, key, ACCEPT)  # connect, warm the plan cache
            _get(lean_identity, path, key, "identity")
            # on and off alternate call by call, so drift on a shared machine hits both
            on_ms: list[float] = []
            off_ms: list[float] = []
            for _ in range(repeat):
                ms, (body, wire) = median_ms(lambda p=path: _get(lean, p, key, ACCEPT), repeat=1)
                on_ms.append(ms)
                ms, (plain, identity_wire) = median_ms(
                    lambda p=path: _get(lean_identity, p, key, "identity"), repeat=1
                )
                off_ms.append(ms)
            ours_ms, identity_ms = statistics.median(on_ms), statistics.median(off_ms)
            assert plain == body, "compressed and identity bodies differ"
            client.get("/heatmap/h3", params=params)
            httpx_ms, _ = median_ms(
                lambda p=params: client.get("/heatmap/h3", params=p), repeat=repeat
            )
            query = HeatmapQuery(
                res=8,
                since=datetime.fromisoformat(since),
                until=datetime.fromisoformat(until),
            )
            service_ms, served = median_ms(
                lambda q=query: h3_heatmap_json(session, q), repeat=repeat
            )
            assert served == body, "the service layer and the API disagree"
            naive_ms, rows = median_ms(
                lambda s=since: conn.execute(
                    text(
                        "SELECT h3_8, count(*) FROM incidents "
                        "WHERE reported_at >= :a AND reported_at < :b GROUP BY 1"
                    ),
                    {"a": s, "b": until},
                ).all()
            )
            ours = {c["h3"]: c["count"] for c in json.loads(body)["cells"]}
            naive = {h3i.int_to_str(int(c)): int(n) for c, n in rows}
            results[label] = {
                "ours_api_ms": round(ours_ms, 2),
                "ours_api_identity_ms": round(identity_ms, 2),
                "compression_on_vs_off": round(ours_ms / identity_ms, 3),
                "wire_bytes": wire,
                "wire_bytes_identity": identity_wire,
                "ours_api_httpx_ms": round(httpx_ms, 2),
                "ours_service_ms": round(service_ms, 2),
                "naive_sql_ms": round(naive_ms, 1),
                "speedup": round(naive_ms / ours_ms, 1),
                "cells": len(ours),
                "incidents": sum(ours.values()),
                "identical": ours == naive,
            }
            print(
                f"{label:>9}: ours API {ours_ms:6.2f} ms br/gzip, {identity_ms:6.2f} ms "
                f"compression off (x{ours_ms / identity_ms:.2f}; {wire} vs {identity_wire} B)"
            )
            print(
                f"{label:>9}: ours API {ours_ms:6.2f} ms (httpx {httpx_ms:5.2f} ms, "
                f"service {service_ms:5.2f} ms)  "
                f"naive GROUP BY {naive_ms:6.1f} ms  "
                f"({naive_ms / ours_ms:.1f}x)  identical={ours == naive}"
            )
        rollup_rows = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("incident_rollup_day", "incident_rollup_month", "incident_cum_year")
        }
        n_incidents = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    engine.dispose()
    out = {
        "benchmark": "heatmap",
        "incidents": n_incidents,
        "days": args.days,
        "load_s": round(load_s, 1) if load_s is not None else "reused",
        "rollup_rows": rollup_rows,
        "windows": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "heatmap.json").write_text(json.dumps(out, indent=2) + "\n")


ACCEPT = "gzip, br"  # what browsers and GDAL's curl send


def _get(conn: http.client.HTTPConnection, path: str, key: str, accept: str) -> tuple[bytes, int]:
    """One GET on a kept-alive connection: the decoded body and its bytes on the wire (200
    required)."""
    conn.request("GET", path, headers={"X-API-Key": key, "Accept-Encoding": accept})
    response = conn.getresponse()
    raw = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {raw[:200]!r}")
    encoding = response.getheader("Content-Encoding")
    if encoding == "br":
        return brotli.decompress(raw), len(raw)
    if encoding == "gzip":
        return gzip.decompress(raw), len(raw)
    return raw, len(raw)


def _reused(args: argparse.Namespace) -> tuple[str | None, None]:
    """The URL of an earlier run's ``geo_heat`` (migrated to head) when it has the same size."""
    settings = DatabaseSettings()
    server = settings.database_url or EmbeddedCluster(settings.data_dir).start()
    url = server.rsplit("/", 1)[0] + f"/{args.database}"
    try:
        upgrade_to_head(url)
        with make_engine(url).connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    except Exception:  # noqa: BLE001 - no such database: make one
        return None, None
    # the generator drops the few points that fall outside the city
    return (url, None) if abs(n - args.incidents) < args.incidents * 0.001 else (None, None)


if __name__ == "__main__":
    main()
