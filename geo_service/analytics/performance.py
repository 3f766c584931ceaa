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
  escalated at most to the community (level ≤ 1).
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


def stage_times(frame: pd.DataFrame, stage: str) -> dict[str, Any]:
    """Median and 90th percentile, in seconds, of the stage's duration where it ended.

    Percentiles interpolate linearly between order statistics (numpy's default, PostgreSQL's
    ``percentile_cont``)."""
    stamp, _ = STAGE_COLUMNS[stage]
    values = _seconds(frame[stamp], frame["reported_at"]).dropna().to_numpy()
    if values.size == 0:
        return {"n": 0, "median_s": None, "p90_s": None}
    return {
        "n": int(values.size),
        "median_s": round(float(np.percentile(values, 50)), 1),
        "p90_s": round(float(np.percentile(values, 90)), 1),
    }


def _on_time(frame: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, Any]:
    """On-time rates per stage, overall and per response tier (priority)."""
    out: dict[str, Any] = {}
    for stage in STAGES:
        outcome = stage_outcomes(frame, stage, as_of)
        decided = outcome.notna()
        tiers = {}
        for tier in TIERS:
            mine = decided & (frame["priority"] == tier)
            tiers[str(tier)] = rate(int(outcome[mine].sum()), int(mine.sum()))
        out[stage] = {
            "all": rate(int(outcome[decided].sum()), int(decided.sum())),
            "tiers": tiers,
            "times": stage_times(frame, stage),
        }
    return out


def figures(frame: pd.DataFrame, as_of: pd.Timestamp, sources: Sequence[str]) -> dict[str, Any]:
    """Every figure of one group of incidents (an area, a grid worker, the whole report).

    Parameters
    ----------
    frame : DataFrame
        One row an incident: ``status``, ``source``, ``priority``, ``escalation_level``,
        ``is_dispute``, ``outcome``, ``reopened_count``, ``reported_at`` and the stage stamps
        (UTC timestamps), the targets in seconds (``STAGE_COLUMNS``; NaN: none).
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
        ``reopened``.

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
    """
    status = frame["status"]
    received = len(frame)
    cancelled = int((status == "cancelled").sum())
    closed = int((status == "closed").sum())
    handled_mask = status.isin(HANDLED)
    handled = int(handled_mask.sum())
    level = frame["escalation_level"]
    disputes = frame[frame["is_dispute"].astype(bool)]
    counted_sources = frame["source"].value_counts()
    return {
        "received": received,
        "by_source": {s: int(counted_sources.get(s, 0)) for s in sources},
        "handled": handled,
        "closed": closed,
        "cancelled": cancelled,
        "open": int(status.isin(OPEN).sum()),
        "closure_rate": rate(closed, received - cancelled),
        "on_time": _on_time(frame, as_of),
        "escalations": {
            "escalated": int((level > 0).sum()),
            "by_level": {lv: int((level == i).sum()) for i, lv in _LEVELS},
        },
        "resolved_in_grid": rate(int((handled_mask & (level == 0)).sum()), handled),
        "resolved_in_community": rate(int((handled_mask & (level <= 1)).sum()), handled),
        "disputes": {
            "received": len(disputes),
            "mediated": rate(
                int((disputes["outcome"] == "settled").sum()),
                int(disputes["outcome"].notna().sum()),
            ),
        },
        "reopened": int((frame["reopened_count"] > 0).sum()),
    }


# escalation levels above the grid: (index, the level that holds the incident)
_LEVELS = ((1, "community"), (2, "street"), (3, "district"))


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
