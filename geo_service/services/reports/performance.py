"""``GET /reports/performance``: how each area and each grid worker handled the incidents of
a period, for the managers of the grid offices.

Loads the period's incidents (each in a grid of the version in force, as ``/workload``
counts them), cuts them by area of one level and by grid worker, and hands each group to
``analytics.performance`` (the definitions live there). Reports count incidents and work;
the one figure about households is each area's visit coverage (issue 20: households visited
within ``period_days`` before ``as_of``), an aggregate published by the disclosure module
like every other household count (exact only for those who may read the area's rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service import runtime
from geo_service.analytics import performance as perf
from geo_service.db.sql import sql
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.i18n import format_message, gettext, names_language
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.reports.labels import localized_labels
from geo_service.services.reports.periods import (
    local_periods,
    period_end,
    start_of_local_day,
)
from geo_service.vocabulary import AREA_LEVELS, INCIDENT_SOURCES, OPEN_INCIDENT_STATUSES

# Category groups whose incidents are disputes (the taxonomy's "mediation" group).
DISPUTE_GROUPS = ("mediation",)
MAX_WINDOW_DAYS = 1100
STAMP_COLUMNS = (
    "reported_at",
    "dispatched_at",
    "accepted_at",
    "arrived_at",
    "resolved_at",
    "closed_at",
    "cancelled_at",
)
TARGET_COLUMNS = ("dispatch_target_s", "arrival_target_s", "resolution_target_s")
# an area's name in the report's language (areas.names, migration 0036), else as imported
_AREAS = text(
    "SELECT id, code, coalesce(names ->> :lang, name) AS name, level, parent_id "
    "FROM areas WHERE version_id = :v"
)
_WORKERS = text(
    "SELECT r.id, r.callsign, r.home_grid_id FROM responders r "
    "WHERE r.kind = 'grid_worker' AND r.home_grid_id = ANY(:grids) ORDER BY r.callsign, r.id"
)


@dataclass(frozen=True)
class ReportRequest:
    """What a manager asks for: areas of ``level`` (under ``parent_id``) over
    ``[since, until)`` (aware instants; defaults in ``resolve_window``); visit coverage over
    the ``visit_period_days`` before ``as_of``, counts published to base ``min_count``."""

    level: str = "grid"
    parent_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    visit_period_days: int = 90
    min_count: int = 5
    round_visits: bool = False  # publish rounded counts even to a caller who sees the rows


# Households of each grid and those visited in (cutoff, as_of's day]: the visit coverage.
_VISITS = text(
    """
    SELECT h.grid_id, count(*) AS households,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM household_visits v WHERE v.household_id = h.id
               AND v.visited_on > :cutoff AND v.visited_on <= :day)) AS visited
    FROM households h WHERE h.grid_id = ANY(:grids) GROUP BY h.grid_id
    """
)


def resolve_window(
    since: datetime | None, until: datetime | None, now: datetime, tz: str
) -> tuple[datetime, datetime]:
    """The report's window: ``until`` defaults to the end of today (local), ``since`` to the
    first day of the month two months before ``until``'s (so two whole months and the
    current one: month-over-month and a dozen weeks). Raises InvalidInputError for a window
    that is empty, reversed or longer than ``MAX_WINDOW_DAYS``.

    >>> from datetime import timezone
    >>> s, u = resolve_window(None, None, datetime(2026, 11, 30, 6, tzinfo=timezone.utc),
    ...                       "Asia/Shanghai")
    >>> s.isoformat(), u.isoformat()
    ('2026-09-01T00:00:00+08:00', '2026-12-01T00:00:00+08:00')
    """
    zone = ZoneInfo(tz)
    if until is None:
        until = start_of_local_day(now, tz) + timedelta(days=1)
        until = datetime.combine(until.date(), time(0), tzinfo=zone)
    if since is None:
        last = (until - timedelta(microseconds=1)).astimezone(zone).date()
        month = last.month - 2
        year = last.year + (month - 1) // 12
        since = datetime.combine(date(year, (month - 1) % 12 + 1, 1), time(0), tzinfo=zone)
    if since >= until:
        raise InvalidInputError(gettext("since must be before until"))
    if until - since > timedelta(days=MAX_WINDOW_DAYS):
        raise InvalidInputError(
            format_message(
                "the window may be at most {max_window_days} days", max_window_days=MAX_WINDOW_DAYS
            )
        )
    return since, until


def _frame(session: Session, statement: str, params: dict[str, Any]) -> pd.DataFrame:
    result = session.execute(sql(statement), params)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for column in STAMP_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in TARGET_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame


@dataclass(frozen=True)
class _Selection:
    """The areas shown and, for every grid the caller may see under the parent, its row."""

    areas: list[dict[str, Any]]  # of the level, in code order
    target_of_grid: dict[int, int]  # grid id -> the shown area it is counted in
    parent: dict[str, Any] | None


def _select_areas(
    session: Session, version: int, level: str, parent_id: int | None, scope: Scope
) -> _Selection:
    rows = session.execute(_AREAS, {"v": version, "lang": names_language()}).mappings().all()
    by_id = {r["id"]: dict(r) for r in rows}
    if parent_id is not None and (parent_id not in by_id or not scope.has_area(parent_id)):
        raise NotFoundError(
            format_message(
                "area {parent_id} is not in the boundary version in force", parent_id=parent_id
            )
        )

    def chain(area_id: int) -> list[int]:
        out = []
        node = by_id.get(area_id)
        while node is not None:
            out.append(node["id"])
            node = by_id.get(node["parent_id"])
        return out

    target_of_grid: dict[int, int] = {}
    shown: set[int] = set()
    for area in by_id.values():
        if area["level"] != "grid" or not scope.has_grid(area["id"]):
            continue
        ancestors = chain(area["id"])
        if parent_id is not None and parent_id not in ancestors:
            continue
        target = next((a for a in ancestors if by_id[a]["level"] == level), None)
        if target is None or not scope.has_area(target):
            continue
        target_of_grid[area["id"]] = target
        shown.add(target)
    areas = sorted(
        ({k: by_id[a][k] for k in ("id", "code", "name", "parent_id")} for a in shown),
        key=lambda a: a["code"],
    )
    parent = None
    if parent_id is not None:
        p = by_id[parent_id]
        parent = {"id": p["id"], "code": p["code"], "name": p["name"], "level": p["level"]}
    return _Selection(areas, target_of_grid, parent)


def performance(
    session: Session,
    request: ReportRequest,
    *,
    scope: Scope,
    tz: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every figure of ``GET /reports/performance`` (see ``analytics.performance``).

    Parameters
    ----------
    request : ReportRequest
        ``level`` of the areas shown (grid, community, street, district), ``parent_id`` an
        area of the version in force to report under, the window ``[since, until)``.
    scope : Scope
        The caller: only grids they may see are counted, only areas at or below their
        jurisdiction shown (a coarser level than theirs shows none).
    tz : str
        The deployment's zone: defaults of the window, weeks (ISO, from Monday) and months.
    now : datetime, optional
        The service's clock (``runtime.current().clock``: the database's unless held); open
        incidents are judged at ``as_of = min(until, now)``.

    Returns
    -------
    dict
        ``level``, ``parent``, ``version_id``, ``since``, ``until``, ``as_of``, ``timezone``,
        ``total``, ``areas``, ``workers``, ``trends``, ``rankings``.

    Raises
    ------
    InvalidInputError
        A bad level or window (422).
    NotFoundError
        ``parent_id`` not in the version in force or outside the caller's area (404).
    """
    if request.level not in AREA_LEVELS:
        raise InvalidInputError(
            format_message("level must be one of {values}", values=", ".join(AREA_LEVELS))
        )
    now = now or runtime.current().clock.now(session)
    since, until = resolve_window(request.since, request.until, now, tz)
    as_of = min(until, now)
    version = version_in_force(session)
    selection = _select_areas(session, version, request.level, request.parent_id, scope)
    frame = _frame(
        session,
        "reports_incidents",
        {"v": version, "since": since, "until": until, "dispute_groups": list(DISPUTE_GROUPS)},
    )
    everywhere = frame  # a worker's incidents count wherever they lay
    frame = _in_selection(frame, selection)
    open_everywhere = _frame(
        session,
        "reports_backlog",
        {"v": version, "at": as_of, "open": list(OPEN_INCIDENT_STATUSES)},
    )
    open_at = _in_selection(open_everywhere, selection)
    stamp = pd.Timestamp(as_of)

    empty_backlog = perf.backlog(open_at["reported_at"].iloc[0:0], stamp)
    empty_figures = perf.figures(frame.iloc[0:0], stamp, INCIDENT_SOURCES)
    by_area = perf.figures_by(frame, frame["area_id"], stamp, INCIDENT_SOURCES)
    waiting_by_area = perf.backlog_by(open_at["reported_at"], open_at["area_id"], stamp)
    areas = [
        {
            **area,
            **by_area.get(area["id"], empty_figures),
            **_backlog_figures(waiting_by_area.get(area["id"], empty_backlog)),
        }
        for area in selection.areas
    ]
    workers = _workers(
        session, selection, everywhere, open_everywhere, stamp, empty_figures, empty_backlog
    )
    visits = _visits(session, selection, scope, as_of.astimezone(ZoneInfo(tz)).date(), request)
    for area in areas:
        area["visits"] = visits[area["id"]]
    trends = _trends(frame, tz, since, until, as_of)
    # a worker with no case to rate in the period (n = 0) is listed apart, not ranked last:
    # a bottom ten of idle workers says nothing about how anyone worked
    rated_workers = [w for w in workers if w["on_time"]["resolution"]["all"]["denominator"]]
    return {
        "level": request.level,
        "parent": selection.parent,
        "version_id": version,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "as_of": as_of.astimezone(ZoneInfo(tz)).isoformat(),  # local, with its offset
        "timezone": tz,
        "total": {
            **perf.figures(frame, stamp, INCIDENT_SOURCES),
            **_backlog_figures(perf.backlog(open_at["reported_at"], stamp)),
            "visits": _visit_total(list(visits.values()), request.visit_period_days),
        },
        "areas": areas,
        "workers": workers,
        "trends": trends,
        "rankings": {
            "closure_rate": _rank(areas, lambda a: a["closure_rate"]),
            "on_time_resolution": _rank(areas, lambda a: a["on_time"]["resolution"]["all"]),
            "workers_on_time_resolution": _rank(
                rated_workers, lambda w: w["on_time"]["resolution"]["all"], label="callsign"
            ),
            "workers_not_ranked": [
                {"id": w["responder_id"], "code": w["callsign"], "received": w["received"]}
                for w in workers
                if not w["on_time"]["resolution"]["all"]["denominator"]
            ],
        },
    }


