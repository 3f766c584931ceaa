"""The boundary hierarchy: ``/areas``, ``/areas/lookup``, ``/areas/{id}``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from geo_service.api.deps import SessionDep, SettingsDep, require
from geo_service.api.params import Instant, OutputCrs
from geo_service.api.responses import GeoJSONResponse, geojson_in_crs
from geo_service.api.schemas import INT32_MAX, AreaIdPath, AreaIdQuery, CrsParam, LookupResult
from geo_service.api.schemas.boundaries import AreaDetailPublic, AreasPublic
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries import areas as area_service
from geo_service.services.boundaries.areas import BBox

router = APIRouter(prefix="/areas", tags=["areas"])
GEOJSON = "application/geo+json"


@router.get(
    "",
    # the body is built in the database: documented by the model, sent as it comes
    response_class=GeoJSONResponse,
    response_model=AreasPublic,
    response_description="areas as a GeoJSON FeatureCollection",
)
def read_areas(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("areas:read"))],
    level: Literal["district", "street", "community", "grid"] | None = None,
    parent_id: AreaIdQuery = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    version: Annotated[
        int | None,
        Query(ge=1, le=INT32_MAX, description="boundary version id; default: current"),
    ] = None,
    crs: OutputCrs = "wgs84",
) -> Response:
    """Areas as a GeoJSON FeatureCollection (properties id, code, name, names, display_name:
    the name in the request's language, level, parent_id); 404 for an unknown parent_id."""
    body = area_service.list_areas_geojson(
        session,
        level=level,
        parent_id=parent_id,
        bbox=BBox.parse(bbox, max_km2=settings.limits.bbox_km2) if bbox else None,
        version=version,
        scope=scope,
    )
    return Response(geojson_in_crs(body, crs), media_type=GEOJSON)


@router.get(
    "/lookup",
    response_model=LookupResult,
    response_description="the areas holding the point, one per level",
)
async def lookup_area(
    request: Request,
    scope: Annotated[Scope, Depends(require("areas:read"))],
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    crs: CrsParam = "wgs84",
    at: Annotated[
        Instant | None, Query(description="answer from the version in force then")
    ] = None,
) -> dict[str, Any]:
    """The grid, community, street and district holding a point (on the event loop, one
    statement on the asyncio pool: the hottest read)."""
    async with request.app.state.async_engine.connect() as conn:
        return await area_service.lookup_point_async(conn, lon, lat, crs=crs, at=at, scope=scope)


@router.get(
    "/{area_id}",
    response_model=AreaDetailPublic,
    response_description="the area as a GeoJSON Feature with its counts",
)
def read_area(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("areas:read"))],
    area_id: AreaIdPath,
    crs: OutputCrs = "wgs84",
) -> dict[str, Any]:
    """One area as a Feature with households, residents, rental units and open incidents
    (counts published by disclosure control unless you may see the rows).
    """
    area = area_service.get_area(
        session, area_id, scope=scope, min_count=settings.auth.min_cell_count
    )
    return geojson_in_crs(area, crs)
