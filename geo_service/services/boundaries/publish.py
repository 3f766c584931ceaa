"""Versioned boundary sets: list, validate, publish (with re-attribution and crosswalk), diff.

A version is drafted by an import, checked by ``validate_version``, and made current by
``publish_version``. Incidents keep the grid of the version in force when they were reported;
households, rental units and responders follow the current version. Publishing re-attributes
them set-based -- one SQL statement per table -- and records a crosswalk of old grid -> new grid
counts per entity.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from geo_service.db.bulk import lift_statement_timeout
from geo_service.errors import ConflictError, InvalidInputError, NotFoundError
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope

SLIVER_M2 = 50.0
TOLERANCE_M2 = 1.0  # overlaps, gaps and overhangs below this are float noise, not findings
MAX_LISTED = 200


def list_versions(engine: Engine) -> list[dict[str, Any]]:
    """Every boundary version, newest first, with its area counts per level."""
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    """
            SELECT v.id, v.name, v.status, v.effective_from, v.effective_to, v.notes,
                   v.created_at,
                   coalesce(jsonb_object_agg(c.level, c.n) FILTER (WHERE c.level IS NOT NULL),
                            '{}'::jsonb) AS areas
            FROM boundary_versions v
            LEFT JOIN (SELECT version_id, level, count(*) AS n FROM areas
                       GROUP BY version_id, level) c ON c.version_id = v.id
            GROUP BY v.id ORDER BY v.id DESC
            """
                )
            )
            .mappings()
            .all()
        )
    return [_version_dict(r) for r in rows]


def _version_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("effective_from", "effective_to", "created_at"):
        out[key] = out[key].isoformat() if out.get(key) else None
    return out


def _version(conn: Connection, version_id: int) -> dict[str, Any]:
    row = (
        conn.execute(text("SELECT * FROM boundary_versions WHERE id = :v"), {"v": version_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"boundary version {version_id} does not exist")
    return dict(row)


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
        version = _version(conn, version_id)
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


def _reattribute_sql(table: str, grid_col: str, point_expr: str, where: str, key: str) -> str:
    """One statement: move ``table`` rows to the new version's grids, log the crosswalk (with
    the moved records' disclosure key sum, ``key``, for households and rental units)."""
    return f"""
        WITH moved AS (
            SELECT t.id, t.{grid_col} AS old_grid, {key} AS dc_key,
                   (SELECT a.id FROM areas a
                    WHERE a.version_id = :new AND a.level = 'grid'
                      AND ST_Intersects(a.geom, {point_expr})
                    ORDER BY a.id LIMIT 1) AS new_grid
            FROM {table} t {where}
        ), updated AS (
            UPDATE {table} t SET {grid_col} = m.new_grid
            FROM moved m
            WHERE t.id = m.id AND t.{grid_col} IS DISTINCT FROM m.new_grid
            RETURNING t.id
        )
        INSERT INTO boundary_crosswalks
            (from_version_id, to_version_id, entity, old_grid_id, new_grid_id, count, key_sum)
        SELECT :old, :new, '{table}', old_grid, new_grid, count(*), sum(dc_key)
        FROM moved GROUP BY old_grid, new_grid
        RETURNING count,
            -- a grid keeps its identity across versions through its code, not its row id
            (SELECT o.code FROM areas o WHERE o.id = old_grid_id)
              IS DISTINCT FROM (SELECT n.code FROM areas n WHERE n.id = new_grid_id) AS moved,
            key_sum
    """


_REATTRIBUTIONS = (
    ("households", "grid_id", "t.location", "", "t.dc_key"),
    ("rental_units", "grid_id", "t.location", "", "t.dc_key"),
    # A responder's home grid follows the grid that now holds its old home grid's interior.
    (
        "responders",
        "home_grid_id",
        "(SELECT ST_PointOnSurface(g.geom) FROM areas g WHERE g.id = t.home_grid_id)",
        "WHERE t.home_grid_id IS NOT NULL",
        "NULL::bigint",
    ),
    (
        "incidents",
        "grid_id",
        "t.location",
        "WHERE t.reported_at >= :effective_from",
        "NULL::bigint",
    ),
)


