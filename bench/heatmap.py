"""Benchmark: whole-city res-8 heatmap over 2,000,000 incidents in 2 years.

Ours: ``GET /heatmap/h3?res=8&format=json`` through the API (in-process ASGI client), read from
the rollups. Baseline, same run, same database: the naive ``GROUP BY h3_parent(h3, 8)`` over
the raw incidents in the window. Windows: the last 90 days, and the whole two years. Answers
must be equal. Writes bench/results/heatmap.json.

    .venv/bin/python bench/heatmap.py [--incidents 2000000] [--days 730]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from pathlib import Path

from common import median_ms, scratch_database
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.api.app import create_app  # noqa: E402
from geo_service.db.engine import make_engine  # noqa: E402
from geo_service.demo.city import generate_city  # noqa: E402
from geo_service.services.auth import create_key, create_user  # noqa: E402
from geo_service.services.demo import load_city  # noqa: E402
from geo_service.settings import AuthSettings, DatabaseSettings, Settings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=730)
    args = parser.parse_args()
    url = scratch_database("geo_heat")
    engine = make_engine(url)
    end = date(2026, 11, 1)
    city = generate_city(
        seed=42,
        grids=1500,
        incidents=args.incidents,
        days=args.days,
        end_date=end,
    )
    t0 = time.perf_counter()
    load_city(engine, city)
    load_s = time.perf_counter() - t0
    with Session(engine) as session:
        user = create_user(
            session, name="heat-bench", role="analyst", area_code=None, actor="bench"
        )
        key = create_key(session, user, actor="bench")[1]
        session.commit()
    app = create_app(
        Settings(database=DatabaseSettings(database_url=url), auth=AuthSettings(jwt_secret="bench"))
    )
    results = {}
    until = f"{end.isoformat()}T00:00:00Z"
    with TestClient(app, headers={"X-API-Key": key}) as client, engine.connect() as conn:
        for label, days in (("90 days", 90), (f"{args.days} days", args.days)):
            since = f"{(end - timedelta(days=days)).isoformat()}T00:00:00Z"
            params = {"res": 8, "since": since, "until": until, "format": "json"}
            ours_ms, body = median_ms(lambda p=params: client.get("/heatmap/h3", params=p))
            naive_ms, rows = median_ms(
                lambda s=since: conn.execute(
                    text(
                        "SELECT h3_parent(h3, 8), count(*) FROM incidents "
                        "WHERE reported_at >= :a AND reported_at < :b GROUP BY 1"
                    ),
                    {"a": s, "b": until},
                ).all()
            )
            import h3.api.basic_int as h3i

            ours = {c["h3"]: c["count"] for c in body.json()["cells"]}
            naive = {h3i.int_to_str(int(c)): int(n) for c, n in rows}
            results[label] = {
                "ours_api_ms": round(ours_ms, 1),
                "naive_sql_ms": round(naive_ms, 1),
                "speedup": round(naive_ms / ours_ms, 1),
                "cells": len(ours),
                "incidents": sum(ours.values()),
                "identical": ours == naive,
            }
            print(
                f"{label:>9}: ours (API) {ours_ms:6.1f} ms  naive GROUP BY {naive_ms:6.1f} ms  "
                f"({naive_ms / ours_ms:.1f}x)  identical={ours == naive}"
            )
        rollup_rows = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("incident_rollup_day", "incident_rollup_month")
        }
    engine.dispose()
    out = {
        "benchmark": "heatmap",
        "incidents": len(city.incidents),
        "days": args.days,
        "load_s": round(load_s, 1),
        "rollup_rows": rollup_rows,
        "windows": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "heatmap.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
