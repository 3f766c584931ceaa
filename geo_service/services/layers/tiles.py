"""Mapbox vector tiles built by PostGIS (``ST_AsMVT``) for grids, incidents, heatmap, hot spots.

Grids and incident points are tiled straight from their tables. H3 layers (the incident
aggregates at low zoom, the heatmap, the hot spots) are computed by the heatmap and hot spot
services and handed to PostGIS as arrays, so one encoder makes every tile.

Each layer has the zooms at which its features are drawn (``layer_zooms``, stated in TileJSON):
below its ``minzoom`` a tile is empty, from its ``maxzoom`` on a tile adds no detail (clients
overzoom). The incidents layer draws a window (``GEO_MAP_WINDOW_DAYS`` up to now unless the
request says otherwise) and at most ``GEO_TILE_MAX_POINTS`` points a tile: the highest
priority (1 first), then the newest; a fuller tile says so (``Tile.truncated``, the
``X-Tile-Truncated: kept/matched`` header).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from geo_service import instants
from geo_service.db.engine import database_name
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.i18n import format_message, gettext, names_language
from geo_service.runtime import TILE_LAYER_TTL_S, current, expensive
from geo_service.services.access.scope import Scope
from geo_service.services.batch.runs import latest_run
from geo_service.services.boundaries.versions import city_extent, version_in_force
from geo_service.services.layers.cell_polygons import ensure_cell_polygons
from geo_service.services.layers.heatmap import HeatmapQuery, h3_counts
from geo_service.services.layers.hotspots import HotspotQuery, h3_hotspots
from geo_service.services.layers.labels import class_labels, pattern_labels

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
TILE_EXTENT = 4096  # MVT units across a tile (ST_AsMVT's default, the MVT spec's usual)
# A feature is drawn when it spans a pixel of a 256-px tile (TileJSON's and XYZ's zoom scale);
# a hexagon edge of EDGE_UNITS is placed to within 1/64 of its length, so from that zoom on
# overzooming (MapLibre's and OpenLayers' use of maxzoom) loses nothing visible.
PIXEL_UNITS = TILE_EXTENT // 256
EDGE_UNITS = 64
EARTH_CIRCUMFERENCE_M = 2 * math.pi * 6378137.0  # EPSG:3857's equator
TTL_S = TILE_LAYER_TTL_S  # tiles may be this old: a changed incident shows within a minute
FIELDS = {
    "grids": {
        "id": "Number",
        "code": "String",
        "name": "String",
        "display_name": "String",
        "level": "String",
    },
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
        "class_label": "String",
    },
    "batch-heatmap": {"h3": "String", "count": "Number"},
    "batch-hotspots": {
        "h3": "String",
        "count": "Number",
        "z": "Number",
        "p_fdr": "Number",
        "class": "String",
        "class_label": "String",
    },
    "batch-emerging": {
        "h3": "String",
        "count": "Number",
        "pattern": "String",
        "pattern_label": "String",
        "trend_z": "Number",
    },
}
# Labels in the tile's language (``?lang=``, else Accept-Language), beside ArcGIS's value:
# looked up in a bound JSON object of every name, so a tile is still one statement
LABELS = {"class_label": "class", "pattern_label": "pattern"}
_LABEL_SQL = "(CAST(:{label} AS jsonb) ->> c.{column}) AS {label}"


def _label_columns(columns: list[str] | tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """The SQL of the label columns the value ``columns`` call for, and its parameters."""
    sql, params = "", {}
    for label, column in LABELS.items():
        if column in columns:
            names = class_labels() if column == "class" else pattern_labels()
            sql += ", " + _LABEL_SQL.format(label=label, column=column)
            params[label] = json.dumps(names, ensure_ascii=False)
    return sql, params


# Tiles select hexagons by ``&&`` and let ST_AsMVTGeom clip (and drop) them: a tile draws
# what reaches into it *or its 64-unit buffer*, so this is not ``cells_in_bbox``'s question.
_BATCH_TILE = """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env)
    SELECT ST_AsMVT(q, :layer, 4096, 'geom') FROM (
      SELECT c.h3, {columns}{labels}, ST_AsMVTGeom(c.geom, b.env, 4096, 64, true) AS geom
      FROM batch_cells c, b
      WHERE c.run_id = :run AND c.geom && b.env
    ) q
