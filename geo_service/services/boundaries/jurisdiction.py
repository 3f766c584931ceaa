"""What a user bound to an area sees of boundary versions (issue 13).

Versions are city-wide objects, but an area-bound dispatcher or analyst needs to know which
exist and what changes in their part of the city. So they see, of each version, only the
areas lying in their jurisdiction -- at or below its level, with their interior point inside
it as drawn now (the rule of ``access.scope_for``, applied to every version) -- and a
version with no such area does not exist for them (404, worded as a missing id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from geo_service.errors import NotFoundError
from geo_service.i18n import format_message
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.catalogue import list_versions
from geo_service.services.boundaries.validation import validate_version

LEVELS = ("district", "street", "community", "grid")

_IN_JURISDICTION = text(
    """
    SELECT a.version_id, a.code, a.level, a.id FROM areas a, areas j
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
        rows = _in_jurisdiction(conn, scope.area_id, version_ids)
    for version_id, code, level, _ in rows:
        found[version_id][code] = level
    return found


def visible_area_ids(
    db: Session | Connection, scope: Scope, version_id: int
) -> dict[int, str] | None:
    """The ids (and levels) of the areas of ``version_id`` in the caller's jurisdiction, by
    the rule of ``visible_area_codes``, read on the caller's session or connection; None for
    callers bound to no area (they see everything)."""
    if scope.unrestricted:
        return None
    if scope.area_id is None:
        return {}
    return {
        area_id: level for _, _, level, area_id in _in_jurisdiction(db, scope.area_id, [version_id])
    }


def _in_jurisdiction(db: Session | Connection, root: int, version_ids: list[int]) -> list[Any]:
    return list(
        db.execute(
            _IN_JURISDICTION,
            {"root": root, "versions": list(version_ids), "levels": list(LEVELS)},
        ).all()
    )


def require_visible_version(codes: dict[int, dict[str, str]] | None, version_id: int) -> None:
    """404, worded as for a missing id, for a version with no area in the jurisdiction."""
    if codes is not None and not codes.get(version_id):
        raise NotFoundError(
            format_message("boundary version {version_id} does not exist", version_id=version_id)
        )


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
