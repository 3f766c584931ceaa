"""The calendar of the incident rollups: which time zone's days they count, and the rebuild.

The rollups (``incident_rollup_day``/``_month``, ``incident_total_day``/``_month``) and the
cumulative arrays (``incident_cum_year``) bucket incidents by the local day and month of one
IANA zone, recorded in ``rollup_calendar`` (migration 0028). That zone must be the
deployment's (``GEO_TIMEZONE``): the heatmap cuts a window at its local midnights and reads
whole days from the rollups. :func:`ensure_rollup_zone` (called by every migration run)
rebuilds them when the two differ; a reader whose zone differs gets
:class:`~geo_service.errors.RollupZoneMismatchError` (503) from ``rollup_zone_is``, never a
count mixing two calendars.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from geo_service.errors import RollupZoneMismatchError
from geo_service.i18n import format_message

# raised by rollup_zone_is() (migration 0028) when the rollups count another zone's days
ROLLUP_ZONE_SQLSTATE = "GZ001"


@dataclass(frozen=True)
class Rebuild:
    """A rebuild of the rollups from one zone to another."""

    old_zone: str
    new_zone: str
    incidents: int
    seconds: float


def rollup_zone(conn: Connection) -> str:
    """The zone whose days the rollups count (``rollup_calendar.zone``)."""
    return str(conn.execute(text("SELECT zone FROM rollup_calendar")).scalar_one())


def engine_rollup_zone(engine: Engine) -> str:
    """``rollup_zone`` on a connection of ``engine`` (the API's start-up check)."""
    with engine.connect() as conn:
        return rollup_zone(conn)


def rebuild_rollups(conn: Connection, zone: str) -> Rebuild:
    """Rebuild every rollup and cumulative array in ``zone`` (an IANA name) and record it, in
    the caller's transaction, as the schema's owner (it truncates the rollups).

    Writers of incidents wait until the transaction ends; readers see the old rollups until
    then. Costs about what loading the incidents' rollups cost (a few seconds per 100,000
    incidents).

    Raises
    ------
    sqlalchemy.exc.DBAPIError
        An unknown zone (nothing changed), or a role that may not rebuild.
    """
    started = time.perf_counter()
    old = rollup_zone(conn)
    conn.execute(text("SELECT incident_rollups_rebuild(:zone)"), {"zone": zone})
    count = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    return Rebuild(old, zone, int(count), round(time.perf_counter() - started, 2))


def ensure_rollup_zone(url: str, zone: str) -> Rebuild | None:
    """Rebuild the rollups of the database at ``url`` (the owner's) in ``zone`` when they
    count another zone's days; None when they are of ``zone`` already."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            if rollup_zone(conn) == zone:
                return None
            return rebuild_rollups(conn, zone)
    finally:
        engine.dispose()


def raise_if_zone_mismatch(exc: DBAPIError) -> None:
    """Raise :class:`RollupZoneMismatchError` when ``exc`` is ``rollup_zone_is`` refusing
    (the rollups count another zone's days than this process's ``GEO_TIMEZONE``)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == ROLLUP_ZONE_SQLSTATE:
        diag = getattr(orig, "diag", None)
        message = getattr(diag, "message_primary", None) or str(orig)
        raise RollupZoneMismatchError(
            format_message(
                "{message} (GEO_TIMEZONE): run `geo-service migrate`, which rebuilds them in "
                "GEO_TIMEZONE",
                message=message,
            )
        ) from None
