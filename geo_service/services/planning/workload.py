"""Workload per area: the formula (one, for a single area and for arrays of atoms alike),
``area_workloads``, the figures per area of any boundary version (the version in force by its
records' stored grids, any other by where the records lie), and ``workload``, those with the
balance per parent and per grid worker behind ``GET /workload``.

Workload of an area over a window, in hours:

    incident_hours      = sum over its incidents of the category's handling effort (minutes / 60)
    household_hours     = households x 0.25 h per 90 days   (a visit a year)
    rental_unit_hours   = rental units x 0.5 h per 90 days  (inspection and registration)
    travel_hours        = km2 x 2 h per 90 days             (getting around the grid)
    index               = the weighted sum (all weights 1 by default; ``Weights`` changes them)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import RowMapping, text
from sqlalchemy.orm import Session

from geo_service.analytics.regionalize import balance
from geo_service.db.sql import sql
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.i18n import format_message, gettext
from geo_service.instants import local_instant
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries import jurisdiction, rehoming
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
            raise InvalidInputError(gettext("weights must be 0..100 and not all 0"))


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
_VERSION_EXISTS = text("SELECT 1 FROM boundary_versions WHERE id = :v")
_GRID_WORKERS = text(
    "SELECT callsign, array_agg(home_grid_id ORDER BY home_grid_id) FROM responders "
    "WHERE kind = 'grid_worker' AND home_grid_id IS NOT NULL GROUP BY callsign "
    "ORDER BY callsign"
)
_CALLSIGNS = text("SELECT id, callsign FROM responders WHERE id = ANY(:ids)")
_TERMS = ("incident_hours", "incidents", "households", "rental_units", "area_km2")


@dataclass(frozen=True)
class AreaWorkloads:
    """The workload of the areas of one level of one boundary version, as a caller may see it
    (``area_workloads``)."""

    version_id: int
    in_force: bool  # records counted by their stored grid (True) or by where they lie
    until: datetime
    areas: list[dict[str, Any]]  # GET /workload's ``areas``, by code
    by_id: dict[int, RowMapping]  # every area of the version: id, code, name, level...


def _check_request(level: str, window_days: int, weights: Weights, until: datetime | None) -> None:
    """Refuse a level, window, weights or ``until`` that ``/workload`` cannot measure."""
    weights.check()
    if level not in AREA_LEVELS:
        raise InvalidInputError(
            format_message("level must be one of {values}", values=", ".join(AREA_LEVELS))
        )
    if not 1 <= window_days <= 3660:
        raise InvalidInputError(gettext("window_days must be 1..3660"))


def _grid_terms(
    session: Session, version: int, in_force: bool, since: datetime, until: datetime
) -> Sequence[RowMapping]:
    """The terms of every grid of ``version``: by stored grid id for the version in force
    (those ids name its grids), by point in polygon for any other."""
    statement = sql("planning_grid_terms" if in_force else "planning_grid_terms_located")
    params = {"v": version, "since": since, "until": until}
    return session.execute(statement, params).mappings().all()


def area_workloads(
    session: Session,
    *,
    level: str = "grid",
    window_days: int = 90,
    parent_id: int | None = None,
    weights: Weights | None = None,
    scope: Scope,
    min_count: int = 5,
    until: datetime | None = None,
    version_id: int | None = None,
) -> AreaWorkloads:
    """Workload terms and index of each area of ``level`` of boundary version ``version_id``
    (default: the version in force) over the ``window_days`` before ``until`` (default now):
    the grids' terms summed upwards, over the grids the caller may see.

    The version in force counts records by their stored grid. Any other version (a draft,
    a scheduled or an older one) counts incidents reported in the window, households and
    rental units in the grid that holds their point, the point lookup's rule (a point on a
    shared border in the lowest grid id, each record once): the same history measured
    against another map. Its grids visible to a user bound to an area are those of the
    jurisdiction rule (``jurisdiction.visible_area_ids``).

    Households and rental units are published through ``disclosure`` (base ``min_count``)
    for callers who may not see the exact counts of an area's grids, and the index is
    computed from those published counts. Raises NotFoundError for an unknown version, one
    with nothing in the caller's area (worded as unknown), or a ``parent_id`` not in it;
    InvalidInputError for a bad level, window, weights or ``until``.
    """
    weights = weights or Weights()
    _check_request(level, window_days, weights, until)
    in_force_id = version_in_force(session)
    version = in_force_id if version_id is None else version_id
    in_force = version == in_force_id
    visible_grid: Callable[[int], bool] = scope.has_grid
    if not in_force:
        if session.execute(_VERSION_EXISTS, {"v": version}).first() is None:
            raise NotFoundError(
                format_message("boundary version {version} does not exist", version=version)
            )
        visible = jurisdiction.visible_area_ids(session, scope, version)
        if visible is not None:
            if not visible:  # as a missing version: ids cannot be probed across areas
                raise NotFoundError(
                    format_message("boundary version {version} does not exist", version=version)
                )
            grids = frozenset(i for i, lvl in visible.items() if lvl == "grid")
            visible_grid = grids.__contains__  # the jurisdiction of this version's grids
    until = local_instant(until or datetime.now(UTC), "until")  # naive: local time
    rows = _grid_terms(session, version, in_force, until - timedelta(days=window_days), until)
    areas = session.execute(_AREAS, {"v": version}).mappings().all()
    by_id = {a["id"]: a for a in areas}
    if parent_id is not None and parent_id not in by_id:
        where = "the boundary version in force" if in_force else f"boundary version {version}"
        raise NotFoundError(
            format_message("area {parent_id} is not in {where}", parent_id=parent_id, where=where)
        )

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
    pairs: dict[int, tuple[set[int], set[int]]] = {}  # located: the record pairs' keys
    for r in rows:
        if not visible_grid(r["id"]) or (parent_id is not None and not under(r["id"], parent_id)):
            continue
        target = r["id"] if level == "grid" else ancestor(r["id"], level)
        if target is None:
            continue
        acc = totals.setdefault(target, dict.fromkeys(_TERMS, 0.0))
        for k in _TERMS:
            acc[k] += float(r[k])
        members.setdefault(target, []).append(r["id"])
        if not in_force:
            homes, units = pairs.setdefault(target, (set(), set()))
            homes.update(r["household_keys"] or ())
            units.update(r["rental_keys"] or ())
    # Each area publishes with its own disclosure key, as it does on every other route; an
    # area of another version with its twin's in force, or else with the key of the homes it
    # holds, however drawn (disclosure.py: a key per polygon would re-draw them per draft).
    ids = list(totals)
    if in_force:
        twins: list[str | None] = [disclosure.area_identity(i) for i in ids]
    else:
        twins = disclosure.located_area_identities(session, ids, in_force_id)
    found = iter(disclosure.identity_keys(session, [t for t in twins if t is not None]))
    record_keys: dict[int, tuple[int, int]] = {}
    for area_id, twin in zip(ids, twins, strict=True):
        if twin is not None:
            key = next(found)
            record_keys[area_id] = (key, key)
        else:
            homes, units = pairs[area_id]
            record_keys[area_id] = (disclosure.key_sum(homes), disclosure.key_sum(units))
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
    return AreaWorkloads(version, in_force, until, items, by_id)


def _worker_grids(session: Session, measured: AreaWorkloads) -> list[tuple[str, list[int]]]:
    """Each grid worker's grids in the measured version: where they are homed, for the
    version in force; for any other, where publishing it would home them
    (``rehoming.planned_homes``)."""
    if measured.in_force:
        return [(c, list(g)) for c, g in session.execute(_GRID_WORKERS).all()]
    homes = rehoming.planned_homes(session, version_in_force(session), measured.version_id)
    rows = session.execute(_CALLSIGNS, {"ids": sorted(homes)}).all()
    callsigns = {int(worker): str(callsign) for worker, callsign in rows}
    grids: dict[str, list[int]] = {}
    for worker, grid in homes.items():
        grids.setdefault(callsigns[worker], []).append(grid)
    return [(c, sorted(grids[c])) for c in sorted(grids)]


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
    version_id: int | None = None,
) -> dict[str, Any]:
    """``GET /workload``: ``area_workloads`` (terms and index per area of ``level`` of
    boundary version ``version_id``, default the version in force), balance per parent and
    overall, and per grid worker (grid level; for a version not in force, the grids
    publishing it would home each worker in). Errors as ``area_workloads``."""
    weights = weights or Weights()
    measured = area_workloads(
        session,
        level=level,
        window_days=window_days,
        parent_id=parent_id,
        weights=weights,
        scope=scope,
        min_count=min_count,
        until=until,
        version_id=version_id,
    )
    items, by_id = measured.areas, measured.by_id
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
        for callsign, grid_ids in _worker_grids(session, measured):
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
        "version_id": measured.version_id,
        "attribution": "stored" if measured.in_force else "located",
        "window_days": window_days,
        "until": measured.until.isoformat(),
        "weights": asdict(weights),
        "areas": items,
        "parents": per_parent,
        "overall": balance(np.array([i["index"] for i in items])) if items else {},
        "workers": workers,
    }
