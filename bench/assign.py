"""Benchmark: assign 1,000,000 random points to the demo city's grids.

Ours (``GridIndex``, a cover raster with exact fallback) vs ``geopandas.sjoin`` in the same run,
on the same points. Prints both times and the ratio, checks the assignments are identical, and
writes JSON to bench/results/assign.json.

    .venv/bin/python bench/assign.py [--points 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from common import best_seconds

from geo_service.geo.assign import NO_GRID, GridIndex

ROOT = Path(__file__).resolve().parent.parent
GRIDS = ROOT / "data" / "boundaries" / "demo_city" / "grids.geojson"
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    grids = gpd.read_file(GRIDS)
    grids["gid"] = np.arange(len(grids), dtype=np.int64)
    rng = np.random.default_rng(2026)
    minx, miny, maxx, maxy = grids.total_bounds
    lon = rng.uniform(minx, maxx, args.points)
    lat = rng.uniform(miny, maxy, args.points)

    t0 = time.perf_counter()
    index = GridIndex.build(grids.geometry.values, grids.gid.values)
    build_s = time.perf_counter() - t0
    ours_s, ours = best_seconds(lambda: index.assign(lon, lat), args.repeat)

    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=grids.crs)
    frame = grids[["gid", "geometry"]]

    def baseline() -> np.ndarray:
        joined = gpd.sjoin(points, frame, how="left", predicate="intersects")
        # A point on a shared edge matches two grids: keep the lowest id, as ours does.
        lowest = joined.groupby(level=0).gid.min()
        return lowest.reindex(range(len(points))).fillna(NO_GRID).astype(np.int64).values

    sjoin_s, theirs = best_seconds(baseline, args.repeat)
    mismatches = int((ours != theirs).sum())
    result = {
        "benchmark": "assign",
        "points": args.points,
        "grids": len(grids),
        "inside_share": float((ours != NO_GRID).mean()),
        "ours_s": round(ours_s, 4),
        "baseline": "geopandas.sjoin(predicate='intersects')",
        "baseline_s": round(sjoin_s, 4),
        "speedup": round(sjoin_s / ours_s, 2),
        "index_build_s": round(build_s, 3),
        "mixed_pixel_share": round(index.mixed_share, 4),
        "mismatches": mismatches,
        "identical": mismatches == 0,
        "repeat": args.repeat,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "assign.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"points: {args.points:,}  grids: {len(grids):,}")
    print(f"ours (GridIndex.assign): {ours_s:.3f} s   (index build {build_s:.2f} s, once)")
    print(f"geopandas.sjoin:         {sjoin_s:.3f} s")
    print(
        f"ratio: {sjoin_s / ours_s:.1f}x faster   identical: {mismatches == 0} "
        f"({mismatches} mismatches)"
    )


if __name__ == "__main__":
    main()
