"""Writing a batch run: its metadata, its rows (cells, workload or crosswalk) and its audit row,
in the caller's transaction."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.geo.h3cells import cell_to_str
from geo_service.services.access.audit import record_audit
from geo_service.services.batch.request import BatchRequest

_RUN = text(
    "INSERT INTO batch_runs (kind, engine, params, summary, partitions, seconds, "
    "created_by) VALUES (:kind, :engine, CAST(:params AS jsonb), "
    "CAST(:summary AS jsonb), :partitions, :seconds, :actor) RETURNING id"
)
_WORKLOAD = text(
    "INSERT INTO batch_workload (run_id, grid_id, incident_hours, incidents, "
    "households, rental_units, area_km2, index) "
    "SELECT :run, * FROM unnest(CAST(:g AS int[]), CAST(:h AS float8[]), "
    "CAST(:i AS bigint[]), CAST(:hh AS bigint[]), CAST(:r AS bigint[]), "
    "CAST(:a AS float8[]), CAST(:x AS float8[]))"
)
_CROSSWALK = text(
    "INSERT INTO batch_crosswalk (run_id, entity, old_grid_id, new_grid_id, count) "
    "SELECT :run, * FROM unnest(CAST(:e AS text[]), CAST(:o AS int[]), "
    "CAST(:n AS int[]), CAST(:c AS bigint[]))"
)
# The cells' polygons come from the shared h3_cells store (``ensure_cell_polygons`` first).
_CELLS = text(
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
)


def run_params(req: BatchRequest) -> dict[str, Any]:
    """The request as the JSON stored with the run."""
    out = asdict(req)
    out["dataset"] = str(req.dataset)
    for key in ("since", "until"):
        out[key] = out[key].isoformat() if out[key] else None
    b = req.bbox
    out["bbox"] = None if b is None else [b.minx, b.miny, b.maxx, b.maxy]
    out["scope"] = list(req.scope)
    return out


def store_run(
    session: Session,
    req: BatchRequest,
    engine_name: str,
    out: dict[str, Any],
    seconds: float,
    actor: str,
) -> int:
    """Write the run and its rows, and audit it, in one transaction; the run's id."""
    run_id = session.execute(
        _RUN,
        {
            "kind": req.kind,
            "engine": engine_name,
            "params": json.dumps(run_params(req)),
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
            _WORKLOAD,
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
            _CROSSWALK,
            {
                "run": run_id,
                "e": c.entity.tolist(),
                "o": [None if pd.isna(v) else int(v) for v in c.old_grid_id],
                "n": [None if pd.isna(v) else int(v) for v in c.new_grid_id],
                "c": c["count"].astype(int).tolist(),
            },
        )
    diff = {"kind": req.kind, "engine": engine_name, **out["summary"]}
    record_audit(
        session, who=actor, action="batch_run", entity="batch_run", entity_id=str(run_id), diff=diff
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
        _CELLS,
        {
            "run": run_id,
            "res": res,
            "cells": cells.tolist(),
            "h3": [cell_to_str(c) for c in cells],
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
