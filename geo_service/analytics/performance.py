"""The managers' performance figures: pure functions on a table of incidents.

One row an incident (reported in the report's window), its lifecycle stamps and its targets in
seconds; out come counts, rates with their Wilson score intervals, stage times and the
calendar series of a report. No database, no HTTP: ``services/reports`` loads the table and
says which group (area, grid worker, week) each row belongs to.

Definitions (the service's own, from ``services/intake/incidents.py``):

* the **stages** are dispatch (reported → accepted: the dispatch target of the priority, the
  ``response_targets`` tier), arrival (reported → arrived: the category's
  ``response_target_s`` when one is set) and resolution (reported → resolved: the category's
  ``resolution_target_min``), each counted from the report, as ``GET /incidents?overdue=``
  counts them;
* a stage is **on time** when it ended within its target, **late** when it ended after it or
  had not ended when its target passed while the incident was still open (at the report's
  ``as_of``); otherwise it is undecided and in no denominator (cancelled before its target, no
  target set, or a record without the stamp);
* **handled**: resolved or closed; **closed**: closed; the **closure rate** is closed over
  received minus cancelled;
* **resolved inside the grid**: handled without escalation (level 0); inside the community:
  escalated at most to the community (level ≤ 1);
* **escalations by level**: the escalations to each level (community, street, district) of
  the group's incidents, from the escalation history (``escalations_to_<level>`` columns;
  without them, the levels each incident passed): an incident escalated grid → community →
  street counts one at the community and one at the street.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

STAGES = ("dispatch", "arrival", "resolution")
# stage: (the stamp that ends it, the target column in seconds)
STAGE_COLUMNS = {
    "dispatch": ("accepted_at", "dispatch_target_s"),
    "arrival": ("arrived_at", "arrival_target_s"),
    "resolution": ("resolved_at", "resolution_target_s"),
}
TIERS = (1, 2, 3, 4)
OPEN = ("reported", "dispatched", "accepted", "on_scene")
HANDLED = ("resolved", "closed")
# Backlog ages, in hours: [low, high)
BACKLOG_BANDS_H = ((0, 1), (1, 4), (4, 24), (24, 72), (72, 168), (168, math.inf))
# A rate over fewer cases than this is flagged in rankings, whatever its interval.
SMALL_DENOMINATOR = 30
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a binomial proportion (95% by default).

    Source: E. B. Wilson, "Probable inference, the law of succession, and statistical
    inference", JASA 22 (1927) 209-212; recommended over the Wald interval for small ``n``
    and rates near 0 or 1 by Brown, Cai & DasGupta, Statistical Science 16 (2001) 101-133.

    Parameters
    ----------
    successes, n : int
        Cases that met the criterion, out of ``n``.
    z : float
        The normal quantile of the two-sided level.

    Returns
    -------
    tuple of float or None
        ``(low, high)`` in [0, 1]; None when ``n`` is 0.

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    >>> [round(v, 4) for v in wilson_interval(80, 100)]
    [0.7112, 0.8666]
    >>> wilson_interval(0, 0) is None
    True
    """
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError("successes must lie in 0..n")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(successes: int, n: int) -> dict[str, Any]:
    """A proportion with its 95% Wilson interval and whether its denominator is small.

    Examples
    --------
    >>> rate(3, 4)["small_sample"], rate(3, 4)["rate"]
    (True, 0.75)
    >>> rate(0, 0)["rate"] is None
    True
    """
    interval = wilson_interval(successes, n)
    return {
        "numerator": int(successes),
        "denominator": int(n),
        "rate": None if n == 0 else round(successes / n, 4),
        "low": None if interval is None else round(interval[0], 4),
        "high": None if interval is None else round(interval[1], 4),
        "small_sample": n < SMALL_DENOMINATOR,
    }


