"""Batch runs (``geo-service analytics run``): ``GET /analytics/runs`` and one run's result.

Response models (api/schemas/batch.py) are declared for the OpenAPI document; the bodies are
sent as the service builds them, not re-validated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from geo_service.api.deps import HEAVY, SessionDep, SettingsDep, require
from geo_service.api.params import OutputCrs
from geo_service.api.responses import DictJSONResponse, geojson_in_crs
from geo_service.api.schemas import INT32_MAX
from geo_service.api.schemas.batch import RunDetail, RunsPublic
from geo_service.i18n import gettext
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.batch import runs as batch

router = APIRouter(prefix="/analytics", tags=["batch analytics"])
LayerScope = Annotated[Scope, Depends(require("layers:read"))]
RunKind = Literal["heatmap", "hotspots", "emerging", "workload", "reattribute", "proposals"]


@router.get("/runs", response_model=RunsPublic)
def read_runs(
    session: SessionDep,
    scope: LayerScope,
    kind: RunKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DictJSONResponse:
    """Batch runs, newest first: kind, engine, parameters, summary, partitions read, time."""
    scope.require_unrestricted(gettext("batch runs"))
    runs = batch.list_runs(session, kind, limit)
    if not disclosure.sees_exact(scope):
        # The listing carries no rows: summaries that count homes are left out of it.
        runs["data"] = [batch.published_run(r, None) for r in runs["data"]]
    return DictJSONResponse(runs)


@router.get("/runs/{run_id}", response_model=RunDetail, dependencies=[HEAVY])
async def read_run(
    session: SessionDep,
    settings: SettingsDep,
    scope: LayerScope,
    run_id: Annotated[int, Path(ge=1, le=INT32_MAX)],
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    offset: Annotated[int, Query(ge=0)] = 0,
    crs: OutputCrs = "wgs84",
) -> DictJSONResponse:
    """One run: a FeatureCollection of its cells (heatmap, hotspots, emerging), its rows per
    grid (workload), or its crosswalk; counts of households and rental units published through
    disclosure control as everywhere (rounded to base ``min_cell_count``). ``crs`` converts
    the cells' positions (the other kinds have none)."""
    body = await run_in_threadpool(
        _run, session, scope, run_id, limit, offset, settings.auth.min_cell_count
    )
    return DictJSONResponse(await run_in_threadpool(geojson_in_crs, body, crs))


def _run(
    session: Session, scope: Scope, run_id: int, limit: int, offset: int, min_count: int
) -> dict[str, Any]:
    scope.require_unrestricted(gettext("batch runs"))
    run = batch.get_run(session, run_id)
    if run["kind"] in batch.CELL_KINDS:
        features, matched = batch.run_features(session, run_id, limit=limit, offset=offset)
        return {
            "type": "FeatureCollection",
            "run": run,
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
        }
    if run["kind"] == "proposals":
        return {"run": run}
    if run["kind"] == "workload":
        scope.require("workload:read")
    else:
        scope.require("boundaries:read")
    rows = batch.run_rows(session, run_id)
    if not disclosure.sees_exact(scope):
        rows = batch.published_run_rows(session, run, rows, min_count=min_count)
        run = batch.published_run(run, rows)
    return {"run": run, "data": rows[offset : offset + limit], "count": len(rows)}
