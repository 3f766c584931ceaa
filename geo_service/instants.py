"""The instants geo-service accepts from outside: within the years 1900 to 2199.

Year 1 or 9999 with a timezone offset overflows Python's datetime as soon as an offset, a
window or a bin is added (a 500 that dropped the connection); no city record lies outside
these years. The API checks every datetime it is sent with ``api.params.Instant`` (a 422
validation problem); parsers of datetimes in free text (OGC ``datetime``) call
``check_instant``.
"""

from __future__ import annotations

from datetime import datetime

from geo_service.errors import InvalidInputError

MIN_YEAR = 1900
MAX_YEAR = 2199
CALENDAR_RULE = f"must lie in the years {MIN_YEAR} to {MAX_YEAR}"


def within_calendar(value: datetime) -> bool:
    """Whether ``value`` lies in the years geo-service accepts (far from datetime's edges)."""
    return MIN_YEAR <= value.year <= MAX_YEAR


def check_instant(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value``, or raise InvalidInputError when it lies outside the accepted years."""
    if not within_calendar(value):
        raise InvalidInputError(f"{name} {CALENDAR_RULE}")
    return value
