"""A boundary version as a plan table: one row per area of a level with its workload terms and
polygon, and for grids the grid of today each continues. ``GET
/boundaries/versions/{id}/export`` writes it as GeoPackage, Shapefile, GeoJSON or CSV
(``api/downloads.py``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.sql import sql
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries import jurisdiction
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.planning.workload import Weights, area_workloads

# The attribute columns, in order (``continues``: grids only).
PLAN_FIELDS = (
    "code",
    "name",
    "level",
    "parent_code",
    "households",
    "rental_units",
    "incidents",
    "incident_hours",
    "workload_index",
    "area_m2",
    "continues",
)
# Counts: integer columns, empty where disclosure control hides a count.
PLAN_INTEGER_FIELDS = ("households", "rental_units", "incidents")
# A Shapefile's DBF holds names of at most 10 characters: these are shortened on purpose
# (the others fit as they are) rather than cut by GDAL.
PLAN_SHAPEFILE_FIELDS = {
    "parent_code": "parent",
    "rental_units": "rent_units",
    "incident_hours": "inc_hours",
    "workload_index": "workload",
}
GEOJSON_DECIMALS = 7  # ~1 cm

_SHAPES = text(
    "SELECT a.id, a.level, a.area_m2, p.code AS parent_code, "
    "ST_AsGeoJSON(a.geom, :decimals) AS geometry "
    "FROM areas a LEFT JOIN areas p ON p.id = a.parent_id WHERE a.id = ANY(:ids)"
)


def plan_layer(
    session: Session,
    version_id: int,
    *,
    level: str = "grid",
    window_days: int = 90,
    until: datetime | None = None,
    weights: Weights | None = None,
    scope: Scope,
    min_count: int = 5,
) -> dict[str, Any]:
    """The areas of ``level`` of boundary version ``version_id`` as an RFC 7946
    FeatureCollection (WGS84 lon/lat, 7 decimals), one feature per area.

    Properties, in ``PLAN_FIELDS`` order: ``code``, ``name``, ``level``, ``parent_code``;
    ``households``, ``rental_units``, ``incidents``, ``incident_hours`` and
    ``workload_index`` (hours over the ``window_days`` before ``until``, with ``weights``)
    as ``GET /workload?version_id=`` gives them, so counts hidden or rounded by disclosure
    control (base ``min_count``) are hidden or rounded here too; ``area_m2`` (the area's own,
    on the spheroid); and for grids ``continues``, the code of the grid in force it shares
    the most area with (null when none). Foreign members name the version, level, window,
    ``until`` and weights.

    A user bound to an area gets the areas of the version in their jurisdiction only
    (``jurisdiction.visible_area_ids``). Errors as ``area_workloads``: NotFoundError for an
    unknown version or one with nothing in the caller's area, InvalidInputError for a bad
    level, window, weights or ``until``.
    """
    weights = weights or Weights()
    measured = area_workloads(
        session,
        level=level,
        window_days=window_days,
        weights=weights,
        scope=scope,
        min_count=min_count,
        until=until,
        version_id=version_id,
    )
    visible = jurisdiction.visible_area_ids(session, scope, measured.version_id)
    items = [a for a in measured.areas if visible is None or a["id"] in visible]
    ids = [a["id"] for a in items]
    shapes = {r.id: r for r in session.execute(_SHAPES, {"ids": ids, "decimals": GEOJSON_DECIMALS})}
    continues: dict[int, str | None] = {}
    if level == "grid" and ids:
        rows = session.execute(
            sql("planning_continues"), {"ids": ids, "today": version_in_force(session)}
        )
        continues = {int(i): code for i, code in rows}
    features = []
    for item in items:
        shape = shapes[item["id"]]
        properties: dict[str, Any] = {
            "code": item["code"],
            "name": item["name"],
            "level": shape.level,
            "parent_code": shape.parent_code,
            "households": item["households"],
            "rental_units": item["rental_units"],
            "incidents": item["incidents"],
            "incident_hours": item["incident_hours"],
            "workload_index": item["index"],
            "area_m2": round(float(shape.area_m2), 1),
        }
        if level == "grid":
            properties["continues"] = continues.get(item["id"])
        features.append(
            {
                "type": "Feature",
                "id": item["id"],
                "geometry": orjson.loads(shape.geometry),
                "properties": properties,
            }
        )
    return {
        "type": "FeatureCollection",
        "version_id": measured.version_id,
        "level": level,
        "window_days": window_days,
        "until": measured.until.isoformat(),
        "weights": asdict(weights),
        "features": features,
    }