def _backlog_figures(bands: dict[str, int]) -> dict[str, Any]:
    """A group's backlog at ``as_of`` by age and in all (``open_at_as_of``: the one count of
    open incidents the page's card, the chart and the files show)."""
    return {"backlog": bands, "open_at_as_of": sum(bands.values())}


def _visits(
    session: Session, selection: _Selection, scope: Scope, day: date, request: ReportRequest
) -> dict[int, dict[str, Any]]:
    """Each shown area's visit coverage on local ``day``: ``households``, ``visited`` (within
    the ``visit_period_days`` up to ``day``), ``coverage`` (visited / households) and
    ``period_days``. Exact for a caller who may read every grid's rows in the area (admins,
    a grid's own worker); else both counts published by fixed random rounding to base
    ``min_count`` with the area's keys (``area:<id>`` as on every route, ``visited:area:<id>``
    as ``/households/visits/coverage``), null when they round to 0, and the coverage computed
    from the published counts (``disclosure``)."""
    grids_of: dict[int, list[int]] = {}
    for grid, area in selection.target_of_grid.items():
        grids_of.setdefault(area, []).append(grid)
    rows = session.execute(
        _VISITS,
        {
            "grids": list(selection.target_of_grid),
            "cutoff": day - timedelta(days=request.visit_period_days),
            "day": day,
        },
    ).all()
    counts = {int(r.grid_id): (int(r.households), int(r.visited)) for r in rows}
    ids = [a["id"] for a in selection.areas]
    keys = disclosure.identity_keys(
        session,
        [disclosure.area_identity(i) for i in ids] + [f"visited:area:{i}" for i in ids],
    )
    out = {}
    for n, area_id in enumerate(ids):
        grids = grids_of.get(area_id, [])
        households = sum(counts.get(g, (0, 0))[0] for g in grids)
        visited = sum(counts.get(g, (0, 0))[1] for g in grids)
        exact = not request.round_visits and disclosure.sees_exact(scope, grids)
        if not exact:
            households = disclosure.round_count(
                households, keys[n], "households", request.min_count
            )
            visited = disclosure.round_count(
                visited, keys[len(ids) + n], "visited", request.min_count
            )
        shown_households = households if households or exact else None
        shown_visited = visited if visited or exact else None
        share = None
        if shown_households:
            share = round(min(1.0, disclosure.published_value(shown_visited) / households), 4)
        out[area_id] = {
            "households": shown_households,
            "visited": shown_visited,
            "coverage": share,
            "period_days": request.visit_period_days,
            "exact": exact,
        }
    return out


