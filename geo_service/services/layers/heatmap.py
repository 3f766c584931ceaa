"""Heatmaps: incident counts per H3 cell or per area, read from the rollups, not incidents.

A window [since, until) is cut into pieces, each read from the cheapest exact source:
whole months (for res <= 8) from ``incident_rollup_month``; whole days from
``incident_rollup_day``; the partial days at either end from ``incidents`` itself. Days and
months are those of the deployment's time zone (``GEO_TIMEZONE``, issue 19): the rollups
count local days (migration 0028), so a window from local midnight to local midnight is read
from the rollups alone, and each statement checks that the rollups are of that zone
(``rollup_zone_is``; a 503 ``rollups-zone-mismatch`` otherwise, never two calendars mixed).
A ``since``/``until`` without an offset is local time. Every
resolution counts a point in the cell that contains it (``h3.latlng_to_cell``): incidents
store their own cell per served resolution (``h3_6`` .. ``h3_10``) and each rollup row holds
a point's exact cells of every resolution the table serves (``cell``, ``c9`` .. ``c6``;
migration 0021); H3 does not nest exactly, so no count is made from parents. Callers bound
to an area read incidents directly (the rollups are city-wide). Counts per area
(``area_heatmap``) are of any boundary version: the version in force by stored grid, any
other by where the incidents lie (``heatmap_by_area_located.sql``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from sqlalchemy import Engine, TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from geo_service.db.engine import fetch_one
from geo_service.db.rollups import raise_if_zone_mismatch
from geo_service.db.sql import sql
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import (
    cell_feature,
    cells_in_bbox,
    check_served_resolution,
    exact_column,
)
from geo_service.i18n import format_message, gettext, names_language
from geo_service.instants import (
    check_window,
    deployment_zone,
    local_day,
    local_midnight,
    localize_fields,
)
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries import jurisdiction
from geo_service.services.boundaries.versions import version_in_force
from geo_service.vocabulary import AREA_LEVELS

MONTHLY_MAX_RES = 8
CUM_RES = 8  # the (exact) cells of incident_cum_year; res 6 and 7 read the totals
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class HeatmapQuery:
    """Window, filters and resolution of a heatmap; ``since``/``until`` without an offset
    are local times of the deployment's zone."""

    res: int = 8
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    priority: int | None = None
    bbox: BBox | None = None

    def __post_init__(self) -> None:
        """Read naive bounds as local time (``instants.local_instant``)."""
        localize_fields(self, "since", "until")

    def check(self) -> None:
        """Refuse what makes no sense."""
        check_served_resolution(self.res)
        if self.priority is not None and not 1 <= self.priority <= 4:
            raise InvalidInputError(gettext("priority must be 1..4"))
        check_window(self.since, self.until)


def prepare_years(engine: Engine, today: date | None = None) -> None:
    """Create this year's and next year's partitions of the cumulative arrays ahead of time
    (at start-up), so that the first incident of a new year does not make one inside its
    writer's transaction, where it would briefly lock out the other writers."""
    year = (today or local_day(datetime.now(UTC))).year
    with engine.begin() as conn:
        conn.execute(text("SELECT incident_cum_year_cover(:y, :y + 1)"), {"y": year})


def _month_start(d: date, *, up: bool) -> date:
    first = d.replace(day=1)
    if up and first != d:
        first = (first + timedelta(days=32)).replace(day=1)
    return first


