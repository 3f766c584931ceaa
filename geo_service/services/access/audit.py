"""Reading the audit log (writes happen next to every change, in the same transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError


def list_audit(
    session: Session,
    *,
    entity: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Audit entries newest first, optionally for one entity type and since a time."""
    if since is not None and since.tzinfo is None:
        raise InvalidInputError("since must carry a timezone offset (e.g. Z)")
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
