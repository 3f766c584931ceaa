"""Which boundary version is in force when."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import Session

from geo_service.db.models import BoundaryVersion
from geo_service.errors import NotFoundError
from geo_service.i18n import format_message
from geo_service.vocabulary import IN_FORCE_VERSION_STATUSES, SCHEDULED_VERSION_STATUS


def version_in_force(session: Session | Connection, at: datetime | None = None) -> int:
    """Id of the boundary version in force at ``at`` (default: now). For a given ``at`` a
    version scheduled to take effect by then counts too (the switch-over has not run yet,
    or ``at`` lies in the future); "now" is the version actually published."""
    statuses: tuple[str, ...] = IN_FORCE_VERSION_STATUSES
    if at is not None:
        statuses = (*statuses, SCHEDULED_VERSION_STATUS)
    at = at or datetime.now(UTC)
    version_id = session.execute(
        select(BoundaryVersion.id)
        .where(
            BoundaryVersion.status.in_(statuses),
            BoundaryVersion.effective_from <= at,
            or_(BoundaryVersion.effective_to.is_(None), BoundaryVersion.effective_to > at),
        )
        .order_by(BoundaryVersion.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()
    if version_id is None:
        raise NotFoundError(
            format_message("no boundary version is in force at {value}", value=at.isoformat())
        )
    return version_id


def city_extent(session: Session) -> list[float] | None:
    """[minx, miny, maxx, maxy] of the version in force, or None when it has no areas."""
    from sqlalchemy import text

    row = session.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) AS e FROM areas WHERE version_id = :v) x"
        ),
        {"v": version_in_force(session)},
    ).one()
    return None if row[0] is None else [float(v) for v in row]
