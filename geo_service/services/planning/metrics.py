"""A proposal's figures: the new grids' shapes and loads, balance before and after, the floor
no plan can beat, compactness and the share of homes and history that change grid. Every
figure counts households and rental units as ``disclosure`` publishes them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geo_service.analytics.atoms import (
    areas_km2,
    border_on_lines_share,
    grid_of_atoms,
    one_piece_each,
    polsby_popper,
)
from geo_service.analytics.regionalize import Plan, balance, lowest_max_over_mean
from geo_service.services.access import disclosure
from geo_service.services.planning.parents import Pairs, Parent, ParentAtoms
from geo_service.services.planning.workload import (
    Weights,
    published_workload_terms,
    workload_hours,
)

_COUNTED = ("households", "rental_units")


@dataclass(frozen=True)
class NewGrid:
    """A grid of the proposal, as the draft version stores it."""

    parent: Parent
    code: str
    name: str
    geom: Any  # WGS84 polygon or multipolygon
    load: float  # workload from published counts


def published_loads(
    groups: np.ndarray,
    n: int,
    hours: np.ndarray,
    per: dict[str, np.ndarray],
    pairs: dict[str, Pairs],
    weights: Weights,
    window_days: int,
    base: int,
) -> np.ndarray:
    """Workload of groups of atoms (``groups``: a group number per atom, 0..n-1), the household
    and rental-unit terms taken at the counts ``disclosure`` publishes for each group (keyed
    by the pairs of the homes it holds, ``disclosure.key_sum``)."""
    loads = np.bincount(groups, weights=hours, minlength=n)
    shown_counts = published_counts(groups, n, per, pairs, base)
    counts = {k: np.bincount(groups, weights=per[k], minlength=n) for k in _COUNTED}
    for g in range(n):
        shown = shown_counts[g]
        # the formula on the differences: what publishing adds to (or takes from) the load
        loads[g] += workload_hours(
            0.0,
            (shown["households"] or 0) - counts["households"][g],
            (shown["rental_units"] or 0) - counts["rental_units"][g],
            0.0,
            weights,
            window_days,
        )
    return loads


def published_counts(
    groups: np.ndarray, n: int, per: dict[str, np.ndarray], pairs: dict[str, Pairs], base: int
) -> list[dict[str, int | None]]:
    """Households and rental units of groups of atoms as ``disclosure`` publishes them (None:
    hidden), one dict per group."""
    counts = {k: np.bincount(groups, weights=per[k], minlength=n) for k in _COUNTED}
    keys = {k: pairs[k].key_sums(groups, n) for k in _COUNTED}
    return [
        published_workload_terms(
            round(counts["households"][g]),
            round(counts["rental_units"][g]),
            (int(keys["households"][g]), int(keys["rental_units"][g])),
            base,
        )
        for g in range(n)
    ]


def published_share(
    counts: list[float], keys: tuple[set[int], set[int]], measure: str, base: int
) -> float:
    """Share of homes moved (``counts``: moved, total; ``keys``: the keys of their pairs),
    from the published moved and total counts."""
    (moved, total) = counts
    moved_key, total_key = (disclosure.key_sum(k) for k in keys)

    def shown(n: float, key: float) -> int:
        return disclosure.published_value(
            disclosure.publish(
                {measure: round(n)}, household_key=round(key), rental_key=round(key), base=base
            )[measure]
        )

    whole = shown(total, total_key)
    return round(min(1.0, shown(moved, moved_key) / whole), 4) if whole else 0.0


def published_floor(
    atoms: ParentAtoms, p: int, weights: Weights, window_days: int, base: int
) -> float:
    """The lowest reachable max/mean for ``p`` grids, from the published workloads of the
    parent's separate parts."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    neighbours = atoms.neighbours
    n = len(atoms.hours)
    rows = [i for i, nb in enumerate(neighbours) for _ in nb]
    cols = [j for nb in neighbours for j in nb]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    k, part = connected_components(graph, directed=False)
    loads = published_loads(
        part, k, atoms.hours, atoms.per, atoms.pairs, weights, window_days, base
    )
    if loads.sum() <= 0:
        return 1.0
    floor = lowest_max_over_mean(loads, [[] for _ in range(k)], p, np.arange(k))
    return round(floor, 4) if np.isfinite(floor) else floor


