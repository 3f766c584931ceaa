"""Street blocks of a draft a planner can move, found independently of the service's own
search (tests/planning/test_block_edits.py, and the planner's page in Chromium)."""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import Engine, text

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
    blocks = street_blocks(outline, roads, local_utm(outline))
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
