"""Manual edits of a draft: a planner moves a street block from one grid to the grid next to
it, on the map, before publishing. The block is the face of the road network under the
click (``analytics.atoms.street_blocks``), or, where a block is most of its grid or no roads
are loaded, the H3 cell under the click (res ``FALLBACK_RES``), clipped to its grid. The two
grids an edit changes are told again which grid of today each continues
(``continued_grid``): a proposal said so for the polygons it drew, not for the edited ones."""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import shapely
from sqlalchemy import Connection, Engine, RowMapping, text

from geo_service.analytics.atoms import local_utm, street_blocks
from geo_service.db.sql import sql
from geo_service.errors import ConflictError, InvalidInputError, PermissionDeniedError
from geo_service.i18n import format_message, gettext
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.catalogue import read_version
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.planning.metrics import KEEP_CODE_SHARE

FALLBACK_RES = 10  # the H3 cell moved where a whole block would empty its grid (~0.015 km²)
MOST_OF_A_GRID = 0.5  # a block holding more than this share of its grid moves by cells
CRUMB_DEG2 = 1e-10  # parts of a grid smaller than this (about 1 m²) left by a cut are crumbs

_LOCK_VERSION = text("SELECT 1 FROM boundary_versions WHERE id = :v FOR UPDATE")
_GRID_AT = text(
    "SELECT id, code, parent_id, ST_AsBinary(geom) AS wkb FROM areas "
    "WHERE version_id = :v AND level = 'grid' "
    "AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY id LIMIT 1"
)
_GRID_CODE = text(
    "SELECT id, code, parent_id, ST_AsBinary(geom) AS wkb FROM areas "
    "WHERE version_id = :v AND level = 'grid' AND code = :code"
)
_PARENT = text("SELECT code, ST_AsBinary(geom) AS wkb FROM areas WHERE id = :id")
_IN_FORCE_ID = text("SELECT id FROM areas WHERE version_id = :v AND code = :code")
_ROADS = text(
    "SELECT ST_AsBinary(geom) FROM road_segments "
    "WHERE ST_Intersects(geom, ST_GeomFromWKB(:area, 4326))"
)
_UPDATE = text(
    "UPDATE areas SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid("
    "ST_GeomFromWKB(:wkb, 4326)), 3)), area_m2 = ST_Area(ST_GeomFromWKB(:wkb, 4326)::geography) "
    "WHERE id = :id RETURNING area_m2, ST_AsGeoJSON(geom, 7) AS geometry"
)


def continued_grid(overlaps: list[RowMapping] | list[dict[str, Any]]) -> str | None:
    """The code of the grid of today a draft grid continues, from today's grids whose
    interior it overlaps (``old_id``, ``old_code``, ``old_m2``: that grid's area,
    ``shared_m2``: the area they share, m²): the one it covers more than ``KEEP_CODE_SHARE``
    of, the proposals' rule for a new grid keeping an old grid's code (sharing the most area
    when it covers that much of several); else the one it shares most area with, the plan
    export's rule (``planning_continues.sql``); ties to the lowest id. None when it overlaps
    none.

    >>> continued_grid([
    ...     {"old_id": 1, "old_code": "A", "old_m2": 10.0, "shared_m2": 6.0},
    ...     {"old_id": 2, "old_code": "B", "old_m2": 90.0, "shared_m2": 30.0},
    ... ])
    'A'
    >>> continued_grid([
    ...     {"old_id": 1, "old_code": "A", "old_m2": 10.0, "shared_m2": 4.0},
    ...     {"old_id": 2, "old_code": "B", "old_m2": 90.0, "shared_m2": 30.0},
    ... ])
    'B'
    """
    covered = [o for o in overlaps if o["shared_m2"] > KEEP_CODE_SHARE * o["old_m2"]]
    pool = covered or overlaps
    if not pool:
        return None
    return str(max(pool, key=lambda o: (o["shared_m2"], -o["old_id"]))["old_code"])


