"""Boundary versions: list, validate, publish, diff."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from geo_service.api.deps import ActorDep, require
from geo_service.api.schemas import VersionIdPath
from geo_service.services import boundaries as boundary_service
from geo_service.services.access import Scope

router = APIRouter(prefix="/boundaries", tags=["boundaries"])


class PublishRequest(BaseModel):
    """When the version takes effect, and whether to publish despite validation findings."""

    model_config = {"extra": "forbid"}

    effective_from: datetime
    force: bool = False


@router.get("/versions")
def read_versions(
    request: Request, scope: Annotated[Scope, Depends(require("boundaries:read"))]
) -> dict[str, Any]:
    """Every boundary version, newest first."""
    data = boundary_service.list_versions(request.app.state.engine)
    return {"data": data, "count": len(data)}


@router.post("/versions/{version_id}/validate")
@router.get("/versions/{version_id}/validation")
def read_validation(
    request: Request,
    scope: Annotated[Scope, Depends(require("boundaries:read"))],
    version_id: VersionIdPath,
) -> dict[str, Any]:
    """Validation report of a version (overlaps, gaps, crossings, slivers, unreached)."""
    return boundary_service.validate_version(request.app.state.engine, version_id)


@router.post("/versions/{version_id}/publish")
async def publish_version(
    request: Request,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("boundaries:write"))],
    version_id: VersionIdPath,
    body: PublishRequest,
) -> dict[str, Any]:
    """Make a draft current; households, rental units, responders and incidents follow."""
    scope.require_unrestricted("publishing a boundary version")
    return await run_in_threadpool(
        boundary_service.publish_version,
        request.app.state.engine,
        version_id,
        body.effective_from,
        actor=actor,
        force=body.force,
    )


@router.get("/versions/{a}/diff/{b}")
def read_diff(
    request: Request,
    scope: Annotated[Scope, Depends(require("boundaries:read"))],
    a: VersionIdPath,
    b: VersionIdPath,
) -> dict[str, Any]:
    """Areas added, removed and changed from version a to b, and entity moves."""
    return boundary_service.diff_versions(request.app.state.engine, a, b)