KEEP_CODE_SHARE = 0.5  # a new grid covering more than this share of an old one keeps its code


def next_codes(parent_code: str, siblings: list[str], n: int) -> list[str]:
    """``n`` new grid codes in the scheme of ``siblings`` (today's grid codes under the parent):
    the parent's code, a separator and prefix, and a number continued past the largest in use
    (``D04-S01-C02-G07`` after ``...-G06``; ``1636`` after Chicago's ``1635``), or
    ``<parent>-N01``... when the siblings follow no one scheme.

    >>> next_codes("C02", ["C02-G01", "C02-G06"], 2)
    ['C02-G07', 'C02-G08']
    >>> next_codes("16", ["1611", "1635"], 1)
    ['1636']
    >>> next_codes("X", ["a", "b"], 2)
    ['X-N01', 'X-N02']
    """
    pattern = re.compile(rf"^{re.escape(parent_code)}([-_.]?)([A-Za-z]*)(\d+)$")
    found = [pattern.match(code) for code in siblings]
    shapes = {(m.group(1), m.group(2)) for m in found if m}
    if siblings and all(found) and len(shapes) == 1:
        ((sep, prefix),) = shapes
        width = max(len(m.group(3)) for m in found if m)
        start = max(int(m.group(3)) for m in found if m) + 1
        return [f"{parent_code}{sep}{prefix}{k:0{width}d}" for k in range(start, start + n)]
    used = set(siblings)
    codes: list[str] = []
    k = 1
    while len(codes) < n:
        code = f"{parent_code}-N{k:02d}"
        if code not in used:
            codes.append(code)
        k += 1
    return codes


def grid_name(code: str, siblings: dict[str, str], parent_name: str) -> str:
    """The name of a new grid ``code``: its own when today's grid of that code is kept
    (``siblings``: today's codes -> names under the parent), else named as its siblings are
    (the code itself when they are named by code; their name with the code's number when
    each carries its code's number, as ``Taijin Grid 3`` for ``...-G03``), else
    ``<parent> grid <number>``.

    >>> grid_name("C-G07", {"C-G01": "Taijin Grid 1", "C-G02": "Taijin Grid 2"}, "Taijin")
    'Taijin Grid 7'
    >>> grid_name("1636", {"1611": "1611", "1635": "1635"}, "16")
    '1636'
    >>> grid_name("C-G01", {"C-G01": "Old name"}, "C")
    'Old name'
    """
    if code in siblings:
        return siblings[code]
    number = re.search(r"(\d+)$", code)
    if siblings and all(name == c for c, name in siblings.items()):
        return code
    if number:
        names = []
        for c, name in siblings.items():
            own = re.search(r"(\d+)$", c)
            tail = re.match(r"^(.*?)(\d+)$", name or "")
            if not (own and tail and int(own.group(1)) == int(tail.group(2))):
                break
            names.append(tail.group(1))
        else:
            if names and len(set(names)) == 1:
                return f"{names[0]}{int(number.group(1))}"
    return f"{parent_name} grid {int(number.group(1)) if number else code}"


