"""Query and body value types shared by the routes, validated before a route runs (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from geo_service.instants import CALENDAR_RULE, MAX_YEAR, MIN_YEAR, within_calendar


def _on_the_calendar(value: datetime) -> datetime:
    if not within_calendar(value):
        raise ValueError(CALENDAR_RULE)
    return value


# Every datetime a client sends (since, until, at, start/end dates, a fix's time): year 1 or
# 9999 with an offset used to overflow in date arithmetic (a 500); now it is a 422 problem.
Instant = Annotated[
    datetime,
    AfterValidator(_on_the_calendar),
    Field(description=f"RFC 3339 date-time in the years {MIN_YEAR} to {MAX_YEAR}"),
]