def publish_version(
    engine: Engine,
    version_id: int,
    effective_from: datetime,
    *,
    actor: str,
    force: bool = False,
    exact: bool = True,
    min_count: int = 5,
) -> dict[str, Any]:
    """Make a validated draft current from ``effective_from``; re-attribute and crosswalk.

    The audit log records the exact moves; the returned household and rental-unit totals are
    published through ``disclosure`` (base ``min_count``) unless ``exact``.
    """
    if effective_from.tzinfo is None:
        raise InvalidInputError("effective_from must carry a timezone offset")
    if effective_from > datetime.now(UTC) + timedelta(minutes=5):
        raise InvalidInputError(
            "effective_from lies in the future; scheduled switch-overs are not supported yet: "
            "publish on the day the boundaries take effect"
        )
    report = validate_version(engine, version_id)
    with engine.begin() as conn:
        lift_statement_timeout(conn)  # re-attribution touches every household and incident
        version = _version(conn, version_id)
        if version["status"] != "draft":
            raise ConflictError(
                f"boundary version {version_id} is {version['status']}, not a draft"
            )
        if not report["areas"].get("grid"):
            raise ConflictError(f"boundary version {version_id} has no grids")
        if not report["valid"] and not force:
            raise ConflictError(
                f"boundary version {version_id} does not validate: "
                + ", ".join(f"{k}: {v}" for k, v in report["summary"].items() if v)
                + " (publish with force to override)",
                validation=report["summary"],
            )
        current = conn.execute(
            text(
                "SELECT id, effective_from FROM boundary_versions WHERE status = 'published' "
                "AND effective_to IS NULL ORDER BY effective_from DESC LIMIT 1 FOR UPDATE"
            )
        ).first()
        if current is not None and current.effective_from >= effective_from:
            raise ConflictError(
                f"effective_from must be after {current.effective_from.isoformat()}, when "
                f"the current version {current.id} took effect"
            )
        old_id = current.id if current is not None else None
        if current is not None:
            conn.execute(
                text(
                    "UPDATE boundary_versions SET status = 'retired', "
                    "effective_to = :t WHERE id = :v"
                ),
                {"t": effective_from, "v": old_id},
            )
        conn.execute(
            text(
                "UPDATE boundary_versions SET status = 'published', "
                "effective_from = :t WHERE id = :v"
            ),
            {"t": effective_from, "v": version_id},
        )
        moves: dict[str, dict[str, int]] = {}
        shown: dict[str, dict[str, int | None]] = {}
        for table, grid_col, point_expr, where, key in _REATTRIBUTIONS:
            rows = conn.execute(
                text(_reattribute_sql(table, grid_col, point_expr, where, key)),
                {"new": version_id, "old": old_id, "effective_from": effective_from},
            ).all()
            moves[table] = {
                # Positional: a Row is a tuple, so .count would be tuple.count.
                "total": sum(int(r[0]) for r in rows),
                "moved": sum(int(r[0]) for r in rows if r[1]),
            }
            shown[table] = dict(moves[table])
            measure = {"households": "households", "rental_units": "rental_units"}.get(table)
            if measure and not exact:
                for name, picked in (("total", rows), ("moved", [r for r in rows if r[1]])):
                    shown[table][name] = disclosure.publish(
                        {measure: sum(int(r[0]) for r in picked)},
                        household_key=sum(int(r[2] or 0) for r in picked),
                        rental_key=sum(int(r[2] or 0) for r in picked),
                        base=min_count,
                    )[measure]
        conn.execute(
            text(
                "INSERT INTO audit_log (who, action, entity, entity_id, diff) VALUES "
                "(:who, 'publish', 'boundary_version', :v, CAST(:diff AS jsonb))"
            ),
            {
                "who": actor,
                "v": str(version_id),
                "diff": json.dumps(
                    {
                        "previous": old_id,
                        "effective_from": effective_from.isoformat(),
                        "moves": moves,
                    }
                ),
            },
        )
    return {
        "version_id": version_id,
        "previous_version_id": old_id,
        "effective_from": effective_from.isoformat(),
        "reattributed": shown,
    }


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
        _version(conn, a)
        _version(conn, b)
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
                   count, key_sum
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
        row = {k: v for k, v in m.items() if k != "key_sum"}
        measure = _COUNTED_ENTITIES.get(m["entity"])
        if measure is None or scope is None or disclosure.sees_exact(scope, grids):
            out.append(row | {"suppressed": []})
            continue
        key = int(m["key_sum"] or 0)
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


# --- What a user bound to an area sees of versions (issue 13) -------------------------------
# Versions are city-wide objects, but an area-bound dispatcher or analyst needs to know which
# exist and what changes in their part of the city. So they see, of each version, only the
# areas lying in their jurisdiction -- at or below its level, with their interior point inside
# it as drawn now (the rule of ``access.scope_for``, applied to every version) -- and a
# version with no such area does not exist for them (404, worded as a missing id).