def grid_codes(atoms: ParentAtoms, geoms: np.ndarray, heir: dict[int, int], crs: Any) -> list[str]:
    """The code of each new grid (``geoms``, drawn): its heir's (the old grid it continues)
    when it covers more than ``KEEP_CODE_SHARE`` of that grid's area, measured on the two
    polygons, else a new code in the parent's scheme."""
    free = atoms.parent.free_grids
    old = gpd.GeoSeries(free.geometry.to_numpy(), crs="EPSG:4326").to_crs(crs).to_numpy()
    new = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(crs).to_numpy()
    old_codes = free.code.tolist()
    p = len(geoms)
    codes: list[str | None] = [None] * p
    for r in range(p):
        g = heir.get(r, -1)
        if g >= 0 and old[g].area > 0:
            covered = shapely.intersection(new[r], old[g]).area
            if covered > KEEP_CODE_SHARE * old[g].area:
                codes[r] = old_codes[g]
    fresh = iter(
        next_codes(
            atoms.parent.code,
            atoms.parent.grids.code.tolist(),
            sum(c is None for c in codes),
        )
    )
    return [c if c is not None else next(fresh) for c in codes]


def old_code(atoms: ParentAtoms, g: int) -> str | None:
    """The code of today's free grid at position ``g`` (None for -1)."""
    return None if g < 0 else str(atoms.parent.free_grids.code.iloc[g])


def _heirs(atoms: ParentAtoms, labels: np.ndarray, p: int) -> dict[int, int]:
    """Which of today's grids each new one continues (a position in ``grid_ids``, -1: none):
    the one it shares most people, history and workload with, largest overlaps first."""
    held = atoms.held
    overlap = np.zeros((p, len(atoms.grid_ids)))
    np.add.at(
        overlap,
        labels,
        sum(held[k] for k in ("households", "rental_units", "history"))
        + np.eye(len(atoms.grid_ids))[atoms.current] * atoms.hours[:, None],
    )
    heir: dict[int, int] = {}
    for r in np.argsort(-overlap.max(axis=1)):
        # only an old grid it shares something with (found: G12 "continued" G05, 0 m² shared)
        options = [
            g for g in np.argsort(-overlap[r]) if overlap[r, g] > 0 and g not in heir.values()
        ]
        heir[r] = options[0] if options else -1
    return heir


# How close to its floor a plan must come to count as at it (max/mean, relative).
AT_FLOOR = 0.005


def band_status(max_over_mean: float, floor: float, tolerance: float) -> str:
    """``"within"`` the band (max/mean <= 1 + ``tolerance``), ``"at_floor"`` (outside it, but
    within ``AT_FLOOR`` of the lowest max/mean any contiguous plan can reach), or
    ``"outside"``.

    >>> band_status(1.04, 1.0, 0.05), band_status(1.5, 1.5, 0.05), band_status(1.098, 1.0, 0.05)
    ('within', 'at_floor', 'outside')
    """
    if max_over_mean <= 1 + tolerance + 1e-9:
        return "within"
    if math.isfinite(floor) and max_over_mean <= floor * (1 + AT_FLOOR):
        return "at_floor"
    return "outside"


def overall_status(statuses: list[str]) -> str:
    """The worst of the parents' statuses (outside > at_floor > within)."""
    for status in ("outside", "at_floor"):
        if status in statuses:
            return status
    return "within"


