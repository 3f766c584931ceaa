"""Data behind the map pages, read in one set-based query per layer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.i18n import names_language
from geo_service.instants import local_day, local_instant
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force

# ~2 m at this latitude: invisible at city zoom, and it cuts the page size by half.
SIMPLIFY_DEG = 0.00002

_GRID_LAYER = text(
    """
    SELECT a.id, a.code, coalesce(a.names ->> :lang, a.name) AS name, a.level, a.parent_id,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), 6) AS geometry,
           coalesce(c.n, 0) AS incidents
    FROM areas a
    LEFT JOIN (
        SELECT grid_id, count(*) AS n FROM incidents
        WHERE reported_at >= :since AND reported_at < :until GROUP BY grid_id
    ) c ON c.grid_id = a.id
    WHERE a.version_id = :version AND a.level = 'grid'
    ORDER BY a.id
    """
)
_OUTLINES = text(
    """
    SELECT a.id, a.code, coalesce(a.names ->> :lang, a.name) AS name, a.level,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), 6) AS geometry
    FROM areas a
    WHERE a.version_id = :version AND a.level = :level
    ORDER BY a.id
    """
)


def _collection(rows: Any, props: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.id,
                "geometry": json.loads(r.geometry),
                "properties": {p: getattr(r, p) for p in props},
            }
            for r in rows
        ],
    }


def city_map_layers(
    session: Session,
    *,
    window_days: int,
    until: datetime | None = None,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """Grids with their incident counts in the ``window_days`` before ``until`` (default now),
    drawn from the version in force at ``until``, and outlines of the upper levels.
    """
    until = until or datetime.now(UTC)
    until = local_instant(until, "until")  # naive: local time
    version = version_in_force(session, until)
    since = until - timedelta(days=window_days)
    grids = session.execute(
        _GRID_LAYER,
        {
            "tol": SIMPLIFY_DEG,
            "since": since,
            "until": until,
            "version": version,
            "lang": names_language(),  # area names in the page's language (areas.names)
        },
    )
    keep_grid = (lambda r: True) if scope is None else (lambda r: scope.has_grid(r.id))
    layers: dict[str, Any] = {
        "grid": _collection([r for r in grids if keep_grid(r)], ("id", "code", "name", "incidents"))
    }
    for level in ("community", "street", "district"):
        rows = session.execute(
            _OUTLINES,
            {"tol": SIMPLIFY_DEG, "version": version, "level": level, "lang": names_language()},
        )
        keep = [r for r in rows if scope is None or scope.has_area(r.id)]
        layers[level] = _collection(keep, ("id", "code", "name", "level"))
    layers["window_days"] = window_days
    layers["until"] = local_day(until).isoformat()  # the local day the window ends in
    layers["version_id"] = version
    return layers