def _visit_total(areas: list[dict[str, Any]], period_days: int) -> dict[str, Any]:
    """The sum of the areas' published visit figures (nothing finer than what they show)."""
    households = sum(disclosure.published_value(a["households"]) for a in areas)
    visited = sum(disclosure.published_value(a["visited"]) for a in areas)
    return {
        "households": households,
        "visited": visited,
        "coverage": round(min(1.0, visited / households), 4) if households else None,
        "period_days": period_days,
        "exact": all(a["exact"] for a in areas),
    }


def _in_selection(frame: pd.DataFrame, selection: _Selection) -> pd.DataFrame:
    """The rows in grids of the selection, each with the ``area_id`` it is shown under."""
    area = frame["grid_id"].map(selection.target_of_grid) if len(frame) else frame["grid_id"]
    out = frame.assign(area_id=area)
    return out[out["area_id"].notna()].astype({"area_id": "int64"})


def _workers(
    session: Session,
    selection: _Selection,
    frame: pd.DataFrame,
    open_at: pd.DataFrame,
    stamp: pd.Timestamp,
    empty_figures: dict[str, Any],
    empty_backlog: dict[str, int],
) -> list[dict[str, Any]]:
    """Per grid worker homed in a selected grid: the incidents assigned to them (whatever
    grid they lay in: a worker sent next door did that work), and how many of the
    incidents of their home grid came from grid workers' own discovery."""
    grids = sorted(selection.target_of_grid)
    rows = session.execute(_WORKERS, {"grids": grids}).all()
    # each home grid's code and its name in the report's language (areas.names)
    homes: dict[int, dict[str, str]] = {
        int(i): {"code": str(c), "name": str(n)}
        for i, c, n in session.execute(
            text("SELECT id, code, coalesce(names ->> :lang, name) FROM areas WHERE id = ANY(:g)"),
            {"g": grids, "lang": names_language()},
        ).all()
    }
    assigned = frame[frame["responder_id"].notna()]
    by_worker = perf.figures_by(assigned, assigned["responder_id"], stamp, INCIDENT_SOURCES)
    waiting = open_at[open_at["responder_id"].notna()]
    waiting_by_worker = perf.backlog_by(waiting["reported_at"], waiting["responder_id"], stamp)
    own = frame[frame["source"] == "grid_worker"]["grid_id"].value_counts()
    return [
        {
            "responder_id": int(responder_id),
            "callsign": callsign,
            "grid": {"id": int(home), **homes[home]},
            "discovered_in_grid": int(own.get(home, 0)),
            **by_worker.get(responder_id, empty_figures),
            **_backlog_figures(waiting_by_worker.get(responder_id, empty_backlog)),
        }
        for responder_id, callsign, home in rows
    ]


