"""Boundary versions: list, validate, publish, diff."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from geo_service.api.deps import HEAVY, ActorDep, SettingsDep, require
from geo_service.api.schemas import VersionIdPath
from geo_service.api.schemas.boundaries import (
    DiffPublic,
    PublishPublic,
    PublishRequest,
    UnschedulePublic,
    ValidationPublic,
    VersionsPublic,
)
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries import crosswalk, jurisdiction, publish

router = APIRouter(prefix="/boundaries", tags=["boundaries"])


@router.get(
    "/versions",
    response_model=VersionsPublic,
    response_model_exclude_unset=True,  # restricted_to: for users bound to an area only
    response_description="boundary versions, newest first",
)
def read_versions(
    request: Request, scope: Annotated[Scope, Depends(require("boundaries:read"))]
) -> dict[str, Any]:
    """Every boundary version, newest first (users bound to an area: the versions with areas
    in it, counting those only)."""
    data = jurisdiction.list_versions_for(request.app.state.engine, scope)
    return {"data": data, "count": len(data)}


@router.post(
    "/versions/{version_id}/validate",
    dependencies=[HEAVY],
    response_model=ValidationPublic,
    response_model_exclude_unset=True,
    response_description="the validation report",
)
@router.get(
    "/versions/{version_id}/validation",
    response_model=ValidationPublic,
    response_model_exclude_unset=True,  # restricted_to: for users bound to an area only
    response_description="the validation report",
)
def read_validation(
    request: Request,
    scope: Annotated[Scope, Depends(require("boundaries:read"))],
    version_id: VersionIdPath,
) -> dict[str, Any]:
    """Validation report of a version (overlaps, gaps, crossings, slivers, unreached); for
    users bound to an area, of the areas in it."""
    return jurisdiction.validate_version_for(request.app.state.engine, version_id, scope)


@router.post(
    "/versions/{version_id}/publish",
    response_model=PublishPublic,
    response_description="the version published and the rows re-attributed",
)
async def publish_version(
    request: Request,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("boundaries:write"))],
    version_id: VersionIdPath,
    body: PublishRequest,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Make a draft current; households, rental units, responders and incidents follow."""
    scope.require_unrestricted("publishing a boundary version")
    return await run_in_threadpool(
        publish.publish_version,
        request.app.state.engine,
        version_id,
        body.effective_from,
        actor=actor,
        force=body.force,
        exact=disclosure.sees_exact(scope),
        min_count=settings.auth.min_cell_count,
        override_reason=body.override_reason,
    )


@router.post(
    "/versions/{version_id}/unschedule",
    response_model=UnschedulePublic,
    response_description="the version, a draft again",
)
async def unschedule_version(
    request: Request,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("boundaries:write"))],
    version_id: VersionIdPath,
) -> dict[str, Any]:
    """Take a version scheduled for a later moment back to a draft (409 unless scheduled)."""
    scope.require_unrestricted("unscheduling a boundary version")
    return await run_in_threadpool(
        publish.unschedule_version, request.app.state.engine, version_id, actor=actor
    )


@router.get(
    "/versions/{a}/diff/{b}",
    dependencies=[HEAVY],
    response_model=DiffPublic,
    response_description="areas added, removed and changed, and entity moves",
)
def read_diff(
    request: Request,
    scope: Annotated[Scope, Depends(require("boundaries:read"))],
    a: VersionIdPath,
    b: VersionIdPath,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Areas added, removed and changed from version a to b, and entity moves (moves of
    households and rental units rounded to base ``min_cell_count``; only moves touching your
    area when you are bound to one)."""
    engine = request.app.state.engine
    codes = jurisdiction.visible_area_codes(engine, scope, [a, b])
    for version_id in (a, b):  # a version with nothing in your area: 404 as a missing one
        jurisdiction.require_visible_version(codes, version_id)
    diff = crosswalk.diff_versions(
        engine, a, b, scope=scope, min_count=settings.auth.min_cell_count
    )
    return jurisdiction.restrict_diff(diff, codes)
