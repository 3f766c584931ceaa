"""Household visits (issue 20): ``GET /households/visits``, ``POST
/households/{id}/visits`` (idempotent) and ``GET /households/visits/coverage``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import JSONResponse

from geo_service.api.deps import ActorDep, ScopeDep, SessionDep, SettingsDep, require
from geo_service.api.params import OutputCrs
from geo_service.api.schemas import INT32_MAX, INT64_MAX
from geo_service.api.schemas.residents import (
    HouseholdVisitsPublic,
    VisitCoveragePublic,
    VisitCreate,
    VisitPublic,
)
from geo_service.geo.crs import rows_from_wgs84
from geo_service.services.access.scope import Scope
from geo_service.services.residents import visits as visit_service

router = APIRouter(prefix="/households", tags=["households"])

PeriodQuery = Annotated[
    int | None,
    Query(ge=1, le=3660, description="days a visit counts for; default GEO_VISITS_PERIOD_DAYS"),
]


@router.get(
    "/visits",
    response_model=HouseholdVisitsPublic,
    response_description="the grid's households with their last visit",
)
def read_household_visits(
    session: SessionDep,
    settings: SettingsDep,
    scope: ScopeDep,
    grid_id: Annotated[int, Query(ge=1, le=INT32_MAX)],
    period_days: PeriodQuery = None,
    due_only: Annotated[
        bool, Query(description="only households not visited within period_days")
    ] = False,
    crs: OutputCrs = "wgs84",
) -> dict[str, Any]:
    """One grid's households with the date and outcome of their last visit, longest
    unvisited first, and which are due (admins and the grid's own worker only: 403);
    ``lon``/``lat`` in ``crs``."""
    page = visit_service.list_visits(
        session,
        scope,
        grid_id,
        period_days=period_days or settings.visits.period_days,
        due_only=due_only,
        timezone=settings.api.timezone,
    )
    return {**page, "data": rows_from_wgs84(page["data"], crs)}


@router.get(
    "/visits/coverage",
    response_model=VisitCoveragePublic,
    response_description="households visited within the period, per grid",
)
def read_visit_coverage(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("households:aggregate"))],
    period_days: PeriodQuery = None,
) -> dict[str, Any]:
    """Coverage per grid in your area: households and households visited within the period,
    exact for those who see the rows, else published by disclosure control (an aggregate for
    managers' reports)."""
    return visit_service.coverage(
        session,
        scope,
        period_days=period_days or settings.visits.period_days,
        timezone=settings.api.timezone,
        min_count=settings.auth.min_cell_count,
    )


@router.post(
    "/{household_id}/visits",
    status_code=201,
    response_model=VisitPublic,
    response_description="the visit, recorded",
    responses={200: {"model": VisitPublic, "description": "replay of the same Idempotency-Key"}},
)
def create_household_visit(
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("households:write"))],
    household_id: Annotated[int, Path(ge=1, le=INT64_MAX)],
    body: VisitCreate,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> JSONResponse:
    """Record a visit to one of your grid's households (date, outcome, the two service flags
    as found, which the household then carries); audited. 404 for a household you may not
    see; the same Idempotency-Key again answers the first visit (200)."""
    visit, created = visit_service.record_visit(
        session,
        scope,
        household_id,
        visit_service.NewVisit(
            visited_on=body.visited_on,
            outcome=body.outcome,
            elderly_living_alone=body.elderly_living_alone,
            needs_assistance=body.needs_assistance,
        ),
        actor=actor,
        idempotency_key=idempotency_key,
        timezone=settings.api.timezone,
    )
    headers = {"Idempotent-Replayed": "true"} if not created else None
    return JSONResponse(visit, status_code=201 if created else 200, headers=headers)