def _seconds(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds()


def stage_outcomes(frame: pd.DataFrame, stage: str, as_of: pd.Timestamp) -> pd.Series:
    """Per incident: 1.0 on time, 0.0 late, NaN undecided (module docstring), for ``stage``.

    ``frame`` has ``reported_at``, the stage's stamp and target columns (``STAGE_COLUMNS``)
    and ``status``; ``as_of`` is the instant open incidents are judged at.

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-01T00:00Z")
    >>> f = pd.DataFrame({"reported_at": [t, t, t, t],
    ...     "accepted_at": [t + pd.Timedelta(seconds=50), t + pd.Timedelta(seconds=90),
    ...                     pd.NaT, pd.NaT],
    ...     "dispatch_target_s": [60.0, 60.0, 60.0, 60.0],
    ...     "status": ["closed", "closed", "reported", "cancelled"]})
    >>> stage_outcomes(f, "dispatch", t + pd.Timedelta(seconds=120)).tolist()
    [1.0, 0.0, 0.0, nan]
    """
    stamp, target = STAGE_COLUMNS[stage]
    elapsed = _seconds(frame[stamp], frame["reported_at"])
    waited = (as_of - frame["reported_at"]).dt.total_seconds()
    limit = frame[target].astype(float)
    ended = frame[stamp].notna() & limit.notna()
    overdue_open = frame[stamp].isna() & frame["status"].isin(OPEN) & (waited > limit)
    out = pd.Series(np.nan, index=frame.index)
    out[ended] = (elapsed[ended] <= limit[ended]).astype(float)
    out[overdue_open] = 0.0
    return out


def _times(values: np.ndarray) -> dict[str, Any]:
    """Median and 90th percentile, in seconds, of a stage's durations (linear interpolation
    between order statistics: numpy's default, PostgreSQL's ``percentile_cont``)."""
    if values.size == 0:
        return {"n": 0, "median_s": None, "p90_s": None}
    median, p90 = np.percentile(values, [50, 90])
    return {
        "n": int(values.size),
        "median_s": round(float(median), 1),
        "p90_s": round(float(p90), 1),
    }


# escalation levels above the grid: (index, the level that holds the incident)
_LEVELS = ((1, "community"), (2, "street"), (3, "district"))


def _indicators(frame: pd.DataFrame, as_of: pd.Timestamp, sources: Sequence[str]) -> pd.DataFrame:
    """One 0/1 column per count the figures sum (per incident), so that every group's counts
    are one ``groupby().sum()``."""
    status = frame["status"]
    level = frame["escalation_level"].astype(float)
    handled = status.isin(HANDLED)
    dispute = frame["is_dispute"].astype(bool)
    cols: dict[str, Any] = {
        "received": np.ones(len(frame)),
        "handled": handled,
        "closed": status == "closed",
        "cancelled": status == "cancelled",
        "open": status.isin(OPEN),
        "escalated": level > 0,
        "in_grid": handled & (level == 0),
        "in_community": handled & (level <= 1),
        "disputes": dispute,
        "settled": dispute & (frame["outcome"] == "settled"),
        "with_outcome": dispute & frame["outcome"].notna(),
        "reopened": frame["reopened_count"].astype(float) > 0,
    }
    for source in sources:
        cols[f"source:{source}"] = frame["source"] == source
    for i, name in _LEVELS:
        history = f"escalations_to_{name}"
        # each escalation to the level, from the history; without it, the levels passed
        # (escalation climbs one level at a time)
        cols[f"level:{name}"] = frame[history] if history in frame else level >= i
    for stage in STAGES:
        outcome = stage_outcomes(frame, stage, as_of)
        decided, on_time = outcome.notna(), outcome == 1.0
        cols[f"{stage}:n"], cols[f"{stage}:k"] = decided, on_time
        for tier in TIERS:
            mine = frame["priority"] == tier
            cols[f"{stage}:n:{tier}"], cols[f"{stage}:k:{tier}"] = decided & mine, on_time & mine
    return pd.DataFrame(cols, index=frame.index).astype("int64")


def figures_by(
    frame: pd.DataFrame, group: pd.Series, as_of: pd.Timestamp, sources: Sequence[str]
) -> dict[Any, dict[str, Any]]:
    """``figures`` of every group of incidents at once (areas, grid workers): the counts in
    one ``groupby().sum()``, the stage times in one sort per stage; the groups that have
    incidents, by the key ``group`` gives each row.

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-01T00:00Z")
    >>> f = pd.DataFrame({"status": ["closed", "reported", "closed"],
    ...     "source": ["hotline", "sensor", "citizen"], "priority": [2, 1, 2],
    ...     "escalation_level": [0, 1, 0], "is_dispute": [False, False, False],
    ...     "outcome": [None, None, None], "reopened_count": [0, 0, 0],
    ...     "reported_at": [t, t, t],
    ...     "accepted_at": [t + pd.Timedelta(minutes=1), pd.NaT, t + pd.Timedelta(minutes=9)],
    ...     "arrived_at": pd.to_datetime([None, None, None], utc=True),
    ...     "resolved_at": pd.to_datetime([None, None, None], utc=True),
    ...     "dispatch_target_s": [180.0, 60.0, 180.0], "arrival_target_s": np.nan,
    ...     "resolution_target_s": 7200.0})
    >>> out = figures_by(f, pd.Series(["a", "a", "b"]), t + pd.Timedelta(hours=3), ["hotline"])
    >>> [out[k]["on_time"]["dispatch"]["all"]["rate"] for k in ("a", "b")]
    [0.5, 0.0]
    >>> out["b"]["on_time"]["dispatch"]["all"]["high"], out["b"]["by_source"]
    (0.7935, {'hotline': 0})
    """
    if len(frame) == 0:
        return {}
    sums = _indicators(frame, as_of, sources).groupby(group, sort=False).sum()
    durations = {
        stage: _seconds(frame[STAGE_COLUMNS[stage][0]], frame["reported_at"]) for stage in STAGES
    }
    times: dict[str, dict[Any, np.ndarray]] = {}
    for stage, values in durations.items():
        ended = values.notna()
        by_group = values[ended].groupby(group[ended], sort=False)
        times[stage] = {key: part.to_numpy() for key, part in by_group}
    empty = np.array([])
    return {
        key: _assemble(row, {stage: times[stage].get(key, empty) for stage in STAGES}, sources)
        for key, row in zip(sums.index, sums.to_dict("records"), strict=True)
    }


def _assemble(
    n: dict[str, int], durations: dict[str, np.ndarray], sources: Sequence[str]
) -> dict[str, Any]:
    """The figures of one group from its summed indicators and its stage durations."""
    on_time = {
        stage: {
            "all": rate(n[f"{stage}:k"], n[f"{stage}:n"]),
            "tiers": {str(t): rate(n[f"{stage}:k:{t}"], n[f"{stage}:n:{t}"]) for t in TIERS},
            "times": _times(durations[stage]),
        }
        for stage in STAGES
    }
    return {
        "received": int(n["received"]),
        "by_source": {s: int(n[f"source:{s}"]) for s in sources},
        "handled": int(n["handled"]),
        "closed": int(n["closed"]),
        "cancelled": int(n["cancelled"]),
        "open": int(n["open"]),
        "closure_rate": rate(n["closed"], n["received"] - n["cancelled"]),
        "on_time": on_time,
        "escalations": {
            "escalated": int(n["escalated"]),
            "by_level": {name: int(n[f"level:{name}"]) for _, name in _LEVELS},
        },
        "resolved_in_grid": rate(n["in_grid"], n["handled"]),
        "resolved_in_community": rate(n["in_community"], n["handled"]),
        "disputes": {
            "received": int(n["disputes"]),
            "mediated": rate(n["settled"], n["with_outcome"]),
        },
        "reopened": int(n["reopened"]),
    }


def figures(frame: pd.DataFrame, as_of: pd.Timestamp, sources: Sequence[str]) -> dict[str, Any]:
    """Every figure of one group of incidents (an area, a grid worker, the whole report).

    Parameters
    ----------
    frame : DataFrame
        One row an incident: ``status``, ``source``, ``priority``, ``escalation_level``,
        ``is_dispute``, ``outcome``, ``reopened_count``, ``reported_at`` and the stage stamps
        (UTC timestamps), the targets in seconds (``STAGE_COLUMNS``; NaN: none); optionally
        ``escalations_to_community``, ``_street``, ``_district`` (counts from the history).
    as_of : Timestamp
        When open incidents are judged late (the end of the window, or now if earlier).
    sources : sequence of str
        The sources counted, in order (``vocabulary.INCIDENT_SOURCES``).

    Returns
    -------
    dict
        ``received``, ``by_source``, ``handled``, ``closed``, ``cancelled``, ``open``,
        ``closure_rate``, ``on_time`` (per stage: ``all``, ``tiers``, ``times``),
        ``escalations``, ``resolved_in_grid``, ``resolved_in_community``, ``disputes``,
        ``reopened``: those of no incident when ``frame`` is empty.

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-01T00:00Z")
    >>> f = pd.DataFrame({"status": ["closed", "reported"], "source": ["hotline", "sensor"],
    ...     "priority": [2, 1], "escalation_level": [0, 1], "is_dispute": [False, False],
    ...     "outcome": [None, None], "reopened_count": [0, 0], "reported_at": [t, t],
    ...     "accepted_at": [t + pd.Timedelta(minutes=1), pd.NaT],
    ...     "arrived_at": pd.to_datetime([None, None], utc=True),
    ...     "resolved_at": [t + pd.Timedelta(hours=1), pd.NaT],
    ...     "dispatch_target_s": [180.0, 60.0], "arrival_target_s": [np.nan, np.nan],
    ...     "resolution_target_s": [7200.0, 7200.0]})
    >>> out = figures(f, t + pd.Timedelta(hours=3), ("citizen", "hotline", "sensor"))
    >>> out["by_source"], out["closure_rate"]["rate"], out["on_time"]["dispatch"]["all"]["rate"]
    ({'citizen': 0, 'hotline': 1, 'sensor': 1}, 0.5, 0.5)
    >>> figures(f.iloc[0:0], t, ("citizen",))["closure_rate"]["rate"] is None
    True
    """
    found = figures_by(frame, pd.Series(0, index=frame.index), as_of, sources)
    if found:
        return found[0]
    zeros = dict.fromkeys(_indicators(frame.iloc[0:0], as_of, sources).columns, 0)
    return _assemble(zeros, dict.fromkeys(STAGES, np.array([])), sources)


def backlog(reported_at: pd.Series, as_of: pd.Timestamp) -> dict[str, int]:
    """How many incidents still open at ``as_of`` have waited how long (``BACKLOG_BANDS_H``).

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-01T12:00Z")
    >>> ages = pd.Series([t - pd.Timedelta(minutes=5), t - pd.Timedelta(days=2)])
    >>> backlog(ages, t)
    {'0-1h': 1, '1-4h': 0, '4-24h': 0, '1-3d': 1, '3-7d': 0, '7d+': 0}
    """
    hours = (as_of - reported_at).dt.total_seconds().to_numpy() / 3600
    return {
        _band_name(low, high): int(((hours >= low) & (hours < high)).sum())
        for low, high in BACKLOG_BANDS_H
    }


def backlog_by(
    reported_at: pd.Series, group: pd.Series, as_of: pd.Timestamp
) -> dict[Any, dict[str, int]]:
    """``backlog`` of every group at once (the groups that have open incidents).

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-01T12:00Z")
    >>> ages = pd.Series([t - pd.Timedelta(minutes=5), t - pd.Timedelta(days=9)])
    >>> backlog_by(ages, pd.Series(["a", "b"]), t)["b"]["7d+"]
    1
    """
    if len(reported_at) == 0:
        return {}
    names = [_band_name(low, high) for low, high in BACKLOG_BANDS_H]
    hours = (as_of - reported_at).dt.total_seconds() / 3600
    edges = [low for low, _ in BACKLOG_BANDS_H] + [math.inf]
    band = pd.cut(hours, bins=edges, right=False, labels=names)
    table = pd.crosstab(group, band, dropna=False).reindex(columns=names, fill_value=0)
    return {key: {n: int(v) for n, v in row.items()} for key, row in table.iterrows()}


def _band_name(low: float, high: float) -> str:
    def unit(h: float) -> str:
        return f"{int(h)}h" if h < 24 else f"{int(h // 24)}d"

    if math.isinf(high):
        return f"{unit(low)}+"
    if low < 24 <= high or high <= 24:
        return f"{int(low)}-{int(high)}h"
    return f"{int(low // 24)}-{int(high // 24)}d"


def series(
    frame: pd.DataFrame, period: pd.Series, as_of: pd.Timestamp, starts: Sequence[str]
) -> list[dict[str, Any]]:
    """Received, closed, the closure rate and the on-time resolution rate per calendar period.

    ``period`` gives each row's period start (a local week or month, as the service cuts
    them, ``YYYY-MM-DD``); one entry per start in ``starts`` (empty periods too), in order.
    """
    out = []
    for start in starts:
        group = frame[period == start]
        status = group["status"]
        cancelled = int((status == "cancelled").sum())
        closed = int((status == "closed").sum())
        outcome = stage_outcomes(group, "resolution", as_of)
        decided = outcome.notna()
        out.append(
            {
                "start": start,
                "received": len(group),
                "closed": closed,
                "closure_rate": rate(closed, len(group) - cancelled),
                "on_time_resolution": rate(int(outcome[decided].sum()), int(decided.sum())),
            }
        )
    return out


def change(current: dict[str, Any] | None, previous: dict[str, Any] | None) -> dict | None:
    """The change of received and of the two rates from one period to the next.

    Examples
    --------
    >>> a = {"start": "w1", "received": 10, "closure_rate": {"rate": 0.5},
    ...      "on_time_resolution": {"rate": None}}
    >>> b = {"start": "w2", "received": 15, "closure_rate": {"rate": 0.6},
    ...      "on_time_resolution": {"rate": 0.9}}
    >>> change(b, a)["received_change_pct"], change(b, a)["closure_rate_change"]
    (50.0, 0.1)
    """
    if current is None or previous is None:
        return None

    def diff(key: str) -> float | None:
        now, before = current[key]["rate"], previous[key]["rate"]
        return None if now is None or before is None else round(now - before, 4)

    before_n = previous["received"]
    return {
        "current": current["start"],
        "previous": previous["start"],
        "received": current["received"],
        "received_previous": before_n,
        "received_change_pct": None
        if before_n == 0
        else round(100.0 * (current["received"] - before_n) / before_n, 1),
        "closure_rate_change": diff("closure_rate"),
        "on_time_resolution_change": diff("on_time_resolution"),
    }


def ranking(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Areas (or workers) ranked by the lower Wilson bound of a rate, best first.

    Ranking by the lower bound, not the raw rate, keeps a grid with 3 of 3 on time from
    topping one with 290 of 300: the interval says how much a small denominator may be luck.
    Rows without cases come last. Each entry keeps ``rate``, ``low``, ``high``,
    ``denominator`` and ``small_sample``.

    Examples
    --------
    >>> rows = [{"code": "a", "r": rate(3, 3)}, {"code": "b", "r": rate(290, 300)}]
    >>> [(r["code"], r["small_sample"]) for r in ranking(rows, "r")]
    [('b', False), ('a', True)]
    """
    ranked = sorted(
        rows,
        key=lambda r: (
            r[key]["low"] is None,
            -(r[key]["low"] or 0.0),
            -(r[key]["rate"] or 0.0),
            str(r.get("code", "")),
        ),
    )
    return [
        {
            **{k: v for k, v in r.items() if k != key},
            **{k: r[key][k] for k in ("rate", "low", "high", "denominator", "small_sample")},
            "rank": i + 1,
        }
        for i, r in enumerate(ranked)
    ]