LEVELS = ("district", "street", "community", "grid")

_IN_JURISDICTION = text(
    """
    SELECT a.version_id, a.code, a.level FROM areas a, areas j
    WHERE j.id = :root AND a.version_id = ANY(:versions) AND a.geom && j.geom
      AND array_position(CAST(:levels AS text[]), CAST(a.level AS text))
          >= array_position(CAST(:levels AS text[]), CAST(j.level AS text))
      AND ST_Intersects(j.geom, ST_PointOnSurface(a.geom))
    """
)
# The area codes each validation finding names: a finding is shown only when all lie inside.
_FINDING_CODES = {
    "invalid_geometries": ("code",),
    "sibling_overlaps": ("a", "b"),
    "gaps_in_parent": ("parent",),
    "children_crossing_parent": ("child", "parent"),
    "slivers": ("code",),
    "unreached_areas": ("code",),
}


def visible_area_codes(
    engine: Engine, scope: Scope, version_ids: list[int]
) -> dict[int, dict[str, str]] | None:
    """Per version, the codes (and levels) of its areas in the caller's jurisdiction; None
    for callers bound to no area (they see everything)."""
    if scope.unrestricted:
        return None
    found: dict[int, dict[str, str]] = {v: {} for v in version_ids}
    if scope.area_id is None:  # the user's area is gone from the current version
        return found
    with engine.connect() as conn:
        rows = conn.execute(
            _IN_JURISDICTION,
            {"root": scope.area_id, "versions": list(version_ids), "levels": list(LEVELS)},
        ).all()
    for version_id, code, level in rows:
        found[version_id][code] = level
    return found


def require_visible_version(codes: dict[int, dict[str, str]] | None, version_id: int) -> None:
    """404, worded as for a missing id, for a version with no area in the jurisdiction."""
    if codes is not None and not codes.get(version_id):
        raise NotFoundError(f"boundary version {version_id} does not exist")


def list_versions_for(engine: Engine, scope: Scope) -> list[dict[str, Any]]:
    """``list_versions`` as the caller may see it: area counts of their jurisdiction only,
    and no version without an area in it."""
    versions = list_versions(engine)
    codes = visible_area_codes(engine, scope, [v["id"] for v in versions])
    if codes is None:
        return versions
    out = []
    for v in versions:
        mine = codes.get(v["id"])
        if mine:
            counts: dict[str, int] = {}
            for level in mine.values():
                counts[level] = counts.get(level, 0) + 1
            out.append({**v, "areas": counts, "restricted_to": scope.principal.area_code})
    return out


def validate_version_for(engine: Engine, version_id: int, scope: Scope) -> dict[str, Any]:
    """``validate_version`` as the caller may see it: counts and findings of the areas in
    their jurisdiction (a finding that names an area outside it is left out)."""
    codes = visible_area_codes(engine, scope, [version_id])
    require_visible_version(codes, version_id)
    report = validate_version(engine, version_id)
    if codes is None:
        return report
    mine = codes[version_id]
    findings = {
        name: [
            item
            for item in items
            if all(item.get(k) in mine for k in _FINDING_CODES.get(name, ("code",)))
        ]
        for name, items in report["findings"].items()
    }
    counts: dict[str, int] = {}
    for level in mine.values():
        counts[level] = counts.get(level, 0) + 1
    return {
        **report,
        "areas": counts,
        "valid": not any(findings.values()) and bool(counts),
        "findings": findings,
        "summary": {name: len(items) for name, items in findings.items()},
        "restricted_to": scope.principal.area_code,
    }


def restrict_diff(diff: dict[str, Any], codes: dict[int, dict[str, str]] | None) -> dict[str, Any]:
    """A diff's area changes cut to the caller's jurisdiction (``visible_area_codes`` of
    both versions; None: unchanged). Entity moves are left as ``diff_versions`` scoped them."""
    if codes is None:
        return diff
    a, b = codes.get(diff["from_version"], {}), codes.get(diff["to_version"], {})
    changed = [c for c in diff["changed"] if c["code"] in a and c["code"] in b]
    return {
        **diff,
        "added": [x for x in diff["added"] if x["code"] in b],
        "removed": [x for x in diff["removed"] if x["code"] in a],
        "changed": changed,
        "unchanged": len(a.keys() & b.keys()) - len(changed),
    }
