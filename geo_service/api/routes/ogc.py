"""OGC API - Features at the service root: ``/``, ``/conformance``, ``/collections``...

Response models (api/schemas/layers.py) are declared for the OpenAPI document; the bodies are
sent as the service builds them, not re-validated.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from geo_service.api.deps import SessionDep, require
from geo_service.api.responses import DictJSONResponse, GeoJSONResponse
from geo_service.api.schemas.layers import (
    Collection,
    Collections,
    Conformance,
    LandingPage,
    OgcItem,
    OgcItems,
)
from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message, gettext
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox
from geo_service.services.layers import ogc

router = APIRouter(tags=["ogc-api-features"])
LayerScope = Annotated[Scope, Depends(require("layers:read"))]
GEOJSON = "application/geo+json"


CRS84 = ogc.CRS84
EPSG4326 = ogc.EPSG4326
MAX_LIMIT = 10_000  # a larger limit is clamped to this (OGC API Features /req/core/fc-limit)
# The query parameters each kind of OGC route takes; any other answers 400
# (/req/core/query-param-unknown).
# ``lang``: the language of the hot spot labels (and of problems), as on every page (i18n.py)
ITEMS_PARAMETERS = frozenset(
    {"bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "f", "lang"}
)
# one feature: ``datetime`` names the window of a computed layer (as in its items' links)
ITEM_PARAMETERS = frozenset({"crs", "datetime", "f", "lang"})
OTHER_PARAMETERS = frozenset({"f", "lang"})
CRS_DESCRIPTION = (
    f"the CRS of the geometries (OGC API - Features Part 2): {CRS84} (default, lon/lat) or "
    f"{EPSG4326} (lat/lon); the answer names it in Content-Crs"
)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _content_crs(crs: str | None) -> dict[str, str]:
    """The ``Content-Crs`` header of a GeoJSON answer (/req/crs/ogc-crs-header)."""
    return {"Content-Crs": f"<{ogc.check_crs(crs)}>"}


def _known_parameters(request: Request, allowed: frozenset[str]) -> None:
    """400 for a query parameter this route does not define (OGC API Features, Part 1)."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidInputError(
            format_message(
                "unknown query parameter(s) {unknown}; this resource takes {allowed}",
                unknown=", ".join(unknown),
                allowed=", ".join(sorted(allowed)),
            )
        )


def parse_ogc_bbox(value: str, bbox_crs: str | None) -> BBox:
    """An OGC API ``bbox``: 4 numbers, or 6 with heights (ignored), in CRS84 (lon/lat) or,
    with ``bbox-crs`` EPSG:4326, in that CRS's lat/lon axis order.

    Raises
    ------
    InvalidInputError
        Not 4 or 6 numbers, an unsupported ``bbox-crs``, or a box off the globe.

    >>> parse_ogc_bbox("114.2,30.5,0,114.4,30.7,100", None).maxx
    114.4
    >>> parse_ogc_bbox("30.5,114.2,30.7,114.4", EPSG4326).minx
    114.2
    """
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 6:
        parts = parts[0:2] + parts[3:5]
    elif len(parts) != 4:
        raise InvalidInputError(gettext("bbox must be 4 numbers (or 6, with heights)"))
    crs = (bbox_crs or CRS84).strip()
    if crs == EPSG4326:
        parts = [parts[1], parts[0], parts[3], parts[2]]  # EPSG:4326 is latitude first
    elif crs != CRS84:
        raise InvalidInputError(
            format_message("bbox-crs must be {crs84} or {epsg4326}", crs84=CRS84, epsg4326=EPSG4326)
        )
    # No area cap here: a desktop GIS asks for its whole view, and paging (limit) bounds
    # the work of each request instead.
    return BBox.parse(",".join(parts))


@router.get("/", response_model=LandingPage)
def read_landing(request: Request, scope: LayerScope) -> DictJSONResponse:
    """OGC API landing page."""
    _known_parameters(request, OTHER_PARAMETERS)
    return DictJSONResponse(ogc.landing(_base(request)))


