"""Validating a boundary version: invalid geometries, sibling overlaps, gaps inside parents,
children crossing their parent, slivers and unreached areas, each a set-based query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from geo_service.services.boundaries.catalogue import read_version

SLIVER_M2 = 50.0
TOLERANCE_M2 = 1.0  # overlaps, gaps and overhangs below this are float noise, not findings
MAX_LISTED = 200


_CHECKS = {
    "invalid_geometries": """
        SELECT code, level, ST_IsValidReason(geom) AS reason FROM areas
        WHERE version_id = :v AND NOT ST_IsValid(geom) ORDER BY code LIMIT :n""",
    "sibling_overlaps": """
        SELECT a.code AS a, b.code AS b, a.level,
               round(ST_Area(ST_Intersection(a.geom, b.geom)::geography)::numeric, 1) AS area_m2
        FROM areas a JOIN areas b
          ON b.version_id = a.version_id AND b.level = a.level AND b.id > a.id
         AND b.parent_id IS NOT DISTINCT FROM a.parent_id
         -- interiors meet in 2-D: overlap, containment and duplicates alike (ST_Overlaps
         -- is false for identical or nested polygons)
         AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, '2********')
        WHERE a.version_id = :v
          AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > :tol
        ORDER BY area_m2 DESC LIMIT :n""",
    "gaps_in_parent": """
        SELECT p.code AS parent, p.level,
               round(ST_Area(ST_Difference(p.geom, ST_Union(c.geom))::geography)::numeric, 1)
                 AS area_m2
        FROM areas p JOIN areas c ON c.parent_id = p.id
        WHERE p.version_id = :v
        GROUP BY p.id, p.code, p.level, p.geom
        HAVING ST_Area(ST_Difference(p.geom, ST_Union(c.geom))::geography) > :tol
        ORDER BY area_m2 DESC LIMIT :n""",
    "children_crossing_parent": """
        SELECT c.code AS child, p.code AS parent,
               round(ST_Area(ST_Difference(c.geom, p.geom)::geography)::numeric, 1) AS area_m2
        FROM areas c JOIN areas p ON p.id = c.parent_id
        WHERE c.version_id = :v AND NOT ST_CoveredBy(c.geom, p.geom)
          AND ST_Area(ST_Difference(c.geom, p.geom)::geography) > :tol
        ORDER BY area_m2 DESC LIMIT :n""",
    "slivers": """
        SELECT code, level, round(area_m2::numeric, 1) AS area_m2 FROM areas
        WHERE version_id = :v AND area_m2 < :sliver ORDER BY area_m2 LIMIT :n""",
    "unreached_areas": """
        SELECT p.code, p.level FROM areas p
        WHERE p.version_id = :v
          AND p.level <> (SELECT level FROM areas WHERE version_id = :v
                          ORDER BY array_position(ARRAY['district','street','community','grid'],
                                                  level::text) DESC LIMIT 1)
          AND NOT EXISTS (SELECT 1 FROM areas c WHERE c.parent_id = p.id)
        ORDER BY p.code LIMIT :n""",
}


def validate_version(engine: Engine, version_id: int) -> dict[str, Any]:
    """Report invalid geometries, sibling overlaps, gaps inside parents, children crossing
    their parent, slivers (< 50 m²) and unreached areas (parents no child reaches).
    """
    with engine.connect() as conn:
        version = read_version(conn, version_id)
        params = {"v": version_id, "n": MAX_LISTED, "tol": TOLERANCE_M2, "sliver": SLIVER_M2}
        findings = {
            name: [dict(r) for r in conn.execute(text(sql), params).mappings()]
            for name, sql in _CHECKS.items()
        }
        counts: dict[str, int] = dict(
            conn.execute(
                text("SELECT level, count(*) FROM areas WHERE version_id = :v GROUP BY level"),
                {"v": version_id},
            ).all()
        )
    for items in findings.values():
        for item in items:
            if "area_m2" in item and item["area_m2"] is not None:
                item["area_m2"] = float(item["area_m2"])
    return {
        "version_id": version_id,
        "status": version["status"],
        "areas": counts,
        "valid": not any(findings.values()) and bool(counts),
        "findings": findings,
        "summary": {name: len(items) for name, items in findings.items()},
    }
