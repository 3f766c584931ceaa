"""Batch analytics over the exported GeoParquet dataset, in-process or on a Dask cluster.

PostGIS stays the system of record: the study area, categories, boundary versions and grid
areas are read from it, the heavy scans run over the partitioned dataset
(``services.export``), and the results are written back as a *batch run* that the API, OGC
API - Features and the tiles serve. Both engines build the same Dask graph of the same
``analytics.partitioned`` tasks: ``local`` computes it with Dask's threaded scheduler in this
process, ``dask`` on a ``distributed`` cluster (a scheduler address, or a LocalCluster of
worker processes when none is given). Workers read the dataset by path, so on a real cluster
it must live on storage every worker mounts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dask
import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.analytics import partitioned as part
from geo_service.analytics.emerging import classify_emerging
from geo_service.analytics.hotspots import classify, fdr_bh
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.services.access import disclosure
from geo_service.services.batch.export import kind_folder, month_bounds, read_manifest
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.layers.emerging import BIN_DAYS, MAX_BINS
from geo_service.services.layers.hotspots import RESOLUTIONS, _study_cells
from geo_service.services.layers.tiles import ensure_cell_polygons
from geo_service.services.planning.proposals import (
    QUARTER_DAYS,
    Weights,
    _index,
    published_workload_terms,
)

ENGINES = ("local", "dask")
KINDS = ("heatmap", "hotspots", "emerging", "workload", "reattribute", "proposals")
CELL_KINDS = ("heatmap", "hotspots", "emerging")
REGRID_KINDS = ("incidents", "households", "rental-units")
Compute = Callable[[list[Any]], list[Any]]


@dataclass(frozen=True)
class BatchRequest:
    """One batch computation and its parameters (the API's names and defaults)."""

    kind: str
    dataset: Path
    res: int = 8
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    k: int = 1
    fdr: bool = True
    bin: str = "month"
    window_days: int = 90
    bbox: tuple[float, float, float, float] | None = None
    version_id: int | None = None  # reattribute: the boundary version to assign to
    scope: tuple[str, ...] = field(default_factory=tuple)  # proposals: community codes
    weights: Weights = field(default_factory=Weights)

    def check(self) -> None:
        """Refuse what makes no sense, with the reason."""
        if self.kind not in KINDS:
            raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}")
        if self.res not in RESOLUTIONS:
            raise InvalidInputError(f"res must be {RESOLUTIONS.start}..{RESOLUTIONS.stop - 1}")
        if not 1 <= self.k <= 3:
            raise InvalidInputError("k must be 1, 2 or 3")
        if self.bin not in BIN_DAYS:
            raise InvalidInputError("bin must be week or month")
        if not 1 <= self.window_days <= 3660:
            raise InvalidInputError("window_days must be 1..3660")
        for name, value in (("since", self.since), ("until", self.until)):
            if value is not None and value.tzinfo is None:
                raise InvalidInputError(f"{name} must carry a timezone offset (e.g. Z)")
        if self.since and self.until and self.since >= self.until:
            raise InvalidInputError("since must be before until")
        if self.kind == "reattribute" and self.version_id is None:
            raise InvalidInputError("reattribute needs --version (the boundary version)")
        if self.kind == "proposals" and not self.scope:
            raise InvalidInputError("proposals need at least one --scope community or street")
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
                raise InvalidInputError("bbox must be minlon,minlat,maxlon,maxlat")
        self.weights.check()
        if self.kind != "proposals" and not (self.dataset / "incidents").is_dir():
            raise InvalidInputError(
                f"no exported dataset at {self.dataset}: run 'geo-service export incidents "
                f"--to {self.dataset}' first"
            )


TaskProgress = Callable[[int, int], None]  # tasks done, tasks in this step


def _quiet(done: int, total: int) -> None:
    return None


