"""The write of a proposal: a draft boundary version that copies the version in force, with
the redrawn parents' free grids replaced by the new ones, and its audit row."""

from __future__ import annotations

import json
from typing import Any

import shapely
from sqlalchemy import Connection, text

from geo_service.db.sql import sql
from geo_service.services.access.audit import record_audit
from geo_service.services.planning.metrics import NewGrid
from geo_service.vocabulary import AREA_LEVELS

_NEW_DRAFT = text(
    "INSERT INTO boundary_versions (name, status, notes) VALUES (:n, 'draft', :notes) RETURNING id"
)
_IDMAP = text("CREATE TEMP TABLE idmap (old int PRIMARY KEY, new int) ON COMMIT DROP")
_MAP_LEVEL = text(
    "INSERT INTO idmap SELECT o.id, n.id FROM areas o JOIN areas n "
    "ON n.version_id = :d AND n.code = o.code WHERE o.version_id = :v "
    "AND o.level = :level"
)


def draft_name(parent_codes: list[str], name: str | None) -> str:
    """The draft's name: the one asked for, or "proposal for" the first three parents."""
    return name or f"proposal for {', '.join(parent_codes[:3])}" + (
        "…" if len(parent_codes) > 3 else ""
    )


NOTES_MAX = 100_000  # characters of a draft's notes


def draft_notes(metrics: dict[str, Any]) -> str:
    """A draft's notes: its band status and tolerance (publishing reads them), and the
    proposal's metrics, without the per-grid figures when they would not fit (the audit row
    of the proposal keeps them all). Always valid JSON."""
    head = {"status": metrics.get("status"), "tolerance": metrics.get("tolerance")}
    notes = json.dumps({**head, "proposal": metrics}, default=str)
    if len(notes) <= NOTES_MAX:
        return notes
    brief = {k: v for k, v in metrics.items() if k != "parents"}
    brief["worst_max_over_mean"] = max(
        (p["after"]["max_over_mean"] for p in metrics.get("parents", [])), default=None
    )
    notes = json.dumps({**head, "proposal": brief}, default=str)
    if len(notes) <= NOTES_MAX:
        return notes
    return json.dumps({**head, "proposal": {"worst_max_over_mean": brief["worst_max_over_mean"]}})


def write_draft_version(
    conn: Connection,
    *,
    version: int,
    name: str,
    new_grids: list[NewGrid],
    replaced: list[int],
    actor: str,
    metrics: dict[str, Any],
    request: dict[str, Any],
) -> int:
    """Write a draft: every area of ``version`` except the ``replaced`` grids, plus the new
    grids, and audit it; return the draft's id. Ids are remapped level by level through the
    (version, code) key. Runs in the caller's transaction."""
    draft = conn.execute(_NEW_DRAFT, {"n": name[:200], "notes": draft_notes(metrics)}).scalar_one()
    conn.execute(_IDMAP)
    for level in AREA_LEVELS:
        conn.execute(
            sql("planning_copy_areas"),
            {"d": draft, "v": version, "level": level, "replaced": replaced},
        )
        conn.execute(_MAP_LEVEL, {"d": draft, "v": version, "level": level})
    for grid in new_grids:
        conn.execute(
            sql("planning_insert_grid"),
            {
                "d": draft,
                "code": grid.code,
                "name": grid.name,
                "wkb": shapely.to_wkb(grid.geom),
                "parent": grid.parent.id,
                "props": json.dumps({"workload_index": round(float(grid.load), 2)}),
            },
        )
    record_audit(
        conn,
        who=actor,
        action="propose",
        entity="boundary_version",
        entity_id=str(draft),
        diff={"request": request, "metrics": metrics},
    )
    return int(draft)
