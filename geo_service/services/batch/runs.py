"""The read side of batch runs: what the API, OGC API - Features and the tiles serve.

Runs are written by ``services.batch.execute``; this module only reads them, and publishes
the counts of homes through disclosure control. It imports neither the engines nor Dask, so
the API process stays light.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import cells_in_bbox
from geo_service.i18n import format_message
from geo_service.services.access import disclosure
from geo_service.services.batch.request import CELL_KINDS, KINDS
from geo_service.services.planning.workload import (
    Weights,
    published_workload_terms,
    workload_index,
)


def list_runs(session: Session, kind: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Batch runs, newest first."""
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(
            format_message("kind must be one of {values}", values=", ".join(KINDS))
        )
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
        raise NotFoundError(format_message("no batch run {run_id}", run_id=run_id))
    return _run_dict(row)


def latest_run(session: Session, kind: str) -> int:
    """The newest run of a cell kind (what the OGC collection and tiles serve)."""
    run_id = session.execute(
        text("SELECT max(id) FROM batch_runs WHERE kind = :k"), {"k": kind}
    ).scalar_one()
    if run_id is None:
        raise NotFoundError(
            format_message(
                "no {kind} batch run yet: run 'geo-service analytics run {kind}'", kind=kind
            )
        )
    return int(run_id)


_NEAR_CELLS = text(
    "SELECT cell FROM batch_cells WHERE run_id = :run "
    "AND geom && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326), 3857)"
)
_CELL_COLUMNS = {
    "heatmap": ("count",),
    "hotspots": ("count", "z", "p", "p_fdr", "class"),
    "emerging": ("count", "pattern", "trend_z", "trend_p"),
}


def run_features(
    session: Session,
    run_id: int,
    *,
    bbox: BBox | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A cell run's cells as GeoJSON features (WGS84), optionally those whose hexagon
    intersects a bbox; and how many matched."""
    run = get_run(session, run_id)
    if run["kind"] not in CELL_KINDS:
        raise InvalidInputError(
            format_message(
                "run {run_id} is a {kind} run, not a cell layer", run_id=run_id, kind=run["kind"]
            )
        )
    columns = _CELL_COLUMNS[run["kind"]]
    where = "run_id = :run"
    params: dict[str, Any] = {"run": run_id, "limit": limit, "offset": offset}
    if bbox is not None:  # the index finds candidates; ``cells_in_bbox`` decides
        near = session.execute(
            _NEAR_CELLS,
            {"run": run_id, "x0": bbox.minx, "y0": bbox.miny, "x1": bbox.maxx, "y1": bbox.maxy},
        ).scalars()
        cells = np.fromiter(near, dtype=np.int64)
        where += " AND cell = ANY(:cells)"
        params["cells"] = cells[cells_in_bbox(cells, bbox)].tolist()
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
        raise InvalidInputError(
            format_message(
                "run {run_id} is a {kind} run: read its features", run_id=run_id, kind=run["kind"]
            )
        )
    return [dict(r) for r in session.execute(text(sql), {"run": run_id}).mappings()]


# --- disclosure control on the read side ---------------------------------------------------
# Rounding is keyed by the published cell (disclosure.py): a grid's workload row rounds as the
# grid does everywhere else (``area:<grid>``), a move between two grids as the crosswalk does,
# so a run publishes the same figures for ever, whatever happens to the live records.

_KEYED_TABLES = {"households": "households", "rental-units": "rental_units"}


def published_run_rows(
    session: Session, run: dict[str, Any], rows: list[dict[str, Any]], *, min_count: int
) -> list[dict[str, Any]]:
    """A workload or reattribute run's rows as ``disclosure`` publishes them (base
    ``min_count``): households and rental units rounded, null when that is 0, and the workload
    index recomputed from the published counts with the run's weights and window."""
    if run["kind"] == "workload":
        grid_ids = [int(r["grid_id"]) for r in rows]
        found = disclosure.identity_keys(session, [disclosure.area_identity(g) for g in grid_ids])
        keys = {g: (k, k) for g, k in zip(grid_ids, found, strict=True)}
        params = run["params"]
        weights = Weights(**params.get("weights", {}))
        out = []
        for r in rows:
            shown = published_workload_terms(
                r["households"], r["rental_units"], keys[int(r["grid_id"])], min_count
            )
            terms = dict(r) | shown
            terms["index"] = round(workload_index(terms, weights, params["window_days"]), 2)
            out.append(terms)
        return out
    out = []
    for entity, table in _KEYED_TABLES.items():
        mine = [r for r in rows if r["entity"] == entity]
        if not mine:
            continue
        found = disclosure.identity_keys(
            session,
            [disclosure.move_identity(table, r["old_grid_id"], r["new_grid_id"]) for r in mine],
        )
        for r, key in zip(mine, found, strict=True):
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
