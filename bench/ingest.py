"""Benchmark: import 1,000,000 incidents from CSV, grid and H3 assignment included.

Ours: ``import_file`` (read, validate, cover-raster grid assignment, H3, COPY into a staging
table, one set-based INSERT), the same path as ``geo-service import incidents``.
Baseline, same run, same rows: the naive ORM way, one ``Incident`` object per row with its grid
looked up by a per-row PostGIS query (``grid_at``), on a slice of the file (it is ~100x slower,
so the full million would take hours); both are reported in rows/s.

Runs against a scratch database ``geo_bench`` on the embedded cluster (or GEO_DATABASE_URL's
server). Writes bench/results/ingest.json.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--naive-rows 5000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from common import scratch_database
from geoalchemy2.functions import ST_Point
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geo_service.db.engine import make_engine
from geo_service.db.models import Incident
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.geo.h3cells import cells_for_points, exact_cells
from geo_service.services.ingest.imports import ImportOptions, import_file

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def naive_insert(engine, frame: pd.DataFrame) -> float:  # noqa: ANN001
    """One ORM object per row, its grid found by a query per row; returns seconds."""
    t0 = time.perf_counter()
    with Session(engine) as session:
        for row in frame.itertuples():
            reported = pd.Timestamp(row.reported_at).to_pydatetime()
            point = ST_Point(row.lon, row.lat, 4326)
            grid = session.execute(select(func.grid_at(point, reported))).scalar_one()
            if grid is None:
                continue
            session.add(
                Incident(
                    idempotency_key=f"naive:{row.id}",
                    category=row.category,
                    priority=int(row.priority),
                    status="closed",
                    source="import",
                    reported_at=reported,
                    location=f"SRID=4326;POINT({row.lon} {row.lat})",
                    h3=int(cells_for_points([row.lon], [row.lat])[0]),
                    # the exact cell at each served resolution, as the service stores it
                    **{k: int(v[0]) for k, v in exact_cells([row.lon], [row.lat]).items()},
                    grid_id=grid,
                )
            )
            session.flush()
        session.commit()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=5_000)
    args = parser.parse_args()

    url = scratch_database("geo_bench")
    engine = make_engine(url)
    city = generate_city(
        seed=42, grids=1500, incidents=args.rows, households_per_grid=1, end_date=date(2026, 11, 1)
    )
    load_city(engine, city.__class__(**{**city.__dict__, "incidents": city.incidents.iloc[:0]}))
    events = city.incidents.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "id": np.arange(len(events)),
            "category": events.category,
            "priority": events.priority,
            "description": events.description,
            "reported_at": events.reported_at.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lon": events.lon.round(7),
            "lat": events.lat.round(7),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "incidents.csv"
        frame.to_csv(path, index=False)
        t0 = time.perf_counter()
        report = import_file(
            engine,
            "incidents",
            path,
            ImportOptions(status="closed", rejects_path=Path(tmp) / "r.csv"),
            actor="bench",
        )
        ours_s = time.perf_counter() - t0
    naive = frame.iloc[: args.naive_rows]
    naive_s = naive_insert(engine, naive)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    engine.dispose()

    ours_rate = report.inserted / ours_s
    naive_rate = len(naive) / naive_s
    result = {
        "benchmark": "ingest",
        "rows": len(frame),
        "inserted": report.inserted,
        "rejected": report.rejected,
        "ours_s": round(ours_s, 2),
        "ours_rows_per_s": round(ours_rate),
        "baseline": "SQLAlchemy ORM, one object per row, grid_at() query per row",
        "baseline_rows": len(naive),
        "baseline_s": round(naive_s, 2),
        "baseline_rows_per_s": round(naive_rate),
        "speedup": round(ours_rate / naive_rate, 1),
        "rows_in_table": stored,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"ours:  {report.inserted:,} rows in {ours_s:.1f} s = {ours_rate:,.0f} rows/s "
        f"(grid + H3 assignment, validation, COPY, one INSERT)"
    )
    print(
        f"naive: {len(naive):,} rows in {naive_s:.1f} s = {naive_rate:,.0f} rows/s (ORM row by row)"
    )
    print(f"ratio: {ours_rate / naive_rate:.0f}x")


if __name__ == "__main__":
    main()
