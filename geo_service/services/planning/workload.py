"""Workload per area: the formula (one, for a single area and for arrays of atoms alike), and
``workload``, the figures per area, parent and grid worker behind ``GET /workload``.

Workload of an area over a window, in hours:

    incident_hours      = sum over its incidents of the category's handling effort (minutes / 60)
    household_hours     = households x 0.25 h per 90 days   (a visit a year)
    rental_unit_hours   = rental units x 0.5 h per 90 days  (inspection and registration)
    travel_hours        = km2 x 2 h per 90 days             (getting around the grid)
    index               = the weighted sum (all weights 1 by default; ``Weights`` changes them)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.analytics.regionalize import balance
from geo_service.db.sql import sql
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.vocabulary import AREA_LEVELS

QUARTER_DAYS = 90.0
HOURS_PER_HOUSEHOLD = 0.25  # per 90 days
HOURS_PER_RENTAL_UNIT = 0.5  # per 90 days
HOURS_PER_KM2 = 2.0  # per 90 days

Hours = TypeVar("Hours", float, np.ndarray)


@dataclass(frozen=True)
class Weights:
    """Multipliers of the workload terms (1 = the documented defaults)."""

    incidents: float = 1.0
    households: float = 1.0
    rental_units: float = 1.0
    travel: float = 1.0

    def check(self) -> None:
        """Refuse negative or all-zero weights."""
        values = asdict(self).values()
        if any(v < 0 or v > 100 for v in values) or not any(values):
            raise InvalidInputError("weights must be 0..100 and not all 0")


def workload_hours(
    incident_hours: Hours,
    households: Hours,
    rental_units: Hours,
    area_km2: Hours,
    weights: Weights,
    window_days: float,
) -> Hours:
    """The workload formula: the weighted sum of the terms, in hours over ``window_days``.

    The one place it is written: ``workload`` and batch runs call it for one area at a time
    (floats), ``propose`` for every atom of a parent at once (arrays of equal shape).
    """
    scale = window_days / QUARTER_DAYS
    return (
        weights.incidents * incident_hours
        + weights.households * households * HOURS_PER_HOUSEHOLD * scale
        + weights.rental_units * rental_units * HOURS_PER_RENTAL_UNIT * scale
        + weights.travel * area_km2 * HOURS_PER_KM2 * scale
    )


def workload_index(terms: Mapping[str, Any], weights: Weights, window_days: float) -> float:
    """The weighted workload of one area from its terms (``incident_hours``, ``households``,
    ``rental_units``, ``area_km2``); a count hidden by disclosure control (None) counts as 0."""
    return workload_hours(
        float(terms["incident_hours"] or 0.0),
        float(terms["households"] or 0.0),
        float(terms["rental_units"] or 0.0),
        float(terms["area_km2"] or 0.0),
        weights,
        window_days,
    )


def published_workload_terms(
    households: float, rental_units: float, keys: tuple[int, int] | list[int], base: int
) -> dict[str, int | None]:
    """The household and rental-unit terms of an area as ``disclosure`` publishes them.

    ``keys`` are the area's disclosure keys (households, rental units). The rental term
    counts units (``sum(unit_count)``), a measure of its own, so it is rounded as
    ``unit_count``, not as the number of registrations.
    """
    hh = disclosure.publish({"households": int(households)}, household_key=keys[0], base=base)[
        "households"
    ]
    units = disclosure.publish(
        {"unit_count": int(rental_units)}, household_key=None, rental_key=keys[1], base=base
    )["unit_count"]
    return {"households": hh, "rental_units": units}


def _count_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


_AREAS = text("SELECT id, code, name, level, parent_id FROM areas WHERE version_id = :v")
_GRID_WORKERS = text(
    "SELECT callsign, array_agg(home_grid_id ORDER BY home_grid_id) FROM responders "
    "WHERE kind = 'grid_worker' AND home_grid_id IS NOT NULL GROUP BY callsign "
    "ORDER BY callsign"
)
_TERMS = ("incident_hours", "incidents", "households", "rental_units", "area_km2")


def workload(
    session: Session,
    *,
    level: str = "grid",
    window_days: int = 90,
    parent_id: int | None = None,
    weights: Weights | None = None,
    scope: Scope,
    min_count: int = 5,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Workload terms and index per area of ``level`` (grids summed upwards), balance per
    parent, and per grid worker. For callers who may not see the exact counts of an area's
    grids (``disclosure.sees_exact``), its households and rental units are published through
    ``disclosure`` (base ``min_count``) and its index is computed from those published counts,
    so no choice of weights shows more than the published counts."""
    weights = weights or Weights()
    weights.check()
    if level not in AREA_LEVELS:
        raise InvalidInputError(f"level must be one of {', '.join(AREA_LEVELS)}")
    if not 1 <= window_days <= 3660:
        raise InvalidInputError("window_days must be 1..3660")
    if until is not None and until.tzinfo is None:
        raise InvalidInputError("until must carry a timezone offset")
    version = version_in_force(session)
    until = until or datetime.now(UTC)
    rows = (
        session.execute(
            sql("planning_grid_terms"),
            {"v": version, "since": until - timedelta(days=window_days), "until": until},
        )
        .mappings()
        .all()
    )
    areas = session.execute(_AREAS, {"v": version}).mappings().all()
    by_id = {a["id"]: a for a in areas}
    if parent_id is not None and parent_id not in by_id:
        raise NotFoundError(f"area {parent_id} is not in the boundary version in force")

    def ancestor(area_id: int, at_level: str) -> int | None:
        node = by_id.get(area_id)
        while node is not None and node["level"] != at_level:
            node = by_id.get(node["parent_id"])
        return None if node is None else node["id"]

    def under(area_id: int, root: int) -> bool:
        node = by_id.get(area_id)
        while node is not None:
            if node["id"] == root:
                return True
            node = by_id.get(node["parent_id"])
        return False

    totals: dict[int, dict[str, float]] = {}
    members: dict[int, list[int]] = {}  # the grids summed into each area
    for r in rows:
        if not scope.has_grid(r["id"]) or (parent_id is not None and not under(r["id"], parent_id)):
            continue
        target = r["id"] if level == "grid" else ancestor(r["id"], level)
        if target is None:
            continue
        acc = totals.setdefault(target, dict.fromkeys(_TERMS, 0.0))
        for k in _TERMS:
            acc[k] += float(r[k])
        members.setdefault(target, []).append(r["id"])
    # Each area publishes with its own disclosure key, as it does on every other route.
    ids = list(totals)
    found = disclosure.identity_keys(session, [disclosure.area_identity(i) for i in ids])
    record_keys = {i: (k, k) for i, k in zip(ids, found, strict=True)}
    items = []
    for area_id, exact_terms in totals.items():
        area = by_id[area_id]
        terms: dict[str, float | None] = dict(exact_terms)
        if not disclosure.sees_exact(scope, members[area_id]):
            terms |= published_workload_terms(
                exact_terms["households"],
                exact_terms["rental_units"],
                record_keys[area_id],
                min_count,
            )
        index = workload_index(terms, weights, window_days)
        items.append(
            {
                "id": area_id,
                "code": area["code"],
                "name": area["name"],
                "parent_id": area["parent_id"],
                "incident_hours": round(exact_terms["incident_hours"], 2),
                "incidents": int(exact_terms["incidents"]),
                "households": _count_or_none(terms["households"]),
                "rental_units": _count_or_none(terms["rental_units"]),
                "area_km2": round(exact_terms["area_km2"], 4),
                "index": round(index, 2),
            }
        )
    items.sort(key=lambda x: x["code"])
    parents: dict[int | None, list[float]] = {}
    for item in items:
        parents.setdefault(item["parent_id"], []).append(item["index"])
    per_parent = [
        {
            "parent_id": pid,
            "parent_code": by_id[pid]["code"] if pid in by_id else None,
            "areas": len(loads),
            "mean_index": round(float(np.mean(loads)), 2),
            **balance(np.array(loads)),
        }
        for pid, loads in sorted(parents.items(), key=lambda kv: str(kv[0]))
    ]
    workers = []
    if level == "grid":
        index_by_grid = {i["id"]: i["index"] for i in items}
        for callsign, grid_ids in session.execute(_GRID_WORKERS).all():
            mine = [g for g in grid_ids if g in index_by_grid]
            if mine:
                workers.append(
                    {
                        "callsign": callsign,
                        "grids": [by_id[g]["code"] for g in mine],
                        "index": round(sum(index_by_grid[g] for g in mine), 2),
                    }
                )
    return {
        "level": level,
        "window_days": window_days,
        "until": until.isoformat(),
        "weights": asdict(weights),
        "areas": items,
        "parents": per_parent,
        "overall": balance(np.array([i["index"] for i in items])) if items else {},
        "workers": workers,
    }
