"""Mapbox vector tiles built by PostGIS (``ST_AsMVT``) for grids, incidents, heatmap, hot spots.

Grids and incident points are tiled straight from their tables. H3 layers (the incident
aggregates at low zoom, the heatmap, the hot spots) are computed by the heatmap and hot spot
services and handed to PostGIS as arrays, so one encoder makes every tile.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.services.access import Scope
from geo_service.services.areas import BBox
from geo_service.services.heatmap import HeatmapQuery, h3_counts
from geo_service.services.hotspots import HotspotQuery, h3_hotspots
from geo_service.services.versions import city_extent, version_in_force

LAYERS = ("grids", "incidents", "heatmap", "hotspots")
MAX_ZOOM = 22
POINT_ZOOM = 14  # from here on incidents are points; below, H3 aggregates
TTL_S = 60  # tiles may be this old: a changed incident shows within a minute
FIELDS = {
    "grids": {"id": "Number", "code": "String", "name": "String", "level": "String"},
    "incidents": {
        "id": "String",
        "category": "String",
        "priority": "Number",
        "status": "String",
        "reported_at": "Number",
        "h3": "String",
        "count": "Number",
    },
    "heatmap": {"h3": "String", "count": "Number"},
    "hotspots": {
        "h3": "String",
        "count": "Number",
        "z": "Number",
        "p_fdr": "Number",
        "class": "String",
    },
}


@dataclass(frozen=True)
class TileQuery:
    """Time and category filters a tile is drawn with."""

    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None


def tile_bbox(z: int, x: int, y: int) -> BBox:
    """The WGS84 bounds of a web-mercator tile."""
    n = 2**z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return BBox(x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tiles that do not exist."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInputError(f"z must be 0..{MAX_ZOOM}")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInputError(f"x and y must be 0..{2**z - 1} at zoom {z}")


def res_for_zoom(z: int) -> int:
    """The H3 resolution whose hexagons read well at a zoom level."""
    return max(6, min(10, (z + 3) // 2 + 1))


_GRID_TILE = text(
    """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
    q AS (
      SELECT a.id, a.code, a.name, a.level,
             ST_AsMVTGeom(ST_Transform(a.geom, 3857), b.env, 4096, 64, true) AS geom
      FROM areas a, b
      WHERE a.version_id = :v AND a.level = 'grid'
        AND a.geom && ST_Transform(b.env, 4326)
        AND (CAST(:ids AS int[]) IS NULL OR a.id = ANY(:ids))
    )
    SELECT ST_AsMVT(q, 'grids', 4096, 'geom') FROM q
    """
)
_POINT_TILE = text(
    """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
    q AS (
      SELECT i.id::text AS id, i.category, i.priority, i.status,
             extract(epoch FROM i.reported_at)::bigint AS reported_at,
             ST_AsMVTGeom(ST_Transform(i.location, 3857), b.env, 4096, 64, true) AS geom
      FROM incidents i, b
      WHERE i.location && ST_Transform(b.env, 4326)
        AND (CAST(:since AS timestamptz) IS NULL OR i.reported_at >= :since)
        AND (CAST(:until AS timestamptz) IS NULL OR i.reported_at < :until)
        AND (CAST(:category AS text) IS NULL OR i.category = :category)
        AND (CAST(:grids AS int[]) IS NULL OR i.grid_id = ANY(:grids))
    )
    SELECT ST_AsMVT(q, 'incidents', 4096, 'geom') FROM q
    """
)


def _ensure_cells(session: Session, res: int, cells: np.ndarray) -> None:
    """Store the polygons of any of ``cells`` not yet in ``h3_cells`` (once per cell)."""
    have = (
        session.execute(
            text("SELECT cell FROM h3_cells WHERE res = :res AND cell = ANY(:cells)"),
            {"res": res, "cells": cells.tolist()},
        )
        .scalars()
        .all()
    )
    missing = np.setdiff1d(cells, np.array(have, dtype=np.int64))
    if not len(missing):
        return
    wkb = [
        shapely.to_wkb(shapely.Polygon([(lng, lat) for lat, lng in h3i.cell_to_boundary(int(c))]))
        for c in missing
    ]
    session.execute(
        text(
            "INSERT INTO h3_cells (res, cell, geom) SELECT :res, c, ST_GeomFromWKB(g, 4326) "
            "FROM unnest(CAST(:cells AS bigint[]), CAST(:g AS bytea[])) AS t(c, g) "
            "ON CONFLICT DO NOTHING"
        ),
        {"res": res, "cells": missing.tolist(), "g": wkb},
    )
    session.commit()


@dataclass
class _Layer:
    """A layer's cells with their centres and values, reused by every tile for TTL_S."""

    res: int
    cells: np.ndarray
    lat: np.ndarray
    lng: np.ndarray
    values: dict[str, list[Any]]
    made: float


