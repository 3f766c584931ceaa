"""OGC API - Features at the service root: ``/``, ``/conformance``, ``/collections``...

Response models (api/schemas/layers.py) are declared for the OpenAPI document; the bodies are
sent as the service builds them, not re-validated.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from geo_service.api.deps import SessionDep, SettingsDep, require
from geo_service.api.responses import DictJSONResponse, GeoJSONResponse
from geo_service.api.schemas.layers import (
    AreaItem,
    Collection,
    Collections,
    Conformance,
    LandingPage,
    OgcItems,
)
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox
from geo_service.services.layers import ogc

router = APIRouter(tags=["ogc-api-features"])
LayerScope = Annotated[Scope, Depends(require("layers:read"))]
GEOJSON = "application/geo+json"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/", response_model=LandingPage)
def read_landing(request: Request, scope: LayerScope) -> DictJSONResponse:
    """OGC API landing page."""
    return DictJSONResponse(ogc.landing(_base(request)))


@router.get("/conformance", response_model=Conformance)
def read_conformance(scope: LayerScope) -> DictJSONResponse:
    """The conformance classes implemented."""
    return DictJSONResponse({"conformsTo": ogc.CONFORMANCE})


@router.get("/collections", response_model=Collections)
def read_collections(request: Request, session: SessionDep, scope: LayerScope) -> DictJSONResponse:
    """Area levels, the heatmap and the hot spot layer."""
    return DictJSONResponse(ogc.collections(session, _base(request)))


@router.get("/collections/{collection_id}", response_model=Collection)
def read_collection(
    request: Request, session: SessionDep, scope: LayerScope, collection_id: str
) -> DictJSONResponse:
    """One collection."""
    return DictJSONResponse(ogc.collection(session, _base(request), collection_id))


# Items are sent as application/geo+json by the standard encoder (JSONResponse): the
# response_class only names that media type in the document.
@router.get(
    "/collections/{collection_id}/items", response_class=GeoJSONResponse, response_model=OgcItems
)
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


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=GeoJSONResponse,
    response_model=AreaItem,
)
def read_item(
    session: SessionDep, scope: LayerScope, collection_id: str, feature_id: str
) -> JSONResponse:
    """One feature."""
    return JSONResponse(ogc.item(session, collection_id, feature_id, scope), media_type=GEOJSON)