"""


@dataclass(frozen=True)
class TileQuery:
    """Time and category filters a tile is drawn with.

    ``now`` is the one clock of the tiles: the instant the incidents layer's default window
    ends at (None: the wall clock when the tile is made).
    """

    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    now: datetime | None = None


@dataclass(frozen=True)
class Tile:
    """An encoded tile and, when the point cap dropped points, ``(kept, matched)``."""

    data: bytes
    truncated: tuple[int, int] | None = None


def check_window(q: TileQuery) -> None:
    """Refuse a window that ends before it starts (422), as the other layers do."""
    instants.check_window(q.since, q.until)


def incidents_window(q: TileQuery, *, window_days: int) -> TileQuery:
    """The window the incidents layer draws for ``q`` (``now`` resolved, so usable as a key).

    ``since`` defaults to ``window_days`` before ``until``; ``until`` (when ``since`` is not
    given either) to ``q.now`` or the wall clock, rounded up to the next minute so that every
    tile of one minute shares one built layer. A ``since`` without ``until`` stays open-ended.
    """
    if q.since is not None:
        return replace(q, now=None)
    until = q.until
    if until is None:
        now = q.now or datetime.now(UTC)
        until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return TileQuery(since=until - timedelta(days=window_days), until=until, category=q.category)


def _layer_query(layer: str, q: TileQuery) -> TileQuery:
    """``q`` as ``layer`` draws it: the incidents layer's default window, else ``now`` dropped."""
    if layer != "incidents":
        return replace(q, now=None)
    return incidents_window(q, window_days=current().settings.api.map_window_days)


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tiles that do not exist."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInputError(format_message("z must be 0..{max_zoom}", max_zoom=MAX_ZOOM))
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInputError(
            format_message("x and y must be 0..{value} at zoom {z}", value=2**z - 1, z=z)
        )