def _pieces(
    since: datetime, until: datetime, res: int, zone: ZoneInfo, *, unfiltered: bool = False
) -> list[tuple[str, Any, Any]]:
    """Cut [since, until) into (source, start, end) pieces, each exact for its source: the
    rollups' pieces are whole local days and months of ``zone`` (dates), the raw ones the
    partial days at the ends (instants).

    >>> sh = ZoneInfo("Asia/Shanghai")
    >>> a = datetime(2026, 8, 31, 16, tzinfo=UTC)  # 2026-09-01 00:00 in Shanghai
    >>> _pieces(a, a + timedelta(days=2), 10, sh)
    [('day', datetime.date(2026, 9, 1), datetime.date(2026, 9, 3))]
    >>> [p[0] for p in _pieces(a + timedelta(hours=1), a + timedelta(days=2), 10, sh)]
    ['raw', 'day']
    """
    pieces: list[tuple[str, Any, Any]] = []

    def day(dt: datetime) -> date:
        return local_day(dt, zone)

    def midnight(d: date) -> datetime:
        return local_midnight(d, zone)

    d0 = day(since) if since == midnight(day(since)) else day(since) + timedelta(days=1)
    d1 = day(until)
    if d0 >= d1:  # less than one whole day: raw only
        return [("raw", since, until)]
    if since < midnight(d0):
        pieces.append(("raw", since, midnight(d0)))
    if until > midnight(d1):
        pieces.append(("raw", midnight(d1), until))
    if unfiltered and res == CUM_RES:
        pieces.append(("cum", d0, d1))  # any span of whole days: two array reads per cell
        return pieces
    if res <= MONTHLY_MAX_RES:
        m0, m1 = _month_start(d0, up=True), _month_start(d1, up=False)
        if m0 < m1:
            pieces.append(("month", m0, m1))
            if d0 < m0:
                pieces.append(("day", d0, m0))
            if m1 < d1:
                pieces.append(("day", m1, d1))
            return pieces
    pieces.append(("day", d0, d1))
    return pieces


def _cumulative_part(params: dict[str, Any], i: int, d0: date, d1: date) -> str:
    """Counts over the whole days [d0, d1) from the yearly cumulative arrays (migration 0007):
    ``cum(d1 - 1) - cum(d0 - 1)`` per res-8 cell (``CUM_RES``, each point's own cell since
    0021); days past the latest year read its last element. Each side reads one element per
    row before any join (the arrays themselves never move).
    """
    a, b = d0 - timedelta(days=1), d1 - timedelta(days=1)
    params.update({f"ya{i}": a.year, f"ia{i}": a.timetuple().tm_yday})
    params.update({f"yb{i}": b.year, f"ib{i}": b.timetuple().tm_yday})
    latest = "(SELECT max(year) FROM incident_cum_year)"

    def element(side: str) -> str:
        y, ix = f":y{side}{i}", f":i{side}{i}"
        # a row of an earlier year than asked for is the latest year: its last element
        return f"cum[CASE WHEN year < {y} THEN array_upper(cum, 1) ELSE {ix} END]"

    def side(name: str) -> str:
        return (
            f"SELECT cell, {element(name)} AS v FROM incident_cum_year "
            f"WHERE year = least(:y{name}{i}, {latest})"
        )

    if a.year == b.year:  # one row per cell: the stored cells themselves, nothing to group
        return (
            f"SELECT cell, n FROM (SELECT cell, {element('b')} - {element('a')} AS n "
            f"FROM incident_cum_year WHERE year = least(:yb{i}, {latest})) x WHERE n <> 0"
        )
    return (
        "SELECT b.cell, b.v - coalesce(a.v, 0) AS n "
        f"FROM ({side('b')}) b LEFT JOIN ({side('a')}) a USING (cell) "
        "WHERE b.v - coalesce(a.v, 0) <> 0"
    )


def _rollup_column(res: int, finest: int) -> str:
    """The rollup column holding each point's exact cell at ``res`` (migration 0021):
    ``cell`` at the table's finest resolution, ``c<res>`` below it.

    >>> _rollup_column(10, 10), _rollup_column(8, 10), _rollup_column(8, 8)
    ('cell', 'c8', 'cell')
    """
    return "cell" if res == finest else f"c{res}"