_LAYERS: dict[tuple[Any, ...], _Layer] = {}


def _cached_layer(session: Session, key: tuple[Any, ...], res: int, build) -> _Layer:  # noqa: ANN001
    hit = _LAYERS.get(key)
    if hit and time.monotonic() - hit.made < TTL_S:
        return hit
    rows = build()
    cells = np.array([h3i.str_to_int(r["h3"]) for r in rows], dtype=np.int64)
    centres = np.array([h3i.cell_to_latlng(int(c)) for c in cells]).reshape(-1, 2)
    names = [k for k in (rows[0] if rows else {}) if k != "h3"]
    layer = _Layer(
        res,
        cells,
        centres[:, 0],
        centres[:, 1],
        {k: [r[k] for r in rows] for k in names},
        time.monotonic(),
    )
    _ensure_cells(session, res, cells)
    _LAYERS[key] = layer
    return layer


def _hexagon_tile(session: Session, name: str, z: int, x: int, y: int, layer: _Layer) -> bytes:
    """Encode the layer's cells around a tile: pick them by centre, join their polygons."""
    box = _grow(tile_bbox(z, x, y), z)
    pick = np.flatnonzero(
        (layer.lat >= box.miny)
        & (layer.lat <= box.maxy)
        & (layer.lng >= box.minx)
        & (layer.lng <= box.maxx)
    )
    if not len(pick):
        return b""
    names = list(layer.values)
    casts = {"count": "int", "z": "float8", "p_fdr": "float8", "class": "text"}
    arrays = ", ".join(f"CAST(:{k} AS {casts[k]}[])" for k in names)
    sql = text(
        f"""
        WITH b AS (SELECT ST_TileEnvelope(:tile_z, :tile_x, :tile_y) AS env),
        q AS (
          SELECT h3_text AS h3, {", ".join(f"t.{k}" for k in names)},
                 ST_AsMVTGeom(ST_Transform(h.geom, 3857), b.env, 4096, 64, true) AS geom
          FROM unnest(CAST(:cells AS bigint[]), CAST(:h3 AS text[]), {arrays})
               AS t(cell, h3_text, {", ".join(names)})
          JOIN h3_cells h ON h.res = :res AND h.cell = t.cell, b
        )
        SELECT ST_AsMVT(q, :layer, 4096, 'geom') FROM q
        """
    )
    params: dict[str, Any] = {
        "tile_z": z,  # own names: "z" is also a hot spot column
        "tile_x": x,
        "tile_y": y,
        "layer": name,
        "res": layer.res,
        "cells": layer.cells[pick].tolist(),
        "h3": [h3i.int_to_str(int(c)) for c in layer.cells[pick]],
    }
    params.update({k: [layer.values[k][i] for i in pick] for k in names})
    return bytes(session.execute(sql, params).scalar_one() or b"")