def measure(
    parents: list[tuple[ParentAtoms, Plan]],
    weights: Weights,
    window_days: int,
    min_count: int,
    tolerance: float = 0.05,
    bounds: dict[str, float] | None = None,
) -> tuple[dict[str, Any], list[NewGrid]]:
    """The new grids of every parent's plan and the proposal's metrics, from published counts
    (base ``min_count``), with each parent's ``status`` against the band (``tolerance``, a
    share of the mean) and the proposal's (the worst; ``outside`` too when a grid breaks one
    of the planner's ``bounds``: ``households_min``/``_max``, ``area_min_m2``/``_max_m2``,
    ``compactness_min``, each listed in ``constraints.violations``)."""
    bounds = bounds or {}
    violations: list[dict[str, Any]] = []
    roads_before: list[float | None] = []
    roads_after: list[float | None] = []
    new_grids = []
    before_loads, after_loads, before_pp, after_pp, contiguous = [], [], [], [], []
    moved = {"households": [0.0, 0.0], "rental_units": [0.0, 0.0], "history": [0.0, 0.0]}
    moved_keys: dict[str, tuple[set[int], set[int]]] = {
        "households": (set(), set()),
        "rental_units": (set(), set()),
    }
    per_parent = []
    for atoms, plan in parents:
        parent, held, crs = atoms.parent, atoms.held, atoms.crs
        p = int(plan.labels.max()) + 1
        geoms = one_piece_each(
            [
                shapely.make_valid(shapely.union_all(atoms.pieces[plan.labels == r]))
                for r in range(p)
            ]
        )
        # every figure from what is drawn: an atom belongs to the grid that holds it after
        # stray parts found their neighbour (``one_piece_each``)
        labels = grid_of_atoms(atoms.pieces, geoms)
        heir = _heirs(atoms, labels, p)
        codes = grid_codes(atoms, geoms, heir, crs)
        for name in moved:
            for r in range(p):
                members = labels == r
                total = held[name][members].sum()
                kept = held[name][members][:, heir[r]].sum() if heir[r] >= 0 else 0.0
                moved[name][0] += total - kept
                moved[name][1] += total
        for name, (gone, every) in moved_keys.items():
            rows = atoms.pairs[name]
            heirs = np.array([heir.get(int(r), -1) for r in labels[rows.unit]], dtype=int)
            gone.update(rows.key[(rows.grid < 0) | (rows.grid != heirs)].tolist())
            every.update(rows.key.tolist())
        # What is shown and stored counts homes as disclosure control publishes them.
        shown = (weights, window_days, min_count)
        old_loads = published_loads(
            atoms.current, len(atoms.grid_ids), atoms.hours, atoms.per, atoms.pairs, *shown
        )
        new_loads = published_loads(labels, p, atoms.hours, atoms.per, atoms.pairs, *shown)
        floor = plan.floor if plan.floor <= 1.0 else published_floor(atoms, p, *shown)
        pp_before = polsby_popper(parent.free_grids.geometry.to_numpy(), crs)
        pp_after = polsby_popper(geoms, crs)
        before_loads += old_loads.tolist()
        after_loads += new_loads.tolist()
        before_pp += pp_before.tolist()
        after_pp += pp_after.tolist()
        contiguous += [shapely.get_num_geometries(g) == 1 for g in geoms]
        shown_counts = published_counts(labels, p, atoms.per, atoms.pairs, min_count)
        area_m2 = np.bincount(labels, weights=areas_km2(atoms.pieces, crs), minlength=p) * 1e6
        incidents = np.bincount(labels, weights=atoms.per["incidents"], minlength=p)
        outer = shapely.union_all(atoms.pieces)
        roads_before.append(
            border_on_lines_share(parent.free_grids.geometry.to_numpy(), outer, atoms.roads, crs)
        )
        roads_after.append(border_on_lines_share(geoms, outer, atoms.roads, crs))
        per_parent.append(
            {
                "parent": parent.code,
                "grids_before": len(atoms.grid_ids),
                "grids_after": p,
                "before": balance(old_loads),
                "after": balance(new_loads),
                "status": band_status(balance(new_loads)["max_over_mean"], floor, tolerance),
                # below this no plan can go: the parent in separate pieces, say
                "lowest_possible_max_over_mean": floor,
                "atoms": len(atoms.pieces),
                # atoms that are whole street blocks (the others: H3 fragments of heavy ones)
                "whole_blocks": atoms.whole_blocks,
                "blocks": len(atoms.source.blocks),
                # share of the borders between grids (not the parent's) on a road; None
                # without roads
                "border_on_roads_before": roads_before[-1],
                "border_on_roads_after": roads_after[-1],
                "seconds": round(plan.seconds, 2),
                # the wall-clock safety cap, not the iteration budget, ended the search
                "stopped_by_time": plan.stopped_by_time,
                "workload_by_grid": {codes[r]: round(float(new_loads[r]), 2) for r in range(p)},
                # which old grid each new one continues (its code kept when it covers most of it)
                "continues": {codes[r]: old_code(atoms, heir.get(r, -1)) for r in range(p)},
                # the planner's table: one row per new grid, counted in its drawn polygon
                "grids": [
                    {
                        "code": codes[r],
                        "continues": old_code(atoms, heir.get(r, -1)),
                        "workload": round(float(new_loads[r]), 2),
                        "incidents": int(round(incidents[r])),
                        "households": shown_counts[r]["households"],
                        "rental_units": shown_counts[r]["rental_units"],
                        "area_m2": round(float(area_m2[r]), 1),
                        "polsby_popper": round(float(pp_after[r]), 4),
                    }
                    for r in range(p)
                ],
            }
        )
        homes = np.bincount(labels, weights=atoms.per["households"], minlength=p)
        violations += _violations(
            codes, bounds, homes, area_m2, pp_after, [c["households"] for c in shown_counts]
        )
        siblings = dict(zip(parent.grids.code, parent.grids.name, strict=True))
        for r, geom in enumerate(geoms):
            code = codes[r]
            name = grid_name(code, siblings, parent.name)
            new_grids.append(NewGrid(parent, code, name, geom, new_loads[r]))
    metrics = {
        "workload_before": balance(np.array(before_loads)),
        "workload_after": balance(np.array(after_loads)),
        "polsby_popper_before": round(float(np.mean(before_pp)), 4),
        "polsby_popper_after": round(float(np.mean(after_pp)), 4),
        "contiguous_share": round(sum(contiguous) / max(len(contiguous), 1), 4),
        "stability": {
            "households_moved_share": published_share(
                moved["households"], moved_keys["households"], "households", min_count
            ),
            "rental_units_moved_share": published_share(
                moved["rental_units"], moved_keys["rental_units"], "unit_count", min_count
            ),
            "history_moved_share": (
                round(moved["history"][0] / moved["history"][1], 4) if moved["history"][1] else 0.0
            ),
        },
        "parents": per_parent,
        "tolerance": tolerance,
        "border_on_roads_before": _mean_share(roads_before),
        "border_on_roads_after": _mean_share(roads_after),
        "constraints": {**bounds, "violations": violations},
        "status": overall_status(
            [str(p["status"]) for p in per_parent]
            + (["outside"] if any(not v["unavoidable"] for v in violations) else [])
        ),
    }
    return metrics, new_grids


