"""Publishing a boundary version: make a validated draft current, re-attribute, crosswalk.

A version is drafted by an import, checked by ``validate_version``, and made current by
``publish_version``. Incidents keep the grid of the version in force when they were reported;
households, rental units and responders follow the current version. Publishing re-attributes
them set-based -- one SQL statement per table -- and records a crosswalk of old grid -> new grid
counts per entity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from geo_service.db.bulk import lift_statement_timeout
from geo_service.errors import ConflictError
from geo_service.i18n import format_message, gettext
from geo_service.instants import local_instant
from geo_service.runtime.caches import PrincipalCache
from geo_service.services.access import disclosure
from geo_service.services.access.audit import record_audit
from geo_service.services.boundaries.catalogue import read_version
from geo_service.services.boundaries.rehoming import rebind_users, rehome_grid_workers
from geo_service.services.boundaries.validation import validate_version

# The grids the new version keeps as they were (same code, same polygon: a copied polygon is
# the same bytes, compared before the costlier ST_Equals): their rows of the new version take
# over the old rows' ids (``_keep_grid_ids``), so the records filed under them need no change.
_KEPT = text(
    """
    CREATE TEMPORARY TABLE publish_kept ON COMMIT DROP AS
    SELECT o.id AS old_id, n.id AS new_id,
           nextval(pg_get_serial_sequence('areas', 'id'))::int AS fresh_id
    FROM areas o
    JOIN areas n ON n.version_id = :new AND n.level = 'grid' AND n.code = o.code
    WHERE o.version_id = :old AND o.level = 'grid' AND o.geom ~= n.geom
      AND (ST_AsBinary(o.geom) = ST_AsBinary(n.geom) OR ST_Equals(o.geom, n.geom))
    """
)
_SWAP = (
    # checked at commit: in between, records point at ids no row holds
    "SET CONSTRAINTS incidents_grid_id_fkey, responders_home_grid_id_fkey, "
    "households_grid_id_fkey, rental_units_grid_id_fkey, areas_parent_id_fkey DEFERRED",
    "UPDATE areas a SET id = k.fresh_id FROM publish_kept k WHERE a.id = k.old_id",
    "UPDATE areas a SET id = k.old_id FROM publish_kept k WHERE a.id = k.new_id",
    # earlier crosswalks keep naming the old version's rows
    "UPDATE boundary_crosswalks c SET old_grid_id = k.fresh_id FROM publish_kept k "
    "WHERE c.old_grid_id = k.old_id",
    "UPDATE boundary_crosswalks c SET new_grid_id = k.fresh_id FROM publish_kept k "
    "WHERE c.new_grid_id = k.old_id",
    "SET CONSTRAINTS incidents_grid_id_fkey, responders_home_grid_id_fkey, "
    "households_grid_id_fkey, rental_units_grid_id_fkey, areas_parent_id_fkey IMMEDIATE",
)


# The new version's grids that are not kept: where the records of redrawn grids go (searched
# there rather than among every grid of the city, with an index of its own).
_REDRAWN = (
    "CREATE TEMPORARY TABLE publish_redrawn ON COMMIT DROP AS SELECT id, geom FROM areas "
    "WHERE version_id = :new AND level = 'grid' AND id NOT IN (SELECT old_id FROM publish_kept)",
    "CREATE INDEX ON publish_redrawn USING gist (geom)",
    "ANALYZE publish_redrawn",
)

# the crosswalk of the grid workers whose grid was kept (they stay: ``_keep_grid_ids``)
_KEPT_WORKERS = text(
    "INSERT INTO boundary_crosswalks "
    "(from_version_id, to_version_id, entity, old_grid_id, new_grid_id, count) "
    "SELECT :old, :new, 'responders', k.fresh_id, k.old_id, count(*) FROM responders r "
    "JOIN publish_kept k ON k.old_id = r.home_grid_id WHERE r.kind = 'grid_worker' "
    "GROUP BY k.fresh_id, k.old_id"
)


def _keep_grid_ids(conn: Connection, old_id: int | None, new_id: int) -> int:
    """Give the new version's kept grids the old rows' ids (the old rows take fresh ones), so
    that households, rental units, responders and incidents filed under a kept grid are filed
    under the new version without a write; return how many grids were kept. The temporary
    table ``publish_kept`` lasts for the transaction: ``old_id`` is now the kept grid's id in
    the new version, ``fresh_id`` the old version's row."""
    conn.execute(text("DROP TABLE IF EXISTS publish_kept"))
    conn.execute(_KEPT, {"old": old_id, "new": new_id})
    for statement in _SWAP:
        conn.execute(text(statement))
    # the new version's rows were written in this transaction: without statistics the planner
    # takes them for one row and joins them by nested loops (2.4 s for 1,500 grid workers);
    # as the table's owner (migration 0031), which the application role is not
    conn.execute(text("SELECT analyze_areas()"))
    conn.execute(text("DROP TABLE IF EXISTS publish_redrawn"))
    for statement in _REDRAWN:
        conn.execute(text(statement), {"new": new_id})
    return int(conn.execute(text("SELECT count(*) FROM publish_kept")).scalar_one())