def res_for_zoom(z: int) -> int:
    """The H3 resolution whose hexagons read well at a zoom level."""
    return max(6, min(10, (z + 3) // 2 + 1))


@dataclass(frozen=True)
class _ZoomFacts:
    """What the zoom ranges depend on: the city's latitude, its median grid width."""

    lat: float
    grid_width_m: float | None


_GRID_WIDTH = text(
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY sqrt(ST_Area(geom::geography))) "
    "FROM areas WHERE version_id = :v AND level = 'grid'"
)


def _zoom_facts(session: Session, database: str) -> _ZoomFacts:
    """The city's latitude and median grid width (kept TTL_S in the tile layer cache)."""
    key = (database, "zoom-facts")
    cache = current().caches.tile_layers
    facts = cache.get(key)
    if facts is None:
        extent = city_extent(session)
        lat = 0.0 if extent is None else (extent[1] + extent[3]) / 2
        width = session.execute(_GRID_WIDTH, {"v": version_in_force(session)}).scalar_one()
        facts = _ZoomFacts(lat, None if width is None else float(width))
        cache.put(key, facts)
    return facts


def _zoom_spanning(length_m: float, units: int, lat: float) -> int:
    """The lowest zoom at which ``length_m`` on the ground at ``lat`` spans ``units`` tile
    units (Web Mercator stretches lengths by 1 / cos(lat))."""
    mercator_m = length_m / max(math.cos(math.radians(lat)), 1e-6)
    z = math.ceil(math.log2(units * EARTH_CIRCUMFERENCE_M / (TILE_EXTENT * mercator_m)))
    return max(0, min(MAX_ZOOM, z))


def _hexagon_zooms(res: int | None, lat: float) -> tuple[int, int]:
    """Zooms of an H3 layer at ``res`` (None: the resolution follows the zoom).

    minzoom: the first zoom whose hexagons are a pixel wide (the width across flats is
    sqrt(3) edges); maxzoom: the first zoom with the final resolution whose edges span
    EDGE_UNITS.
    """
    res_at = (lambda _z: res) if res is not None else res_for_zoom
    drawn = [
        z for z in range(MAX_ZOOM + 1) if z >= _zoom_spanning(_width_m(res_at(z)), PIXEL_UNITS, lat)
    ]
    minzoom = drawn[0] if drawn else MAX_ZOOM
    final = res_at(MAX_ZOOM)
    settled = next(z for z in range(MAX_ZOOM + 1) if res_at(z) == final)
    maxzoom = max(minzoom, settled, _zoom_spanning(_edge_m(final), EDGE_UNITS, lat))
    return minzoom, maxzoom


def _edge_m(res: int) -> float:
    """The average H3 hexagon edge at ``res`` (metres)."""
    return float(h3i.average_hexagon_edge_length(res, unit="m"))


def _width_m(res: int) -> float:
    """The average H3 hexagon's width across flats at ``res`` (sqrt(3) edges, metres)."""
    return math.sqrt(3) * _edge_m(res)


def _zooms(facts: _ZoomFacts, layer: str, res: int | None) -> tuple[int, int]:
    """``layer_zooms`` from known facts (``res``: the H3 resolution of a fixed-res layer)."""
    if layer == "grids":
        if facts.grid_width_m is None or facts.grid_width_m <= 0:
            return 0, MAX_ZOOM
        return _zoom_spanning(facts.grid_width_m, PIXEL_UNITS, facts.lat), MAX_ZOOM
    if layer == "incidents":  # H3 aggregates, then points at every zoom (the cap thins them)
        return _hexagon_zooms(res, facts.lat)[0], MAX_ZOOM
    if layer == "heatmap":
        return _hexagon_zooms(res, facts.lat)
    return _hexagon_zooms(res or 8, facts.lat)  # hot spots and batch runs: one resolution


def _batch_res(session: Session, layer: str) -> int:
    """The H3 resolution of the newest batch run of ``layer`` (8, the default, when none)."""
    kind = layer.removeprefix("batch-")
    cell = session.execute(
        text(
            "SELECT c.h3 FROM batch_cells c WHERE c.run_id = "
            "(SELECT max(id) FROM batch_runs WHERE kind = :k) LIMIT 1"
        ),
        {"k": kind},
    ).scalar_one_or_none()
    return 8 if cell is None else int(h3i.get_resolution(h3i.str_to_int(cell)))


def layer_zooms(session: Session, layer: str, res: int | None = None) -> tuple[int, int]:
    """``(minzoom, maxzoom)`` of a layer: the zooms at which its features are drawn.

    minzoom is the first zoom at which the layer's features span a pixel of a 256-px tile
    (PIXEL_UNITS of the 4096-unit MVT grid): H3 hexagons by their width at the resolution
    drawn at that zoom (``res`` when given), grids by the median grid's width; tiles below it
    are empty. maxzoom is the zoom from which a tile adds no detail and clients overzoom
    (TileJSON 3.0.0 §3.8): for hexagons the zoom where the final resolution is reached and its
    edges span EDGE_UNITS; grids and incident points are served to MAX_ZOOM (points because
    the cap thins fuller tiles). Lengths are stretched by Web Mercator at the city's latitude.
    """
    if layer not in LAYERS:
        raise NotFoundError(
            format_message(
                "no tile layer {layer!r}; layers: {values}", layer=layer, values=", ".join(LAYERS)
            )
        )
    facts = _zoom_facts(session, database_name(session))
    if layer.startswith("batch-"):
        res = _batch_res(session, layer)
    return _zooms(facts, layer, res)


_GRID_TILE = text(
    """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
    q AS (
      SELECT a.id, a.code, a.name, coalesce(a.names ->> :lang, a.name) AS display_name, a.level,
             ST_AsMVTGeom(ST_Transform(a.geom, 3857), b.env, 4096, 64, true) AS geom
      FROM areas a, b
      WHERE a.version_id = :v AND a.level = 'grid'
        AND a.geom && ST_Transform(b.env, 4326)
        AND (CAST(:ids AS int[]) IS NULL OR a.id = ANY(:ids))
    )
    SELECT ST_AsMVT(q, 'grids', 4096, 'geom') FROM q
    """
)
# The points in the window, capped: the highest priority (1 first), then the newest, then the
# id, so a capped tile is the same subset every time; ``matched`` says how many there were.
_POINT_TILE = text(
    """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
    m AS (
      SELECT i.id, i.category, i.priority, i.status, i.reported_at, i.location
      FROM incidents i, b
      WHERE i.location && ST_Transform(b.env, 4326)
        -- exactly in the tile: the index's boxes are rounded to float4 and take in points
        -- a hair outside its edge
        AND ST_Intersects(i.location, ST_Transform(b.env, 4326))
        AND (CAST(:since AS timestamptz) IS NULL OR i.reported_at >= :since)
        AND (CAST(:until AS timestamptz) IS NULL OR i.reported_at < :until)
        AND (CAST(:category AS text) IS NULL OR i.category = :category)
        AND (CAST(:grids AS int[]) IS NULL OR i.grid_id = ANY(:grids))
    ),
    kept AS (
      SELECT * FROM m ORDER BY m.priority NULLS LAST, m.reported_at DESC, m.id LIMIT :cap
    )
    SELECT
      (SELECT ST_AsMVT(q, 'incidents', 4096, 'geom') FROM (
         SELECT k.id::text AS id, k.category, k.priority, k.status,
                extract(epoch FROM k.reported_at)::bigint AS reported_at,
                ST_AsMVTGeom(ST_Transform(k.location, 3857), b.env, 4096, 64, true) AS geom
         FROM kept k, b
      ) q) AS mvt,
      (SELECT count(*) FROM kept) AS kept,
      (SELECT count(*) FROM m) AS matched
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
    # a map asks for many tiles of a new layer at once: one request builds it, the others
    # wait for it here and read what it wrote
    with current().builds.hold(("tile-layer", key)):
        hit = layers.get(key)
        if hit is not None:
            return hit
        return _build_layer(session, key, res, build)


def _build_layer(session: Session, key: tuple[Any, ...], res: int, build) -> _Layer:  # noqa: ANN001
    layers = current().caches.tile_layers
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
    labels, label_params = _label_columns(columns)
    sql = text(
        f"""
        WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env)
        SELECT ST_AsMVT(q, :layer, 4096, 'geom') FROM (
          SELECT c.h3, {", ".join(f"c.{k}" for k in columns)}{labels},
                 ST_AsMVTGeom(c.geom, b.env, 4096, 64, true) AS geom
          FROM tile_layer_cells c, b
          WHERE c.key = :key AND c.geom && b.env
        ) q
        """
    )
    return sql, {"z": z, "x": x, "y": y, "layer": name, "key": layer.key, **label_params}


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
    (re)built first (``render_tile`` in a worker thread does that). Empty below the layer's
    minzoom.
    """
    check_tile(z, x, y)
    facts = current().caches.tile_layers.get((database, "zoom-facts"))
    if facts is None:
        return None
    if z < _zooms(facts, layer, res)[0]:
        return b""
    q = _layer_query(layer, q)
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
    max_points: int | None = None,
) -> Tile:
    """One tile of ``layer`` (MVT bytes, empty when nothing is there or below the layer's
    minzoom, see ``layer_zooms``).

    Incident points: at most ``max_points`` (default ``GEO_TILE_MAX_POINTS``) in the window
    of ``incidents_window``; ``Tile.truncated`` is ``(kept, matched)`` when some were left out.
    Raises NotFoundError for an unknown layer or a batch layer without a run, and
    InvalidInputError for a tile outside the zoom's grid.
    """
    check_tile(z, x, y)
    if layer not in LAYERS:
        raise NotFoundError(
            format_message(
                "no tile layer {layer!r}; layers: {values}", layer=layer, values=", ".join(LAYERS)
            )
        )
    q = _layer_query(layer, q)
    restricted = scope is not None and not scope.unrestricted
    if layer.startswith("batch-"):  # a stored batch run: read straight from its table
        if restricted and scope:
            scope.require_unrestricted(gettext("batch layers"))
        run = latest_run(session, layer.removeprefix("batch-"))
        if z < layer_zooms(session, layer)[0]:
            return Tile(b"")
        values = [c for c in FIELDS[layer] if c != "h3" and c not in LABELS]
        labels, label_params = _label_columns(values)
        sql = text(_BATCH_TILE.format(columns=", ".join(f"c.{c}" for c in values), labels=labels))
        params = {"z": z, "x": x, "y": y, "layer": layer, "run": run, **label_params}
        return Tile(bytes(session.execute(sql, params).scalar_one() or b""))
    if z < layer_zooms(session, layer, res)[0]:
        return Tile(b"")
    if layer == "grids":
        ids = sorted(scope.grid_ids or ()) if restricted and scope else None
        return Tile(
            bytes(
                session.execute(
                    _GRID_TILE,
                    {
                        "z": z,
                        "x": x,
                        "y": y,
                        "ids": ids,
                        "v": version_in_force(session),
                        "lang": names_language(),  # display_name: the request's language
                    },
                ).scalar_one()
                or b""
            )
        )
    if layer == "incidents" and z >= POINT_ZOOM:
        grids = sorted(scope.grid_ids or ()) if restricted and scope else None
        cap = max_points if max_points is not None else current().settings.api.tile_max_points
        data, kept, matched = session.execute(
            _POINT_TILE,
            {
                "z": z,
                "x": x,
                "y": y,
                "since": q.since,
                "until": q.until,
                "category": q.category,
                "grids": grids,
                "cap": cap,
            },
        ).one()
        return Tile(bytes(data or b""), (kept, matched) if matched > kept else None)
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
            # Gi* on a cache miss: one of the caller's expensive-work slots (429/503)
            with expensive(None if scope is None else scope.principal.user_id):
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
    return Tile(_hexagon_tile(session, layer, z, x, y, built, columns))


