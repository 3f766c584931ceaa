"""Planners' work: workload per grid, and proposals that redraw grids inside their parents.

Workload of an area over a window, in hours:

    incident_hours      = sum over its incidents of the category's handling effort (minutes / 60)
    household_hours     = households x 0.25 h per 90 days   (a visit a year)
    rental_unit_hours   = rental units x 0.5 h per 90 days  (inspection and registration)
    travel_hours        = km2 x 2 h per 90 days             (getting around the grid)
    index               = the weighted sum (all weights 1 by default; ``Weights`` changes them)

A proposal cuts each parent (community or street) into H3 cells clipped to it (the *atoms*),
weighs them by the same terms, and regroups them into balanced, contiguous, compact grids with
few moves (``analytics.regionalize``). New grids are unions of atoms, so they tile the parent
exactly; the result is a draft boundary version that ``validate`` and ``publish`` take as any.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import shapely
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.analytics.regionalize import Plan, balance, lowest_max_over_mean, partition
from geo_service.db.models import AREA_LEVELS
from geo_service.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force

Progress = Callable[[float, str], None]
QUARTER_DAYS = 90.0


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


HOURS_PER_HOUSEHOLD = 0.25  # per 90 days
HOURS_PER_RENTAL_UNIT = 0.5  # per 90 days
HOURS_PER_KM2 = 2.0  # per 90 days


def _index(terms: Mapping[str, float | None], weights: Weights, window_days: float) -> float:
    """The weighted workload; a count hidden by disclosure control (None) counts as 0."""
    scale = window_days / QUARTER_DAYS
    return (
        weights.incidents * (terms["incident_hours"] or 0.0)
        + weights.households * (terms["households"] or 0.0) * HOURS_PER_HOUSEHOLD * scale
        + weights.rental_units * (terms["rental_units"] or 0.0) * HOURS_PER_RENTAL_UNIT * scale
        + weights.travel * (terms["area_km2"] or 0.0) * HOURS_PER_KM2 * scale
    )


def published_workload_terms(
    households: float, rental_units: float, keys: tuple[int, int] | list[int], base: int
) -> dict[str, int | None]:
    """The household and rental-unit terms of an area as ``disclosure`` publishes them.

    ``keys`` are the areas' disclosure key sums (households, rental units). The rental term
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


def _published_terms(terms: dict[str, float], keys: list[int], base: int) -> dict[str, int | None]:
    return published_workload_terms(terms["households"], terms["rental_units"], keys, base)


