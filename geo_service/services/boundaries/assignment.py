"""Grid assignment: which grid of the boundary version in force holds each point.

``grid_index`` builds (once per published version) the cover-raster index of its grids;
``assign_grids`` picks, for each point, the version in force at its time and looks it up.
Used by the importers; the indexes are cached in the runtime (``caches.grid_indexes``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geo_service.db.sql import sql
from geo_service.errors import NotFoundError
from geo_service.geo.assign import NO_GRID, GridIndex
from geo_service.i18n import format_message, gettext
from geo_service.runtime import current


def grid_index(conn: Connection, version_id: int) -> GridIndex:
    """The cover-raster index of a published version's grids (cached: they never change).

    The key names the server and database as well as the version (and when it was made), so
    a process that talks to several databases never mixes their grids.
    """
    url = conn.engine.url
    created = conn.execute(
        text("SELECT created_at FROM boundary_versions WHERE id = :v"), {"v": version_id}
    ).scalar_one()
    key = (url.host, url.port, url.database, version_id, created)
    indexes = current().caches.grid_indexes
    index: GridIndex | None = indexes.get(key)
    if index is None:
        rows = conn.execute(
            text(
                "SELECT id, ST_AsBinary(geom) FROM areas WHERE version_id = :v AND level = 'grid'"
            ),
            {"v": version_id},
        ).all()
        if not rows:
            raise NotFoundError(
                format_message("boundary version {version_id} has no grids", version_id=version_id)
            )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
        index = GridIndex.build(geoms, ids)
        indexes.put(key, index)
    return index


def _versions(conn: Connection) -> pd.DataFrame:
    return pd.DataFrame(
        conn.execute(
            text(
                "SELECT id, effective_from, effective_to FROM boundary_versions "
                "WHERE status IN ('published', 'retired') AND effective_from IS NOT NULL "
                "ORDER BY effective_from"
            )
        ).all(),
        columns=["id", "effective_from", "effective_to"],
    )


def assign_grids(
    conn: Connection,
    lon: np.ndarray,
    lat: np.ndarray,
    at: np.ndarray | None,
    *,
    edge_tolerance_m: float = 0.0,
    snapped: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grid of each point in the version in force at ``at`` (default: now).

    A point in no grid but at most ``edge_tolerance_m`` metres (geodesic, WGS84) from one is
    given to the nearest grid (an address on a boundary street geocodes onto the line); such
    points are marked True in ``snapped`` (a bool array as long as ``lon``) when one is given.

    Returns grid ids (NO_GRID where none) and a per-row reason for the misses.
    """
    versions = _versions(conn)
    grid = np.full(len(lon), NO_GRID, dtype=np.int64)
    why = np.full(len(lon), None, dtype=object)
    when = (
        pd.Series(pd.to_datetime(at, utc=True))
        if at is not None
        else pd.Series([pd.Timestamp.now(tz="UTC")] * len(lon))
    )
    matched = np.zeros(len(lon), dtype=bool)
    for v in versions.itertuples():
        start = pd.Timestamp(v.effective_from)
        in_force = (when >= start).to_numpy() & ~matched
        if v.effective_to is not None and not pd.isna(v.effective_to):
            in_force = in_force & (when < pd.Timestamp(v.effective_to)).to_numpy()
        if not in_force.any():
            continue
        matched = matched | in_force
        grid[in_force] = grid_index(conn, int(v.id)).assign(lon[in_force], lat[in_force])
        if edge_tolerance_m > 0:
            _snap_to_edge(conn, int(v.id), lon, lat, in_force, grid, edge_tolerance_m, snapped)
    why[~matched] = gettext("no boundary version in force at that time")
    why[matched & (grid == NO_GRID)] = gettext("outside the city (in no grid)")
    return grid, why


def _snap_to_edge(
    conn: Connection,
    version_id: int,
    lon: np.ndarray,
    lat: np.ndarray,
    in_force: np.ndarray,
    grid: np.ndarray,
    tolerance_m: float,
    snapped: np.ndarray | None,
) -> None:
    """Give points of ``in_force`` that fell in no grid to the nearest grid of the version
    within ``tolerance_m`` metres (in place); set-based, one statement for all misses."""
    miss = np.flatnonzero(in_force & (grid == NO_GRID) & np.isfinite(lon) & np.isfinite(lat))
    if miss.size == 0:
        return
    found = conn.execute(
        sql("edge_nearest_grid"),
        {
            "i": miss.tolist(),
            "lon": lon[miss].astype(float).tolist(),
            "lat": lat[miss].astype(float).tolist(),
            "v": version_id,
            "tol_m": float(tolerance_m),
        },
    ).all()
    if not found:
        return
    rows = np.array([r[0] for r in found], dtype=np.int64)
    grid[rows] = np.array([r[1] for r in found], dtype=np.int64)
    if snapped is not None:
        snapped[rows] = True