def _mean_share(shares: list[float | None]) -> float | None:
    """The mean of the parents' shares that exist (None when none does)."""
    known = [s for s in shares if s is not None]
    return round(sum(known) / len(known), 4) if known else None


def _violations(
    codes: list[str],
    bounds: dict[str, float],
    homes: np.ndarray,
    area_m2: np.ndarray,
    polsby_popper: np.ndarray,
    shown_homes: list[int | None],
) -> list[dict[str, Any]]:
    """The new grids that break the planner's bounds, one row per grid and bound; households
    are tested exactly and shown as published (None: a small count, hidden). ``unavoidable``:
    the grid is the whole area redrawn (the bounds set the count to one) and is still short
    of a minimum; it is listed but does not make the proposal ``outside``."""
    tests = (
        ("households_min", homes, lambda v, b: v < b, shown_homes),
        ("households_max", homes, lambda v, b: v > b, shown_homes),
        ("area_min_m2", area_m2, lambda v, b: v < b, None),
        ("area_max_m2", area_m2, lambda v, b: v > b, None),
        ("compactness_min", polsby_popper, lambda v, b: v < b, None),
    )
    found = []
    for name, values, breaks, shown in tests:
        if name not in bounds:
            continue
        for r, code in enumerate(codes):
            if breaks(float(values[r]), bounds[name]):
                value = shown[r] if shown is not None else round(float(values[r]), 4)
                found.append(
                    {
                        "grid": code,
                        "constraint": name,
                        "limit": bounds[name],
                        "value": value,
                        # one grid is the whole area redrawn: none could hold more
                        "unavoidable": len(codes) == 1
                        and name.endswith("_min")
                        and name != "compactness_min",
                    }
                )
    return found
