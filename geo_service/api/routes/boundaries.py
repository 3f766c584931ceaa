"""Boundary versions: list, validate, publish, delete a draft, diff, export as a plan table."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from geo_service.api.deps import HEAVY, ActorDep, SessionDep, SettingsDep, require
from geo_service.api.downloads import FORMATS, check_download_crs, layer_file
from geo_service.api.params import Instant, OutputCrs
from geo_service.api.responses import GeoJSONResponse
from geo_service.api.schemas import VersionIdPath
from geo_service.api.schemas.boundaries import (
    DeletedVersionPublic,
    DiffPublic,
    PlanLayer,
    PublishPublic,
    PublishRequest,
    UnschedulePublic,
    ValidationPublic,
    VersionsPublic,
)
from geo_service.i18n import gettext
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries import crosswalk, jurisdiction, publish
from geo_service.services.boundaries.deletion import delete_draft
from geo_service.services.planning.export import (
    PLAN_INTEGER_FIELDS,
    PLAN_SHAPEFILE_FIELDS,
    plan_layer,
)
from geo_service.services.planning.workload import Weights

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
    scope.require_unrestricted(gettext("publishing a boundary version"))
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
    scope.require_unrestricted(gettext("unscheduling a boundary version"))
    return await run_in_threadpool(
        publish.unschedule_version, request.app.state.engine, version_id, actor=actor
    )


@router.delete(
    "/versions/{version_id}",
    response_model=DeletedVersionPublic,
    response_description="the draft deleted",
)
async def delete_version(
    request: Request,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("boundaries:write"))],
    version_id: VersionIdPath,
) -> dict[str, Any]:
    """Delete a draft and its areas (409 unless a draft; audited): a proposal nobody will
    publish. Users bound to an area delete only the drafts they proposed (403 otherwise)."""
    return await run_in_threadpool(
        delete_draft, request.app.state.engine, version_id, actor=actor, scope=scope
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


PlanFormat = Literal["gpkg", "shp", "geojson", "csv", "csv-xy"]
PLAN_FORMAT_HELP = (
    "gpkg (GeoPackage) | shp (zipped Shapefile, UTF-8) | geojson (RFC 7946) | csv (geometry "
    "as WKT) | csv-xy (lon/lat of a point inside each area); CSV with a UTF-8 byte-order mark"
)
# OpenAPI: the files by media type (GeoJSON: the route's response model)
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The plan table as a file (Content-Disposition: attachment)",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in {FORMATS[f][0] for f in get_args(PlanFormat) if f != "geojson"}
        },
    }
}


@router.get(
    "/versions/{version_id}/export",
    dependencies=[HEAVY],
    response_class=GeoJSONResponse,
    response_model=PlanLayer,
    responses=EXPORT_RESPONSES,
)
def export_version(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("workload:read"))],
    version_id: VersionIdPath,
    format: Annotated[PlanFormat, Query(description=PLAN_FORMAT_HELP)] = "gpkg",  # noqa: A002
    level: Literal["grid", "community", "street", "district"] = "grid",
    window_days: Annotated[int, Query(ge=1, le=3660)] = 90,
    until: Annotated[
        Instant | None,
        Query(description="end of the window (RFC 3339, with an offset); default now"),
    ] = None,
    w_incidents: Annotated[float, Query(ge=0, le=100)] = 1.0,
    w_households: Annotated[float, Query(ge=0, le=100)] = 1.0,
    w_rental_units: Annotated[float, Query(ge=0, le=100)] = 1.0,
    w_travel: Annotated[float, Query(ge=0, le=100)] = 1.0,
    crs: OutputCrs = "wgs84",
) -> Response:
    """A version's areas of ``level`` as a file for desktop GIS and spreadsheets: per area its
    code, name, level, parent_code, households, rental_units, incidents, incident_hours and
    workload_index (as ``GET /workload?version_id=`` over the same window), area_m2, and for
    grids the code of today's grid it ``continues``. Needs ``workload:read`` and
    ``boundaries:read``; users bound to an area get the areas in it (404 for a version with
    none, as for an unknown one)."""
    scope.require("boundaries:read")
    check_download_crs(format, crs)
    layer = plan_layer(
        session,
        version_id,
        level=level,
        window_days=window_days,
        until=until,
        weights=Weights(w_incidents, w_households, w_rental_units, w_travel),
        scope=scope,
        min_count=settings.auth.min_cell_count,
    )
    return layer_file(
        layer,
        f"version_{version_id}_{level}",
        format,
        integer_fields=PLAN_INTEGER_FIELDS,
        shapefile_fields=PLAN_SHAPEFILE_FIELDS,
        crs=crs,
    )