def _cells_sql(q: HeatmapQuery, scope: Scope | None) -> tuple[str, dict[str, Any]]:
    """The statement of (cell, n) rows at ``q.res``, one per cell with incidents; one that
    reads rollups first checks they count the days of the deployment's zone."""
    q.check()
    since = q.since or EPOCH
    until = q.until or datetime.now(UTC)
    params: dict[str, Any] = {"category": q.category, "priority": q.priority}
    cell = exact_column(q.res)  # an identifier of a fixed set, never from the request
    filters = (
        "(CAST(:category AS text) IS NULL OR category = :category) AND "
        "(CAST(:priority AS smallint) IS NULL OR priority = :priority)"
    )
    if scope is not None and not scope.unrestricted:
        params.update(since=since, until=until, grids=sorted(scope.grid_ids or ()))
        sql = (
            f"SELECT {cell}, count(*) FROM incidents WHERE {filters} "
            "AND reported_at >= :since AND reported_at < :until "
            "AND grid_id = ANY(:grids) GROUP BY 1"
        )
    else:
        parts = []
        unfiltered = q.category is None and q.priority is None
        zone = deployment_zone()
        pieces = _pieces(since, until, q.res, zone, unfiltered=unfiltered)
        # rollups hold cells of several resolutions: one range of the index per resolution
        for i, (source, start, end) in enumerate(pieces):
            params[f"s{i}"], params[f"e{i}"] = start, end
            if source == "cum":
                parts.append(_cumulative_part(params, i, start, end))
            elif source == "raw":
                parts.append(
                    f"SELECT {cell} AS cell, count(*) AS n FROM incidents "
                    f"WHERE {filters} AND reported_at >= :s{i} AND reported_at < :e{i} "
                    "GROUP BY 1"
                )
            elif unfiltered and q.res <= MONTHLY_MAX_RES:
                # Totals per cell: a fraction of the rows of the per-category rollups.
                parts.append(
                    f"SELECT {_rollup_column(q.res, 8)} AS cell, sum(n) AS n "
                    f"FROM incident_total_{source} "
                    f"WHERE bucket >= :s{i} AND bucket < :e{i} GROUP BY 1"
                )
            else:
                table = f"incident_rollup_{source}"
                finest = 10 if source == "day" else 8
                parts.append(
                    f"SELECT {_rollup_column(q.res, finest)} AS cell, sum(n) AS n FROM {table} "
                    f"WHERE {filters} AND bucket >= :s{i} AND bucket < :e{i} GROUP BY 1"
                )
        sql = (
            parts[0]
            if len(parts) == 1
            else f"SELECT cell, sum(n) FROM ({' UNION ALL '.join(parts)}) x GROUP BY cell"
        )
        if any(source != "raw" for source, _, _ in pieces):
            # evaluated once (a constant filter), before any rollup row is read
            params["zone"] = zone.key
            sql = f"SELECT * FROM ({sql}) z WHERE rollup_zone_is(:zone)"
    return sql, params


@contextmanager
def _rollups_of_this_zone() -> Iterator[None]:
    """Turn ``rollup_zone_is`` refusing into :class:`RollupZoneMismatchError` (503)."""
    try:
        yield
    except DBAPIError as exc:
        raise_if_zone_mismatch(exc)
        raise


def _counts_query(q: HeatmapQuery, scope: Scope | None) -> tuple[TextClause, dict[str, Any]]:
    """The one statement answering ``h3_counts``: a single row of (cells[], counts[])."""
    sql, params = _cells_sql(q, scope)
    # One row of two arrays: fetching a thousand rows one by one costs more than the query.
    return text(f"SELECT array_agg(c), array_agg(n::bigint) FROM ({sql}) t(c, n)"), params


