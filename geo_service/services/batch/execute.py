"""Running a batch computation: start the engine, compute the kind, store the run.

PostGIS stays the system of record: the study area, categories, boundary versions and grid
areas are read from it, the heavy scans run over the partitioned dataset
(``services.batch.export``), and the results are written back as a *batch run* that the API,
OGC API - Features and the tiles serve (``services.batch.runs``). Workers read the dataset by
path, so on a real cluster it must live on storage every worker mounts.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError
from geo_service.i18n import gettext
from geo_service.services.batch.engine import Compute, TaskProgress, compute_engine, quiet
from geo_service.services.batch.kinds import COMPUTATIONS
from geo_service.services.batch.kinds.proposals import proposals
from geo_service.services.batch.request import BatchRequest
from geo_service.services.batch.store import store_run
from geo_service.services.layers.cell_polygons import ensure_cell_polygons

# what a caller needs to run batch analytics, in one import
__all__ = ["BatchRequest", "compute_batch", "compute_engine", "run_batch"]


def compute_batch(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    """Run one batch computation (no write): frames of results, partitions read, summary."""
    req.check()
    if req.kind == "proposals":
        raise InvalidInputError(
            gettext("proposals are run by run_batch (they store a draft version)")
        )
    return COMPUTATIONS[req.kind](req, session, compute)


def run_batch(
    engine: Engine,
    req: BatchRequest,
    *,
    engine_name: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    actor: str,
    progress: TaskProgress = quiet,
) -> dict[str, Any]:
    """Compute on the chosen engine and store the result as a batch run; returns the run."""
    req.check()
    started = time.perf_counter()
    with compute_engine(engine_name, scheduler, workers, progress) as compute:
        if req.kind == "proposals":
            summary = proposals(engine, req, compute, actor=actor)
            out: dict[str, Any] = {"partitions": len(req.scope), "summary": summary}
        else:
            with Session(engine) as session:
                out = compute_batch(req, session, compute)
    seconds = time.perf_counter() - started
    with Session(engine) as session:
        if "cells" in out:  # hexagons are a shared cache (committed on their own)
            ensure_cell_polygons(session, req.res, out["cells"].cell.to_numpy(np.int64))
        run_id = store_run(session, req, engine_name, out, seconds, actor)
        session.commit()
    return {
        "run_id": run_id,
        "kind": req.kind,
        "engine": engine_name,
        "partitions": out["partitions"],
        "seconds": round(seconds, 2),
        "summary": out["summary"],
    }
