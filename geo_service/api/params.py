"""Query and body value types shared by the routes, validated before a route runs (422)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

from geo_service.errors import InvalidInputError
from geo_service.geo.crs import crs_name
from geo_service.i18n import format_message, gettext
from geo_service.instants import MAX_YEAR, MIN_YEAR, parse_instant, within_calendar

# RFC 3339 date-time with its offset: pydantic's own (compiled) parser reads it, a fix's time
# on the hottest write included; everything else goes through ``instants.parse_instant``.
_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def _instant(value: Any, info: ValidationInfo) -> Any:
    """The one reading of client datetimes (``instants.parse_instant``): a date is local
    midnight of ``GEO_TIMEZONE``, a time without an offset local time, an offset kept;
    another form (unix seconds, ISO weeks, the basic format) a 422. The refusal names the
    field (a body's ``reported_at``); a query parameter, which pydantic does not name here
    (the problem's ``loc`` does), is "the value" in the request's language."""
    if isinstance(value, str) and _WITH_OFFSET.fullmatch(value):
        return value
    if not isinstance(value, str | datetime | date):
        return value  # pydantic refuses it as not a datetime
    try:
        return parse_instant(value, name=info.field_name or gettext("the value"))
    except InvalidInputError as exc:
        raise ValueError(exc.detail) from None


def _on_the_calendar(value: datetime) -> datetime:
    if not within_calendar(value):
        raise ValueError(  # in the request's language (pydantic's 422 wraps it)
            format_message("must lie in the years {first} to {last}", first=MIN_YEAR, last=MAX_YEAR)
        )
    return value


# Every datetime a client sends (since, until, at, start/end dates, a fix's time), through one
# reading: a date alone or a time without an offset is local time of the deployment (issue
# 19); year 1 or 9999 with an offset used to overflow in date arithmetic (a 500): now a 422.
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    AfterValidator(_on_the_calendar),
    Field(
        description=f"RFC 3339 date-time in the years {MIN_YEAR} to {MAX_YEAR}; a date alone "
        "(2026-09-01) is local midnight and a time without an offset local time of the "
        "deployment's time zone (GEO_TIMEZONE)"
    ),
]


# A coordinate system a client names (``crs`` of every route and body): read as
# ``geo.crs.crs_name`` reads it, so ``GCJ02``, ``GCJ-02`` and ``gcj02`` are one value; the
# schema still lists the canonical names, and anything else is a 422.
CrsName = Annotated[Literal["wgs84", "gcj02", "bd09"], BeforeValidator(crs_name)]

# The coordinate system of a GeoJSON answer (issue 19): every GeoJSON endpoint takes it, and
# converts every position on the way out (``geo.crs.geojson_from_wgs84``); anything else is
# a 422 problem. Stored coordinates stay WGS84.
OutputCrs = Annotated[
    CrsName,
    Query(
        description="coordinate system of the answer's positions: wgs84 (RFC 7946, default), "
        "gcj02 (Amap/Gaode, Tencent base maps) or bd09 (Baidu); inputs such as bbox stay WGS84"
    ),
]
