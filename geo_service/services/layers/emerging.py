"""Emerging hot spots: incident counts per H3 cell and calendar bin -> ArcGIS pattern per cell.

Bins are calendar periods of the deployment's time zone (``settings.api.timezone``,
``GEO_TIMEZONE``): days, ISO weeks (Monday 00:00), months, quarters and years, whose edges are
local midnights resolved by ``zoneinfo`` (a month is 28 to 31 days, a day across a DST change
23 or 25 hours). Only whole bins inside ``[since, until)`` are analysed; a partial bin at
either edge is left out and reported (``parameters.trimmed``), never silently moved.

The analysis is ArcGIS Pro's Emerging Hot Spot Analysis (space-time Gi* per bin, Mann-Kendall
trend, the pattern names), ``analytics.emerging``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service import runtime
from geo_service.errors import InvalidInputError, LimitExceededError
from geo_service.geo.h3cells import cell_feature, check_served_resolution, exact_column
from geo_service.i18n import format_message, gettext
from geo_service.instants import local_instant, local_midnight
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.layers.hotspots import study_cells

# The calendar bins of the API, shortest first.
CALENDAR_BINS = ("day", "week", "month", "quarter", "year")
# Without since/until: the last year of whole bins before the current one ("the last 12
# whole months"); quarters and years need more bins than a year holds for a trend.
DEFAULT_BINS = {"day": 365, "week": 52, "month": 12, "quarter": 8, "year": 10}
MIN_BINS = 4  # Mann-Kendall needs a few bins to say anything
# Peak memory of one analysis: per cube value (cell x bin) the counts, z-scores, p-values,
# flags and the Mann-Kendall pass (57 bytes measured with tracemalloc on 1,951 cells x 120
# and 520 bins, k = 1 and 3), and per cell its ring(k) neighbours in sparse weights, stacked
# once per bin of the time neighbourhood (analytics.emerging.space_time_z).
BYTES_PER_VALUE = 64
BYTES_PER_NEIGHBOUR = 12  # CSR: a float64 weight and an int32 column index
TIME_STEP = 1  # ArcGIS's neighbourhood time step: a bin and the one before it
# One request's share of the API process's memory (several heavy requests may run at once).
MAX_CUBE_BYTES = 1024**3


def _clock() -> datetime:
    """The one place the service reads the wall clock (tests pass ``now`` instead)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class CalendarBins:
    """Whole calendar bins of one kind in a time zone, and what a window lost to them.

    Attributes
    ----------
    kind : str
        One of ``CALENDAR_BINS``.
    zone : zoneinfo.ZoneInfo
        The time zone whose calendar the bins follow.
    edges : tuple of datetime
        ``len(edges) - 1`` bins: bin i is ``[edges[i], edges[i + 1])``, local, with offsets.
    since, until : datetime
        The window asked for (local, with offsets).
    """

    kind: str
    zone: ZoneInfo
    edges: tuple[datetime, ...]
    since: datetime
    until: datetime

    @property
    def count(self) -> int:
        """Number of bins."""
        return len(self.edges) - 1

    why_start: str = "partial bin"
    why_end: str = "partial bin"

    @property
    def trimmed(self) -> dict[str, dict[str, str] | None] | None:
        """The time left out at the start and end (``{"from", "to", "why"}``), or None."""
        since, until = _utc(self.since), _utc(self.until)
        start = (
            {**_span(self.since, self.edges[0]), "why": self.why_start}
            if since < _utc(self.edges[0])
            else None
        )
        end = (
            {**_span(self.edges[-1], self.until), "why": self.why_end}
            if _utc(self.edges[-1]) < until
            else None
        )
        return None if start is None and end is None else {"start": start, "end": end}

    def within_data(self, first: datetime, last: datetime, now: datetime) -> CalendarBins:
        """The bins the data can fill: none starting before the local day of the first
        incident (a bin the data begins inside, or before, would count as quiet), none
        starting after the last incident (no data there at all), none ending after ``now``
        (not over yet). Each edge says why it moved.

        Raises
        ------
        InvalidInputError
            Fewer than ``MIN_BINS`` bins left, naming the data's span.
        """
        first_day = _utc(_midnight(first.astimezone(self.zone).date(), self.zone))
        starts = [_utc(e) for e in self.edges[:-1]]
        ends = [_utc(e) for e in self.edges[1:]]
        lo = next((i for i, t in enumerate(starts) if t >= first_day), len(starts))
        hi = len(starts)
        why_end = self.why_end
        while hi > lo and ends[hi - 1] > _utc(now):
            hi, why_end = hi - 1, "not over yet"
        while hi > lo and starts[hi - 1] > _utc(last):
            hi, why_end = hi - 1, "after the last incident"
        if hi - lo < MIN_BINS:
            raise InvalidInputError(
                format_message(
                    "the incidents run from {value} to {value2}: the window holds {value3} "
                    "whole {kind} bins they fill in {key}; at least {min_bins} are needed (a "
                    "bin without data would count as a quiet one)",
                    value=first.astimezone(self.zone).isoformat(),
                    value2=last.astimezone(self.zone).isoformat(),
                    value3=max(hi - lo, 0),
                    kind=self.kind,
                    key=self.zone.key,
                    min_bins=MIN_BINS,
                )
            )
        return dataclasses.replace(
            self,
            edges=self.edges[lo : hi + 1],
            why_start="before the first incident" if lo > 0 else self.why_start,
            why_end=why_end if hi < len(starts) else self.why_end,
        )


