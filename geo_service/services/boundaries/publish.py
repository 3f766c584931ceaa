"""Publishing a boundary version: make a validated draft current, re-attribute, crosswalk.

A version is drafted by an import, checked by ``validate_version``, and made current by
``publish_version``. Incidents keep the grid of the version in force when they were reported;
households, rental units and responders follow the current version. Publishing re-attributes
them set-based -- one SQL statement per table -- and records a crosswalk of old grid -> new grid
counts per entity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from geo_service.db.bulk import lift_statement_timeout
from geo_service.errors import ConflictError, InvalidInputError
from geo_service.services.access import disclosure
from geo_service.services.access.audit import record_audit
from geo_service.services.boundaries.catalogue import read_version
from geo_service.services.boundaries.validation import validate_version


def _reattribute_sql(table: str, grid_col: str, point_expr: str, where: str) -> str:
    """One statement: move ``table`` rows to the new version's grids and log the crosswalk."""
    return f"""
        WITH moved AS (
            SELECT t.id, t.{grid_col} AS old_grid,
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
            (from_version_id, to_version_id, entity, old_grid_id, new_grid_id, count)
        SELECT :old, :new, '{table}', old_grid, new_grid, count(*)
        FROM moved GROUP BY old_grid, new_grid
        RETURNING count,
            -- a grid keeps its identity across versions through its code, not its row id
            (SELECT o.code FROM areas o WHERE o.id = old_grid_id)
              IS DISTINCT FROM (SELECT n.code FROM areas n WHERE n.id = new_grid_id) AS moved
    """


_REATTRIBUTIONS = (
    ("households", "grid_id", "t.location", ""),
    ("rental_units", "grid_id", "t.location", ""),
    # A responder's home grid follows the grid that now holds its old home grid's interior.
    (
        "responders",
        "home_grid_id",
        "(SELECT ST_PointOnSurface(g.geom) FROM areas g WHERE g.id = t.home_grid_id)",
        "WHERE t.home_grid_id IS NOT NULL",
    ),
    (
        "incidents",
        "grid_id",
        "t.location",
        "WHERE t.reported_at >= :effective_from",
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
        version = read_version(conn, version_id)
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
        for table, grid_col, point_expr, where in _REATTRIBUTIONS:
            rows = conn.execute(
                text(_reattribute_sql(table, grid_col, point_expr, where)),
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
                    key = disclosure.identity_key(conn, f"publish:{version_id}:{table}:{name}")
                    shown[table][name] = disclosure.publish(
                        {measure: sum(int(r[0]) for r in picked)},
                        household_key=key,
                        rental_key=key,
                        base=min_count,
                    )[measure]
        record_audit(
            conn,
            who=actor,
            action="publish",
            entity="boundary_version",
            entity_id=str(version_id),
            diff={
                "previous": old_id,
                "effective_from": effective_from.isoformat(),
                "moves": moves,
            },
        )
    return {
        "version_id": version_id,
        "previous_version_id": old_id,
        "effective_from": effective_from.isoformat(),
        "reattributed": shown,
    }