def _rank(
    rows: list[dict[str, Any]],
    pick: Callable[[dict[str, Any]], dict[str, Any]],
    label: str = "code",
) -> list[dict[str, Any]]:
    """``perf.ranking`` of areas (by code) or workers (by callsign) on one rate."""
    entries = [
        {
            "id": r.get("id", r.get("responder_id")),
            "code": r[label],
            "name": r.get("name"),
            "r": pick(r),
        }
        for r in rows
    ]
    return perf.ranking(entries, "r")


def _trends(
    frame: pd.DataFrame, tz: str, since: datetime, until: datetime, as_of: datetime
) -> dict[str, Any]:
    """Per local week and month of the window (every period, empty ones too), each with how
    much of it the report saw: ``days`` (of the period inside ``[since, as_of)``, local
    wall-clock days to two decimals), ``period_days`` (7, or the month's), ``whole`` (inside
    the window and over by ``as_of``) and ``partial`` (not whole: the window cuts it, or it
    is not over). Week over week and month over month compare **whole periods only**: the
    last two whole ones (a partial first or last week's count is not compared with a full
    one's, nor scaled to a per-day rate); None with fewer than two."""
    out: dict[str, Any] = {}
    zone = ZoneInfo(tz)
    first, last = since.astimezone(zone), as_of.astimezone(zone)
    for unit in ("week", "month"):
        starts = _period_starts(since, until, tz, unit)
        period = local_periods(frame["reported_at"], tz, unit)
        rows = perf.series(frame, period, pd.Timestamp(as_of), starts)
        for row in rows:
            start = datetime.combine(date.fromisoformat(row["start"]), time(0), tzinfo=zone)
            end = datetime.combine(period_end(row["start"], unit), time(0), tzinfo=zone)
            row["whole"] = start >= first and end <= last
            row["partial"] = not row["whole"]
            row["days"] = _local_days(max(start, first), min(end, last), zone)
            row["period_days"] = (end.date() - start.date()).days
        whole = [r for r in rows if r["whole"]]
        out[f"{unit}s"] = rows
        out[f"{unit}_over_{unit}"] = perf.change(whole[-1], whole[-2]) if len(whole) > 1 else None
    return out