def etag(data: bytes) -> str:
    """A strong validator for a tile's bytes."""
    return '"' + hashlib.sha1(data).hexdigest() + '"'


_DESCRIPTIONS = {
    "grids": "Grid polygons of the boundary version in force.",
    "incidents": f"Below zoom {POINT_ZOOM}: incidents counted per H3 cell (h3, count; the "
    f"resolution follows the zoom unless res is given). From zoom {POINT_ZOOM}: one point per "
    "incident (id, category, priority, status, reported_at in Unix seconds), at most "
    "max_points_per_tile a tile, the highest priority then the newest kept. Both draw window.",
    "heatmap": "Incidents counted per H3 cell; the resolution follows the zoom (6 up to z7, "
    "10 from z15) unless res is given.",
    "hotspots": "Getis-Ord Gi* hot and cold spots per H3 cell (res 8 unless res is given).",
    "batch-heatmap": "Counts per H3 cell of the newest stored batch heatmap run.",
    "batch-hotspots": "Gi* hot spots per H3 cell of the newest stored batch hot spot run.",
    "batch-emerging": "Emerging hot spot patterns per H3 cell of the newest stored batch run.",
}


def tilejson(
    session: Session,
    base: str,
    layer: str,
    query_string: str,
    q: TileQuery | None = None,
    *,
    res: int | None = None,
) -> dict[str, Any]:
    """TileJSON 3.0.0 for a layer (the query string carries the filters into the tile URLs).

    ``minzoom``/``maxzoom`` (also on the vector layer) are ``layer_zooms``; the incidents layer
    adds ``window`` (the instants drawn, ``incidents_window``) and ``max_points_per_tile``
    (the cap): TileJSON 3.0.0 lets an implementation add members of its own. Raises
    NotFoundError for an unknown layer.
    """
    if layer not in LAYERS:
        raise NotFoundError(
            format_message(
                "no tile layer {layer!r}; layers: {values}", layer=layer, values=", ".join(LAYERS)
            )
        )
    minzoom, maxzoom = layer_zooms(session, layer, res)
    suffix = f"?{query_string}" if query_string else ""
    bounds = city_extent(session) or [-180.0, -85.0, 180.0, 85.0]
    centre_zoom = min(max(11, minzoom), maxzoom)
    out: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": f"geo-service {layer}",
        "description": _DESCRIPTIONS[layer],
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt{suffix}"],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, centre_zoom],
        "vector_layers": [
            {
                "id": layer,
                "fields": FIELDS[layer],
                "description": _DESCRIPTIONS[layer],
                "minzoom": minzoom,
                "maxzoom": maxzoom,
            }
        ],
    }
    if layer == "incidents":
        settings = current().settings.api
        asked = q or TileQuery()
        drawn = incidents_window(asked, window_days=settings.map_window_days)
        now = asked.now or datetime.now(UTC)
        out["window"] = {
            "since": drawn.since.isoformat() if drawn.since else None,
            "until": (drawn.until or now).isoformat(),
            "default_days": settings.map_window_days,
            "sliding": asked.since is None and asked.until is None,
        }
        out["max_points_per_tile"] = settings.tile_max_points
    return out
