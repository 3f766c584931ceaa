"""Heatmaps: ``GET /heatmap/h3`` (hexagons or a compact list) and ``GET /heatmap/grids``.

Response models (api/schemas/layers.py) are declared for the OpenAPI document; the bodies are
sent as the services build them (orjson), not re-validated.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from geo_service.api.deps import HEAVY, KnownCategory, SessionDep, SettingsDep, heavy_slot, require
from geo_service.api.downloads import (
    DOWNLOAD_RESPONSES,
    FORMAT_HELP,
    LayerFormat,
    check_download_crs,
    layer_file,
)
from geo_service.api.params import Instant, OutputCrs
from geo_service.api.responses import GeoJSONResponse, geojson_in_crs
from geo_service.api.schemas.layers import AreaHeatmap, HeatmapCells, HeatmapCompact
from geo_service.api.schemas.strict import inline_schema
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox
from geo_service.services.layers.heatmap import (
    HeatmapQuery,
    area_heatmap,
    h3_counts_async,
    h3_heatmap_json_async,
    heatmap_body,
)

router = APIRouter(prefix="/heatmap", tags=["heatmap"])
LayerScope = Annotated[Scope, Depends(require("layers:read"))]
LARGE_H3_RES = 9  # GeoJSON hexagons of the whole city from this resolution on: expensive work


async def _query(
    settings: SettingsDep,
    res: Annotated[int, Query(ge=6, le=10, description="H3 resolution")] = 8,
    since: Instant | None = None,
    until: Instant | None = None,
    category: KnownCategory = None,
    priority: Annotated[int | None, Query(ge=1, le=4)] = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
) -> HeatmapQuery:
    box = BBox.parse(bbox, max_km2=settings.limits.bbox_km2) if bbox else None
    return HeatmapQuery(
        res=res, since=since, until=until, category=category, priority=priority, bbox=box
    )


QueryDep = Annotated[HeatmapQuery, Depends(_query)]


@router.get(
    "/h3",
    response_class=GeoJSONResponse,
    response_model=HeatmapCells,
    responses={
        200: {
            "description": "GeoJSON hexagons, or with ``format=json`` a compact cell list",
            "content": {"application/json": {"schema": inline_schema(HeatmapCompact)}},
        }
    },
)
async def read_h3_heatmap(
    request: Request,
    scope: LayerScope,
    query: QueryDep,
    format: Literal["geojson", "json"] = "geojson",  # noqa: A002
    crs: OutputCrs = "wgs84",
) -> Response:
    """Incident counts per H3 cell: GeoJSON hexagons, or ``format=json`` for cell/count
    (no positions: ``crs`` changes nothing there). One statement on the asyncio engine:
    dashboards poll this, so no worker thread.
    """
    async with request.app.state.async_engine.connect() as conn:
        if format == "json":
            body = await h3_heatmap_json_async(conn, query, scope=scope)
            return Response(body, media_type="application/json")
        counts = await h3_counts_async(conn, query, scope=scope)
    # hexagon outlines cost milliseconds of CPU: not on the event loop; city-wide at fine
    # resolutions they are expensive work, limited like hot spots
    large = query.res >= LARGE_H3_RES and query.bbox is None
    with heavy_slot(request, scope.principal) if large else nullcontext():
        features = await run_in_threadpool(heatmap_body, counts, query, compact=False)
        features = await run_in_threadpool(geojson_in_crs, features, crs)
    return GeoJSONResponse(features)


@router.get(
    "/grids", response_class=GeoJSONResponse, response_model=AreaHeatmap, dependencies=[HEAVY]
)
def read_area_heatmap(
    session: SessionDep,
    scope: LayerScope,
    query: QueryDep,
    level: Literal["grid", "community", "street", "district"] = "grid",
    version_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**31 - 1,
            description="the boundary version whose areas count (a draft, a scheduled or an "
            "older one; needs boundaries:read); default the version in force",
        ),
    ] = None,
    crs: OutputCrs = "wgs84",
) -> GeoJSONResponse:
    """Incident counts per area of one level: a choropleth FeatureCollection. With
    ``version_id`` of a version not in force, of that version's areas, each incident counted in
    its grid holding the incident's point (``attribution: located``; 404 for an unknown
    version, or one with nothing in your area)."""
    layer = area_heatmap(session, query, level, scope=scope, version_id=version_id)
    return GeoJSONResponse(geojson_in_crs(layer, crs))


@router.get(
    "/download",
    response_class=GeoJSONResponse,
    response_model=HeatmapCells,
    dependencies=[HEAVY],
    responses=DOWNLOAD_RESPONSES,
)
async def download_h3_heatmap(
    request: Request,
    scope: LayerScope,
    query: QueryDep,
    format: Annotated[LayerFormat, Query(description=FORMAT_HELP)] = "geojson",  # noqa: A002
    crs: OutputCrs = "wgs84",
) -> Response:
    """The H3 heatmap as a file for desktop GIS, notebooks and spreadsheets (hexagons with
    their counts, disclosure control as in ``/heatmap/h3``)."""
    check_download_crs(format, crs)
    async with request.app.state.async_engine.connect() as conn:
        counts = await h3_counts_async(conn, query, scope=scope)
    layer = await run_in_threadpool(heatmap_body, counts, query, compact=False)
    name = f"heatmap_res{query.res}"
    return await run_in_threadpool(lambda: layer_file(layer, name, format, crs=crs))
