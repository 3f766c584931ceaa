"""Households and rental units: rows for those who work the grid, aggregates for everyone else.

Rows leave the database only for admins and the grid's own worker. Every aggregate -- per area
or per H3 cell -- is published through ``services.disclosure`` (fixed random rounding to base
``min_count`` keyed by the published cell's disclosure key) for every caller who may not see the
rows, so the same households give the same figure at every level and resolution, and no combination
of figures pins down a count below ``min_count``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError, PermissionDeniedError
from geo_service.geo.bbox import SRID, BBox
from geo_service.geo.h3cells import (
    RESIDENT_RESOLUTIONS,
    cell_feature,
    cells_in_bbox,
    resident_cell_column,
)
from geo_service.i18n import format_message, gettext, names_language
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import require_grid_filter
from geo_service.services.boundaries.versions import version_in_force
from geo_service.vocabulary import AREA_LEVELS

H3_RESOLUTIONS = RESIDENT_RESOLUTIONS  # the aggregates' resolutions: one stored column each


def list_household_rows(
    session: Session, scope: Scope, grid_id: int, *, limit: int, after_id: int = 0
) -> dict[str, Any]:
    """The households of one grid, as rows (admins and that grid's own worker only)."""
    if not disclosure.sees_exact(scope, [grid_id]):
        raise PermissionDeniedError(
            gettext(
                "household rows are shown only to admins and the grid's own worker; use "
                "/households/aggregate"
            )
        )
    require_grid_filter(session, grid_id, scope)  # an unknown grid: 404, not an empty page
    rows = (
        session.execute(
            text(
                "SELECT id, ST_X(location) AS lon, ST_Y(location) AS lat, household_size, "
                "elderly_living_alone, needs_assistance, address FROM households "
                "WHERE grid_id = :g AND id > :after ORDER BY id LIMIT :n"
            ),
            {"g": grid_id, "after": after_id, "n": limit + 1},
        )
        .mappings()
        .all()
    )
    items = [dict(r) for r in rows[:limit]]
    return {
        "grid_id": grid_id,
        "data": items,
        "next_after_id": items[-1]["id"] if len(rows) > limit else None,
    }


_BY_AREA = text(
    """
    WITH RECURSIVE tree AS (
        SELECT id AS root, id, level FROM areas WHERE version_id = :v AND level = :level
        UNION ALL
        SELECT t.root, a.id, a.level FROM areas a JOIN tree t ON a.parent_id = t.id
    ), grids AS (SELECT root, id FROM tree WHERE level = 'grid')
    SELECT r.id, r.code, coalesce(r.names ->> :lang, r.name) AS name,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(r.geom, 0.00002), 6) AS geometry,
           coalesce(h.households, 0) AS households, coalesce(h.residents, 0) AS residents,
           coalesce(u.rental_units, 0) AS rental_units,
           disclosure_key('area:' || r.id) AS household_key,
           disclosure_key('area:' || r.id) AS rental_key,
           (SELECT array_agg(g.id) FROM grids g WHERE g.root = r.id) AS grid_ids
    FROM areas r
    LEFT JOIN (SELECT g.root, count(*) AS households, sum(hh.household_size) AS residents
               FROM grids g JOIN households hh ON hh.grid_id = g.id GROUP BY g.root) h
           ON h.root = r.id
    LEFT JOIN (SELECT g.root, count(*) AS rental_units
               FROM grids g JOIN rental_units ru ON ru.grid_id = g.id GROUP BY g.root) u
           ON u.root = r.id
    WHERE r.version_id = :v AND r.level = :level
      AND (:whole_city OR ST_Intersects(r.geom, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, :srid)))
    ORDER BY r.id
    """
)

# Per cell of one resolution: each home counts in its own cell at that resolution
# (``h3_<res>``, h3.latlng_to_cell, migration 0025), never in the parent of its res-11 cell
# (H3 does not nest exactly: the parent's hexagon may not contain the home). The column is
# one of a fixed set (``resident_cell_column``); the disclosure key names the cell.
_BY_CELL = {
    res: text(
        f"""
        SELECT cell, sum(households) AS households, sum(residents) AS residents,
               sum(rental_units) AS rental_units,
               disclosure_key('h3:' || cell) AS household_key,
               disclosure_key('h3:' || cell) AS rental_key
        FROM (
            SELECT {resident_cell_column(res)} AS cell, count(*) AS households,
                   sum(household_size) AS residents, 0 AS rental_units
            FROM households WHERE grid_id = ANY(:grids) OR :all_grids GROUP BY 1
            UNION ALL
            SELECT {resident_cell_column(res)}, 0, 0, count(*)
            FROM rental_units WHERE grid_id = ANY(:grids) OR :all_grids GROUP BY 1
        ) x GROUP BY cell ORDER BY cell
        """
    )
    for res in RESIDENT_RESOLUTIONS
}


def aggregate(
    session: Session,
    scope: Scope | None,
    *,
    level: str | None = None,
    res: int | None = None,
    min_count: int,
    public_max_res: int = 8,
    bbox: BBox | None = None,
) -> dict[str, Any]:
    """Households, residents and rental units per area (``level``) or per H3 cell (``res``).

    ``bbox`` keeps the features whose area or hexagon meets the box, each with its whole count
    published as without the box (see the module's notes).

    ``scope`` None means an anonymous caller of the public layers: H3 only, at most
    ``public_max_res``, always published. Admins (and a grid's own worker, for features made of
    their grids only) see exact counts; everyone else sees the counts published by
    ``disclosure.publish`` with base ``min_count``: multiples of it, and null (named in
    ``suppressed``) for every field of a record set that publishes as 0.
    """
    if (level is None) == (res is None):
        raise InvalidInputError(gettext("give exactly one of level or res"))
    if level is not None:
        if scope is None:
            raise PermissionDeniedError(gettext("public layers are H3 cells only"))
        if level not in AREA_LEVELS:
            raise InvalidInputError(
                format_message("level must be one of {values}", values=", ".join(AREA_LEVELS))
            )
        box = bbox or BBox(-180.0, -90.0, 180.0, 90.0)
        rows = session.execute(
            _BY_AREA,
            {
                "v": version_in_force(session),
                "level": level,
                "whole_city": bbox is None,
                "minx": box.minx,
                "miny": box.miny,
                "maxx": box.maxx,
                "maxy": box.maxy,
                "srid": SRID,
                "lang": names_language(),  # area names in the request's language (areas.names)
            },
        )
        features = []
        for r in rows:
            if not scope.has_area(r.id):
                continue
            counts = {
                "households": r.households,
                "residents": int(r.residents),
                "rental_units": r.rental_units,
            }
            props = disclosure.publish_or_exact(
                counts,
                exact=disclosure.sees_exact(scope, r.grid_ids or []),
                household_key=int(r.household_key),
                rental_key=int(r.rental_key),
                base=min_count,
            )
            features.append(
                {
                    "type": "Feature",
                    "id": r.id,
                    "geometry": json.loads(r.geometry),
                    "properties": {"id": r.id, "code": r.code, "name": r.name, **props},
                }
            )
        return {"type": "FeatureCollection", "features": features}
    assert res is not None
    top = public_max_res if scope is None else max(H3_RESOLUTIONS)
    if not H3_RESOLUTIONS.start <= res <= top:
        raise InvalidInputError(
            format_message(
                "res must be between {low} and {high} for public layers",
                low=H3_RESOLUTIONS.start,
                high=top,
            )
            if scope is None
            else format_message(
                "res must be between {low} and {high}", low=H3_RESOLUTIONS.start, high=top
            )
        )
    restricted = scope is not None and not scope.unrestricted
    grids = sorted(scope.grid_ids or ()) if restricted and scope is not None else []
    cells = list(session.execute(_BY_CELL[res], {"grids": grids, "all_grids": not restricted}))
    if bbox is not None and cells:  # hexagons are tested in Python (no H3 in the database)
        keep = cells_in_bbox([int(r.cell) for r in cells], bbox)
        cells = [r for r, kept in zip(cells, keep, strict=True) if kept]
    # The cells hold the records of the caller's whole jurisdiction (or of the city).
    exact = disclosure.sees_exact(scope, None)
    features = []
    for r in cells:
        counts = {
            "households": int(r.households),
            "residents": int(r.residents),
            "rental_units": int(r.rental_units),
        }
        props = disclosure.publish_or_exact(
            counts,
            exact=exact,
            household_key=int(r.household_key),
            rental_key=int(r.rental_key),
            base=min_count,
        )
        features.append(cell_feature(int(r.cell), props))
    return {"type": "FeatureCollection", "features": features}