_GRID_TERMS = text(
    """
    SELECT g.id, g.code, g.name, g.parent_id, g.area_m2 / 1e6 AS area_km2,
           coalesce(i.hours, 0) AS incident_hours, coalesce(i.n, 0) AS incidents,
           coalesce(h.n, 0) AS households, coalesce(r.n, 0) AS rental_units,
           coalesce(h.key_sum, 0) AS household_key, coalesce(r.key_sum, 0) AS rental_key
    FROM areas g
    LEFT JOIN (SELECT grid_id, sum(c.handling_effort_min) / 60.0 AS hours, count(*) AS n
               FROM incidents x JOIN categories c ON c.code = x.category
               WHERE x.reported_at >= :since AND x.reported_at < :until GROUP BY grid_id) i
           ON i.grid_id = g.id
    LEFT JOIN (SELECT grid_id, count(*) AS n, sum(dc_key) AS key_sum
               FROM households GROUP BY grid_id) h
           ON h.grid_id = g.id
    LEFT JOIN (SELECT grid_id, sum(unit_count) AS n, sum(dc_key) AS key_sum
               FROM rental_units GROUP BY grid_id) r
           ON r.grid_id = g.id
    WHERE g.version_id = :v AND g.level = 'grid'
    ORDER BY g.code
    """
)


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
    version = version_in_force(session)
    until = until or datetime.now(UTC)
    rows = (
        session.execute(
            _GRID_TERMS,
            {"v": version, "since": until - timedelta(days=window_days), "until": until},
        )
        .mappings()
        .all()
    )
    areas = (
        session.execute(
            text("SELECT id, code, name, level, parent_id FROM areas WHERE version_id = :v"),
            {"v": version},
        )
        .mappings()
        .all()
    )
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

    terms_keys = ("incident_hours", "incidents", "households", "rental_units", "area_km2")
    totals: dict[int, dict[str, float]] = {}
    record_keys: dict[int, list[int]] = {}  # disclosure key sums: households, rental units
    members: dict[int, list[int]] = {}  # the grids summed into each area
    for r in rows:
        if not scope.has_grid(r["id"]) or (parent_id is not None and not under(r["id"], parent_id)):
            continue
        target = r["id"] if level == "grid" else ancestor(r["id"], level)
        if target is None:
            continue
        acc = totals.setdefault(target, dict.fromkeys(terms_keys, 0.0))
        for k in terms_keys:
            acc[k] += float(r[k])
        keys = record_keys.setdefault(target, [0, 0])
        keys[0] += int(r["household_key"])
        keys[1] += int(r["rental_key"])
        members.setdefault(target, []).append(r["id"])
    items = []
    for area_id, exact_terms in totals.items():
        area = by_id[area_id]
        terms: dict[str, float | None] = dict(exact_terms)
        if not disclosure.sees_exact(scope, members[area_id]):
            terms |= _published_terms(exact_terms, record_keys[area_id], min_count)
        index = _index(terms, weights, window_days)
        item = {
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
        items.append(item)
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
        for callsign, grid_ids in session.execute(
            text(
                "SELECT callsign, array_agg(home_grid_id ORDER BY home_grid_id) FROM responders "
                "WHERE kind = 'grid_worker' AND home_grid_id IS NOT NULL GROUP BY callsign "
                "ORDER BY callsign"
            )
        ).all():
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


# --- proposals -----------------------------------------------------------------------------


@dataclass
class ProposalRequest:
    """What a planner asks for."""

    parent_codes: list[str]
    target_grids: int | None = None  # in total over the parents; default: today's count
    weights: Weights = field(default_factory=Weights)
    tolerance: float = 0.05
    locked_grids: list[str] = field(default_factory=list)
    h3_res: int = 10
    stability: float = 1.0
    compactness: float = 1.0
    window_days: int = 90
    name: str | None = None

    def check(self) -> None:
        """Refuse what cannot be planned."""
        self.weights.check()
        if not self.parent_codes:
            raise InvalidInputError("name at least one community or street to redraw")
        if len(self.parent_codes) > 200:
            raise InvalidInputError("at most 200 parents per proposal")
        if self.h3_res not in (9, 10, 11):
            raise InvalidInputError("atoms: h3_res must be 9, 10 or 11")
        if not 0.005 <= self.tolerance <= 0.5:
            raise InvalidInputError("tolerance must be 0.005..0.5 (a share of the mean)")
        if self.target_grids is not None and not 1 <= self.target_grids <= 5000:
            raise InvalidInputError("target_grids must be 1..5000")
        for name in ("stability", "compactness"):
            if not 0 <= getattr(self, name) <= 100:
                raise InvalidInputError(f"{name} must be 0..100")
        if not 1 <= self.window_days <= 3660:
            raise InvalidInputError("window_days must be 1..3660")


@dataclass
class _Parent:
    id: int
    code: str
    name: str
    level: str
    geom: Any
    grids: gpd.GeoDataFrame  # id, code, name, geometry (today's grids)
    locked: list[int]


def atomize(area: Any, res: int) -> tuple[list[int], np.ndarray]:
    """H3 cells of ``res`` clipped to ``area`` (WGS84): the cells and their pieces, which tile
    the area exactly."""
    cells: set[str] = set()
    for poly in getattr(area, "geoms", [area]):
        if poly.is_empty:
            continue
        shape = h3.geo_to_h3shape(poly.__geo_interface__)
        cells.update(h3.h3shape_to_cells_experimental(shape, res, contain="overlap"))
    ordered = sorted(cells)
    hexes = shapely.polygons([[(lng, lat) for lat, lng in h3.cell_to_boundary(c)] for c in ordered])
    pieces = shapely.intersection(hexes, area)
    keep = ~shapely.is_empty(pieces) & (shapely.area(pieces) > 0)
    return [h3.str_to_int(c) for c, k in zip(ordered, keep, strict=True) if k], pieces[keep]


def hex_neighbours(cells: list[int]) -> list[list[int]]:
    """For each cell, the positions of its H3 neighbours among ``cells``."""
    index_of = {c: i for i, c in enumerate(cells)}
    return [
        [
            index_of[h3.str_to_int(j)]
            for j in h3.grid_ring(h3.int_to_str(c), 1)
            if h3.str_to_int(j) in index_of
        ]
        for c in cells
    ]


def _atoms(parent: _Parent, res: int) -> tuple[list[int], np.ndarray]:
    """The parent's atoms, leaving out its locked grids."""
    free = parent.geom
    locked = parent.grids[parent.grids.id.isin(parent.locked)]
    if len(locked):
        free = shapely.difference(free, shapely.union_all(locked.geometry.values))
    return atomize(free, res)


def check_proposal(session: Session, req: ProposalRequest, scope: Scope) -> None:
    """Refuse a proposal before it is queued: bad parameters, unknown or foreign areas."""
    req.check()
    rows = session.execute(
        text("SELECT id, code, level FROM areas WHERE version_id = :v AND code = ANY(:c)"),
        {"v": version_in_force(session), "c": req.parent_codes + req.locked_grids},
    ).all()
    found = {code: (area_id, level) for area_id, code, level in rows}
    missing = sorted(set(req.parent_codes + req.locked_grids) - set(found))
    if missing:
        raise InvalidInputError(f"no such areas in the version in force: {', '.join(missing)}")
    for code in req.parent_codes:
        if found[code][1] not in ("community", "street", "district"):
            raise InvalidInputError(f"{code} is a {found[code][1]}: name communities or streets")
        if not scope.has_area(found[code][0]):
            raise PermissionDeniedError(f"{code} lies outside your area")
    for code in req.locked_grids:
        if found[code][1] != "grid":
            raise InvalidInputError(f"locked_grids must be grids; {code} is a {found[code][1]}")


def _load_parents(session: Session, codes: list[str], locked_codes: list[str]) -> list[_Parent]:
    version = version_in_force(session)
    rows = (
        session.execute(
            text(
                "SELECT id, code, name, level, ST_AsBinary(geom) AS wkb FROM areas "
                "WHERE version_id = :v AND code = ANY(:codes)"
            ),
            {"v": version, "codes": codes},
        )
        .mappings()
        .all()
    )
    missing = sorted(set(codes) - {r["code"] for r in rows})
    if missing:
        raise InvalidInputError(f"no such areas in the version in force: {', '.join(missing)}")
    bad = [r["code"] for r in rows if r["level"] not in ("community", "street", "district")]
    if bad:
        raise InvalidInputError(f"only communities, streets or districts can be redrawn: {bad}")
    # Grids hang under communities: a street or district is redrawn community by community.
    rows = (
        session.execute(
            text(
                """
            WITH RECURSIVE below AS (
                SELECT id, level FROM areas WHERE id = ANY(:ids)
                UNION ALL SELECT a.id, a.level FROM areas a JOIN below b ON a.parent_id = b.id
                WHERE b.level <> 'community'
            )
            SELECT DISTINCT a.id, a.code, a.name, a.level, ST_AsBinary(a.geom) AS wkb
            FROM areas a JOIN below b ON b.id = a.id WHERE a.level = 'community' ORDER BY a.code
            """
            ),
            {"ids": [r["id"] for r in rows]},
        )
        .mappings()
        .all()
    )
    parents = []
    all_locked: set[int] = set()
    for r in rows:
        grids = (
            session.execute(
                text(
                    """
                WITH RECURSIVE below AS (
                    SELECT id, level FROM areas WHERE id = :p
                    UNION ALL SELECT a.id, a.level FROM areas a JOIN below b ON a.parent_id = b.id
                )
                SELECT a.id, a.code, a.name, a.parent_id, ST_AsBinary(a.geom) AS wkb
                FROM areas a JOIN below b ON b.id = a.id WHERE b.level = 'grid' ORDER BY a.code
                """
                ),
                {"p": r["id"]},
            )
            .mappings()
            .all()
        )
        frame = gpd.GeoDataFrame(
            {
                "id": [g["id"] for g in grids],
                "code": [g["code"] for g in grids],
                "name": [g["name"] for g in grids],
                "parent_id": [g["parent_id"] for g in grids],
            },
            geometry=shapely.from_wkb([bytes(g["wkb"]) for g in grids]),
            crs="EPSG:4326",
        )
        locked = frame[frame.code.isin(locked_codes)].id.tolist()
        all_locked.update(frame[frame.code.isin(locked_codes)].code)
        parents.append(
            _Parent(
                r["id"],
                r["code"],
                r["name"],
                r["level"],
                shapely.from_wkb(bytes(r["wkb"])),
                frame,
                locked,
            )
        )
    unknown = sorted(set(locked_codes) - all_locked)
    if unknown:
        raise InvalidInputError(f"locked grids outside the parents: {', '.join(unknown)}")
    return parents


def _per_atom(
    session: Session, sql: str, grid_ids: list[int], res: int, extra: dict | None = None
) -> dict[tuple[int, int], float]:
    rows = session.execute(text(sql), {"grids": grid_ids, "res": res, **(extra or {})}).all()
    return {(int(c), int(g)): float(n) for c, g, n in rows}


def polsby_popper(geoms: np.ndarray, crs: Any) -> np.ndarray:
    """4 pi area / perimeter^2 of each WGS84 polygon, measured in ``crs`` (1 for a circle)."""
    metric = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(crs)
    return (4 * np.pi * metric.area / metric.length**2).to_numpy()


def propose(
    engine: Engine,
    req: ProposalRequest,
    *,
    actor: str,
    progress: Progress | None = None,
    run_partitions: Callable[[list[dict[str, Any]]], list[Plan]] | None = None,
    min_count: int = 5,
) -> dict[str, Any]:
    """Plan new grids for the parents and store them as a draft boundary version; return its
    id and the metrics before and after.

    The plan balances exact workloads; every figure it returns or stores (loads per grid,
    balance, the floor, shares of homes moved) is computed from household and rental-unit
    counts as ``disclosure`` publishes them (base ``min_count``), whoever asked.

    Each parent is partitioned independently: ``run_partitions`` (given the keyword
    arguments of ``analytics.regionalize.partition`` per parent) may run them elsewhere, e.g.
    as tasks on a Dask cluster; by default they run here, one after another, with progress.
    """
    req.check()
    step = progress or (lambda fraction, message: None)
    with Session(engine) as session:
        parents = _load_parents(session, req.parent_codes, req.locked_grids)
        version = version_in_force(session)
        until = datetime.now(UTC)
        since = until - timedelta(days=req.window_days)
        scale = req.window_days / QUARTER_DAYS
        today = sum(len(p.grids) - len(p.locked) for p in parents)
        target = req.target_grids or today
        if target < len(parents):
            raise InvalidInputError(f"target_grids must be at least {len(parents)} (one each)")
        step(0.05, "atoms")
        planned = []
        atom_loads = []
        for parent in parents:
            cells, pieces = _atoms(parent, req.h3_res)
            free_grids = parent.grids[~parent.grids.id.isin(parent.locked)]
            grid_ids = free_grids.id.tolist()
            # Today's grid of each atom: the one holding the atom's interior point.
            inner = shapely.point_on_surface(pieces)
            tree = shapely.STRtree(free_grids.geometry.values)
            hit_atom, hit_grid = tree.query(inner, predicate="intersects")
            current = np.full(len(cells), -1)
            current[hit_atom] = hit_grid
            current[current < 0] = 0
            index_of = {c: i for i, c in enumerate(cells)}
            terms = {
                "incident_hours": _per_atom(
                    session,
                    "SELECT h3_parent(x.h3, :res), x.grid_id, sum(c.handling_effort_min) / 60.0 "
                    "FROM incidents x JOIN categories c ON c.code = x.category "
                    "WHERE x.grid_id = ANY(:grids) AND x.reported_at >= :since "
                    "AND x.reported_at < :until GROUP BY 1, 2",
                    grid_ids,
                    req.h3_res,
                    {"since": since, "until": until},
                ),
                "households": _per_atom(
                    session,
                    "SELECT h3_parent(h3, :res), grid_id, count(*) FROM households "
                    "WHERE grid_id = ANY(:grids) GROUP BY 1, 2",
                    grid_ids,
                    req.h3_res,
                ),
                "rental_units": _per_atom(
                    session,
                    "SELECT h3_parent(h3, :res), grid_id, sum(unit_count) FROM rental_units "
                    "WHERE grid_id = ANY(:grids) GROUP BY 1, 2",
                    grid_ids,
                    req.h3_res,
                ),
                # disclosure key sums, to publish what the figures count (never balanced on)
                "household_key": _per_atom(
                    session,
                    "SELECT h3_parent(h3, :res), grid_id, sum(dc_key) FROM households "
                    "WHERE grid_id = ANY(:grids) GROUP BY 1, 2",
                    grid_ids,
                    req.h3_res,
                ),
                "rental_key": _per_atom(
                    session,
                    "SELECT h3_parent(h3, :res), grid_id, sum(dc_key) FROM rental_units "
                    "WHERE grid_id = ANY(:grids) GROUP BY 1, 2",
                    grid_ids,
                    req.h3_res,
                ),
                "history": _per_atom(  # every incident ever: what stability protects
                    session,
                    "SELECT h3_parent(h3, :res), grid_id, count(*) FROM incidents "
                    "WHERE grid_id = ANY(:grids) GROUP BY 1, 2",
                    grid_ids,
                    req.h3_res,
                ),
            }
            grid_pos = {g: k for k, g in enumerate(grid_ids)}
            n = len(cells)
            per = {name: np.zeros(n) for name in terms}
            # what each atom holds from each of today's grids: for the stability figures
            held = {name: np.zeros((n, len(grid_ids))) for name in terms}
            for name, values in terms.items():
                for (cell, grid), value in values.items():
                    i = index_of.get(cell)
                    if i is None or grid not in grid_pos:
                        continue  # on a boundary the atoms missed: negligible
                    per[name][i] += value
                    held[name][i, grid_pos[grid]] += value
            area_km2 = (
                gpd.GeoSeries(pieces, crs="EPSG:4326")
                .to_crs(gpd.GeoSeries([parent.geom], crs="EPSG:4326").estimate_utm_crs())
                .area.to_numpy()
                / 1e6
            )
            weights = (
                req.weights.incidents * per["incident_hours"]
                + req.weights.households * per["households"] * HOURS_PER_HOUSEHOLD * scale
                + req.weights.rental_units * per["rental_units"] * HOURS_PER_RENTAL_UNIT * scale
                + req.weights.travel * area_km2 * HOURS_PER_KM2 * scale
            )
            neighbours = hex_neighbours(cells)
            planned.append(
                (parent, cells, pieces, current, weights, neighbours, per, held, grid_ids)
            )
            atom_loads.append(weights.sum())
        # Grids per parent: today's counts, or the target shared out by workload.
        if req.target_grids is None:
            counts = [len(p.grids) - len(p.locked) for p in parents]
        else:
            share = np.array(atom_loads) / max(sum(atom_loads), 1e-9) * target
            counts = np.maximum(1, np.floor(share)).astype(int)
            for k in np.argsort(-(share - np.floor(share)))[: max(0, target - counts.sum())]:
                counts[k] += 1
            counts = counts.tolist()
        jobs = []
        for k, (
            parent,
            cells,
            pieces,
            current,
            weights,
            neighbours,
            per,
            _held,
            grid_ids,
        ) in enumerate(planned):
            p = int(counts[k])
            if p > len(cells):
                raise InvalidInputError(
                    f"{parent.code}: {p} grids need at least as many atoms ({len(cells)}); "
                    "use finer atoms (h3_res 11)"
                )
            xy = np.column_stack(
                gpd.GeoSeries(shapely.centroid(pieces), crs="EPSG:4326")
                .to_crs(gpd.GeoSeries([parent.geom], crs="EPSG:4326").estimate_utm_crs())
                .pipe(lambda s: (s.x.to_numpy(), s.y.to_numpy()))
            )
            stab = per["households"] + per["rental_units"] + per["history"] + 1e-9

            jobs.append(
                {
                    "weights": weights,
                    "neighbours": neighbours,
                    "xy": xy,
                    "p": p,
                    "current": current if p == len(grid_ids) else None,
                    "stability_weights": stab / stab.mean() * weights.mean(),
                    "tolerance": req.tolerance,
                    "stability": req.stability,
                    "compactness": req.compactness,
                }
            )
        if run_partitions is not None:
            step(0.1, f"{len(jobs)} partitions sent out")
            plans = run_partitions(jobs)
        else:
            plans = []
            for k, job in enumerate(jobs):

                def report(fraction: float, message: str, k: int = k) -> None:
                    code = planned[k][0].code
                    step(0.1 + 0.8 * (k + fraction) / len(jobs), f"{code}: {message}")

                plans.append(partition(**job, progress=report))
        results = [
            (parent, cells, pieces, current, weights, per, held, grid_ids, plan)
            for (parent, cells, pieces, current, weights, _n, per, held, grid_ids), plan in zip(
                planned, plans, strict=True
            )
        ]
        step(0.92, "geometry and metrics")
        version_id, metrics = _store(engine, session, version, req, results, actor, min_count)
    step(1.0, "done")
    return {"version_id": version_id, "metrics": metrics}


def _polygons(geom: Any) -> list[Any]:
    return [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon" and g.area > 0]


def one_piece_each(geoms: list[Any]) -> np.ndarray:
    """Hand stray parts of a grid (where the parent's edge cuts an atom in two, or two atoms
    that are H3 neighbours meet only outside the parent) to the grid they share the longest
    border with; the largest part stays. Parts touching no other grid (an island of the
    parent) stay where they are."""
    geoms = list(geoms)
    for _ in range(5):
        changed = False
        for r, geom in enumerate(geoms):
            parts = sorted(_polygons(geom), key=lambda g: -g.area)
            if len(parts) <= 1:
                continue
            keep = [parts[0]]
            for part in parts[1:]:
                border = [
                    0.0 if s == r else shapely.intersection(part.boundary, other.boundary).length
                    for s, other in enumerate(geoms)
                ]
                s = int(np.argmax(border))
                if border[s] > 0:
                    geoms[s] = shapely.union(geoms[s], part)
                    changed = True
                else:
                    keep.append(part)
            geoms[r] = shapely.union_all(keep)
        if not changed:
            break
    return np.array([shapely.make_valid(g) for g in geoms], dtype=object)


def _published_loads(
    groups: np.ndarray, n: int, weights: np.ndarray, per: dict, req: ProposalRequest, base: int
) -> np.ndarray:
    """Workload of groups of atoms (``groups``: a group number per atom), the household and
    rental-unit terms taken at the counts ``disclosure`` publishes for each group."""
    loads = np.bincount(groups, weights=weights, minlength=n)
    scale = req.window_days / QUARTER_DAYS
    counts = {k: np.bincount(groups, weights=per[k], minlength=n) for k in _COUNTED}
    for g in range(n):
        shown = published_workload_terms(
            round(counts["households"][g]),
            round(counts["rental_units"][g]),
            (round(counts["household_key"][g]), round(counts["rental_key"][g])),
            base,
        )
        loads[g] += (
            req.weights.households
            * ((shown["households"] or 0) - counts["households"][g])
            * HOURS_PER_HOUSEHOLD
            * scale
            + req.weights.rental_units
            * ((shown["rental_units"] or 0) - counts["rental_units"][g])
            * HOURS_PER_RENTAL_UNIT
            * scale
        )
    return loads


_COUNTED = ("households", "rental_units", "household_key", "rental_key")


def _published_share(counts: list[float], keys: list[float], measure: str, base: int) -> float:
    """Share of homes moved (``counts``: moved, total; ``keys``: their disclosure key sums),
    from the published moved and total counts."""
    (moved, total), (moved_key, total_key) = counts, keys

    def shown(n: float, key: float) -> int:
        return disclosure.published_value(
            disclosure.publish(
                {measure: round(n)}, household_key=round(key), rental_key=round(key), base=base
            )[measure]
        )

    whole = shown(total, total_key)
    return round(min(1.0, shown(moved, moved_key) / whole), 4) if whole else 0.0


def _published_floor(
    weights: np.ndarray,
    neighbours: list[list[int]],
    per: dict,
    p: int,
    req: ProposalRequest,
    base: int,
) -> float:
    """The lowest reachable max/mean, from the parts' published workloads."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(weights)
    rows = [i for i, nb in enumerate(neighbours) for _ in nb]
    cols = [j for nb in neighbours for j in nb]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    k, part = connected_components(graph, directed=False)
    loads = _published_loads(part, k, weights, per, req, base)
    if loads.sum() <= 0:
        return 1.0
    floor = lowest_max_over_mean(loads, [[] for _ in range(k)], p, np.arange(k))
    return round(floor, 4) if np.isfinite(floor) else floor


def _store(
    engine: Engine,
    session: Session,
    version: int,
    req: ProposalRequest,
    results: list,
    actor: str,
    min_count: int = 5,
) -> tuple[int, dict[str, Any]]:
    """Write the draft version (a copy with the parents' grids replaced) and measure it,
    from published counts (see ``propose``)."""
    new_grids = []  # (parent_id, code, name, geometry)
    before_loads, after_loads, before_pp, after_pp, contiguous = [], [], [], [], []
    moved = {"households": [0.0, 0.0], "rental_units": [0.0, 0.0], "history": [0.0, 0.0]}
    moved_keys = {"households": [0.0, 0.0], "rental_units": [0.0, 0.0]}
    per_parent = []
    for parent, cells, pieces, current, weights, per, held, grid_ids, plan in results:
        labels = plan.labels
        p = int(labels.max()) + 1
        crs = gpd.GeoSeries([parent.geom], crs="EPSG:4326").estimate_utm_crs()
        geoms = one_piece_each(
            [shapely.make_valid(shapely.union_all(pieces[labels == r])) for r in range(p)]
        )
        # Which of today's grids each new one continues: the one it shares most with.
        overlap = np.zeros((p, len(grid_ids)))
        np.add.at(
            overlap,
            labels,
            sum(held[k] for k in ("households", "rental_units", "history"))
            + np.eye(len(grid_ids))[current] * weights[:, None],
        )
        heir: dict[int, int] = {}
        for r in np.argsort(-overlap.max(axis=1)):
            options = [g for g in np.argsort(-overlap[r]) if g not in heir.values()]
            heir[r] = options[0] if options else -1
        keyed = {"households": "household_key", "rental_units": "rental_key"}
        for name in moved:
            for target, source in ((moved, name), (moved_keys, keyed.get(name))):
                if source is None:
                    continue
                for r in range(p):
                    members = labels == r
                    total = held[source][members].sum()
                    kept = held[source][members][:, heir[r]].sum() if heir[r] >= 0 else 0.0
                    target[name][0] += total - kept
                    target[name][1] += total
        # What is shown and stored counts homes as disclosure control publishes them.
        old_loads = _published_loads(current, len(grid_ids), weights, per, req, min_count)
        new_loads = _published_loads(labels, p, weights, per, req, min_count)
        floor = (
            plan.floor
            if plan.floor <= 1.0
            else _published_floor(weights, hex_neighbours(cells), per, p, req, min_count)
        )
        old_geoms = parent.grids[~parent.grids.id.isin(parent.locked)].geometry.to_numpy()
        pp_before = polsby_popper(old_geoms, crs)
        pp_after = polsby_popper(geoms, crs)
        before_loads += old_loads.tolist()
        after_loads += new_loads.tolist()
        before_pp += pp_before.tolist()
        after_pp += pp_after.tolist()
        one_piece = [shapely.get_num_geometries(g) == 1 for g in geoms]
        contiguous += one_piece
        per_parent.append(
            {
                "parent": parent.code,
                "grids_before": len(grid_ids),
                "grids_after": p,
                "before": balance(old_loads),
                "after": balance(new_loads),
                # below this no plan can go: the parent in separate pieces, say
                "lowest_possible_max_over_mean": floor,
                "atoms": len(cells),
                "seconds": round(plan.seconds, 2),
                "workload_by_grid": {
                    f"{parent.code}-N{r + 1:02d}": round(float(new_loads[r]), 2) for r in range(p)
                },
            }
        )
        for r, geom in enumerate(geoms):
            code = f"{parent.code}-N{r + 1:02d}"
            new_grids.append((parent, code, f"{parent.name} grid {r + 1}", geom, new_loads[r]))
    metrics = {
        "workload_before": balance(np.array(before_loads)),
        "workload_after": balance(np.array(after_loads)),
        "polsby_popper_before": round(float(np.mean(before_pp)), 4),
        "polsby_popper_after": round(float(np.mean(after_pp)), 4),
        "contiguous_share": round(sum(contiguous) / max(len(contiguous), 1), 4),
        "stability": {
            "households_moved_share": _published_share(
                moved["households"], moved_keys["households"], "households", min_count
            ),
            "rental_units_moved_share": _published_share(
                moved["rental_units"], moved_keys["rental_units"], "unit_count", min_count
            ),
            "history_moved_share": (
                round(moved["history"][0] / moved["history"][1], 4) if moved["history"][1] else 0.0
            ),
        },
        "parents": per_parent,
    }
    with engine.begin() as conn:
        version_id = _copy_version(conn, version, req, new_grids, results, actor, metrics)
    return version_id, metrics


def _copy_version(conn, version: int, req: ProposalRequest, new_grids, results, actor, metrics):  # noqa: ANN001, ANN202
    """A draft: every area of ``version`` except the redrawn parents' free grids, plus the
    new grids. Ids are remapped level by level through the (version, code) key."""
    name = req.name or f"proposal for {', '.join(req.parent_codes[:3])}" + (
        "…" if len(req.parent_codes) > 3 else ""
    )
    draft = conn.execute(
        text(
            "INSERT INTO boundary_versions (name, status, notes) VALUES (:n, 'draft', :notes) "
            "RETURNING id"
        ),
        {"n": name[:200], "notes": json.dumps({"proposal": metrics}, default=str)[:100_000]},
    ).scalar_one()
    replaced = [
        gid
        for parent, *_rest in results
        for gid in parent.grids[~parent.grids.id.isin(parent.locked)].id.tolist()
    ]
    conn.execute(text("CREATE TEMP TABLE idmap (old int PRIMARY KEY, new int) ON COMMIT DROP"))
    for level in AREA_LEVELS:
        conn.execute(
            text(
                """
                INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2,
                                   properties)
                SELECT :d, a.level, a.code, a.name, m.new, a.geom, a.area_m2, a.properties
                FROM areas a LEFT JOIN idmap m ON m.old = a.parent_id
                WHERE a.version_id = :v AND a.level = :level AND NOT a.id = ANY(:replaced)
                """
            ),
            {"d": draft, "v": version, "level": level, "replaced": replaced},
        )
        conn.execute(
            text(
                "INSERT INTO idmap SELECT o.id, n.id FROM areas o JOIN areas n "
                "ON n.version_id = :d AND n.code = o.code WHERE o.version_id = :v "
                "AND o.level = :level"
            ),
            {"d": draft, "v": version, "level": level},
        )
    for parent, code, grid_name, geom, load in new_grids:
        conn.execute(
            text(
                """
                INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2,
                                   properties)
                SELECT :d, 'grid', :code, :name, m.new,
                       ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(:wkb, 4326)), 3)),
                       ST_Area(ST_GeomFromWKB(:wkb, 4326)::geography),
                       CAST(:props AS jsonb)
                FROM idmap m WHERE m.old = :parent
                """
            ),
            {
                "d": draft,
                "code": code,
                "name": grid_name,
                "wkb": shapely.to_wkb(geom),
                "parent": parent.id,
                "props": json.dumps({"workload_index": round(float(load), 2)}),
            },
        )
    conn.execute(
        text(
            "INSERT INTO audit_log (who, action, entity, entity_id, diff) VALUES "
            "(:who, 'propose', 'boundary_version', :id, CAST(:diff AS jsonb))"
        ),
        {
            "who": actor,
            "id": str(draft),
            "diff": json.dumps({"request": _request_dict(req), "metrics": metrics}, default=str),
        },
    )
    return draft


def _request_dict(req: ProposalRequest) -> dict[str, Any]:
    out = asdict(req)
    return out