def _reattribute_sql(table: str, grid_col: str, point_expr: str, extra: str) -> str:
    """One statement: move the ``table`` rows filed under a redrawn grid of the old version (or
    under none) to the new version's grids by point in polygon, and log the crosswalk, kept
    grids included (their rows did not move: ``_keep_grid_ids``)."""
    return f"""
        WITH moved AS (
            SELECT t.id, t.{grid_col} AS old_grid,
                   CASE WHEN t.{grid_col} IS NOT NULL
                   -- a record of a redrawn grid lies in a redrawn grid: a small table to search
                   THEN (SELECT c.id FROM publish_redrawn c
                         WHERE ST_Intersects(c.geom, {point_expr}) ORDER BY c.id LIMIT 1)
                   ELSE (SELECT a.id FROM areas a
                         WHERE a.version_id = :new AND a.level = 'grid'
                           AND ST_Intersects(a.geom, {point_expr})
                         ORDER BY a.id LIMIT 1) END AS new_grid
            FROM {table} t
            WHERE {extra} AND (t.{grid_col} IS NULL OR t.{grid_col} IN (
                SELECT id FROM areas WHERE version_id = :old AND level = 'grid'))
        ), updated AS (
            UPDATE {table} t SET {grid_col} = m.new_grid
            FROM moved m
            WHERE t.id = m.id AND t.{grid_col} IS DISTINCT FROM m.new_grid
            RETURNING t.id
        ), kept AS (
            SELECT k.fresh_id AS old_grid, k.old_id AS new_grid, count(*) AS n
            FROM {table} t JOIN publish_kept k ON k.old_id = t.{grid_col}
            WHERE {extra} GROUP BY 1, 2
        ), counted AS (
            SELECT old_grid, new_grid, count(*) AS n FROM moved GROUP BY old_grid, new_grid
            UNION ALL SELECT old_grid, new_grid, n FROM kept
        )
        INSERT INTO boundary_crosswalks
            (from_version_id, to_version_id, entity, old_grid_id, new_grid_id, count)
        SELECT :old, :new, '{table}', old_grid, new_grid, n FROM counted
        RETURNING count,
            -- a grid keeps its identity across versions through its code, not its row id
            (SELECT o.code FROM areas o WHERE o.id = old_grid_id)
              IS DISTINCT FROM (SELECT n.code FROM areas n WHERE n.id = new_grid_id) AS moved
    """


_REATTRIBUTIONS = (
    ("households", "grid_id", "t.location", "true"),
    ("rental_units", "grid_id", "t.location", "true"),
    # A responder's home grid follows the grid that now holds its old home grid's interior.
    (
        "responders",
        "home_grid_id",
        "(SELECT ST_PointOnSurface(g.geom) FROM areas g WHERE g.id = t.home_grid_id)",
        # grid workers follow their grid by overlap, one a grid (rehoming.py)
        "t.home_grid_id IS NOT NULL AND t.kind <> 'grid_worker'",
    ),
    # incidents stay filed under the grid in force when they were reported (what the grid's
    # worker was accountable for); only those reported since the switch move. Workload counts
    # the history of redrawn grids where it lies (services/planning/workload.py).
    ("incidents", "grid_id", "t.location", "t.reported_at >= :effective_from"),
)


SCHEDULE_AFTER = timedelta(minutes=5)  # further ahead than this, a publish is scheduled
SWITCH_INTERVAL_S = 30  # how often the server looks for scheduled versions that are due


def _schedule(
    conn: Connection,
    version_id: int,
    effective_from: datetime,
    current_id: int | None,
    actor: str,
    override_reason: str | None,
) -> dict[str, Any]:
    """Mark a validated draft ``scheduled`` for ``effective_from`` (audited); move nothing."""
    conn.execute(
        text(
            "UPDATE boundary_versions SET status = 'scheduled', effective_from = :t WHERE id = :v"
        ),
        {"t": effective_from, "v": version_id},
    )
    record_audit(
        conn,
        who=actor,
        action="schedule",
        entity="boundary_version",
        entity_id=str(version_id),
        diff={
            "effective_from": effective_from.isoformat(),
            "replaces": current_id,
            **({"override_reason": override_reason.strip()} if override_reason else {}),
        },
    )
    return {
        "version_id": version_id,
        "previous_version_id": current_id,
        "effective_from": effective_from.isoformat(),
        "scheduled": True,
        "reattributed": {},
    }