def _compact_query(q: HeatmapQuery, scope: Scope | None) -> tuple[TextClause, dict[str, Any]]:
    """The statement answering ``format=json`` without a bbox: one row of (the ``cells``
    list as JSON text, the total). PostgreSQL writes the thousand small objects in C;
    building them as Python dicts costs more than the query itself. The list is in no
    particular order (sorting it would cost a third of the query). ``to_hex`` of the cell is
    its H3 string form.
    """
    sql, params = _cells_sql(q, scope)
    cell = """concat('{"h3":"', to_hex(c), '","count":', n::bigint, '}')"""
    return (
        text(
            f"SELECT coalesce(string_agg({cell}, ','), ''), "
            f"coalesce(sum(n), 0)::bigint FROM ({sql}) t(c, n)"
        ),
        params,
    )


def _counts_from(row: Any, q: HeatmapQuery) -> dict[int, int]:
    cells, ns = row
    counts = dict(zip(cells or (), ns or (), strict=True))
    if q.bbox is not None and counts:
        keys = np.fromiter(counts, dtype=np.int64, count=len(counts))
        counts = {int(c): counts[int(c)] for c in keys[cells_in_bbox(keys, q.bbox)]}
    return counts


def h3_counts(session: Session, q: HeatmapQuery, *, scope: Scope | None = None) -> dict[int, int]:
    """Incident counts per H3 cell at ``q.res`` (cells with none are absent)."""
    sql, params = _counts_query(q, scope)
    with _rollups_of_this_zone():
        row = session.execute(sql, params).one()
    return _counts_from(row, q)


async def h3_counts_async(
    conn: AsyncConnection, q: HeatmapQuery, *, scope: Scope | None = None
) -> dict[int, int]:
    """``h3_counts`` on an asyncio connection: one statement, for the API's event loop."""
    sql, params = _counts_query(q, scope)
    with _rollups_of_this_zone():
        row = await fetch_one(conn, sql, params)
    return _counts_from(row, q)


def h3_heatmap(
    session: Session, q: HeatmapQuery, *, scope: Scope | None = None, compact: bool = False
) -> dict[str, Any]:
    """Counts per H3 cell as GeoJSON hexagons, or as a compact cell/count list."""
    return heatmap_body(h3_counts(session, q, scope=scope), q, compact=compact)


def _compact_json(row: Any, q: HeatmapQuery) -> bytes:
    cells, total = row
    return b'{"res":%d,"total":%d,"cells":[%s]}' % (q.res, total, cells.encode())


def h3_heatmap_json(session: Session, q: HeatmapQuery, *, scope: Scope | None = None) -> bytes:
    """``h3_heatmap(..., compact=True)`` as JSON bytes, the same document."""
    if q.bbox is not None:  # hexagons are tested in Python (no H3 in the database)
        return orjson.dumps(h3_heatmap(session, q, scope=scope, compact=True))
    sql, params = _compact_query(q, scope)
    with _rollups_of_this_zone():
        row = session.execute(sql, params).one()
    return _compact_json(row, q)


async def h3_heatmap_json_async(
    conn: AsyncConnection, q: HeatmapQuery, *, scope: Scope | None = None
) -> bytes:
    """``h3_heatmap_json`` on an asyncio connection: one statement, for the event loop."""
    if q.bbox is not None:
        counts = await h3_counts_async(conn, q, scope=scope)
        return orjson.dumps(heatmap_body(counts, q, compact=True))
    sql, params = _compact_query(q, scope)
    with _rollups_of_this_zone():
        row = await fetch_one(conn, sql, params)
    return _compact_json(row, q)


def heatmap_body(counts: dict[int, int], q: HeatmapQuery, *, compact: bool) -> dict[str, Any]:
    """The response for ``counts``: GeoJSON hexagons, or a compact cell/count list."""
    if compact:
        return {
            "res": q.res,
            "total": sum(counts.values()),
            # f"{c:x}" is the H3 string form (h3.int_to_str), without a call per cell
            "cells": [{"h3": f"{c:x}", "count": n} for c, n in sorted(counts.items())],
        }
    features = [cell_feature(cell, {"count": n}) for cell, n in sorted(counts.items())]
    return {
        "type": "FeatureCollection",
        "features": features,
        "total": sum(counts.values()),
        "res": q.res,
    }


