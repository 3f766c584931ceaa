"""The shared store of H3 hexagon polygons (``h3_cells``), written once per cell.

Tile layers and stored batch runs both draw hexagons by joining this table, so each cell's
polygon is computed once; it is a cache of pure geometry, committed on its own.
"""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

_HAVE = text("SELECT cell FROM h3_cells WHERE res = :res AND cell = ANY(:cells)")
_INSERT = text(
    "INSERT INTO h3_cells (res, cell, geom) SELECT :res, c, ST_GeomFromWKB(g, 4326) "
    "FROM unnest(CAST(:cells AS bigint[]), CAST(:g AS bytea[])) AS t(c, g) "
    "ON CONFLICT DO NOTHING"
)


def ensure_cell_polygons(session: Session, res: int, cells: np.ndarray) -> None:
    """Store the polygons of any of ``cells`` not yet in ``h3_cells`` (once per cell)."""
    have = session.execute(_HAVE, {"res": res, "cells": cells.tolist()}).scalars().all()
    missing = np.setdiff1d(cells, np.array(have, dtype=np.int64))
    if not len(missing):
        return
    wkb = [
        shapely.to_wkb(shapely.Polygon([(lng, lat) for lat, lng in h3i.cell_to_boundary(int(c))]))
        for c in missing
    ]
    session.execute(_INSERT, {"res": res, "cells": missing.tolist(), "g": wkb})
    session.commit()
