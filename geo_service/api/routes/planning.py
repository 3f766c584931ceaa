"""Planners: ``GET /workload``, ``POST /boundaries/proposals`` (a job), ``GET /jobs/{id}`` and
``POST /boundaries/versions/{id}/edits`` (a block moved by hand).

Request and response models live in api/schemas/planning.py (jobs: api/schemas/batch.py); the
response models are declared for the OpenAPI document, the bodies sent as the services build
them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from geo_service.api.deps import HEAVY, ActorDep, SessionDep, SettingsDep, require
from geo_service.api.params import Instant
from geo_service.api.responses import DictJSONResponse, geojson_in_crs
from geo_service.api.schemas import VersionIdPath
from geo_service.api.schemas.batch import JobAccepted, JobPublic
from geo_service.api.schemas.planning import BlockMoveIn, BlockMoveOut, ProposalIn, WorkloadPublic
from geo_service.geo.crs import to_wgs84
from geo_service.services.access.scope import Scope
from geo_service.services.batch import jobs
from geo_service.services.planning.workload import Weights, workload

router = APIRouter(tags=["planning"])
PlanScope = Annotated[Scope, Depends(require("workload:read"))]


@router.get("/workload", response_model=WorkloadPublic, dependencies=[HEAVY])
def read_workload(
    session: SessionDep,
    settings: SettingsDep,
    scope: PlanScope,
    level: Literal["grid", "community", "street", "district"] = "grid",
    window_days: Annotated[int, Query(ge=1, le=3660)] = 90,
    parent_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    w_incidents: Annotated[float, Query(ge=0, le=100)] = 1.0,
    w_households: Annotated[float, Query(ge=0, le=100)] = 1.0,
    w_rental_units: Annotated[float, Query(ge=0, le=100)] = 1.0,
    w_travel: Annotated[float, Query(ge=0, le=100)] = 1.0,
    until: Annotated[
        Instant | None,
        Query(description="end of the window (RFC 3339, with an offset); default now"),
    ] = None,
    version_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**31 - 1,
            description="the boundary version to measure (a draft, a scheduled or an older "
            "one); default the version in force",
        ),
    ] = None,
) -> DictJSONResponse:
    """Workload per area: each term and the index, balance per parent (max/mean, CV, Gini),
    and per grid worker, over the ``window_days`` before ``until`` (any past window: a planner
    balances on last year's data). With ``version_id``, of that boundary version's areas, the
    records counted in the grid holding their point (404 for an unknown version, or one with
    nothing in your area)."""
    weights = Weights(w_incidents, w_households, w_rental_units, w_travel)
    body = workload(
        session,
        level=level,
        window_days=window_days,
        parent_id=parent_id,
        weights=weights,
        scope=scope,
        min_count=settings.auth.min_cell_count,
        until=until,
        version_id=version_id,
    )
    return DictJSONResponse(body)


@router.post(
    "/boundaries/proposals",
    status_code=202,
    response_model=JobAccepted,
    responses={202: {"description": "Queued: poll the job at ``Location``"}},
    dependencies=[HEAVY],
)
def post_proposal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("proposals:write"))],
    body: ProposalIn,
) -> JSONResponse:
    """Redraw the grids of communities (or of a street's communities) into balanced,
    contiguous, compact grids: a job whose result is a draft boundary version and metrics."""
    # Proposals pull in geopandas and scipy (~0.4 s): loaded on the first proposal, not at start.
    from geo_service.services.planning.proposals import ProposalRequest, check_proposal, propose

    req = ProposalRequest(
        parent_codes=body.scope,
        target_grids=body.target_grids,
        weights=Weights(**body.weights.model_dump()),
        tolerance=body.tolerance,
        locked_grids=body.locked_grids,
        h3_res=body.atoms.h3_res,
        stability=body.stability,
        compactness=body.compactness,
        window_days=body.window_days,
        until=body.until,
        name=body.name,
        **body.constraints.model_dump(),
    )
    check_proposal(session, req, scope)
    engine = request.app.state.engine
    job_id = jobs.submit(
        engine,
        "proposal",
        asdict(req),
        actor,
        lambda progress: propose(
            engine,
            req,
            actor=actor,
            progress=progress,
            min_count=settings.auth.min_cell_count,
        ),
        owner_id=scope.principal.user_id,
    )
    href = f"/jobs/{job_id}"
    return JSONResponse(
        {"job_id": job_id, "status": "queued", "href": href},
        status_code=202,
        headers={"Location": href},
    )


@router.get("/jobs/{job_id}", response_model=JobPublic)
def read_job(request: Request, scope: PlanScope, job_id: str) -> DictJSONResponse:
    """A job: ``queued``/``running`` with progress, ``done`` with its result, or ``failed``
    with a problem. Only its starter and admins see it (404 for anyone else)."""
    return DictJSONResponse(jobs.get_job(request.app.state.engine, job_id, scope=scope))


@router.post(
    "/boundaries/versions/{version_id}/edits",
    response_model=BlockMoveOut,
    response_model_by_alias=True,
    response_description="the block moved and the two grids as they are now",
)
async def post_block_move(
    request: Request,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("proposals:write"))],
    version_id: VersionIdPath,
    body: BlockMoveIn,
) -> DictJSONResponse:
    """Move the street block under a point of a draft to the neighbouring grid ``to_grid``
    (409 unless a draft; 422 when the grids are not neighbours under one parent or the move
    would empty or split a grid). Each of the two grids says which grid of today it
    ``continues`` now. ``GET /workload?version_id=`` then gives the new figures."""
    from geo_service.services.planning.edits import move_block

    (lon,), (lat,) = to_wgs84([body.lon], [body.lat], body.crs)
    moved = await run_in_threadpool(
        move_block,
        request.app.state.engine,
        version_id,
        lon=float(lon),
        lat=float(lat),
        to_grid=body.to_grid,
        actor=actor,
        scope=scope,
    )
    if body.crs != "wgs84":
        moved["grids"] = [
            {**grid, "geometry": geojson_in_crs(grid["geometry"], body.crs)}
            for grid in moved["grids"]
        ]
    return DictJSONResponse(moved)