def switch_due(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """Publish every scheduled version whose moment has come (by ``now``), oldest first, as
    its scheduler would have at that moment: re-attribution from its ``effective_from``, the
    reason given when it was scheduled, the audit naming who scheduled it. Safe to run from
    several processes: an advisory lock lets one switch at a time."""
    with engine.begin() as conn:
        if not conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext('geo.switch_over'))")
        ).scalar_one():
            return []
        due = conn.execute(
            text(
                "SELECT v.id, v.effective_from, a.who, a.diff->>'override_reason' "
                "FROM boundary_versions v LEFT JOIN LATERAL (SELECT who, diff FROM audit_log "
                "  WHERE action = 'schedule' AND entity = 'boundary_version' "
                "  AND entity_id = v.id::text ORDER BY id DESC LIMIT 1) a ON true "
                "WHERE v.status = 'scheduled' AND v.effective_from <= :now "
                "ORDER BY v.effective_from, v.id"
            ),
            {"now": now},
        ).all()
        done = []
        for version_id, effective_from, who, reason in due:
            try:
                done.append(
                    publish_version(
                        engine,
                        version_id,
                        effective_from,
                        actor=f"switch-over scheduled by {who or 'unknown'}",
                        force=True,  # validated when it was scheduled
                        override_reason=reason,
                        _switching=True,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - one failed switch must not block the rest
                # back to a draft, said in the audit log: never retried forever, never in force
                with engine.begin() as failed:
                    failed.execute(
                        text(
                            "UPDATE boundary_versions SET status = 'draft' "
                            "WHERE id = :v AND status = 'scheduled'"
                        ),
                        {"v": version_id},
                    )
                    record_audit(
                        failed,
                        who="switch-over",
                        action="switch_failed",
                        entity="boundary_version",
                        entity_id=str(version_id),
                        diff={"effective_from": effective_from, "error": str(exc)[:500]},
                    )
    return done


_LOCK_VERSION = text("SELECT 1 FROM boundary_versions WHERE id = :v FOR UPDATE")


def unschedule_version(engine: Engine, version_id: int, *, actor: str) -> dict[str, Any]:
    """Take a scheduled version back to a draft before its moment (audited); 409 unless it is
    scheduled."""
    with engine.begin() as conn:
        version = read_version(conn, version_id)
        if version["status"] != "scheduled":
            raise ConflictError(
                format_message(
                    "boundary version {version_id} is {status}, not scheduled",
                    version_id=version_id,
                    status=version["status"],
                )
            )
        conn.execute(
            text("UPDATE boundary_versions SET status = 'draft' WHERE id = :v"), {"v": version_id}
        )
        record_audit(
            conn,
            who=actor,
            action="unschedule",
            entity="boundary_version",
            entity_id=str(version_id),
            diff={"effective_from": version["effective_from"]},
        )
    return {"version_id": version_id, "status": "draft"}


def _proposal_of(version: Mapping[str, Any]) -> dict[str, Any]:
    """What a proposal noted on its draft (``status``, ``tolerance``, the ``worst`` max/mean),
    or {} for drafts no proposal left (an import)."""
    try:
        notes = json.loads(version.get("notes") or "{}")
    except ValueError:
        # notes that name a proposal but do not parse: fail closed (ask for a reason)
        noted = '"proposal"' in str(version.get("notes"))
        return {"status": "outside", "tolerance": None, "worst": None} if noted else {}
    if not isinstance(notes, dict) or not isinstance(notes.get("proposal"), dict):
        return {}
    metrics = notes["proposal"]
    worst = metrics.get("worst_max_over_mean") or max(
        (p["after"]["max_over_mean"] for p in metrics.get("parents", [])), default=None
    )
    violations = (metrics.get("constraints") or {}).get("violations") or []
    return {
        "status": notes.get("status"),
        "tolerance": notes.get("tolerance"),
        "worst": worst,
        "violations": sum(1 for v in violations if not v.get("unavoidable")),
    }


def publish_version(
    engine: Engine,
    version_id: int,
    effective_from: datetime,
    *,
    actor: str,
    force: bool = False,
    exact: bool = True,
    min_count: int = 5,
    override_reason: str | None = None,
    _switching: bool = False,
) -> dict[str, Any]:
    """Make a validated draft current from ``effective_from``; re-attribute and crosswalk.

    An ``effective_from`` more than ``SCHEDULE_AFTER`` ahead schedules the switch-over
    instead: the draft becomes ``scheduled`` (lookups ``at=`` a later moment answer from it),
    nothing moves, and :func:`switch_due` publishes it when the moment comes (the server runs
    it every ``SWITCH_INTERVAL_S``). The answer then says ``scheduled: true``.

    The audit log records the exact moves; the returned household and rental-unit totals are
    published through ``disclosure`` (base ``min_count``) unless ``exact``. A draft left by a
    proposal whose balance ended outside its band (``status`` ``"outside"``: neither within
    the tolerance nor at its floor) is refused (409) unless ``override_reason`` says why it
    is published anyway; the reason is kept in the audit row.
    """
    effective_from = local_instant(effective_from, "effective_from")  # naive: local time
    scheduled = not _switching and effective_from > datetime.now(UTC) + SCHEDULE_AFTER
    report = validate_version(engine, version_id)
    with engine.begin() as conn:
        lift_statement_timeout(conn)  # re-attribution touches every household and incident
        # the version's row locked first: a delete or an edit of the draft waits, or has gone
        conn.execute(_LOCK_VERSION, {"v": version_id})
        version = read_version(conn, version_id)
        allowed = ("draft", "scheduled") if _switching else ("draft",)
        if version["status"] not in allowed:
            raise ConflictError(
                format_message(
                    "boundary version {version_id} is {status}, not a draft",
                    version_id=version_id,
                    status=version["status"],
                )
            )
        if not report["areas"].get("grid"):
            raise ConflictError(
                format_message("boundary version {version_id} has no grids", version_id=version_id)
            )
        proposal = _proposal_of(version)
        if proposal.get("status") == "outside" and not (override_reason or "").strip():
            tolerance = float(proposal.get("tolerance") or 0.05)
            broken = proposal.get("violations") or 0
            raise ConflictError(
                format_message(
                    "boundary version {version_id} was proposed with a balance outside its band "
                    "(max/mean {worst} against 1 ± {tolerance:g}, above its floor)",
                    version_id=version_id,
                    worst=proposal.get("worst"),
                    tolerance=tolerance,
                )
                + (
                    format_message(" or {broken} grid bound(s) broken", broken=broken)
                    if broken
                    else ""
                )
                + gettext("; publish with override_reason to say why it is published anyway"),
                proposal_status="outside",
            )
        if not report["valid"] and not force:
            raise ConflictError(
                format_message(
                    "boundary version {version_id} does not validate: {problems} (publish with "
                    "force to override)",
                    version_id=version_id,
                    problems=", ".join(f"{k}: {v}" for k, v in report["summary"].items() if v),
                ),
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
                format_message(
                    "effective_from must be after {value}, when the current version {id} took "
                    "effect",
                    value=current.effective_from.isoformat(),
                    id=current.id,
                )
            )
        old_id = current.id if current is not None else None
        pending = conn.execute(
            text(
                "SELECT id, effective_from FROM boundary_versions "
                "WHERE status = 'scheduled' AND id <> :v ORDER BY effective_from LIMIT 1"
            ),
            {"v": version_id},
        ).first()
        if pending is not None:
            # one switch-over at a time: a second would be undone or blocked by the first
            raise ConflictError(
                format_message(
                    "boundary version {id} is scheduled to take effect {value}; unschedule it "
                    "first",
                    id=pending.id,
                    value=pending.effective_from.isoformat(),
                ),
                scheduled_version_id=pending.id,
            )
        if scheduled:
            return _schedule(conn, version_id, effective_from, old_id, actor, override_reason)
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
        _keep_grid_ids(conn, old_id, version_id)
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
        workers = rehome_grid_workers(conn, old_id, version_id)
        conn.execute(_KEPT_WORKERS, {"old": old_id, "new": version_id})
        for name in ("total", "moved"):
            moves["responders"][name] += workers[name]
            shown["responders"][name] = moves["responders"][name]
        users = rebind_users(
            conn, old_id, version_id, workers.pop("rehomed"), workers.pop("old_homes")
        )
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
                "grid_workers": workers,
                "users": users,
                **({"proposal_status": proposal["status"]} if proposal.get("status") else {}),
                **({"override_reason": override_reason.strip()} if override_reason else {}),
            },
        )
    PrincipalCache.forget_all()  # remembered callers carry the area codes rebound above
    return {
        "version_id": version_id,
        "previous_version_id": old_id,
        "effective_from": effective_from.isoformat(),
        "reattributed": shown,
        "grid_workers": {
            k: workers[k] for k in ("vacant_grids", "shared_grids", "unhomed_workers")
        },
        "users": users,
    }