def render_tile(
    session: Session,
    layer: str,
    z: int,
    x: int,
    y: int,
    q: TileQuery,
    *,
    scope: Scope | None = None,
    res: int | None = None,
) -> bytes:
    """One tile of ``layer`` as MVT bytes (empty when nothing is there)."""
    check_tile(z, x, y)
    if layer not in LAYERS:
        raise NotFoundError(f"no tile layer {layer!r}; layers: {', '.join(LAYERS)}")
    restricted = scope is not None and not scope.unrestricted
    if layer == "grids":
        ids = sorted(scope.grid_ids or ()) if restricted and scope else None
        return bytes(
            session.execute(
                _GRID_TILE, {"z": z, "x": x, "y": y, "ids": ids, "v": version_in_force(session)}
            ).scalar_one()
            or b""
        )
    if layer == "incidents" and z >= POINT_ZOOM:
        grids = sorted(scope.grid_ids or ()) if restricted and scope else None
        return bytes(
            session.execute(
                _POINT_TILE,
                {
                    "z": z,
                    "x": x,
                    "y": y,
                    "since": q.since,
                    "until": q.until,
                    "category": q.category,
                    "grids": grids,
                },
            ).scalar_one()
            or b""
        )
    cell_res = res or res_for_zoom(z)
    area = None if scope is None or scope.unrestricted else scope.principal.area_code
    key = (str(session.connection().engine.url.database), layer, q, cell_res, area)
    if layer in ("incidents", "heatmap"):

        def build() -> list[dict[str, Any]]:
            counts = h3_counts(
                session,
                HeatmapQuery(res=cell_res, since=q.since, until=q.until, category=q.category),
                scope=scope,
            )
            return [{"h3": h3i.int_to_str(c), "count": n} for c, n in sorted(counts.items())]

    else:
        cell_res = res or 8

        def build() -> list[dict[str, Any]]:
            spots = h3_hotspots(
                session,
                HotspotQuery(res=cell_res, since=q.since, until=q.until, category=q.category),
                scope=scope,
            )
            return [
                {
                    "h3": f["properties"]["h3"],
                    "count": f["properties"]["count"],
                    "z": f["properties"]["z"],
                    "p_fdr": f["properties"]["p_fdr"],
                    "class": f["properties"]["class"],
                }
                for f in spots["features"]
            ]

        key = (*key[:3], cell_res, area)
    return _hexagon_tile(session, layer, z, x, y, _cached_layer(session, key, cell_res, build))


def _grow(box: BBox, z: int) -> BBox:
    # Cells whose centres lie just outside the tile still overlap it: widen by a hexagon.
    pad = max(box.maxx - box.minx, box.maxy - box.miny) * 0.25
    return replace(
        box,
        minx=max(-180, box.minx - pad),
        miny=max(-90, box.miny - pad),
        maxx=min(180, box.maxx + pad),
        maxy=min(90, box.maxy + pad),
    )


def _centre_in(cell: str, box: BBox) -> bool:
    lat, lng = h3i.cell_to_latlng(h3i.str_to_int(cell))
    return box.minx <= lng <= box.maxx and box.miny <= lat <= box.maxy


def etag(data: bytes) -> str:
    """A strong validator for a tile's bytes."""
    return '"' + hashlib.sha1(data).hexdigest() + '"'


def tilejson(session: Session, base: str, layer: str, query_string: str) -> dict[str, Any]:
    """TileJSON 3.0 for a layer (the query string carries the filters into the tile URLs)."""
    if layer not in LAYERS:
        raise NotFoundError(f"no tile layer {layer!r}; layers: {', '.join(LAYERS)}")
    suffix = f"?{query_string}" if query_string else ""
    bounds = city_extent(session) or [-180.0, -85.0, 180.0, 85.0]
    return {
        "tilejson": "3.0.0",
        "name": f"geo-service {layer}",
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt{suffix}"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 11],
        "vector_layers": [{"id": layer, "fields": FIELDS[layer]}],
    }
