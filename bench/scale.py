"""Benchmark: province-scale batch analytics, in-database vs in-process vs Dask LocalCluster.

A synthetic city of 20,000 grids gets incidents over 3 years in steps (default 2M, 5M, 10M,
20M). At each step the incidents are exported (incrementally) to partitioned GeoParquet and
three computations run on the same data, each three ways, in the same run:

* ``database``: the API's own service functions on PostGIS (heatmap from the cumulative
  rollups, Gi* from a GROUP BY over the window, workload from its SQL);
* ``local``: ``services.batch`` over the dataset, Dask's threaded scheduler in this process;
* ``dask``: the same graph on a ``distributed.LocalCluster`` with 2 worker processes (started
  once, before the first step; its start-up is reported separately).

Heatmap and hot spots cover the whole history (H3 res 8), workload the last 90 days. Answers
are compared across the three (counts equal, z to 1e-6 against the database, workload index
to the API's rounding). Peak memory is the highest resident set of this process tree, the
cluster's workers and the PostgreSQL server together, above what they held just before.
Writes bench/results/scale.json and docs/scale.png (time against incidents).

    .venv/bin/python bench/scale.py [--sizes 2,5,10,20] [--grids 20000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp

import numpy as np
import pandas as pd
import psutil
import shapely
from common import scratch_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.bulk import copy_frame, lift_statement_timeout, point_ewkb_hex
from geo_service.db.engine import make_engine
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.geo.assign import GridIndex
from geo_service.geo.h3cells import cells_for_points, exact_cells
from geo_service.services.access.auth import Principal
from geo_service.services.access.scope import Scope
from geo_service.services.batch.execute import BatchRequest, compute_batch, compute_engine
from geo_service.services.batch.export import export_dataset
from geo_service.services.layers.heatmap import HeatmapQuery, h3_counts
from geo_service.services.layers.hotspots import HotspotQuery, h3_hotspots
from geo_service.services.planning.workload import workload

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PLOT = ROOT / "docs" / "scale.png"
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=3 * 365)
CHUNK = 1_000_000


class PeakMemory:
    """Samples the resident memory of this process tree and of PostgreSQL every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _now() -> int:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        procs += [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def __enter__(self) -> PeakMemory:
        self.base = self._now()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._now())
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._now())

    @property
    def mb(self) -> float:
        return round(max(0, self.peak - self.base) / 2**20, 1)


def _timed(fn):  # noqa: ANN001, ANN202
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return out, {"seconds": round(seconds, 2), "peak_mb": mem.mb}


def _add_incidents(engine, city, index: GridIndex, n: int, rng) -> None:  # noqa: ANN001
    """``n`` incidents near households (where people live), uniform over 3 years."""
    with engine.connect() as conn:
        categories = conn.execute(text("SELECT code, default_priority FROM categories")).all()
    codes = np.array([c for c, _ in categories])
    priority = np.array([p for _, p in categories])
    homes = city.households[["lon", "lat"]].to_numpy()
    left = n
    while left > 0:
        m = min(CHUNK, left)
        pick = homes[rng.integers(0, len(homes), m)]
        lon = pick[:, 0] + rng.normal(0, 0.0008, m)
        lat = pick[:, 1] + rng.normal(0, 0.0008, m)
        grid = index.assign(lon, lat)
        keep = grid >= 0
        lon, lat, grid = lon[keep], lat[keep], grid[keep]
        cat = rng.integers(0, len(codes), len(lon))
        seconds = rng.uniform(0, (END - START).total_seconds(), len(lon))
        frame = pd.DataFrame(
            {
                "category": codes[cat],
                "priority": priority[cat],
                "status": "closed",
                "source": "import",
                "reported_at": pd.to_datetime(START) + pd.to_timedelta(seconds, unit="s"),
                "location": point_ewkb_hex(lon, lat),
                "h3": cells_for_points(lon, lat),
                **exact_cells(lon, lat),
                "grid_id": grid,
            }
        )
        with engine.begin() as conn:
            lift_statement_timeout(conn)
            copy_frame(conn, "incidents", frame)
        left -= len(frame)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE incidents"))