@contextmanager
def compute_engine(
    engine: str,
    scheduler: str | None = None,
    workers: int = 2,
    progress: TaskProgress = _quiet,
) -> Iterator[Compute]:
    """A function that computes a list of Dask tasks: in-process, or on a cluster."""
    if engine not in ENGINES:
        raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}")
    if not 1 <= workers <= 256:
        raise InvalidInputError("workers must be 1..256")  # none would wait forever
    if engine == "local":
        from dask.callbacks import Callback

        class _Count(Callback):  # type: ignore[misc]
            def _start_state(self, dsk: Any, state: Any) -> None:
                self.total, self.done = len(state["ready"]) + len(state["waiting"]), 0

            def _posttask(self, *args: Any) -> None:
                self.done += 1
                progress(self.done, self.total)

        def local(tasks: list[Any]) -> list[Any]:
            with _Count():
                return list(dask.compute(*tasks, scheduler="threads"))

        yield local
        return
    from distributed import Client, LocalCluster, as_completed

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InvalidInputError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}"
            ) from None
        cluster = None
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)

    def distributed(tasks: list[Any]) -> list[Any]:
        futures = client.compute(tasks)
        for done, _ in enumerate(as_completed(futures), start=1):
            progress(done, len(futures))
        return list(client.gather(futures))

    try:
        yield distributed
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --- the dataset ---------------------------------------------------------------------------


