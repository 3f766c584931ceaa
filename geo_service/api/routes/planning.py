"""Planners: ``GET /workload``, ``POST /boundaries/proposals`` (a job) and ``GET /jobs/{id}``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from geo_service.api.deps import HEAVY, ActorDep, SessionDep, SettingsDep, require
from geo_service.services.access.scope import Scope
from geo_service.services.batch import jobs
from geo_service.services.planning.proposals import (
    ProposalRequest,
    Weights,
    check_proposal,
    propose,
    workload,
)

router = APIRouter(tags=["planning"])
PlanScope = Annotated[Scope, Depends(require("workload:read"))]


class WeightsIn(BaseModel):
    """Multipliers of the workload terms (1 = the documented default hours)."""

    incidents: float = Field(1.0, ge=0, le=100)
    households: float = Field(1.0, ge=0, le=100)
    rental_units: float = Field(1.0, ge=0, le=100)
    travel: float = Field(1.0, ge=0, le=100)


class AtomsIn(BaseModel):
    """The pieces new grids are made of."""

    h3_res: Literal[9, 10, 11] = 10


class ProposalIn(BaseModel):
    """A redraw request."""

    scope: list[str] = Field(min_length=1, max_length=200, description="community/street codes")
    target_grids: int | None = Field(None, ge=1, le=5000, description="default: today's count")
    weights: WeightsIn = Field(default_factory=WeightsIn)
    tolerance: float = Field(0.05, ge=0.005, le=0.5, description="share of the mean workload")
    locked_grids: list[str] = Field(default_factory=list, max_length=1000)
    atoms: AtomsIn = Field(default_factory=AtomsIn)
    stability: float = Field(1.0, ge=0, le=100, description="weight against moves")
    compactness: float = Field(1.0, ge=0, le=100)
    window_days: int = Field(90, ge=1, le=3660)
    name: str | None = Field(None, max_length=200)


@router.get("/workload", dependencies=[HEAVY])
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
) -> dict[str, Any]:
    """Workload per area: each term and the index, balance per parent (max/mean, CV, Gini),
    and per grid worker."""
    weights = Weights(w_incidents, w_households, w_rental_units, w_travel)
    return workload(
        session,
        level=level,
        window_days=window_days,
        parent_id=parent_id,
        weights=weights,
        scope=scope,
        min_count=settings.auth.min_cell_count,
    )


@router.post("/boundaries/proposals", status_code=202, dependencies=[HEAVY])
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
        name=body.name,
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


@router.get("/jobs/{job_id}")
def read_job(request: Request, scope: PlanScope, job_id: str) -> dict[str, Any]:
    """A job: ``queued``/``running`` with progress, ``done`` with its result, or ``failed``
    with a problem. Only its starter and admins see it (404 for anyone else)."""
    return jobs.get_job(request.app.state.engine, job_id, scope=scope)