def _continues(conn: Connection, grid_ids: list[int]) -> dict[int, str | None]:
    """``continued_grid`` of each of ``grid_ids`` (a draft's), against the version in force."""
    rows = conn.execute(
        sql("planning_edit_continues"), {"ids": grid_ids, "today": version_in_force(conn)}
    ).mappings()
    overlaps: dict[int, list[RowMapping]] = {g: [] for g in grid_ids}
    for row in rows:
        overlaps[row["grid_id"]].append(row)
    return {g: continued_grid(found) for g, found in overlaps.items()}


def _piece_at(point: Any, source: Any, parent: Any, roads: np.ndarray) -> tuple[Any, str]:
    """What moves: the part of the street block under ``point`` inside ``source`` (its grid),
    or the H3 cell under it when that block is most of the grid; and which of the two."""
    blocks = street_blocks(parent, roads, local_utm(parent))
    hit = shapely.STRtree(blocks).query(point, predicate="intersects")
    if len(hit):
        piece = _part_at(shapely.intersection(blocks[hit[0]], source), point)
        if piece is not None and piece.area <= MOST_OF_A_GRID * source.area:
            return piece, "block"
    cell = h3.latlng_to_cell(point.y, point.x, FALLBACK_RES)
    hexagon = shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])
    piece = _part_at(shapely.intersection(hexagon, source), point)
    if piece is None:
        raise InvalidInputError(gettext("nothing of a grid to move here"))
    return piece, "cell"


def _part_at(geom: Any, point: Any) -> Any:
    """The polygon of ``geom`` under ``point`` (None when there is none)."""
    for part in shapely.get_parts(shapely.make_valid(geom)):
        if part.geom_type == "Polygon" and part.area > 0 and part.intersects(point):
            return part
    return None


