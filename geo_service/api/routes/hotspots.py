"""Hot spot layers: ``GET /hotspots`` (H3 cells) and ``GET /hotspots/grids`` (grid polygons).

Response models (api/schemas/layers.py) are declared for the OpenAPI document; the bodies are
sent as the services build them (``DictJSONResponse``), not re-validated.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from geo_service.api.deps import HEAVY, KnownCategory, SessionDep, require
from geo_service.api.downloads import (
    DOWNLOAD_RESPONSES,
    FORMAT_HELP,
    LayerFormat,
    check_download_crs,
    layer_file,
)
from geo_service.api.params import Instant, OutputCrs
from geo_service.api.responses import DictJSONResponse, GeoJSONResponse, geojson_in_crs
from geo_service.api.schemas.layers import (
    EmergingLayer,
    GridHotspotLayer,
    HotspotLayer,
)
from geo_service.services.access.scope import Scope
from geo_service.services.layers.emerging import emerging
from geo_service.services.layers.hotspots import HotspotQuery, grid_hotspots, h3_hotspots
from geo_service.services.layers.labels import with_labels

router = APIRouter(prefix="/hotspots", tags=["hotspots"])


def _query(
    res: Annotated[int, Query(ge=6, le=10, description="H3 resolution")] = 8,
    since: Instant | None = None,
    until: Instant | None = None,
    category: KnownCategory = None,
    k: Annotated[int, Query(ge=1, le=3, description="k-ring neighbourhood")] = 1,
    method: Literal["analytic", "permutation"] = "analytic",
    permutations: Annotated[int, Query(ge=99, le=9999)] = 999,
    fdr: bool = True,
) -> HotspotQuery:
    return HotspotQuery(
        res=res,
        since=since,
        until=until,
        category=category,
        k=k,
        method=method,
        permutations=permutations,
        fdr=fdr,
    )


QueryDep = Annotated[HotspotQuery, Depends(_query)]

# Emerging hot spots: calendar bins of GEO_TIMEZONE; a bound without an offset is local time.
CalendarBin = Annotated[
    Literal["day", "week", "month", "quarter", "year"],
    Query(description="calendar bin in the deployment's time zone (week: ISO, from Monday)"),
]
_BOUND_HELP = (
    "; without an offset (e.g. 2010-01-01) a wall time of the deployment's time zone. Only "
    "whole bins inside [since, until) are analysed; partial edges are reported in "
    "parameters.trimmed"
)
EmergingSince = Annotated[
    Instant | None,
    Query(
        description="start of the window (default: 12 months, 52 weeks, 365 days, 8 "
        "quarters or 10 years before until)" + _BOUND_HELP
    ),
]
EmergingUntil = Annotated[
    Instant | None,
    Query(
        description="end of the window, excluded (default: start of the current bin)" + _BOUND_HELP
    ),
]

# The routes are plain ``def``: FastAPI runs them in a worker thread, so the statistics, the
# encoding of the body and the GeoPackage written to disk never block the event loop.


@router.get("", response_model=HotspotLayer, dependencies=[HEAVY])
def read_hotspots(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("layers:read"))],
    query: QueryDep,
    crs: OutputCrs = "wgs84",
) -> DictJSONResponse:
    """Getis-Ord Gi* per H3 cell (binary k-ring weights, cell included) with ArcGIS's classes
    and Benjamini-Hochberg FDR; every cell of the city, zero counts included.
    """
    layer = with_labels(h3_hotspots(session, query, scope=scope))
    return DictJSONResponse(geojson_in_crs(layer, crs))


@router.get("/grids", response_model=GridHotspotLayer, dependencies=[HEAVY])
def read_grid_hotspots(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("layers:read"))],
    query: QueryDep,
    crs: OutputCrs = "wgs84",
) -> DictJSONResponse:
    """Getis-Ord Gi* per grid polygon (queen contiguity); ``res`` and ``k`` do not apply."""
    layer = with_labels(grid_hotspots(session, query, scope=scope))
    return DictJSONResponse(geojson_in_crs(layer, crs))


@router.get("/emerging", response_model=EmergingLayer, dependencies=[HEAVY])
def read_emerging_hotspots(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("layers:read"))],
    res: Annotated[int, Query(ge=6, le=10)] = 8,
    bin: CalendarBin = "month",  # noqa: A002
    since: EmergingSince = None,
    until: EmergingUntil = None,
    category: KnownCategory = None,
    k: Annotated[int, Query(ge=1, le=3)] = 1,
    crs: OutputCrs = "wgs84",
) -> DictJSONResponse:
    """ArcGIS's emerging hot spot patterns per H3 cell: space-time Gi* per bin (neighbours in
    the bin and the one before), Mann-Kendall trend of each cell's z-scores.

    Bins are calendar days, ISO weeks, months, quarters or years of ``GEO_TIMEZONE``;
    ``parameters`` gives the bins used (``start``, ``end``, local with offsets), what was
    trimmed and the cost (cells x bins). A cube too big for memory is refused with 413 and
    its cost.
    """
    layer = emerging(
        session,
        res=res,
        bin=bin,
        since=since,
        until=until,
        category=category,
        k=k,
        scope=scope,
    )
    return DictJSONResponse(geojson_in_crs(with_labels(layer), crs))


@router.get(
    "/download",
    response_class=GeoJSONResponse,  # the document's media type: the route builds its Response
    response_model=HotspotLayer,
    dependencies=[HEAVY],
    responses=DOWNLOAD_RESPONSES,
)
def download_hotspots(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("layers:read"))],
    query: QueryDep,
    format: Annotated[LayerFormat, Query(description=FORMAT_HELP)] = "geojson",  # noqa: A002
    crs: OutputCrs = "wgs84",
) -> Response:
    """The hot spot layer as a file for desktop GIS, notebooks and spreadsheets."""
    check_download_crs(format, crs)
    layer = h3_hotspots(session, query, scope=scope)
    return layer_file(with_labels(layer), f"hotspots_res{query.res}", format, crs=crs)


@router.get(
    "/emerging/download",
    response_class=GeoJSONResponse,
    response_model=EmergingLayer,
    dependencies=[HEAVY],
    responses=DOWNLOAD_RESPONSES,
)
def download_emerging_hotspots(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("layers:read"))],
    res: Annotated[int, Query(ge=6, le=10)] = 8,
    bin: CalendarBin = "month",  # noqa: A002
    since: EmergingSince = None,
    until: EmergingUntil = None,
    category: KnownCategory = None,
    k: Annotated[int, Query(ge=1, le=3)] = 1,
    format: Annotated[LayerFormat, Query(description=FORMAT_HELP)] = "geojson",  # noqa: A002
    crs: OutputCrs = "wgs84",
) -> Response:
    """The emerging hot spot layer as a file (the same formats as ``/hotspots/download``)."""
    check_download_crs(format, crs)
    layer = emerging(
        session, res=res, bin=bin, since=since, until=until, category=category, k=k, scope=scope
    )
    return layer_file(with_labels(layer), f"emerging_hotspots_res{res}", format, crs=crs)
