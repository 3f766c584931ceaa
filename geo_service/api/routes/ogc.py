"""OGC API - Features at the service root: ``/``, ``/conformance``, ``/collections``..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from geo_service.api.deps import SessionDep, SettingsDep, require
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox
from geo_service.services.layers import ogc

router = APIRouter(tags=["ogc-api-features"])
LayerScope = Annotated[Scope, Depends(require("layers:read"))]
GEOJSON = "application/geo+json"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/")
def read_landing(request: Request, scope: LayerScope) -> dict[str, Any]:
    """OGC API landing page."""
    return ogc.landing(_base(request))


@router.get("/conformance")
def read_conformance(scope: LayerScope) -> dict[str, Any]:
    """The conformance classes implemented."""
    return {"conformsTo": ogc.CONFORMANCE}


@router.get("/collections")
def read_collections(request: Request, session: SessionDep, scope: LayerScope) -> dict[str, Any]:
    """Area levels, the heatmap and the hot spot layer."""
    return ogc.collections(session, _base(request))


@router.get("/collections/{collection_id}")
def read_collection(
    request: Request, session: SessionDep, scope: LayerScope, collection_id: str
) -> dict[str, Any]:
    """One collection."""
    return ogc.collection(session, _base(request), collection_id)


@router.get("/collections/{collection_id}/items", response_class=JSONResponse)
def read_items(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scope: LayerScope,
    collection_id: str,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (CRS84)")] = None,
    datetime: Annotated[str | None, Query(description="RFC 3339 instant or interval")] =  # noqa: A002
    None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """A page of features (GeoJSON), with ``next`` links."""
    box = BBox.parse(bbox, max_km2=settings.limits.bbox_km2) if bbox else None
    body = ogc.items(
        session,
        _base(request),
        collection_id,
        bbox=box,
        datetime_=datetime,
        limit=limit,
        offset=offset,
        scope=scope,
    )
    return JSONResponse(body, media_type=GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=JSONResponse)
def read_item(
    session: SessionDep, scope: LayerScope, collection_id: str, feature_id: str
) -> JSONResponse:
    """One feature."""
    return JSONResponse(ogc.item(session, collection_id, feature_id, scope), media_type=GEOJSON)
