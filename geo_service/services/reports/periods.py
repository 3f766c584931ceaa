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


def local_stamp(instant: str | datetime, tz: str) -> str:
    """An instant as the deployment's wall-clock time with its UTC offset, to the minute
    (what a person reads next to a local period; never UTC unmarked).

    >>> local_stamp("2026-11-30T17:26:40+00:00", "Asia/Shanghai")
    '2026-12-01 01:26 +08:00'
    """
    at = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    local = at.astimezone(ZoneInfo(tz))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def period_text(since: str, until: str, tz: str) -> str:
    """The window ``[since, until)`` as people read it: whole local days as first and last
    day, both included (``2026-11-01 – 2026-11-30``); otherwise both instants with offsets.

    >>> period_text("2026-11-01T00:00:00+08:00", "2026-12-01T00:00:00+08:00", "Asia/Shanghai")
    '2026-11-01 – 2026-11-30'
    >>> period_text("2026-11-01T00:00:00+08:00", "2026-11-01T12:00:00+08:00", "Asia/Shanghai")
    '2026-11-01 00:00 +08:00 – 2026-11-01 12:00 +08:00'
    """
    zone = ZoneInfo(tz)
    first = datetime.fromisoformat(since).astimezone(zone)
    end = datetime.fromisoformat(until).astimezone(zone)
    if first.time() == time(0) and end.time() == time(0):
        return f"{first.date().isoformat()} – {(end.date() - timedelta(days=1)).isoformat()}"
    return f"{local_stamp(first, tz)} – {local_stamp(end, tz)}"


def percent_text(share: float) -> str:
    """A share as a percentage with one decimal, or with as many more (up to three) as it
    takes not to read 100% or 0% when it is neither.

    >>> percent_text(77064 / 77344), percent_text(0.99996), percent_text(1.0), percent_text(0.0)
    ('99.6%', '99.996%', '100.0%', '0.0%')
    """
    text = ""
    for digits in (1, 2, 3):
        text = f"{100 * share:.{digits}f}"
        if (share >= 1 or float(text) < 100) and (share <= 0 or float(text) > 0):
            break
    return text + "%"