_BY_AREA = sql("heatmap_by_area")
_BY_AREA_LOCATED = sql("heatmap_by_area_located")
_VERSION_EXISTS = text("SELECT 1 FROM boundary_versions WHERE id = :v")


def area_heatmap(
    session: Session,
    q: HeatmapQuery,
    level: str,
    *,
    scope: Scope | None = None,
    version_id: int | None = None,
) -> dict[str, Any]:
    """Incident counts per area of one level of boundary version ``version_id`` (default: the
    version in force) as a choropleth.

    The version in force counts incidents by the grid they are filed under, and those filed
    under another version's grid (history from before a redraw) in its grid holding their
    point: ``attribution`` ``"stored"``, today's answer. Any other version (a draft, a
    scheduled or a retired one) counts every incident of the window in the grid of that
    version holding its point, the rule of the point lookup and of ``/workload?version_id=``
    (ST_Intersects; a point in several grids once, in the lowest grid id): ``"located"``, the
    same history measured against another map. ``scope`` None sees everything; a caller bound
    to an area sees, of the version in force, the areas of its scope, and of any other the
    areas of the jurisdiction rule (``jurisdiction.visible_area_ids``), each counting the
    incidents of the grids below it they may see.

    Returns a GeoJSON FeatureCollection: one Feature per area of ``level`` (``id``, WGS84
    outline simplified to ~2 m, properties ``id``, ``code``, ``name``, ``count``), with
    ``level``, ``version_id``, ``attribution`` and ``total`` (the counts' sum). Raises
    InvalidInputError for a bad level or query, PermissionDeniedError for a version not in
    force asked without ``boundaries:read``, NotFoundError for an unknown version or one with
    nothing in the caller's area (worded as unknown).
    """
    q.check()
    if level not in AREA_LEVELS:
        raise InvalidInputError(
            format_message("level must be one of {values}", values=", ".join(AREA_LEVELS))
        )
    in_force_id = version_in_force(session)
    version = in_force_id if version_id is None else version_id
    in_force = version == in_force_id
    params = {
        "v": version,
        "level": level,
        "since": q.since or EPOCH,
        "until": q.until or datetime.now(UTC),
        "category": q.category,
        "priority": q.priority,
        "lang": names_language(),  # area names in the request's language
    }
    if in_force:
        rows = [
            r for r in session.execute(_BY_AREA, params) if scope is None or scope.has_area(r.id)
        ]
    else:
        rows = list(
            session.execute(_BY_AREA_LOCATED, params | _located_view(session, scope, version))
        )
    features = [
        {
            "type": "Feature",
            "id": r.id,
            "geometry": json.loads(r.geometry),
            "properties": {"id": r.id, "code": r.code, "name": r.name, "count": r.n},
        }
        for r in rows
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "level": level,
        "version_id": version,
        "attribution": "stored" if in_force else "located",
        "total": sum(f["properties"]["count"] for f in features),
    }


def _located_view(session: Session, scope: Scope | None, version: int) -> dict[str, Any]:
    """The ``areas`` and ``shown`` grids of ``version`` (not in force) the caller may see, as
    ``heatmap_by_area_located`` binds them (None: all); raises as ``area_heatmap``."""
    if scope is not None:
        scope.require("boundaries:read")  # another version's map is a boundary read
    if session.execute(_VERSION_EXISTS, {"v": version}).first() is None:
        raise NotFoundError(
            format_message("boundary version {version} does not exist", version=version)
        )
    visible = None if scope is None else jurisdiction.visible_area_ids(session, scope, version)
    if visible is None:
        return {"areas": None, "shown": None}
    if not visible:  # as a missing version: ids cannot be probed across areas
        raise NotFoundError(
            format_message("boundary version {version} does not exist", version=version)
        )
    return {
        "areas": sorted(visible),
        "shown": sorted(i for i, lvl in visible.items() if lvl == "grid"),
    }