def _local_days(begin: datetime, end: datetime, zone: ZoneInfo) -> float:
    """The local wall-clock days from ``begin`` to ``end`` (0 when ``end`` is not after it),
    to two decimals: a day of a clock change counts as one day.

    >>> z = ZoneInfo("Asia/Shanghai")
    >>> _local_days(datetime(2026, 11, 23, tzinfo=z), datetime(2026, 11, 26, 12, tzinfo=z), z)
    3.5
    """
    if end <= begin:
        return 0.0
    a = begin.astimezone(zone).replace(tzinfo=None)
    b = end.astimezone(zone).replace(tzinfo=None)
    return round((b - a).total_seconds() / 86400, 2)


def _period_starts(since: datetime, until: datetime, tz: str, unit: str) -> list[str]:
    """The first days of the local weeks or months that meet ``[since, until)``."""
    first = local_periods(pd.Series([pd.Timestamp(since)]), tz, unit).iloc[0]
    last = local_periods(
        pd.Series([pd.Timestamp(until) - pd.Timedelta(microseconds=1)]), tz, unit
    ).iloc[0]
    starts = [first]
    while starts[-1] < last:
        starts.append(period_end(starts[-1], unit).isoformat())
    return starts


def default_file_level(session: Session, scope: Scope, parent_id: int | None) -> str:
    """The level a report file (PDF) shows when the request names none: the level below
    ``parent_id``'s, else below the caller's jurisdiction (``district`` for a city-wide
    caller), ``grid`` at the bottom. A page of rows per district reads on paper; 1,500 grids
    do not."""
    area_id = parent_id if parent_id is not None else scope.area_id
    if area_id is None:
        return AREA_LEVELS[0]
    level = session.execute(
        text("SELECT level FROM areas WHERE id = :i"), {"i": area_id}
    ).scalar_one_or_none()
    if level not in AREA_LEVELS:
        return AREA_LEVELS[0]
    return AREA_LEVELS[min(AREA_LEVELS.index(level) + 1, len(AREA_LEVELS) - 1)]


def report_title(report: dict[str, Any]) -> str:
    """The heading of a report's file: what it covers (the parent area, else the areas the
    caller sees) and the level of its rows, in the current language."""
    words = localized_labels()
    parent = report["parent"]
    where = f"{parent['name']} ({parent['code']})" if parent else words["all_areas"]
    level = words.get(f"level_{report['level']}", report["level"])
    return f"{words['title']}: {where} · {level}"
