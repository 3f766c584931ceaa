"""Mapbox vector tiles built by PostGIS (``ST_AsMVT``) for grids, incidents, heatmap, hot spots.

Grids and incident points are tiled straight from their tables. H3 layers (the incident
aggregates at low zoom, the heatmap, the hot spots) are computed by the heatmap and hot spot
services and handed to PostGIS as arrays, so one encoder makes every tile.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from geo_service.db.engine import database_name
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.runtime import TILE_LAYER_TTL_S, current
from geo_service.services.access.scope import Scope
from geo_service.services.batch.runs import latest_run
from geo_service.services.boundaries.versions import city_extent, version_in_force
from geo_service.services.layers.cell_polygons import ensure_cell_polygons
from geo_service.services.layers.heatmap import HeatmapQuery, h3_counts
from geo_service.services.layers.hotspots import HotspotQuery, h3_hotspots

LAYERS = (
    "grids",
    "incidents",
    "heatmap",
    "hotspots",
    "batch-heatmap",
    "batch-hotspots",
    "batch-emerging",
)
MAX_ZOOM = 22
POINT_ZOOM = 14  # from here on incidents are points; below, H3 aggregates
TTL_S = TILE_LAYER_TTL_S  # tiles may be this old: a changed incident shows within a minute
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
    "batch-heatmap": {"h3": "String", "count": "Number"},
    "batch-hotspots": {
        "h3": "String",
        "count": "Number",
        "z": "Number",
        "p_fdr": "Number",
        "class": "String",
    },
    "batch-emerging": {
        "h3": "String",
        "count": "Number",
        "pattern": "String",
        "trend_z": "Number",
    },
}
# Tiles select hexagons by ``&&`` and let ST_AsMVTGeom clip (and drop) them: a tile draws
# what reaches into it *or its 64-unit buffer*, so this is not ``cells_in_bbox``'s question.
_BATCH_TILE = """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env)
    SELECT ST_AsMVT(q, :layer, 4096, 'geom') FROM (
      SELECT c.h3, {columns}, ST_AsMVTGeom(c.geom, b.env, 4096, 64, true) AS geom
      FROM batch_cells c, b
      WHERE c.run_id = :run AND c.geom && b.env
    ) q
