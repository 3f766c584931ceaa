"""Comparing boundary versions: areas added, removed and changed by code, and the crosswalk
of entity moves that publishing recorded (counts of homes published through disclosure)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.catalogue import read_version
from geo_service.services.boundaries.validation import TOLERANCE_M2


def diff_versions(
    engine: Engine, a: int, b: int, *, scope: Scope | None = None, min_count: int = 5
) -> dict[str, Any]:
    """Areas added, removed and changed (by code) from version a to b, and entity moves.

    Moves of households and rental units are counts of people's homes: each is published
    through ``disclosure`` (rounded to base ``min_count`` with the moved records' key sum; null
    and listed in its ``suppressed`` when that is 0) unless the caller sees exact counts of
    both grids. A caller bound to an area sees only the moves into or out of its grids.
    ``scope`` None (internal callers) sees every move exactly.
    """
    with engine.connect() as conn:
        read_version(conn, a)
        read_version(conn, b)
        rows = (
            conn.execute(
                text(
                    """
            SELECT coalesce(x.code, y.code) AS code, coalesce(x.level, y.level) AS level,
                   x.id AS a_id, y.id AS b_id, x.area_m2 AS a_area, y.area_m2 AS b_area,
                   CASE WHEN x.id IS NOT NULL AND y.id IS NOT NULL
                             AND NOT ST_Equals(x.geom, y.geom)
                        THEN ST_Area(ST_SymDifference(x.geom, y.geom)::geography) END
                     AS changed_m2
            FROM (SELECT * FROM areas WHERE version_id = :a) x
            FULL JOIN (SELECT * FROM areas WHERE version_id = :b) y ON x.code = y.code
            ORDER BY 1
            """
                ),
                {"a": a, "b": b},
            )
            .mappings()
            .all()
        )
        moves = (
            conn.execute(
                text(
                    """
            SELECT entity, old_grid_id, og.code AS old_code, new_grid_id, ng.code AS new_code,
                   count,
                   disclosure_key('move:' || entity || ':' || coalesce(old_grid_id::text, 'None')
                                  || ':' || coalesce(new_grid_id::text, 'None')) AS cell_key
            FROM boundary_crosswalks c
            LEFT JOIN areas og ON og.id = c.old_grid_id
            LEFT JOIN areas ng ON ng.id = c.new_grid_id
            WHERE from_version_id = :a AND to_version_id = :b
              AND og.code IS DISTINCT FROM ng.code
            ORDER BY entity, count DESC
            """
                ),
                {"a": a, "b": b},
            )
            .mappings()
            .all()
        )
    added = [
        {"code": r["code"], "level": r["level"], "area_m2": r["b_area"]}
        for r in rows
        if r["a_id"] is None
    ]
    removed = [
        {"code": r["code"], "level": r["level"], "area_m2": r["a_area"]}
        for r in rows
        if r["b_id"] is None
    ]
    changed = [
        {
            "code": r["code"],
            "level": r["level"],
            "area_before_m2": r["a_area"],
            "area_after_m2": r["b_area"],
            "area_change_m2": round(r["b_area"] - r["a_area"], 1),
            "symmetric_difference_m2": round(r["changed_m2"], 1),
        }
        for r in rows
        if r["changed_m2"] is not None and r["changed_m2"] > TOLERANCE_M2
    ]
    return {
        "from_version": a,
        "to_version": b,
        "added": added,
        "removed": removed,
        "changed": changed,
        "unchanged": sum(1 for r in rows if r["a_id"] and r["b_id"]) - len(changed),
        "entity_moves": _published_moves(moves, scope, min_count),
    }


_COUNTED_ENTITIES = {"households": "households", "rental_units": "rental_units"}


def _published_moves(moves: Any, scope: Scope | None, min_count: int) -> list[dict[str, Any]]:
    """The crosswalk rows a caller may see, counts of homes published (see ``diff_versions``)."""
    out = []
    for m in moves:
        grids = [g for g in (m["old_grid_id"], m["new_grid_id"]) if g is not None]
        if scope is not None and not any(scope.has_grid(g) for g in grids):
            continue
        row = {k: v for k, v in m.items() if k != "cell_key"}
        measure = _COUNTED_ENTITIES.get(m["entity"])
        if measure is None or scope is None or disclosure.sees_exact(scope, grids):
            out.append(row | {"suppressed": []})
            continue
        key = int(m["cell_key"])  # disclosure.move_identity, computed in SQL
        shown = disclosure.publish(
            {measure: m["count"]}, household_key=key, rental_key=key, base=min_count
        )
        row["count"] = shown[measure]
        row["suppressed"] = ["count"] if shown[measure] is None else []
        out.append(row)
    # Order by what is shown: the exact order would tell apart moves published alike.
    out.sort(
        key=lambda r: (r["entity"], -(r["count"] or 0), str(r["old_code"]), str(r["new_code"]))
    )
    return out