def _utc(value: datetime) -> datetime:
    # Python compares and subtracts two datetimes of one zone as wall times, which is wrong
    # in the hour the clocks repeat: instants are compared in UTC.
    return value.astimezone(UTC)


def _span(start: datetime, end: datetime) -> dict[str, str]:
    return {"from": start.isoformat(), "to": end.isoformat()}


def _period_start(day: date, kind: str) -> date:
    """The first day of the calendar period of ``kind`` holding ``day`` (ISO weeks: Monday)."""
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _next_period(day: date, kind: str) -> date:
    """The first day of the period after the one starting on ``day``."""
    if kind in ("day", "week"):
        return day + timedelta(days=1 if kind == "day" else 7)
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, with its offset (``instants.local_midnight``:
    the rollups' and every other local day's start)."""
    return local_midnight(day, zone)


def _local(value: datetime, name: str, zone: ZoneInfo) -> datetime:
    """``value`` in ``zone``; a value without an offset is a wall time of ``zone`` (one the
    clocks skip or repeat is refused: ``instants.local_instant``)."""
    return local_instant(value, name, zone).astimezone(zone)


def calendar_bins(
    kind: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    zone: ZoneInfo,
    now: datetime,
) -> CalendarBins:
    """The whole calendar bins of ``kind`` inside ``[since, until)`` in ``zone``.

    A bound without an offset is a wall time of ``zone`` (``2010-01-01`` is its local
    midnight). Without ``until`` the window ends where the bin holding ``now`` starts; without
    ``since`` it holds ``DEFAULT_BINS[kind]`` bins. Bin edges are local midnights of the
    period's first day (ISO 8601 weeks start on Monday), resolved by ``zoneinfo``.

    Parameters
    ----------
    kind : str
        ``day``, ``week``, ``month``, ``quarter`` or ``year``.
    since, until : datetime, optional
        The window asked for.
    zone : zoneinfo.ZoneInfo
        The calendar's time zone.
    now : datetime
        The present (aware), for the default window.

    Returns
    -------
    CalendarBins
        Edges of the whole bins, first edge the first period start at or after ``since``,
        last the last period start at or before ``until``.

    Raises
    ------
    InvalidInputError
        An unknown kind, a wall time that does not exist or occurs twice in ``zone``,
        ``since`` not before ``until``, or fewer than ``MIN_BINS`` whole bins.

    Examples
    --------
    >>> shanghai = ZoneInfo("Asia/Shanghai")
    >>> b = calendar_bins("month", since=datetime(2010, 1, 1), until=datetime(2010, 5, 20),
    ...                   zone=shanghai, now=datetime(2026, 1, 1, tzinfo=UTC))
    >>> b.count, b.edges[0].isoformat(), b.edges[-1].isoformat()
    (4, '2010-01-01T00:00:00+08:00', '2010-05-01T00:00:00+08:00')
    >>> b.trimmed["start"], b.trimmed["end"]["from"], b.trimmed["end"]["why"]
    (None, '2010-05-01T00:00:00+08:00', 'partial bin')
    """
    if kind not in CALENDAR_BINS:
        raise InvalidInputError(
            format_message("bin must be one of {values}", values=", ".join(CALENDAR_BINS))
        )
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    if until is None:
        current = _period_start(now.astimezone(zone).date(), kind)
        until_local = _midnight(current, zone)
    else:
        until_local = _local(until, "until", zone)
    if since is None:
        days = [_period_start(until_local.date(), kind)]  # where the last whole bin ends
        for _ in range(DEFAULT_BINS[kind]):
            days.append(_previous_period(days[-1], kind))
        since_local = _midnight(days[-1], zone)
    else:
        since_local = _local(since, "since", zone)
    if _utc(since_local) >= _utc(until_local):
        raise InvalidInputError(gettext("since must be before until"))
    day = _period_start(since_local.date(), kind)
    if _utc(_midnight(day, zone)) < _utc(since_local):
        day = _next_period(day, kind)
    edges = []
    while _utc(edge := _midnight(day, zone)) <= _utc(until_local):
        edges.append(edge)
        day = _next_period(day, kind)
    if len(edges) - 1 < MIN_BINS:
        raise InvalidInputError(
            format_message(
                "the window must hold at least {min_bins} whole {kind} bins in {key} (it holds "
                "{value})",
                min_bins=MIN_BINS,
                kind=kind,
                key=zone.key,
                value=max(len(edges) - 1, 0),
            )
        )
    return CalendarBins(kind, zone, tuple(edges), since_local, until_local)


def _previous_period(day: date, kind: str) -> date:
    """The first day of the period before the one starting on ``day``."""
    if kind in ("day", "week"):
        return day - timedelta(days=1 if kind == "day" else 7)
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    month = day.month - 1 - months
    return date(day.year + month // 12, month % 12 + 1, 1)


def cube_bytes(cells: int, bins: int, k: int) -> int:
    """Estimated peak memory (bytes) of the analysis of ``cells`` x ``bins`` at ``k`` rings."""
    ring = 3 * k * (k + 1) + 1  # cells within k rings of an H3 cell, itself included
    weights = cells * ring * BYTES_PER_NEIGHBOUR * (1 + sum(range(1, TIME_STEP + 2)))
    return cells * bins * BYTES_PER_VALUE + weights


def _cost(cells: int, bins: int, k: int) -> dict[str, int]:
    return {
        "cells": cells,
        "bins": bins,
        "values": cells * bins,
        "memory_bytes": cube_bytes(cells, bins, k),
        "limit_bytes": MAX_CUBE_BYTES,
    }


def _check_cost(cells: int, bins: int, k: int) -> dict[str, int]:
    """The cost of the cube, or LimitExceededError stating it when it would not fit."""
    cost = _cost(cells, bins, k)
    if cost["memory_bytes"] > MAX_CUBE_BYTES:
        raise LimitExceededError(
            format_message(
                "the space-time cube would be {cells:,} cells x {bins:,} bins = {value:,} "
                "values, about {value2:.1f} GiB of memory (at most {value3:.1f} GiB): use wider "
                "bins, a shorter window, a coarser res or a smaller k",
                cells=cells,
                bins=bins,
                value=cells * bins,
                value2=cost["memory_bytes"] / 1024**3,
                value3=MAX_CUBE_BYTES / 1024**3,
            ),
            cost=cost,
        )
    return cost


def emerging(
    session: Session,
    *,
    res: int = 8,
    bin: str = "month",  # noqa: A002
    since: datetime | None = None,
    until: datetime | None = None,
    category: str | None = None,
    k: int = 1,
    scope: Scope | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """ArcGIS's emerging hot spot pattern per H3 cell over calendar bins in ``[since, until)``.

    Parameters
    ----------
    session : Session
        A database session.
    res : int
        H3 resolution, 6..10; each incident counts in its own cell at ``res``.
    bin : str
        ``day``, ``week`` (ISO, Monday 00:00), ``month``, ``quarter`` or ``year``, in the
        deployment's time zone (``GEO_TIMEZONE``).
    since, until : datetime, optional
        The window; a value without an offset is a local wall time (``calendar_bins``).
        Default: ``DEFAULT_BINS[bin]`` whole bins ending where the current bin starts.
    category : str, optional
        Only incidents of this category.
    k : int
        Rings of spatial neighbours (1..3).
    scope : Scope, optional
        The caller's scope: an area-bound caller sees its grids' incidents and cells only.
    now : datetime, optional
        The present, for the default window (default: the clock).

    Returns
    -------
    dict
        A GeoJSON FeatureCollection, one feature per cell (``pattern``, ``count``,
        ``trend_z``, ``trend_p``, ``hot_bins``, ``cold_bins``), and ``parameters``: the bins
        used (``start`` of the first, ``end`` of the last, local with offsets), the window
        asked for (``since``, ``until``), ``trimmed`` partial edges (or None), ``timezone``
        and ``cost`` (cells, bins, values, estimated memory).

    Raises
    ------
    InvalidInputError
        A bad res, bin or window, fewer than 4 whole bins, or fewer than 3 cells (422).
    LimitExceededError
        The cube would not fit in ``MAX_CUBE_BYTES``; ``cost`` states its size (413).

    Notes
    -----
    ArcGIS Pro, "How Emerging Hot Spot Analysis works": space-time Gi* with the previous bin
    as time neighbour, Mann-Kendall trend per location, and the pattern categories.
    """
    # scipy and pandas load on first use, not with the API
    from geo_service.analytics.emerging import emerging_hotspots
    from geo_service.analytics.hotspots import h3_ring_weights

    check_served_resolution(res)
    now = now or _clock()
    zone = ZoneInfo(runtime.current().settings.api.timezone)
    calendar = calendar_bins(bin, since=since, until=until, zone=zone, now=now)
    scoped = scope is not None and not scope.unrestricted
    grids = {"grids": sorted(scope.grid_ids or ())} if scoped and scope else {}
    # the data's whole span (to name it when the window misses it) and its span inside the
    # window [since, until): an incident after ``until`` (today's, in the default window)
    # neither keeps a bin nor counts as analysed
    first, last, first_in, last_in = session.execute(
        text(
            "SELECT min(reported_at), max(reported_at), "
            "min(reported_at) FILTER (WHERE reported_at >= :since AND reported_at < :until), "
            "max(reported_at) FILTER (WHERE reported_at >= :since AND reported_at < :until) "
            "FROM incidents "
            "WHERE (CAST(:category AS text) IS NULL OR category = :category) "
            + ("AND grid_id = ANY(:grids)" if scoped else "")
        ),
        {
            "category": category,
            "since": calendar.since.astimezone(UTC),
            "until": calendar.until.astimezone(UTC),
            **grids,
        },
    ).one()
    if first is None:
        raise InvalidInputError(
            format_message("no incidents of category {category!r} to analyse", category=category)
            if category
            else gettext("no incidents to analyse")
        )
    if first_in is not None:
        first, last = first_in, last_in
    calendar = calendar.within_data(first, last, now)
    bins = calendar.count
    cells = (
        np.array([], dtype=np.int64)
        if scoped
        else study_cells(session, version_in_force(session), res)
    )
    _check_cost(len(cells), bins, k)  # before the query: the study area alone may be too big
    params: dict[str, Any] = {
        "edges": [e.astimezone(UTC) for e in calendar.edges],
        "start": calendar.edges[0],
        "end": calendar.edges[-1],
        "category": category,
    }
    rows = session.execute(
        text(
            # each point's own cell at res (0021), an identifier of a fixed set; a bin is
            # the calendar period whose edges hold the time (width_bucket: edges[i] <= t <
            # edges[i + 1] is bucket i + 1)
            f"SELECT {exact_column(res)} AS cell, "
            "width_bucket(reported_at, CAST(:edges AS timestamptz[])) - 1 AS b, count(*) "
            "FROM incidents WHERE reported_at >= :start AND reported_at < :end "
            "AND (CAST(:category AS text) IS NULL OR category = :category) "
            + ("AND grid_id = ANY(:grids) " if scoped else "")
            + "GROUP BY 1, 2"
        ),
        {**params, **grids},
    ).all()
    # the incidents analysed: those inside the bins kept
    first, last = session.execute(
        text(
            "SELECT min(reported_at), max(reported_at) FROM incidents "
            "WHERE reported_at >= :start AND reported_at < :end "
            "AND (CAST(:category AS text) IS NULL OR category = :category) "
            + ("AND grid_id = ANY(:grids)" if scoped else "")
        ),
        {**params, **grids},
    ).one()
    if first is None:  # the data surrounds the window but none falls in its bins
        raise InvalidInputError(
            format_message("no incidents of category {category!r} to analyse", category=category)
            if category
            else gettext("no incidents to analyse")
        )
    cells = np.union1d(cells, np.array(sorted({int(r[0]) for r in rows}), dtype=np.int64))
    if len(cells) < 3:
        raise InvalidInputError(gettext("too few cells for emerging hot spot analysis"))
    cost = _check_cost(len(cells), bins, k)
    cube = np.zeros((len(cells), bins))
    if rows:
        cell, b, n = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
        cube[np.searchsorted(cells, cell), b] = n  # one row per (cell, bin): GROUP BY
    result = emerging_hotspots(cube, h3_ring_weights(cells, k), time_step=TIME_STEP)
    features = [
        cell_feature(
            cell,
            {
                "pattern": str(result.patterns[i]),
                "count": int(cube[i].sum()),
                "trend_z": round(float(result.trend_z[i]), 4),
                "trend_p": float(result.trend_p[i]),
                "hot_bins": int(result.hot[i].sum()),
                "cold_bins": int(result.cold[i].sum()),
            },
        )
        for i, cell in enumerate(cells.tolist())
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "parameters": {
            "res": res,
            "bin": bin,
            "bins": bins,
            "k": k,
            "start": calendar.edges[0].isoformat(),
            "end": calendar.edges[-1].isoformat(),
            "since": calendar.since.isoformat(),
            "until": calendar.until.isoformat(),
            "timezone": zone.key,
            "trimmed": calendar.trimmed,
            "data": {
                "first": first.astimezone(zone).isoformat(),
                "last": last.astimezone(zone).isoformat(),
            },
            "cost": cost,
            "category": category,
        },
    }