"""


@dataclass(frozen=True)
class TileQuery:
    """Time and category filters a tile is drawn with."""

    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None


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


@dataclass(frozen=True)
class _Layer:
    """A computed layer materialised in ``tile_layer_cells`` under ``key`` (remembered by the
    runtime's ``tile_layers`` cache for TTL_S)."""

    key: str
    made: float


_COLUMNS = ("count", "z", "p_fdr", "class")
_CASTS = {"count": "int", "z": "float8", "p_fdr": "float8", "class": "text"}


def _cached_layer(session: Session, key: tuple[Any, ...], res: int, build) -> _Layer:  # noqa: ANN001
    """The layer for ``key``: built and written once per TTL_S, then read by every tile.

    Each build gets its own table key (process and time), so processes sharing the database
    never overwrite each other's rows; builds older than two TTLs are swept.
    """
    layers = current().caches.tile_layers
    hit = layers.get(key)
    if hit is not None:
        return hit
    rows = build()
    cells = np.array([h3i.str_to_int(r["h3"]) for r in rows], dtype=np.int64)
    ensure_cell_polygons(session, res, cells)
    table_key = (
        f"{hashlib.sha1(repr(key).encode()).hexdigest()[:16]}-{os.getpid()}-{time.time_ns()}"
    )
    present = [c for c in _COLUMNS if rows and c in rows[0]]
    arrays = "".join(f", CAST(:{c} AS {_CASTS[c]}[])" for c in present)
    names = "".join(f", {c}" for c in present)
    params: dict[str, Any] = {
        "key": table_key,
        "res": res,
        "cells": cells.tolist(),
        "h3": [r["h3"] for r in rows],
    }
    params.update({c: [r[c] for r in rows] for c in present})
    # the expired build of this key is among them once it is two TTLs old
    session.execute(
        text("DELETE FROM tile_layers WHERE made < now() - make_interval(secs => :ttl)"),
        {"ttl": 2 * TTL_S},
    )
    session.execute(text("INSERT INTO tile_layers (key) VALUES (:key)"), {"key": table_key})
    session.execute(
        text(
            f"INSERT INTO tile_layer_cells (key, h3{names}, geom) "
            f"SELECT :key, t.h3{''.join(f', t.{c}' for c in present)}, "
            "ST_Transform(h.geom, 3857) "
            f"FROM unnest(CAST(:cells AS bigint[]), CAST(:h3 AS text[]){arrays}) "
            f"AS t(cell, h3{names}) JOIN h3_cells h ON h.res = :res AND h.cell = t.cell"
        ),
        params,
    )
    session.commit()
    layer = _Layer(table_key, time.monotonic())
    layers.put(key, layer)
    return layer


def _hexagon_sql(
    name: str, z: int, x: int, y: int, layer: _Layer, columns: tuple[str, ...]
) -> tuple[TextClause, dict[str, Any]]:
    """The query that encodes the materialised cells overlapping a tile."""
    sql = text(
        f"""
        WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env)
        SELECT ST_AsMVT(q, :layer, 4096, 'geom') FROM (
          SELECT c.h3, {", ".join(f"c.{k}" for k in columns)},
                 ST_AsMVTGeom(c.geom, b.env, 4096, 64, true) AS geom
          FROM tile_layer_cells c, b
          WHERE c.key = :key AND c.geom && b.env
        ) q
        """
    )
    return sql, {"z": z, "x": x, "y": y, "layer": name, "key": layer.key}


def _hexagon_tile(
    session: Session, name: str, z: int, x: int, y: int, layer: _Layer, columns: tuple[str, ...]
) -> bytes:
    """Encode the materialised cells that overlap a tile."""
    sql, params = _hexagon_sql(name, z, x, y, layer, columns)
    return bytes(session.execute(sql, params).scalar_one() or b"")


def _layer_key(
    database: str, layer: str, z: int, q: TileQuery, scope: Scope | None, res: int | None
) -> tuple[tuple[Any, ...], int, tuple[str, ...]]:
    """The cache key, H3 resolution and columns of a computed (hexagon) layer."""
    area = None if scope is None or scope.unrestricted else scope.principal.area_code
    if layer == "hotspots":  # one layer for all zooms: the statistic depends on the cells
        cell_res = res or 8
        return (database, layer, q, cell_res, area), cell_res, _COLUMNS
    cell_res = res or res_for_zoom(z)
    return (database, layer, q, cell_res, area), cell_res, ("count",)


def is_hexagon_tile(layer: str, z: int) -> bool:
    """Whether the tile comes from a computed H3 layer (not straight from a table)."""
    return layer in ("heatmap", "hotspots") or (layer == "incidents" and z < POINT_ZOOM)


async def render_cached_tile(
    conn: AsyncConnection,
    database: str,
    layer: str,
    z: int,
    x: int,
    y: int,
    q: TileQuery,
    *,
    scope: Scope | None = None,
    res: int | None = None,
) -> bytes | None:
    """The tile from an already built layer, on the event loop; None when the layer must be
    (re)built first (``render_tile`` in a worker thread does that).
    """
    check_tile(z, x, y)
    key, _, columns = _layer_key(database, layer, z, q, scope, res)
    hit = current().caches.tile_layers.get(key)
    if hit is None:
        return None
    sql, params = _hexagon_sql(layer, z, x, y, hit, columns)
    return bytes((await conn.execute(sql, params)).scalar_one() or b"")


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
    if layer.startswith("batch-"):  # a stored batch run: read straight from its table
        if restricted and scope:
            scope.require_unrestricted("batch layers")
        fields = ", ".join(f"c.{c}" for c in FIELDS[layer] if c != "h3")
        sql = text(_BATCH_TILE.format(columns=fields))
        run = latest_run(session, layer.removeprefix("batch-"))
        params = {"z": z, "x": x, "y": y, "layer": layer, "run": run}
        return bytes(session.execute(sql, params).scalar_one() or b"")
    database = database_name(session)
    key, cell_res, columns = _layer_key(database, layer, z, q, scope, res)
    if layer in ("incidents", "heatmap"):

        def build() -> list[dict[str, Any]]:
            counts = h3_counts(
                session,
                HeatmapQuery(res=cell_res, since=q.since, until=q.until, category=q.category),
                scope=scope,
            )
            return [{"h3": h3i.int_to_str(c), "count": n} for c, n in sorted(counts.items())]

    else:

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

    built = _cached_layer(session, key, cell_res, build)
    return _hexagon_tile(session, layer, z, x, y, built, columns)


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
