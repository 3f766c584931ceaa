"""Which boundary version is in force when."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from geo_service.db.models import BoundaryVersion
from geo_service.errors import NotFoundError


def version_in_force(session: Session, at: datetime | None = None) -> int:
    """Id of the boundary version in force at ``at`` (default: now)."""
    at = at or datetime.now(UTC)
    version_id = session.execute(
        select(BoundaryVersion.id)
        .where(
            BoundaryVersion.status.in_(("published", "retired")),
            BoundaryVersion.effective_from <= at,
            or_(BoundaryVersion.effective_to.is_(None), BoundaryVersion.effective_to > at),
        )
        .order_by(BoundaryVersion.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()
    if version_id is None:
        raise NotFoundError(f"no boundary version is in force at {at.isoformat()}")
    return version_id
