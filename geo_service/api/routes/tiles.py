"""Vector tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt`` and TileJSON at ``/tiles/{layer}.json``.

Tiles are private to the caller's credentials and may be up to 60 s old
(``Cache-Control: private, max-age=60``); ``ETag``/``If-None-Match`` answer 304 when unchanged.
Each layer is drawn between its TileJSON ``minzoom`` and ``maxzoom`` (empty tiles below). The
incidents layer draws the last ``GEO_MAP_WINDOW_DAYS`` days unless ``since`` is given, and at
most ``GEO_TILE_MAX_POINTS`` points a tile; a tile that left points out answers
``X-Tile-Truncated: <kept>/<matched>`` (TileJSON states both as ``window`` and
``max_points_per_tile``).
Tiles are cut on WGS84's Web Mercator grid only: ``crs=gcj02``/``bd09`` is a 422 that says so
(the map pages shift what they draw on the client; other GCJ-02 maps take the GeoJSON
endpoints with ``crs``), never WGS84 tiles passed off as GCJ-02.
TileJSON's model (api/schemas/layers.py) is declared for the OpenAPI document; the body is sent
as the service builds it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from geo_service.api.deps import KnownCategory, SessionDep, require
from geo_service.api.http import none_match
from geo_service.api.params import Instant, OutputCrs
from geo_service.api.responses import DictJSONResponse
from geo_service.api.schemas.layers import TileJSON
from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message
from geo_service.services.access.scope import Scope
from geo_service.services.layers import tiles as tile_service
from geo_service.services.layers.tiles import TileQuery

router = APIRouter(prefix="/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
TRUNCATED = "X-Tile-Truncated"
LayerScope = Annotated[Scope, Depends(require("layers:read"))]


def _wgs84_only(crs: str) -> None:
    if crs != "wgs84":
        raise InvalidInputError(
            format_message(
                "vector tiles are served on WGS84's Web Mercator grid only, not {crs}: for a "
                "{crs} base map request GeoJSON with crs={crs} (e.g. /areas?crs={crs}), or "
                "shift on the client as the map pages do",
                crs=crs,
            )
        )


@router.get("/{layer}.json", response_model=TileJSON)
def read_tilejson(
    request: Request,
    session: SessionDep,
    scope: LayerScope,
    layer: str,
    since: Instant | None = None,
    until: Instant | None = None,
    category: KnownCategory = None,
    res: Annotated[int | None, Query(ge=6, le=10)] = None,
    crs: OutputCrs = "wgs84",
) -> DictJSONResponse:
    """TileJSON 3.0 for a layer: grids, incidents, heatmap, hotspots or a batch layer, with
    the zooms it is drawn at; the incidents layer also states its window and point cap.
    """
    _wgs84_only(crs)
    base = str(request.base_url).rstrip("/")
    query = TileQuery(since=since, until=until, category=category)
    tile_service.check_window(query)
    return DictJSONResponse(
        tile_service.tilejson(session, base, layer, request.url.query, query, res=res)
    )


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses={
        200: {
            "description": "A Mapbox vector tile (protobuf)",
            "content": {MVT: {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                TRUNCATED: {
                    "description": "incident points only: the point cap left some out; "
                    "kept/matched (e.g. 5000/31081)",
                    "schema": {"type": "string", "pattern": "^[0-9]+/[0-9]+$"},
                }
            },
        },
        304: {"description": "not modified"},
    },
)
async def read_tile(
    request: Request,
    session: SessionDep,
    scope: LayerScope,
    layer: str,
    z: int,
    x: int,
    y: int,
    since: Instant | None = None,
    until: Instant | None = None,
    category: KnownCategory = None,
    res: Annotated[int | None, Query(ge=6, le=10)] = None,
    crs: OutputCrs = "wgs84",
) -> Response:
    """One Mapbox vector tile (PostGIS ST_AsMVT)."""
    _wgs84_only(crs)
    query = TileQuery(since=since, until=until, category=category)
    tile_service.check_window(query)
    data = None
    if tile_service.is_hexagon_tile(layer, z):  # a built layer: one async query, no thread
        state = request.app.state
        async with state.async_engine.connect() as conn:
            data = await tile_service.render_cached_tile(
                conn, state.engine.url.database, layer, z, x, y, query, scope=scope, res=res
            )
    truncated = None
    if data is None:
        tile = await run_in_threadpool(
            tile_service.render_tile, session, layer, z, x, y, query, scope=scope, res=res
        )
        data, truncated = tile.data, tile.truncated
    # weak: the body may go out br- or gzip-encoded (RFC 9110 §8.8.1)
    tag = "W/" + tile_service.etag(data)
    headers = {"ETag": tag, "Cache-Control": f"private, max-age={tile_service.TTL_S}"}
    if truncated is not None:  # the point cap left some out: kept/matched
        headers[TRUNCATED] = f"{truncated[0]}/{truncated[1]}"
    if none_match(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MVT, headers=headers)
