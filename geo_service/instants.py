"""The instants geo-service accepts from outside, and the deployment's local calendar.

Years: 1900 to 2199. Year 1 or 9999 with a timezone offset overflows Python's datetime as
soon as an offset, a window or a bin is added (a 500 that dropped the connection); no city
record lies outside these years.

Local time (issue 19): the deployment's IANA time zone (``GEO_TIMEZONE``, default
Asia/Shanghai) says what a day is. Every datetime a client sends goes through
:func:`parse_instant` (the API's ``api.params.Instant``, the CLI's time options):

* a date alone (``2026-09-01``) is local midnight, the first instant of that local day;
* a date-time without an offset (``2026-09-01T08:30:00``) is a wall time of the zone; one the
  clocks skip or repeat (daylight saving time) is refused, naming it;
* a date-time with an offset (``Z``, ``+08:00``) is kept as it is.

Anything else (ISO 8601 forms RFC 3339 lacks, such as ``2026-W36-1`` or ``20260901``, unix
seconds, words) is refused with the reason. Services that receive a ``datetime`` from Python
read a naive one as local time too (:func:`local_instant`). :func:`local_day` and
:func:`local_day_bounds` give a day of the local calendar and its first and last instant:
the rollups, the heatmap's whole days and any daily report use them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message, gettext

MIN_YEAR = 1900
MAX_YEAR = 2199
CALENDAR_RULE = f"must lie in the years {MIN_YEAR} to {MAX_YEAR}"
FORMS = (
    "a date (2026-09-01: local midnight), a local time (2026-09-01T08:30:00) or a time "
    "with an offset (2026-09-01T08:30:00+08:00, 2026-09-01T00:30:00Z)"
)
# RFC 3339 section 5.6 full-date and date-time (seconds optional, ``T``, ``t`` or a space
# between; the offset optional: without one, local time).
_FULL_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?"
)


def _outside_calendar(name: str) -> str:
    return format_message(
        "{name} must lie in the years {first} to {last}", name=name, first=MIN_YEAR, last=MAX_YEAR
    )


def within_calendar(value: datetime) -> bool:
    """Whether ``value`` lies in the years geo-service accepts (far from datetime's edges)."""
    return MIN_YEAR <= value.year <= MAX_YEAR


def check_instant(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value``, or raise InvalidInputError when it lies outside the accepted years."""
    if not within_calendar(value):
        raise InvalidInputError(_outside_calendar(name))
    return value


def deployment_zone() -> ZoneInfo:
    """The deployment's time zone (``GEO_TIMEZONE`` of the runtime serving this request, job
    or command)."""
    from geo_service.runtime import current  # the runtime imports the database layer

    return ZoneInfo(current().settings.api.timezone)


def local_instant(
    value: datetime, name: str = "datetime", zone: ZoneInfo | None = None
) -> datetime:
    """``value`` as an aware instant: kept when it has an offset, else a wall time of ``zone``
    (default: the deployment's).

    Raises
    ------
    InvalidInputError
        A wall time the clocks skip (spring forward) or repeat (fall back): it names no
        single instant, so the caller must give the offset.

    Examples
    --------
    >>> shanghai = ZoneInfo("Asia/Shanghai")
    >>> local_instant(datetime(2026, 9, 1, 0, 30), zone=shanghai).isoformat()
    '2026-09-01T00:30:00+08:00'
    >>> local_instant(datetime(2026, 9, 1, tzinfo=UTC), zone=shanghai).isoformat()
    '2026-09-01T00:00:00+00:00'
    >>> local_instant(datetime(2026, 3, 8, 2, 30), zone=ZoneInfo("America/Chicago"))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo_service.errors.InvalidInputError: datetime 2026-03-08T02:30:00 does not exist in ...
    """
    if value.tzinfo is not None:
        return value
    zone = zone or deployment_zone()
    first, second = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
        raise InvalidInputError(
            format_message(
                "{name} {time} does not exist in {zone} (the clocks went forward): give its offset",
                name=name,
                time=value.isoformat(),
                zone=zone.key,
            )
        )
    if first.utcoffset() != second.utcoffset():
        raise InvalidInputError(
            format_message(
                "{name} {time} occurs twice in {zone} (the clocks went back): give its offset",
                name=name,
                time=value.isoformat(),
                zone=zone.key,
            )
        )
    return first


def local_midnight(day: date, zone: ZoneInfo | None = None) -> datetime:
    """The first instant of the local ``day`` in ``zone`` (default: the deployment's), with
    its offset.

    ``fold=0`` resolves a midnight the clocks skip (the day starts at the end of the gap) and
    one they repeat (the first of the two), so this is the day's first instant either way; it
    is where PostgreSQL's ``(t AT TIME ZONE zone)::date`` changes, the rollups' day.

    >>> local_midnight(date(2026, 9, 1), ZoneInfo("Asia/Shanghai")).isoformat()
    '2026-09-01T00:00:00+08:00'
    """
    zone = zone or deployment_zone()
    naive = datetime(day.year, day.month, day.day)
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def local_day(value: datetime, zone: ZoneInfo | None = None) -> date:
    """The local calendar day holding the instant ``value`` (naive: a wall time of the zone).

    >>> local_day(datetime(2026, 8, 31, 16, 30, tzinfo=UTC), ZoneInfo("Asia/Shanghai"))
    datetime.date(2026, 9, 1)
    """
    zone = zone or deployment_zone()
    return local_instant(value, zone=zone).astimezone(zone).date()


def local_day_bounds(day: date, zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` of the local ``day``: its first instant and the next day's (23, 24 or
    25 hours apart around daylight saving time), with the zone's offsets. Daily reports,
    windows and rollups cut here. Measure a duration in UTC: Python subtracts two datetimes
    of one zone as wall times.

    >>> a, b = local_day_bounds(date(2026, 9, 1), ZoneInfo("Asia/Shanghai"))
    >>> a.astimezone(UTC).isoformat(), b.astimezone(UTC).isoformat()
    ('2026-08-31T16:00:00+00:00', '2026-09-01T16:00:00+00:00')
    """
    zone = zone or deployment_zone()
    return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)


def parse_instant(
    value: str | datetime | date, name: str = "datetime", zone: ZoneInfo | None = None
) -> datetime:
    """A client's datetime as an aware instant: a date is local midnight, a time without an
    offset local time, a time with an offset kept (RFC 3339 section 5.6, with the date alone
    and the offset optional); years 1900-2199.

    Raises
    ------
    InvalidInputError
        Another form (ISO week or ordinal dates, the basic format, unix seconds), an
        impossible date, a local time the clocks skip or repeat, or a year outside the range.

    Examples
    --------
    >>> shanghai = ZoneInfo("Asia/Shanghai")
    >>> parse_instant("2026-09-01", zone=shanghai).isoformat()
    '2026-09-01T00:00:00+08:00'
    >>> parse_instant("2026-09-01T08:30", zone=shanghai).isoformat()
    '2026-09-01T08:30:00+08:00'
    >>> parse_instant("2026-08-31T16:30:00Z", zone=shanghai).isoformat()
    '2026-08-31T16:30:00+00:00'
    >>> parse_instant("2026-W36-1", "since", zone=shanghai)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo_service.errors.InvalidInputError: since '2026-W36-1' is not a date or time: give ...
    """
    # the year first: converting year 1 or 9999 between offsets overflows
    if isinstance(value, datetime):
        return local_instant(check_instant(value, name), name, zone)
    if isinstance(value, date):
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise InvalidInputError(_outside_calendar(name))
        return local_midnight(value, zone)
    text = value.strip()
    try:
        if _FULL_DATE.fullmatch(text):
            return parse_instant(date.fromisoformat(text), name, zone)
        if _DATE_TIME.fullmatch(text):
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
            return parse_instant(parsed, name, zone)
    except ValueError:  # a form that matches but names no day or time: 2026-02-30, 25:00
        raise InvalidInputError(
            format_message(
                "{name} {value} is not a valid date or time", name=name, value=repr(text[:40])
            )
        ) from None
    raise InvalidInputError(
        format_message(
            "{name} {value} is not a date or time: give a date (2026-09-01: local midnight), a "
            "local time (2026-09-01T08:30:00) or a time with an offset "
            "(2026-09-01T08:30:00+08:00, 2026-09-01T00:30:00Z)",
            name=name,
            value=repr(text[:40]),
        )
    )


def localize_fields(obj: object, *names: str) -> None:
    """Read the naive datetimes among ``obj``'s attributes ``names`` as local time, in place
    (a frozen dataclass's ``__post_init__`` calls it: requests built in Python read naive
    times as the API does)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, datetime) and value.tzinfo is None:
            object.__setattr__(obj, name, local_instant(value, name))


def check_window(since: datetime | None, until: datetime | None) -> None:
    """Refuse a window whose ``since`` is not before its ``until`` (either end may be open).

    >>> check_window(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    Traceback (most recent call last):
    ...
    geo_service.errors.InvalidInputError: since must be before until
    """
    if since is not None and until is not None and since >= until:
        raise InvalidInputError(gettext("since must be before until"))