def _measure(engine, dataset: Path, computes: dict) -> dict:  # noqa: ANN001
    admin = Scope(Principal(user_id=0, name="bench", role="admin"))
    out: dict = {}
    with Session(engine) as session:
        heat = {
            "database": _timed(
                lambda: h3_counts(session, HeatmapQuery(res=8, since=START, until=END))
            )
        }
        spots = {
            "database": _timed(
                lambda: h3_hotspots(session, HotspotQuery(res=8, since=START, until=END))
            )
        }
        load = {
            "database": _timed(lambda: workload(session, window_days=90, until=END, scope=admin))
        }
        for name, compute in computes.items():
            heat[name] = _timed(
                lambda c=compute: compute_batch(
                    BatchRequest("heatmap", dataset, res=8, since=START, until=END), session, c
                )
            )
            spots[name] = _timed(
                lambda c=compute: compute_batch(
                    BatchRequest("hotspots", dataset, res=8, since=START, until=END), session, c
                )
            )
            load[name] = _timed(
                lambda c=compute: compute_batch(
                    BatchRequest("workload", dataset, window_days=90, until=END), session, c
                )
            )
    db_counts = heat["database"][0]
    db_z = {f["properties"]["h3"]: f["properties"]["z"] for f in spots["database"][0]["features"]}
    db_index = {a["id"]: a["index"] for a in load["database"][0]["areas"]}
    import h3

    for name in computes:
        cells = heat[name][0]["cells"]
        heat[name][1]["identical"] = dict(zip(cells.cell, cells["count"], strict=True)) == db_counts
        frame = spots[name][0]["cells"]
        spots[name][1]["max_abs_z_diff"] = float(
            max(
                abs(db_z[h3.int_to_str(int(c))] - z)
                for c, z in zip(frame.cell, frame.z, strict=True)
            )
        )
        wl = load[name][0]["workload"]
        load[name][1]["max_abs_index_diff"] = float(
            max(abs(db_index[g] - v) for g, v in zip(wl.grid_id, wl["index"], strict=True))
        )
    out["heatmap"] = {k: v[1] for k, v in heat.items()}
    out["hotspots"] = {k: v[1] for k, v in spots.items()}
    out["workload"] = {k: v[1] for k, v in load.items()}
    out["partitions"] = heat["local"][0]["partitions"]
    return out


def _plot(steps: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s["incidents"] / 1e6 for s in steps]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    for ax, kind in zip(axes, ("heatmap", "hotspots", "workload"), strict=True):
        for engine, style in (("database", "o-"), ("local", "s--"), ("dask", "^-.")):
            ax.plot(sizes, [s[kind][engine]["seconds"] for s in steps], style, label=engine)
        ax.set_title(kind)
        ax.set_xlabel("incidents (millions)")
        ax.set_ylabel("seconds")
        ax.grid(alpha=0.3)
    axes[0].legend(title="engine")
    fig.suptitle("Batch analytics on 2 cores: time against history size (bench/scale.py)")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,5,10,20", help="millions of incidents per step")
    parser.add_argument("--grids", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(float(s) * 1e6) for s in args.sizes.split(",")]
    rng = np.random.default_rng(20)
    url = scratch_database("geo_scale")
    engine = make_engine(url)
    t0 = time.perf_counter()
    city = generate_city(seed=11, grids=args.grids, incidents=1000, households_per_grid=20)
    load_city(engine, city)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, ST_AsBinary(geom) FROM areas WHERE level = 'grid' ORDER BY id")
        ).all()
    index = GridIndex.build(
        np.array([shapely.from_wkb(bytes(g)) for _, g in rows], dtype=object),
        np.array([i for i, _ in rows]),
    )
    print(f"city: {args.grids} grids in {time.perf_counter() - t0:.0f} s", flush=True)
    dataset = Path(mkdtemp(prefix="geo-scale-"))
    for kind in ("households", "rental-units"):
        export_dataset(engine, kind, dataset)
    steps = []
    t0 = time.perf_counter()
    with compute_engine("dask", workers=args.workers) as cluster:
        cluster_start = time.perf_counter() - t0
        have = 1000
        for size in sizes:
            t0 = time.perf_counter()
            _add_incidents(engine, city, index, size - have, rng)
            load_s = time.perf_counter() - t0
            with engine.connect() as conn:
                have = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
            exported, export_cost = _timed(lambda: export_dataset(engine, "incidents", dataset))
            with compute_engine("local") as local:
                step = _measure(engine, dataset, {"local": local, "dask": cluster})
            step.update(
                incidents=have,
                load_s=round(load_s, 1),
                export={**export_cost, "written": exported["written"]},
            )
            steps.append(step)
            print(json.dumps(step), flush=True)
            save(steps, args.grids, args.workers, cluster_start)  # a long run keeps each step
    engine.dispose()
    print(f"wrote {RESULTS / 'scale.json'} and {PLOT}")


def save(steps: list[dict], grids: int, workers: int, cluster_start: float | None) -> None:
    """Write the JSON results and the plot of the steps measured so far."""
    out = {
        "benchmark": "scale",
        "grids": grids,
        "cores": psutil.cpu_count(),
        "dask_workers": workers,
        "cluster_start_s": None if cluster_start is None else round(cluster_start, 1),
        "steps": steps,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(out, indent=2) + "\n")
    _plot(steps)


if __name__ == "__main__":
    main()