@router.get("/conformance", response_model=Conformance)
def read_conformance(request: Request, scope: LayerScope) -> DictJSONResponse:
    """The conformance classes implemented."""
    _known_parameters(request, OTHER_PARAMETERS)
    return DictJSONResponse({"conformsTo": ogc.CONFORMANCE})


@router.get("/collections", response_model=Collections)
def read_collections(request: Request, session: SessionDep, scope: LayerScope) -> DictJSONResponse:
    """Area levels, incidents (with ``incidents:read``), the heatmap, hot spot, emerging hot
    spot and batch layers, each with its spatial and temporal extent."""
    _known_parameters(request, OTHER_PARAMETERS)
    return DictJSONResponse(ogc.collections(session, _base(request), scope))


@router.get("/collections/{collection_id}", response_model=Collection)
def read_collection(
    request: Request, session: SessionDep, scope: LayerScope, collection_id: str
) -> DictJSONResponse:
    """One collection."""
    _known_parameters(request, OTHER_PARAMETERS)
    return DictJSONResponse(ogc.collection(session, _base(request), collection_id, scope))


# Items are sent as application/geo+json by the standard encoder (JSONResponse): the
# response_class only names that media type in the document.
@router.get(
    "/collections/{collection_id}/items", response_class=GeoJSONResponse, response_model=OgcItems
)
def read_items(
    request: Request,
    session: SessionDep,
    scope: LayerScope,
    collection_id: str,
    bbox: Annotated[
        str | None,
        Query(description="minx,miny,maxx,maxy (or 6 numbers with heights), CRS84 by default"),
    ] = None,
    bbox_crs: Annotated[
        str | None, Query(alias="bbox-crs", description=f"{CRS84} (default) or {EPSG4326}")
    ] = None,
    datetime: Annotated[str | None, Query(description="RFC 3339 instant or interval")] =  # noqa: A002
    None,
    limit: Annotated[
        int, Query(ge=1, description=f"page size; more than {MAX_LIMIT:,} is clamped to it")
    ] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    crs: Annotated[str | None, Query(description=CRS_DESCRIPTION)] = None,
) -> JSONResponse:
    """A page of features (GeoJSON) with ``self``, ``collection``, ``next`` and ``prev``
    links that keep every query parameter given."""
    _known_parameters(request, ITEMS_PARAMETERS)
    limit = min(limit, MAX_LIMIT)
    box = parse_ogc_bbox(bbox, bbox_crs) if bbox else None
    headers = _content_crs(crs)
    body = ogc.items(
        session,
        _base(request),
        collection_id,
        bbox=box,
        datetime_=datetime,
        crs=crs,
        limit=limit,
        offset=offset,
        query=request.query_params.multi_items(),
        scope=scope,
    )
    return JSONResponse(body, media_type=GEOJSON, headers=headers)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=GeoJSONResponse,
    response_model=OgcItem,
)
def read_item(
    request: Request,
    session: SessionDep,
    scope: LayerScope,
    collection_id: str,
    feature_id: str,
    crs: Annotated[str | None, Query(description=CRS_DESCRIPTION)] = None,
    datetime: Annotated[  # noqa: A002
        str | None,
        Query(description="heatmap / hot spot / emerging layers: the window, as in the items"),
    ] = None,
) -> JSONResponse:
    """One feature by its ``id`` (an area's row id, a cell's H3 index, an incident's UUID),
    with ``self`` and ``collection`` links; 404 when absent or not visible to the caller."""
    _known_parameters(request, ITEM_PARAMETERS)
    headers = _content_crs(crs)
    body = ogc.item(
        session,
        _base(request),
        collection_id,
        feature_id,
        scope=scope,
        crs=crs,
        datetime_=datetime,
        query=request.query_params.multi_items(),
    )
    return JSONResponse(body, media_type=GEOJSON, headers=headers)
