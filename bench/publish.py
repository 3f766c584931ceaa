"""Benchmark: publishing a redrawn community and a redrawn street on a city of Wuhan-district
size, ours against re-attributing every record (what publishing did before it kept the ids of
the grids it keeps), same run, same database.

A copy of a loaded demo database (``--source``, default ``geo``: what ``make demo`` loads, 1,500
grids, ~500,000 incidents, 450,000 households) is made on the embedded cluster; in it a
proposal redraws one community, then one street, and each draft is published. Before each
publish the baseline runs in a transaction that is rolled back: every household, rental unit
and non-grid-worker responder re-attributed to the draft's grids (code and polygon kept: by
the code, else by point in polygon), as the former ``publish_version`` did. Writes
bench/results/publish.json.

    .venv/bin/python bench/publish.py [--source geo]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.engine import make_engine
from geo_service.db.migrate import upgrade_to_head
from geo_service.services.boundaries.publish import publish_version
from geo_service.services.planning.proposals import ProposalRequest, propose

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

# The baseline: every record of a table moved to the new version's grids (by the code where
# the grid is kept as it was, else by point in polygon), in one statement per table.
_EVERY_RECORD = """
    WITH same AS (
        SELECT o.id AS old_id, n.id AS new_id FROM areas o
        JOIN areas n ON n.version_id = :new AND n.level = 'grid' AND n.code = o.code
        WHERE o.version_id = :old AND o.level = 'grid' AND ST_Equals(o.geom, n.geom))
    UPDATE {table} t SET {col} = coalesce(s.new_id,
        (SELECT a.id FROM areas a WHERE a.version_id = :new AND a.level = 'grid'
           AND ST_Intersects(a.geom, {point}) ORDER BY a.id LIMIT 1))
    FROM {table} x LEFT JOIN same s ON s.old_id = x.{col}
    WHERE t.id = x.id {where}
"""
_TABLES = (
    ("households", "grid_id", "x.location", ""),
    ("rental_units", "grid_id", "x.location", ""),
    (
        "responders",
        "home_grid_id",
        "(SELECT ST_PointOnSurface(g.geom) FROM areas g WHERE g.id = x.home_grid_id)",
        "AND x.home_grid_id IS NOT NULL",
    ),
)


def _baseline(engine: Engine, old: int, new: int) -> float:
    """Seconds to re-attribute every record to version ``new`` (rolled back)."""
    with engine.connect() as conn:
        conn.execute(text("SET statement_timeout = 0"))
        t0 = time.perf_counter()
        for table, col, point, where in _TABLES:
            statement = _EVERY_RECORD.format(table=table, col=col, point=point, where=where)
            conn.execute(text(statement), {"old": old, "new": new})
        seconds = time.perf_counter() - t0
        conn.rollback()
    return seconds


def _copy(cluster: EmbeddedCluster, source: str, target: str) -> None:
    engine = make_engine(cluster.url(source, role="admin"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target}"'))
        conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="geo", help="a loaded demo database to copy")
    args = parser.parse_args()
    # stop `make demo` first: a database is copied only while nobody is connected to it
    cluster = EmbeddedCluster(Path(os.environ.get("GEO_DATA_DIR", REPO / ".geo-service")))
    cluster.start("geo")
    _copy(cluster, args.source, "bench_publish")
    url = cluster.url("bench_publish", role="admin")
    upgrade_to_head(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        sizes = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM households), "
                "(SELECT count(*) FROM areas a JOIN boundary_versions v ON v.id = a.version_id "
                "WHERE v.status = 'published' AND v.effective_to IS NULL AND a.level = 'grid')"
            )
        ).one()
    runs = []
    for level in ("community", "street"):
        with engine.connect() as conn:
            code, old = conn.execute(
                text(
                    "SELECT p.code, p.version_id FROM areas p JOIN boundary_versions v "
                    "ON v.id = p.version_id WHERE v.status = 'published' "
                    "AND v.effective_to IS NULL AND p.level = :l ORDER BY p.code LIMIT 1"
                ),
                {"l": level},
            ).one()
        t0 = time.perf_counter()
        draft = propose(engine, ProposalRequest(parent_codes=[code]), actor="bench")
        proposed = time.perf_counter() - t0
        new = draft["version_id"]
        baseline = _baseline(engine, old, new)
        t0 = time.perf_counter()
        publish_version(
            engine,
            new,
            datetime.now(UTC) + timedelta(seconds=1),
            actor="bench",
            override_reason="benchmark",
        )
        ours = time.perf_counter() - t0
        runs.append(
            {
                "level": level,
                "code": code,
                "grids_redrawn": sum(len(p["grids"]) for p in draft["metrics"]["parents"]),
                "propose_s": round(proposed, 2),
                "publish_s": round(ours, 2),
                "baseline_every_record_s": round(baseline, 2),
                "ratio": round(baseline / ours, 1),
            }
        )
        print(
            f"{level:<9} {code:<12} propose {proposed:6.1f} s  publish {ours:6.1f} s  "
            f"every record {baseline:6.1f} s  ({baseline / ours:.1f}x)"
        )
    report = {
        "bench": "publish",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "city": {"incidents": sizes[0], "households": sizes[1], "grids": sizes[2]},
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "publish.json").write_text(json.dumps(report, indent=2))
    engine.dispose()


if __name__ == "__main__":
    main()