def move_block(
    engine: Engine,
    version_id: int,
    *,
    lon: float,
    lat: float,
    to_grid: str,
    actor: str,
    scope: Scope,
) -> dict[str, Any]:
    """Move the street block under (``lon``, ``lat``) (WGS84) from its grid in draft
    ``version_id`` to the neighbouring grid ``to_grid`` of the same parent; audit it and
    return both grids' new polygons (GeoJSON), areas (m²) and the code of the grid of today
    each now ``continues`` (``continued_grid``; None: none, a new grid).

    Raises ``ConflictError`` (409) unless the version is a draft; ``InvalidInputError``
    (422) when no grid of the draft lies under the point, ``to_grid`` is no grid of the
    draft, is the block's own grid, lies under another parent or does not touch the block, or
    the move would empty its grid or cut it in two; ``PermissionDeniedError`` (403) for a
    parent outside the caller's area.
    """
    point = shapely.Point(lon, lat)
    with engine.begin() as conn:
        # the version's row locked first: edits of one draft, its publishing or deletion
        # take turns (a second edit reads the first's polygons, not the ones before it)
        conn.execute(_LOCK_VERSION, {"v": version_id})
        version = read_version(conn, version_id)
        if version["status"] != "draft":
            raise ConflictError(
                format_message(
                    "boundary version {version_id} is {status}: only drafts are edited",
                    version_id=version_id,
                    status=version["status"],
                )
            )
        source = conn.execute(_GRID_AT, {"v": version_id, "lon": lon, "lat": lat}).mappings()
        src = source.first()
        if src is None:
            raise InvalidInputError(
                format_message(
                    "no grid of version {version_id} at {lon}, {lat}",
                    version_id=version_id,
                    lon=lon,
                    lat=lat,
                )
            )
        dst = conn.execute(_GRID_CODE, {"v": version_id, "code": to_grid}).mappings().first()
        if dst is None:
            raise InvalidInputError(
                format_message(
                    "no grid {to_grid} in version {version_id}",
                    to_grid=to_grid,
                    version_id=version_id,
                )
            )
        if dst["id"] == src["id"]:
            raise InvalidInputError(
                format_message("the block already lies in {to_grid}", to_grid=to_grid)
            )
        if dst["parent_id"] != src["parent_id"]:
            raise InvalidInputError(
                format_message(
                    "{code} and {to_grid} lie under different parents; a block moves between "
                    "grids of one parent",
                    code=src["code"],
                    to_grid=to_grid,
                )
            )
        parent = conn.execute(_PARENT, {"id": src["parent_id"]}).mappings().one()
        in_force = conn.execute(
            _IN_FORCE_ID, {"v": version_in_force(conn), "code": parent["code"]}
        ).scalar()
        if not scope.unrestricted and (in_force is None or not scope.has_area(in_force)):
            raise PermissionDeniedError(
                format_message("{code} lies outside your area", code=parent["code"])
            )
        parent_geom = shapely.from_wkb(bytes(parent["wkb"]))
        roads = np.asarray(
            shapely.from_wkb(
                [bytes(r[0]) for r in conn.execute(_ROADS, {"area": parent_geom.wkb})]
            ),
            dtype=object,
        )
        src_geom = shapely.from_wkb(bytes(src["wkb"]))
        dst_geom = shapely.from_wkb(bytes(dst["wkb"]))
        piece, kind = _piece_at(point, src_geom, parent_geom, roads)
        if piece.area >= src_geom.area * 0.999:
            raise InvalidInputError(
                format_message("moving it would leave {code} empty", code=src["code"])
            )
        if shapely.intersection(piece.boundary, dst_geom.boundary).length <= 1e-7:
            raise InvalidInputError(
                format_message(
                    "{to_grid} does not touch the {kind} at {lon}, {lat}",
                    to_grid=to_grid,
                    kind=kind,
                    lon=lon,
                    lat=lat,
                )
            )
        left = shapely.make_valid(shapely.difference(src_geom, piece))
        # crumbs a hair wide where the cut meets the grid's edge are not a second piece: they
        # go with the block, so the grid stays one polygon and the two still tile the parent
        parts = [p for p in shapely.get_parts(left) if p.geom_type == "Polygon"]
        if sum(p.area > CRUMB_DEG2 for p in parts) > 1:
            raise InvalidInputError(
                format_message(
                    "moving the {kind} would cut {code} in two", kind=kind, code=src["code"]
                )
            )
        crumbs = [p for p in parts if p.area <= CRUMB_DEG2]
        if crumbs:
            left = shapely.union_all([p for p in parts if p.area > CRUMB_DEG2])
            piece = shapely.union_all([piece, *crumbs])
        grown = shapely.make_valid(shapely.union(dst_geom, piece))
        out = {}
        for area_id, code, geom in ((src["id"], src["code"], left), (dst["id"], to_grid, grown)):
            row = conn.execute(_UPDATE, {"id": area_id, "wkb": shapely.to_wkb(geom)}).one()
            out[code] = {"area_m2": round(float(row.area_m2), 1), "geometry": json.loads(row[1])}
        continues = _continues(conn, [src["id"], dst["id"]])
        out[src["code"]]["continues"] = continues[src["id"]]
        out[to_grid]["continues"] = continues[dst["id"]]
        moved_m2 = round(_area_m2(piece), 1)
        record_audit(
            conn,
            who=actor,
            action="edit",
            entity="boundary_version",
            entity_id=str(version_id),
            diff={
                "moved": kind,
                "from": src["code"],
                "to": to_grid,
                "at": [lon, lat],
                "area_m2": moved_m2,
                "continues": {code: values["continues"] for code, values in out.items()},
            },
        )
    return {
        "version_id": version_id,
        "moved": {"kind": kind, "from": src["code"], "to": to_grid, "area_m2": moved_m2},
        "grids": [{"code": code, **values} for code, values in out.items()],
    }


def _area_m2(geom: Any) -> float:
    """Area of a WGS84 polygon in m² (its UTM zone)."""
    return float(gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(local_utm(geom)).area.iloc[0])
