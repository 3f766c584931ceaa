"""The audit log: the one writer of audit rows, and the read side.

Every change records who made it here, with :func:`record_audit`, in the change's own
transaction (a rollback takes the audit row with it). Nothing else inserts into ``audit_log``
(the migrations' own rows excepted). Rows are immutable; only the purge role deletes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from geo_service.instants import local_instant

_INSERT = text(
    "INSERT INTO audit_log (who, action, entity, entity_id, diff) "
    "VALUES (:who, :action, :entity, :entity_id, CAST(:diff AS jsonb))"
)


def audited_change_sql(ctes: str, diff: str, when: str = "true") -> str:
    """One statement that makes a change and writes its audit row, atomically even in
    autocommit. ``ctes`` are the body of a ``WITH`` whose data-modifying CTE is named
    ``change`` (``t AS (...), change AS (UPDATE ... RETURNING ...)``); ``diff`` is a SQL
    expression of the row's ``diff`` (jsonb) that may read them; ``when`` a condition on them:
    when false the statement changes nothing (the change must test it too) and returns no
    row. Parameters ``:who``, ``:action``, ``:entity``, ``:entity_id`` name the row; the
    statement returns its ``diff``. For hot paths where a second round trip would cost more
    than the change (``POST /responders/positions``).
    """
    return (
        f"WITH {ctes} "
        "INSERT INTO audit_log (who, action, entity, entity_id, diff) "
        f"SELECT :who, :action, :entity, :entity_id, {diff} WHERE {when} RETURNING diff"
    )


def record_audit(
    db: Session | Connection,
    *,
    who: str,
    action: str,
    entity: str,
    entity_id: str | None,
    diff: Mapping[str, Any] | None = None,
) -> None:
    """Write one audit row on ``db`` (an ORM session or a Core connection), in its transaction.

    ``who`` is the actor as the API names it (``"name (role)"``, ``"cli (...)"``, ``"system"``);
    ``diff`` is any JSON-able mapping (values JSON cannot hold, such as UUIDs or datetimes,
    are written as their ``str``).
    """
    db.execute(
        _INSERT,
        {
            "who": who,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "diff": json.dumps(dict(diff or {}), default=str),
        },
    )


def list_audit(
    session: Session,
    *,
    entity: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Audit entries newest first, optionally for one entity type and since a time."""
    since = since and local_instant(since, "since")  # naive: local time
    rows = (
        session.execute(
            text(
                "SELECT id, who, at, action, entity, entity_id, diff FROM audit_log "
                "WHERE (CAST(:entity AS text) IS NULL OR entity = :entity) "
                "AND (CAST(:since AS timestamptz) IS NULL OR at >= :since) "
                "AND (CAST(:before AS bigint) IS NULL OR id < :before) "
                "ORDER BY id DESC LIMIT :n"
            ),
            {"entity": entity, "since": since, "before": before_id, "n": limit + 1},
        )
        .mappings()
        .all()
    )
    items = [{**dict(r), "at": r["at"].isoformat()} for r in rows[:limit]]
    return {"data": items, "next_before_id": items[-1]["id"] if len(rows) > limit else None}