def partition_files(
    dataset: Path,
    kind: str,
    since: datetime | None = None,
    until: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> list[str]:
    """The files of an exported kind that can hold rows in the window and bbox (pruned by the
    partition keys: month, and the res-3 parent cell's extent)."""
    folder = Path(dataset) / kind_folder(kind)
    manifest = read_manifest(folder)
    if not manifest["partitions"]:
        raise InvalidInputError(f"no exported {kind} under {dataset}")
    files = []
    for rel, meta in sorted(manifest["partitions"].items()):
        if meta.get("month"):
            start, end = month_bounds(meta["month"])
            if (since and end <= since) or (until and start >= until):
                continue
        if bbox is not None and not _cell_meets_bbox(int(meta["h3_3"], 16), bbox):
            continue
        files.append(str(folder / rel / "part-0.parquet"))
    return files


def _cell_meets_bbox(cell: int, bbox: tuple[float, float, float, float]) -> bool:
    lats, lngs = zip(*h3i.cell_to_boundary(cell), strict=True)
    margin = 0.05  # degrees: a res-3 cell's edges bulge between its vertices
    return not (
        max(lngs) + margin < bbox[0]
        or min(lngs) - margin > bbox[2]
        or max(lats) + margin < bbox[1]
        or min(lats) - margin > bbox[3]
    )


# --- computations --------------------------------------------------------------------------


def _counts(req: BatchRequest, files: list[str], compute: Compute) -> pd.Series:
    tasks = [
        dask.delayed(part.cell_counts)(f, req.res, req.since, req.until, req.category)
        for f in files
    ]
    parts = [s for s in compute(tasks) if len(s)]
    if not parts:
        return pd.Series(dtype=np.int64)
    return pd.concat(parts).groupby(level=0).sum().sort_index()


def _heatmap(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    files = partition_files(req.dataset, "incidents", req.since, req.until, req.bbox)
    counts = _counts(req, files, compute)
    if req.bbox is not None and len(counts):
        latlng = np.array([h3i.cell_to_latlng(int(c)) for c in counts.index])
        x0, y0, x1, y1 = req.bbox
        inside = (latlng[:, 1] >= x0) & (latlng[:, 1] <= x1)
        inside &= (latlng[:, 0] >= y0) & (latlng[:, 0] <= y1)
        counts = counts[inside]
    frame = pd.DataFrame({"cell": counts.index.to_numpy(np.int64), "count": counts.to_numpy()})
    return {"cells": frame, "partitions": len(files), "summary": {"incidents": int(counts.sum())}}


def _study(req: BatchRequest, session: Session, observed: np.ndarray) -> np.ndarray:
    cells = _study_cells(session, version_in_force(session), req.res)
    return np.union1d(cells, observed.astype(np.int64))


def _hotspots(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    files = partition_files(req.dataset, "incidents", req.since, req.until)
    counts = _counts(req, files, compute)
    cells = _study(req, session, counts.index.to_numpy())
    values = counts.reindex(cells, fill_value=0).to_numpy(np.float64)
    if len(cells) < 3:
        raise InvalidInputError("too few cells in the study area for Gi*")
    moments = part.Moments.of(values)
    position = pd.Series(np.arange(len(cells)), index=cells)
    pieces = part.blocks(cells, req.k)
    tasks = [
        dask.delayed(part.block_gi_star_z)(
            own, halo, values[position[np.concatenate([own, halo])].to_numpy()], moments, req.k
        )
        for own, halo in pieces
    ]
    z = np.zeros(len(cells))
    for (own, _), block_z in zip(pieces, compute(tasks), strict=True):
        z[position[own].to_numpy()] = block_z
    p = 2.0 * _norm_sf(np.abs(z))
    p_fdr = fdr_bh(p)  # over the whole study area, as in-process: FDR is global
    frame = pd.DataFrame(
        {
            "cell": cells,
            "count": values.astype(np.int64),
            "z": z,
            "p": p,
            "p_fdr": p_fdr,
            "class": classify(z, p_fdr if req.fdr else p),
        }
    )
    hot = int(frame["class"].str.startswith("Hot").sum())
    return {
        "cells": frame,
        "partitions": len(files),
        "summary": {"cells": len(cells), "blocks": len(pieces), "hot_cells": hot},
    }


def _norm_sf(x: np.ndarray) -> np.ndarray:
    from scipy import stats

    return stats.norm.sf(x)


def _bins(req: BatchRequest) -> tuple[datetime, datetime, timedelta, int]:
    until = req.until or datetime.now(UTC)
    since = req.since or until - timedelta(days=365)
    width = timedelta(days=BIN_DAYS[req.bin])
    bins = int((until - since) / width)
    if bins < 4:
        raise InvalidInputError("the window must span at least 4 bins")
    if bins > MAX_BINS:
        raise InvalidInputError(f"at most {MAX_BINS} bins; widen the bin or shorten the window")
    return until - bins * width, until, width, bins


def _emerging(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    start, until, width, bins = _bins(req)
    files = partition_files(req.dataset, "incidents", start, until)
    tasks = [
        dask.delayed(part.cell_bin_counts)(
            f, req.res, start, until, width.total_seconds(), bins, req.category
        )
        for f in files
    ]
    parts = [f for f in compute(tasks) if len(f)]
    long = (
        pd.concat(parts).groupby(["cell", "bin"])["count"].sum()
        if parts
        else pd.Series(dtype=np.int64)
    )
    observed = long.index.get_level_values(0).unique().to_numpy() if len(long) else np.array([])
    cells = _study(req, session, observed)
    if len(cells) < 3:
        raise InvalidInputError("too few cells for emerging hot spot analysis")
    position = pd.Series(np.arange(len(cells)), index=cells)
    cube = np.zeros((len(cells), bins))
    if len(long):
        rows = position[long.index.get_level_values(0)].to_numpy()
        np.add.at(cube, (rows, long.index.get_level_values(1).to_numpy()), long.to_numpy())
    moments = part.Moments.of(cube.reshape(-1))
    pieces = part.blocks(cells, req.k)
    tasks = [
        dask.delayed(part.block_space_time_z)(
            own, halo, cube[position[np.concatenate([own, halo])].to_numpy()], moments, req.k
        )
        for own, halo in pieces
    ]
    z = np.zeros((len(cells), bins))
    for (own, _), block_z in zip(pieces, compute(tasks), strict=True):
        z[position[own].to_numpy()] = block_z
    result = classify_emerging(z, fdr=req.fdr)
    frame = pd.DataFrame(
        {
            "cell": cells,
            "count": cube.sum(axis=1).astype(np.int64),
            "pattern": result.patterns,
            "trend_z": result.trend_z,
            "trend_p": result.trend_p,
        }
    )
    found = frame.pattern[frame.pattern != "No Pattern Detected"].value_counts().to_dict()
    return {
        "cells": frame,
        "partitions": len(files),
        "summary": {
            "cells": len(cells),
            "bins": bins,
            "start": start.isoformat(),
            "until": until.isoformat(),
            "patterns": {str(k): int(v) for k, v in found.items()},
        },
    }


def _workload(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    until = req.until or datetime.now(UTC)
    since = until - timedelta(days=req.window_days)
    incident_files = partition_files(req.dataset, "incidents", since, until)
    tasks = [dask.delayed(part.grid_category_counts)(f, since, until) for f in incident_files]
    household_files = _optional_files(req.dataset, "households")
    rental_files = _optional_files(req.dataset, "rental-units")
    tasks += [dask.delayed(part.grid_sums)(f) for f in household_files]
    tasks += [dask.delayed(part.grid_sums)(f, "unit_count") for f in rental_files]
    results = compute(tasks)
    n_inc, n_hh = len(incident_files), len(household_files)
    incidents = [r for r in results[:n_inc] if len(r)]
    households = [r for r in results[n_inc : n_inc + n_hh] if len(r)]
    rentals = [r for r in results[n_inc + n_hh :] if len(r)]
    effort: dict[str, int] = {
        code: minutes
        for code, minutes in session.execute(
            text("SELECT code, handling_effort_min FROM categories")
        ).all()
    }
    grids = pd.DataFrame(
        session.execute(
            text(
                "SELECT id AS grid_id, area_m2 / 1e6 AS area_km2 FROM areas "
                "WHERE version_id = :v AND level = 'grid' ORDER BY id"
            ),
            {"v": version_in_force(session)},
        ).all(),
        columns=["grid_id", "area_km2"],
    ).set_index("grid_id")
    by_cat = (
        pd.concat(incidents).groupby(["grid_id", "category"])["count"].sum().reset_index()
        if incidents
        else pd.DataFrame({"grid_id": [], "category": [], "count": []})
    )
    by_cat["minutes"] = by_cat["count"] * by_cat["category"].map(effort).fillna(0)
    per_grid = by_cat.groupby("grid_id")[["count", "minutes"]].sum()
    grids["incidents"] = per_grid["count"].reindex(grids.index, fill_value=0).astype(np.int64)
    grids["incident_hours"] = per_grid["minutes"].reindex(grids.index, fill_value=0) / 60.0
    for name, parts in (("households", households), ("rental_units", rentals)):
        total = pd.concat(parts).groupby(level=0).sum() if parts else pd.Series(dtype=np.int64)
        grids[name] = total.reindex(grids.index, fill_value=0).astype(np.int64)
    grids["index"] = [
        _index(terms, req.weights, req.window_days)
        for terms in grids[["incident_hours", "households", "rental_units", "area_km2"]].to_dict(
            "records"
        )
    ]
    index = grids["index"].to_numpy()
    summary = {
        "grids": len(grids),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "max_over_mean": round(float(index.max() / index.mean()), 4) if len(index) else None,
        "scale_quarters": round(req.window_days / QUARTER_DAYS, 4),
    }
    files = len(incident_files) + n_hh + len(rental_files)
    return {"workload": grids.reset_index(), "partitions": files, "summary": summary}


def _optional_files(dataset: Path, kind: str) -> list[str]:
    if not (Path(dataset) / kind_folder(kind) / "_manifest.json").exists():
        return []
    return partition_files(dataset, kind)


def _reattribute(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    import shapely

    from geo_service.geo.assign import GridIndex

    rows = session.execute(
        text(
            "SELECT id, ST_AsBinary(geom) FROM areas "
            "WHERE version_id = :v AND level = 'grid' ORDER BY id"
        ),
        {"v": req.version_id},
    ).all()
    if not rows:
        raise NotFoundError(f"boundary version {req.version_id} has no grids")
    index = dask.delayed(GridIndex.build)(
        np.array([shapely.from_wkb(bytes(r[1])) for r in rows], dtype=object),
        np.array([r[0] for r in rows], dtype=np.int64),
    )
    entities, tasks = [], []
    for kind in REGRID_KINDS:
        for f in _optional_files(req.dataset, kind):
            entities.append(kind)
            tasks.append(dask.delayed(part.regrid_counts)(f, index))
    results = compute(tasks)
    frames = [r.assign(entity=e) for e, r in zip(entities, results, strict=True) if len(r)]
    crosswalk = (
        pd.concat(frames)
        .groupby(["entity", "old_grid_id", "new_grid_id"], dropna=False)["count"]
        .sum()
        .reset_index()
        if frames
        else pd.DataFrame(columns=["entity", "old_grid_id", "new_grid_id", "count"])
    )
    moved = crosswalk[crosswalk.old_grid_id != crosswalk.new_grid_id]
    summary = {
        "version_id": req.version_id,
        "rows": {e: int(g["count"].sum()) for e, g in crosswalk.groupby("entity")},
        "changed_grid_ids": {e: int(g["count"].sum()) for e, g in moved.groupby("entity")},
    }
    return {"crosswalk": crosswalk, "partitions": len(tasks), "summary": summary}


_RUNS: dict[str, Callable[[BatchRequest, Session, Compute], dict[str, Any]]] = {
    "heatmap": _heatmap,
    "hotspots": _hotspots,
    "emerging": _emerging,
    "workload": _workload,
    "reattribute": _reattribute,
}


def compute_batch(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    """Run one batch computation (no write): frames of results, partitions read, summary."""
    req.check()
    if req.kind == "proposals":
        raise InvalidInputError("proposals are run by run_batch (they store a draft version)")
    return _RUNS[req.kind](req, session, compute)


def run_batch(
    engine: Engine,
    req: BatchRequest,
    *,
    engine_name: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    actor: str,
    progress: TaskProgress = _quiet,
) -> dict[str, Any]:
    """Compute on the chosen engine and store the result as a batch run; returns the run."""
    req.check()
    started = time.perf_counter()
    with compute_engine(engine_name, scheduler, workers, progress) as compute:
        if req.kind == "proposals":
            return _proposals(engine, req, compute, engine_name, actor, started)
        with Session(engine) as session:
            out = compute_batch(req, session, compute)
    seconds = time.perf_counter() - started
    with Session(engine) as session:
        if "cells" in out:  # hexagons are a shared cache (committed on their own)
            ensure_cell_polygons(session, req.res, out["cells"].cell.to_numpy(np.int64))
        run_id = _store(session, req, engine_name, out, seconds, actor)
        session.commit()
    return {
        "run_id": run_id,
        "kind": req.kind,
        "engine": engine_name,
        "partitions": out["partitions"],
        "seconds": round(seconds, 2),
        "summary": out["summary"],
    }


def _proposals(
    engine: Engine,
    req: BatchRequest,
    compute: Compute,
    engine_name: str,
    actor: str,
    started: float,
) -> dict[str, Any]:
    """Redraw many communities at once: each community's partition is an independent task."""
    from geo_service.analytics.regionalize import partition
    from geo_service.services.planning.proposals import ProposalRequest, propose

    def run_all(jobs: list[dict[str, Any]]) -> list[Any]:
        return compute([dask.delayed(partition)(**job) for job in jobs])

    proposal = ProposalRequest(
        parent_codes=list(req.scope), weights=req.weights, window_days=req.window_days
    )
    out = propose(engine, proposal, actor=actor, run_partitions=run_all)
    seconds = time.perf_counter() - started
    summary = {"version_id": out["version_id"], **_proposal_summary(out["metrics"])}
    with Session(engine) as session:
        run_id = _store(
            session,
            req,
            engine_name,
            {"partitions": len(req.scope), "summary": summary},
            seconds,
            actor,
        )
        session.commit()
    return {
        "run_id": run_id,
        "kind": "proposals",
        "engine": engine_name,
        "partitions": len(req.scope),
        "seconds": round(seconds, 2),
        "summary": summary,
    }


def _proposal_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "workload_before": metrics["workload_before"],
        "workload_after": metrics["workload_after"],
        "contiguous_share": metrics["contiguous_share"],
        "parents": len(metrics["parents"]),
    }


def _params(req: BatchRequest) -> dict[str, Any]:
    out = asdict(req)
    out["dataset"] = str(req.dataset)
    for key in ("since", "until"):
        out[key] = out[key].isoformat() if out[key] else None
    out["scope"] = list(req.scope)
    return out


def _store(
    session: Session,
    req: BatchRequest,
    engine_name: str,
    out: dict[str, Any],
    seconds: float,
    actor: str,
) -> int:
    """Write the run and its rows, and audit it, in one transaction."""
    run_id = session.execute(
        text(
            "INSERT INTO batch_runs (kind, engine, params, summary, partitions, seconds, "
            "created_by) VALUES (:kind, :engine, CAST(:params AS jsonb), "
            "CAST(:summary AS jsonb), :partitions, :seconds, :actor) RETURNING id"
        ),
        {
            "kind": req.kind,
            "engine": engine_name,
            "params": json.dumps(_params(req)),
            "summary": json.dumps(out["summary"]),
            "partitions": out["partitions"],
            "seconds": seconds,
            "actor": actor,
        },
    ).scalar_one()
    if "cells" in out:
        _store_cells(session, run_id, req.res, out["cells"])
    if "workload" in out:
        w = out["workload"]
        session.execute(
            text(
                "INSERT INTO batch_workload (run_id, grid_id, incident_hours, incidents, "
                "households, rental_units, area_km2, index) "
                "SELECT :run, * FROM unnest(CAST(:g AS int[]), CAST(:h AS float8[]), "
                "CAST(:i AS bigint[]), CAST(:hh AS bigint[]), CAST(:r AS bigint[]), "
                "CAST(:a AS float8[]), CAST(:x AS float8[]))"
            ),
            {
                "run": run_id,
                "g": w.grid_id.astype(int).tolist(),
                "h": w.incident_hours.astype(float).tolist(),
                "i": w.incidents.astype(int).tolist(),
                "hh": w.households.astype(int).tolist(),
                "r": w.rental_units.astype(int).tolist(),
                "a": w.area_km2.astype(float).tolist(),
                "x": w["index"].astype(float).tolist(),
            },
        )
    if "crosswalk" in out:
        c = out["crosswalk"]
        session.execute(
            text(
                "INSERT INTO batch_crosswalk (run_id, entity, old_grid_id, new_grid_id, count) "
                "SELECT :run, * FROM unnest(CAST(:e AS text[]), CAST(:o AS int[]), "
                "CAST(:n AS int[]), CAST(:c AS bigint[]))"
            ),
            {
                "run": run_id,
                "e": c.entity.tolist(),
                "o": [None if pd.isna(v) else int(v) for v in c.old_grid_id],
                "n": [None if pd.isna(v) else int(v) for v in c.new_grid_id],
                "c": c["count"].astype(int).tolist(),
            },
        )
    session.execute(
        text(
            "INSERT INTO audit_log (who, action, entity, entity_id, diff) VALUES "
            "(:who, 'batch_run', 'batch_run', :id, CAST(:diff AS jsonb))"
        ),
        {
            "who": actor,
            "id": str(run_id),
            "diff": json.dumps({"kind": req.kind, "engine": engine_name, **out["summary"]}),
        },
    )
    return int(run_id)


def _store_cells(session: Session, run_id: int, res: int, frame: pd.DataFrame) -> None:
    cells = frame.cell.to_numpy(np.int64)

    def column(name: str, cast: str) -> list[Any]:
        if name not in frame:
            return [None] * len(frame)
        values = frame[name].tolist()
        return [None if v is None or (cast == "float8" and np.isnan(v)) else v for v in values]

    session.execute(
        text(
            "INSERT INTO batch_cells (run_id, cell, h3, count, z, p, p_fdr, class, pattern, "
            "trend_z, trend_p, geom) "
            "SELECT :run, t.cell, h3_text, t.count, t.z, t.p, t.p_fdr, t.class, t.pattern, "
            "t.trend_z, t.trend_p, ST_Transform(h.geom, 3857) "
            "FROM unnest(CAST(:cells AS bigint[]), CAST(:h3 AS text[]), CAST(:count AS bigint[]), "
            "CAST(:z AS float8[]), CAST(:p AS float8[]), CAST(:p_fdr AS float8[]), "
            "CAST(:class AS text[]), CAST(:pattern AS text[]), CAST(:trend_z AS float8[]), "
            "CAST(:trend_p AS float8[])) "
            "AS t(cell, h3_text, count, z, p, p_fdr, class, pattern, trend_z, trend_p) "
            "JOIN h3_cells h ON h.res = :res AND h.cell = t.cell"
        ),
        {
            "run": run_id,
            "res": res,
            "cells": cells.tolist(),
            "h3": [h3i.int_to_str(int(c)) for c in cells],
            "count": frame["count"].astype(int).tolist(),
            "z": column("z", "float8"),
            "p": column("p", "float8"),
            "p_fdr": column("p_fdr", "float8"),
            "class": column("class", "text"),
            "pattern": column("pattern", "text"),
            "trend_z": column("trend_z", "float8"),
            "trend_p": column("trend_p", "float8"),
        },
    )


# --- reading runs back ---------------------------------------------------------------------


def list_runs(session: Session, kind: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Batch runs, newest first."""
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}")
    rows = (
        session.execute(
            text(
                "SELECT id, kind, engine, params, summary, partitions, seconds, created_by, "
                "created_at FROM batch_runs WHERE (CAST(:kind AS text) IS NULL OR kind = :kind) "
                "ORDER BY id DESC LIMIT :n"
            ),
            {"kind": kind, "n": limit},
        )
        .mappings()
        .all()
    )
    return {"data": [_run_dict(r) for r in rows], "count": len(rows)}


def _run_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["created_at"] = row["created_at"].isoformat()
    out["seconds"] = round(float(row["seconds"]), 3)
    out["params"] = {k: v for k, v in row["params"].items() if k != "dataset"}
    return out


def get_run(session: Session, run_id: int) -> dict[str, Any]:
    """One run's metadata."""
    row = (
        session.execute(
            text(
                "SELECT id, kind, engine, params, summary, partitions, seconds, created_by, "
                "created_at FROM batch_runs WHERE id = :id"
            ),
            {"id": run_id},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(f"no batch run {run_id}")
    return _run_dict(row)


def latest_run(session: Session, kind: str) -> int:
    """The newest run of a cell kind (what the OGC collection and tiles serve)."""
    run_id = session.execute(
        text("SELECT max(id) FROM batch_runs WHERE kind = :k"), {"k": kind}
    ).scalar_one()
    if run_id is None:
        raise NotFoundError(f"no {kind} batch run yet: run 'geo-service analytics run {kind}'")
    return int(run_id)


_CELL_COLUMNS = {
    "heatmap": ("count",),
    "hotspots": ("count", "z", "p", "p_fdr", "class"),
    "emerging": ("count", "pattern", "trend_z", "trend_p"),
}


def run_features(
    session: Session,
    run_id: int,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A cell run's cells as GeoJSON features (WGS84), optionally in a bbox; and how many
    matched."""
    run = get_run(session, run_id)
    if run["kind"] not in CELL_KINDS:
        raise InvalidInputError(f"run {run_id} is a {run['kind']} run, not a cell layer")
    columns = _CELL_COLUMNS[run["kind"]]
    where = "run_id = :run"
    params: dict[str, Any] = {"run": run_id, "limit": limit, "offset": offset}
    if bbox is not None:
        where += " AND geom && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326), 3857)"
        params.update(dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True)))
    matched = session.execute(
        text(f"SELECT count(*) FROM batch_cells WHERE {where}"), params
    ).scalar_one()
    rows = session.execute(
        text(
            f"SELECT h3, {', '.join(columns)}, ST_AsGeoJSON(ST_Transform(geom, 4326), 7) AS g "
            f"FROM batch_cells WHERE {where} ORDER BY cell LIMIT :limit OFFSET :offset"
        ),
        params,
    ).mappings()
    features = [
        {
            "type": "Feature",
            "id": r["h3"],
            "geometry": json.loads(r["g"]),
            "properties": {"h3": r["h3"], **{c: r[c] for c in columns}},
        }
        for r in rows
    ]
    return features, int(matched)


def run_rows(session: Session, run_id: int) -> list[dict[str, Any]]:
    """A workload or reattribute run's rows."""
    run = get_run(session, run_id)
    if run["kind"] == "workload":
        sql = (
            "SELECT w.grid_id, a.code, w.incident_hours, w.incidents, w.households, "
            "w.rental_units, w.area_km2, w.index FROM batch_workload w "
            "LEFT JOIN areas a ON a.id = w.grid_id WHERE run_id = :run ORDER BY a.code"
        )
    elif run["kind"] == "reattribute":
        sql = (
            "SELECT entity, old_grid_id, new_grid_id, count FROM batch_crosswalk "
            "WHERE run_id = :run ORDER BY entity, old_grid_id, new_grid_id"
        )
    else:
        raise InvalidInputError(f"run {run_id} is a {run['kind']} run: read its features")
    return [dict(r) for r in session.execute(text(sql), {"run": run_id}).mappings()]


# --- disclosure control on the read side ---------------------------------------------------
# The batch pipeline reads exported GeoParquet, which does not carry the records' disclosure
# keys (an export is for batch analytics, not for publication). So the keys are looked up at
# read time: per grid for workload rows, per (old grid, new grid) for crosswalk rows, from the
# records as they are in the database now. The lookup is deterministic, so a run always
# publishes the same figures (no averaging over repeated reads).

_KEYED_TABLES = {"households": "households", "rental-units": "rental_units"}

_GRID_KEYS = text(
    """
    SELECT g.id,
           (SELECT coalesce(sum(h.dc_key), 0) FROM households h WHERE h.grid_id = g.id),
           (SELECT coalesce(sum(r.dc_key), 0) FROM rental_units r WHERE r.grid_id = g.id)
    FROM unnest(CAST(:grids AS int[])) AS g(id)
    """
)

# The records of an old grid that lie in a new grid now (None: in no grid of the version).
_MOVE_KEYS = {
    table: text(
        f"""
        SELECT m.old_id, m.new_id,
               (SELECT coalesce(sum(t.dc_key), 0) FROM {table} t
                WHERE t.grid_id IS NOT DISTINCT FROM m.old_id
                  AND CASE WHEN m.new_id IS NULL THEN NOT EXISTS (
                             SELECT 1 FROM areas a WHERE a.version_id = :v
                             AND a.level = 'grid' AND ST_Intersects(a.geom, t.location))
                      ELSE EXISTS (SELECT 1 FROM areas a WHERE a.id = m.new_id
                             AND ST_Intersects(a.geom, t.location)) END)
        FROM unnest(CAST(:old AS int[]), CAST(:new AS int[])) AS m(old_id, new_id)
        """
    )
    for table in ("households", "rental_units")
}


def published_run_rows(
    session: Session, run: dict[str, Any], rows: list[dict[str, Any]], *, min_count: int
) -> list[dict[str, Any]]:
    """A workload or reattribute run's rows as ``disclosure`` publishes them (base
    ``min_count``): households and rental units rounded, null when that is 0, and the workload
    index recomputed from the published counts with the run's weights and window."""
    if run["kind"] == "workload":
        keys = {
            int(g): (int(h), int(r))
            for g, h, r in session.execute(
                _GRID_KEYS, {"grids": [int(r["grid_id"]) for r in rows]}
            ).all()
        }
        params = run["params"]
        weights = Weights(**params.get("weights", {}))
        out = []
        for r in rows:
            shown = published_workload_terms(
                r["households"], r["rental_units"], keys[int(r["grid_id"])], min_count
            )
            terms = dict(r) | shown
            terms["index"] = round(_index(terms, weights, params["window_days"]), 2)
            out.append(terms)
        return out
    out = []
    version = run["params"].get("version_id")
    for entity, table in _KEYED_TABLES.items():
        mine = [r for r in rows if r["entity"] == entity]
        if not mine:
            continue
        found = session.execute(
            _MOVE_KEYS[table],
            {
                "v": version,
                "old": [r["old_grid_id"] for r in mine],
                "new": [r["new_grid_id"] for r in mine],
            },
        ).all()
        for r, (_o, _n, key) in zip(mine, found, strict=True):
            shown = disclosure.publish(
                {table: int(r["count"])},
                household_key=int(key),
                rental_key=int(key),
                base=min_count,
            )
            r["count"] = shown[table]
    out.extend(rows)
    return out


def published_run(run: dict[str, Any], rows: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A run's summary without exact counts of homes: the workload's balance from the
    published index, the reattribute totals of homes from the published rows (or left out
    when the rows are not at hand)."""
    out = dict(run)
    summary = dict(run.get("summary") or {})
    if run["kind"] == "workload" and rows is not None:
        index = np.array([r["index"] for r in rows], dtype=float)
        summary["max_over_mean"] = (
            round(float(index.max() / index.mean()), 4) if len(index) and index.mean() else None
        )
    elif run["kind"] == "workload":
        summary.pop("max_over_mean", None)
    if run["kind"] == "reattribute":
        for name in ("rows", "changed_grid_ids"):
            totals = {k: v for k, v in summary.get(name, {}).items() if k not in _KEYED_TABLES}
            if rows is not None:
                for entity in _KEYED_TABLES:
                    picked = [
                        r
                        for r in rows
                        if r["entity"] == entity
                        and (name == "rows" or r["old_grid_id"] != r["new_grid_id"])
                    ]
                    if picked:
                        totals[entity] = sum(r["count"] or 0 for r in picked)
            summary[name] = totals
    out["summary"] = summary
    return out
