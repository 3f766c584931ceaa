"""Local calendar days, weeks and months of the deployment (``GEO_TIMEZONE``) for reports.

``parse_local_instant`` reads a client's ``since`` / ``until`` with the service's one parser
(``instants.parse_instant``): a date is local midnight, a time without an offset local time,
one with an offset kept.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from geo_service.instants import parse_instant


def parse_local_instant(value: str, tz: str, name: str) -> datetime:
    """``value`` as an aware instant by the service's one reading of client datetimes
    (``instants.parse_instant``): ``YYYY-MM-DD`` is local midnight of that day in ``tz``, a
    date-time without an offset local time, one with an offset (RFC 3339) kept.

    Raises InvalidInputError naming ``name`` for anything else (or outside 1900-2199).

    Examples
    --------
    >>> parse_local_instant("2026-06-01", "Asia/Shanghai", "since").isoformat()
    '2026-06-01T00:00:00+08:00'
    >>> parse_local_instant("2026-06-01T08:30:00Z", "Asia/Shanghai", "since").isoformat()
    '2026-06-01T08:30:00+00:00'
    """
    return parse_instant(value, name, ZoneInfo(tz))


def as_local(naive: datetime, tz: str) -> datetime:
    """A naive local time in ``tz`` as an aware one (the earlier of a repeated hour)."""
    return naive.replace(tzinfo=ZoneInfo(tz))


def start_of_local_day(at: datetime, tz: str) -> datetime:
    """Midnight in ``tz`` of the local day holding ``at``.

    >>> from datetime import timezone
    >>> start_of_local_day(datetime(2026, 6, 1, 17, 0, tzinfo=timezone.utc),
    ...                    "Asia/Shanghai").isoformat()
    '2026-06-02T00:00:00+08:00'
    """
    local = at.astimezone(ZoneInfo(tz))
    return datetime.combine(local.date(), time(0), tzinfo=ZoneInfo(tz))


def start_of_local_week(at: datetime, tz: str) -> datetime:
    """Monday 00:00 in ``tz`` of the ISO week holding ``at``."""
    day = start_of_local_day(at, tz)
    monday = day.date() - timedelta(days=day.weekday())
    return datetime.combine(monday, time(0), tzinfo=ZoneInfo(tz))


def local_periods(instants: pd.Series, tz: str, unit: str) -> pd.Series:
    """The local ``week`` (ISO, from Monday) or ``month`` each UTC instant falls in, as the
    period's first day (``YYYY-MM-DD``).

    >>> s = pd.Series(pd.to_datetime(["2026-06-07T16:30:00Z", "2026-06-07T15:30:00Z"]))
    >>> local_periods(s, "Asia/Shanghai", "week").tolist()
    ['2026-06-08', '2026-06-01']
    >>> local_periods(s, "Asia/Shanghai", "month").tolist()
    ['2026-06-01', '2026-06-01']
    """
    local = instants.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    if unit == "week":
        starts = local - pd.to_timedelta(local.dt.day_of_week, unit="D")
    elif unit == "month":
        starts = local - pd.to_timedelta(local.dt.day - 1, unit="D")
    else:
        raise ValueError(f"unit must be week or month, got {unit!r}")
    return starts.dt.strftime("%Y-%m-%d")


def period_end(start: str, unit: str) -> date:
    """The first day after the local period that begins on ``start``.

    >>> period_end("2026-12-01", "month"), period_end("2026-06-01", "week")
    (datetime.date(2027, 1, 1), datetime.date(2026, 6, 8))
    """
    first = date.fromisoformat(start)
    if unit == "week":
        return first + timedelta(days=7)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)
