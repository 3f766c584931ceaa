"""The grid kinds: workload per grid, and reattribute (every record to a new boundary version).

Both reduce partition files to per-grid tables; the workload index is the planning room's
formula (``services.planning``), so batch and online workload agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.analytics import partitioned as part
from geo_service.errors import NotFoundError
from geo_service.i18n import format_message
from geo_service.services.batch.dataset import optional_files, partition_files
from geo_service.services.batch.engine import Compute, task
from geo_service.services.batch.request import REGRID_KINDS, BatchRequest
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.planning.workload import QUARTER_DAYS, workload_index

_EFFORT = text("SELECT code, handling_effort_min FROM categories")
_GRIDS = text(
    "SELECT id AS grid_id, area_m2 / 1e6 AS area_km2 FROM areas "
    "WHERE version_id = :v AND level = 'grid' ORDER BY id"
)
_GRID_SHAPES = text(
    "SELECT id, ST_AsBinary(geom) FROM areas WHERE version_id = :v AND level = 'grid' ORDER BY id"
)


def workload(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    """The workload terms and index per grid of the version in force, over ``window_days``."""
    until = req.until or datetime.now(UTC)
    since = until - timedelta(days=req.window_days)
    incident_files = partition_files(req.dataset, "incidents", since, until)
    tasks = [task(part.grid_category_counts, f, since, until) for f in incident_files]
    household_files = optional_files(req.dataset, "households")
    rental_files = optional_files(req.dataset, "rental-units")
    tasks += [task(part.grid_sums, f) for f in household_files]
    tasks += [task(part.grid_sums, f, "unit_count") for f in rental_files]
    results = compute(tasks)
    n_inc, n_hh = len(incident_files), len(household_files)
    incidents = [r for r in results[:n_inc] if len(r)]
    households = [r for r in results[n_inc : n_inc + n_hh] if len(r)]
    rentals = [r for r in results[n_inc + n_hh :] if len(r)]
    effort: dict[str, int] = {code: minutes for code, minutes in session.execute(_EFFORT).all()}
    grids = pd.DataFrame(
        session.execute(_GRIDS, {"v": version_in_force(session)}).all(),
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
    terms = grids[["incident_hours", "households", "rental_units", "area_km2"]]
    grids["index"] = [
        workload_index(t, req.weights, req.window_days) for t in terms.to_dict("records")
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


def reattribute(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    """The crosswalk (entity, old grid, new grid, count) of every exported record to the
    grids of ``req.version_id``."""
    import shapely

    from geo_service.geo.assign import GridIndex

    rows = session.execute(_GRID_SHAPES, {"v": req.version_id}).all()
    if not rows:
        raise NotFoundError(
            format_message("boundary version {version_id} has no grids", version_id=req.version_id)
        )
    index = task(  # one node of the graph: built once, shared by every file's task
        GridIndex.build,
        np.array([shapely.from_wkb(bytes(r[1])) for r in rows], dtype=object),
        np.array([r[0] for r in rows], dtype=np.int64),
    )
    entities, tasks = [], []
    for kind in REGRID_KINDS:
        for f in optional_files(req.dataset, kind):
            entities.append(kind)
            tasks.append(task(part.regrid_counts, f, index))
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
