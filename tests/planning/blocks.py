"""Street blocks of a draft a planner can move, found independently of the service's own
search (tests/planning/test_block_edits.py, and the planner's page in Chromium)."""

from __future__ import annotations

import numpy as np
import pyproj
import shapely
from sqlalchemy import Connection, Engine, text

from geo_service.analytics.atoms import local_utm, street_blocks


def draft_grids(engine: Engine, version: int, parent: str) -> dict[str, shapely.Geometry]:
    """The grids of ``version`` under the area ``parent`` (a code), by code."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT g.code, ST_AsBinary(g.geom) FROM areas g JOIN areas p "
                "ON p.id = g.parent_id WHERE g.version_id = :v AND p.code = :c"
            ),
            {"v": version, "c": parent},
        ).all()
    return {code: shapely.from_wkb(bytes(wkb)) for code, wkb in rows}


def street_blocks_of(conn: Connection, outline: shapely.Geometry) -> np.ndarray:
    """The street blocks of ``outline`` (a WGS84 polygon) cut by the roads that meet it."""
    roads = np.array(
        [
            shapely.from_wkb(bytes(r[0]))
            for r in conn.execute(
                text(
                    "SELECT ST_AsBinary(geom) FROM road_segments "
                    "WHERE ST_Intersects(geom, ST_GeomFromWKB(:a, 4326))"
                ),
                {"a": outline.wkb},
            )
        ],
        dtype=object,
    )
    return street_blocks(outline, roads, local_utm(outline))


def a_movable_block(
    engine: Engine, version: int, parent: str, avoid: frozenset[str] = frozenset()
) -> tuple[str, str, shapely.Geometry]:
    """A grid, a neighbour of it and a street block of the first along their border whose
    loss leaves the grid in one piece (found independently of the service's own search);
    neither grid one of ``avoid``."""
    grids = {c: g for c, g in draft_grids(engine, version, parent).items() if c not in avoid}
    with engine.connect() as conn:
        outline = shapely.from_wkb(
            bytes(
                conn.execute(
                    text("SELECT ST_AsBinary(geom) FROM areas WHERE version_id = :v AND code = :c"),
                    {"v": version, "c": parent},
                ).scalar_one()
            )
        )
        blocks = street_blocks_of(conn, outline)
    for code, geom in sorted(grids.items()):
        for other, neighbour in sorted(grids.items()):
            if other == code or geom.boundary.intersection(neighbour.boundary).length < 1e-5:
                continue
            for block in blocks:
                piece = block.intersection(geom)
                if piece.geom_type != "Polygon" or piece.area < 1e-9:
                    continue
                if piece.area > 0.3 * geom.area:
                    continue
                if piece.boundary.intersection(neighbour.boundary).length < 1e-5:
                    continue
                if shapely.get_num_geometries(shapely.make_valid(geom.difference(piece))) == 1:
                    return code, other, piece
    raise AssertionError("no movable block in the draft")


def continues_by_area(
    engine: Engine, version: int, today: int, codes: list[str]
) -> dict[str, str | None]:
    """Which grid of version ``today`` each grid ``codes`` of ``version`` continues, by the
    edit's rule counted here in metres of the city's UTM zone (not the service's SQL on the
    spheroid): the one it covers more than half of (sharing most area when several), else
    the one it shares most area with; ties to the lowest id; None when it overlaps none."""
    with engine.connect() as conn:
        new = conn.execute(
            text(
                "SELECT code, ST_AsBinary(geom) FROM areas WHERE version_id = :v "
                "AND level = 'grid' AND code = ANY(:c)"
            ),
            {"v": version, "c": codes},
        ).all()
        old = conn.execute(
            text(
                "SELECT id, code, ST_AsBinary(geom) FROM areas WHERE version_id = :v "
                "AND level = 'grid' ORDER BY id"
            ),
            {"v": today},
        ).all()
    old_geoms = shapely.from_wkb([bytes(r[2]) for r in old])
    utm = local_utm(shapely.union_all(old_geoms))
    transformer = pyproj.Transformer.from_crs(4326, utm, always_xy=True)

    def to_utm(geom: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(*xy.T)))

    old_m = [to_utm(g) for g in old_geoms]
    out: dict[str, str | None] = {}
    for code, wkb in new:
        grid = to_utm(shapely.from_wkb(bytes(wkb)))
        shared = [(grid.intersection(o).area, o.area, -i) for i, o in enumerate(old_m)]
        overlapping = [s for s in shared if s[0] > 0.01]  # m²: more than touching
        covered = [s for s in overlapping if s[0] > 0.5 * s[1]]
        pool = covered or overlapping
        out[code] = old[-max(pool, key=lambda s: (s[0], s[2]))[2]][1] if pool else None
    return out
