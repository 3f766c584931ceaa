"""Proposals: redraw grids inside their parents and store the result as a draft version.

A proposal cuts each parent (community, street or district) into its street blocks, each
block into H3 fragments (``parents``), weighs them by the workload formula (``workload``),
and regroups them into balanced, contiguous, compact grids with few moves
(``analytics.regionalize``). It starts from whole blocks, so that every border it draws runs
on a street, and cuts only the heaviest blocks into their fragments, round by round
(``SPLIT_ROUNDS``), while the plan stays outside its band. New grids are unions of atoms, so
they tile the parent exactly; the result is a draft boundary version (``drafts``) that
``validate`` and ``publish`` take as any, with its figures (``metrics``), all counted in the
drawn polygons.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.analytics.atoms import areas_km2, centroids_xy
from geo_service.analytics.regionalize import Limits, Plan, partition
from geo_service.analytics.regionalize.plan import spread_above_band
from geo_service.errors import InvalidInputError, PermissionDeniedError
from geo_service.i18n import format_message, gettext
from geo_service.instants import localize_fields
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.planning.drafts import draft_name, write_draft_version
from geo_service.services.planning.metrics import measure
from geo_service.services.planning.parents import (
    REDRAWABLE_LEVELS,
    ParentAtoms,
    ParentFragments,
    atoms_of,
    block_hours,
    load_parents,
    parent_fragments,
)
from geo_service.services.planning.workload import Weights

Progress = Callable[[float, str], None]
RunPartitions = Callable[[list[dict[str, Any]]], list[Plan]]


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
    until: datetime | None = None  # end of the history window; default: now
    name: str | None = None
    # bounds every new grid must keep (None: no bound), checked on the drawn polygons
    households_min: int | None = None
    households_max: int | None = None
    area_min_m2: float | None = None
    area_max_m2: float | None = None
    compactness_min: float | None = None  # Polsby-Popper, 0..1 (reported, not searched)

    def bounds(self) -> dict[str, float]:
        """The bounds the planner set, by name."""
        names = ("households_min", "households_max", "area_min_m2", "area_max_m2")
        found = {name: getattr(self, name) for name in (*names, "compactness_min")}
        return {name: float(value) for name, value in found.items() if value is not None}

    def __post_init__(self) -> None:
        """Read a naive ``until`` as local time."""
        localize_fields(self, "until")

    def check(self) -> None:
        """Refuse what cannot be planned."""
        self.weights.check()
        if not self.parent_codes:
            raise InvalidInputError(
                gettext("name at least one area (community, street, district) to redraw")
            )
        if len(self.parent_codes) > 200:
            raise InvalidInputError(gettext("at most 200 parents per proposal"))
        if self.h3_res not in (9, 10, 11):
            raise InvalidInputError(gettext("atoms: h3_res must be 9, 10 or 11"))
        if not 0.005 <= self.tolerance <= 0.5:
            raise InvalidInputError(gettext("tolerance must be 0.005..0.5 (a share of the mean)"))
        if self.target_grids is not None and not 1 <= self.target_grids <= 5000:
            raise InvalidInputError(gettext("target_grids must be 1..5000"))
        for name in ("stability", "compactness"):
            if not 0 <= getattr(self, name) <= 100:
                raise InvalidInputError(format_message("{name} must be 0..100", name=name))
        if not 1 <= self.window_days <= 3660:
            raise InvalidInputError(gettext("window_days must be 1..3660"))
        for low, high in (("households_min", "households_max"), ("area_min_m2", "area_max_m2")):
            lo, hi = getattr(self, low), getattr(self, high)
            if any(v is not None and v < 0 for v in (lo, hi)):
                raise InvalidInputError(
                    format_message("{low} and {high} must not be negative", low=low, high=high)
                )
            if lo is not None and hi is not None and lo > hi:
                raise InvalidInputError(
                    format_message(
                        "{low} ({lo}) is above {high} ({hi})", low=low, lo=lo, high=high, hi=hi
                    )
                )
        if self.compactness_min is not None and not 0 <= self.compactness_min <= 1:
            raise InvalidInputError(gettext("compactness_min must be 0..1 (Polsby-Popper)"))


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
        raise InvalidInputError(
            format_message(
                "no such areas in the version in force: {values}", values=", ".join(missing)
            )
        )
    for code in req.parent_codes:
        if found[code][1] not in REDRAWABLE_LEVELS:
            raise InvalidInputError(
                format_message(
                    "{code} is a {value}: name areas above grid level (community, street, "
                    "district)",
                    code=code,
                    value=found[code][1],
                )
            )
        if not scope.has_area(found[code][0]):
            raise PermissionDeniedError(format_message("{code} lies outside your area", code=code))
    for code in req.locked_grids:
        if found[code][1] != "grid":
            raise InvalidInputError(
                format_message(
                    "locked_grids must be grids; {code} is a {value}",
                    code=code,
                    value=found[code][1],
                )
            )


def grids_per_parent(today: list[int], loads: list[float], target: int | None) -> list[int]:
    """Grids per parent: today's counts, or ``target`` shared out by workload (at least one
    each, the remainder to the largest fractions)."""
    if target is None:
        return today
    share = np.array(loads) / max(sum(loads), 1e-9) * target
    counts = np.maximum(1, np.floor(share)).astype(int)
    for k in np.argsort(-(share - np.floor(share)))[: max(0, target - counts.sum())]:
        counts[k] += 1
    return [int(c) for c in counts]


# Room the count leaves within a bound (a share of it): grids are made of whole street blocks,
# and a count that fills every grid to the minimum exactly leaves no plan that balances too
# (on the demo city, 100 households a grid: 37 grids short of it with today's counts, 11 with
# counts filling the bound exactly, 7 with this room, one of them a community of 20; 2 with
# ``FEWER_GRIDS_TRIES`` as well).
BOUND_ROOM = 1.15


def counts_within_bounds(
    counts: list[int], totals: list[dict[str, float]], bounds: dict[str, float]
) -> tuple[list[int], list[str | None]]:
    """Grids per parent that the planner's bounds allow: at most ``households / households_min``
    (and ``area / area_min_m2``) grids, at least ``households / households_max`` (and
    ``area / area_max_m2``), with ``BOUND_ROOM`` to spare, never fewer than one; with the bound
    that set each count (None: the count asked for stands). A minimum wins over a maximum when
    both cannot hold.

    ``totals``: per parent, ``households`` and ``area_m2`` of the area being redrawn.

    >>> counts_within_bounds([3, 6], [{"households": 20, "area_m2": 1e6},
    ...                               {"households": 1800, "area_m2": 1e6}],
    ...                      {"households_min": 100})
    ([1, 6], ['households_min', None])
    >>> counts_within_bounds([2], [{"households": 900, "area_m2": 1e6}], {"households_max": 400})
    ([3], ['households_max'])
    >>> counts_within_bounds([8], [{"households": 827, "area_m2": 1e6}], {"households_min": 100})
    ([7], ['households_min'])
    """
    made: list[int] = []
    why: list[str | None] = []
    for asked, total in zip(counts, totals, strict=True):
        n, reason = asked, None
        for bound, term in (("households_max", "households"), ("area_max_m2", "area_m2")):
            fewest = math.ceil(total[term] * BOUND_ROOM / bounds[bound]) if bounds.get(bound) else 0
            if n < fewest:
                n, reason = fewest, bound
        for bound, term in (("households_min", "households"), ("area_min_m2", "area_m2")):
            if not bounds.get(bound):
                continue
            most = max(1, math.floor(total[term] / (bounds[bound] * BOUND_ROOM)))
            if n > most:
                n, reason = most, bound
        made.append(n)
        why.append(reason)
    return made, why


# Street blocks heavier than these shares of a new grid's mean workload are cut into their H3
# fragments, one round after another while a parent's plan is outside its band: the coarsest
# atoms that reach the band, so that as many borders as balance allows run on streets (0: every
# block cut, the finest atoms there are).
SPLIT_ROUNDS = (math.inf, 0.5, 0.25, 0.12, 0.0)


def _partition_job(atoms: ParentAtoms, p: int, req: ProposalRequest) -> dict[str, Any]:
    """The keyword arguments of ``partition`` for one parent cut into ``p`` grids."""
    per, hours = atoms.per, atoms.hours
    stab = per["households"] + per["rental_units"] + per["history"] + 1e-9
    bounds = req.bounds()
    limits = None
    if bounds.keys() - {"compactness_min"}:
        limits = Limits(
            np.column_stack([per["households"], areas_km2(atoms.pieces, atoms.crs) * 1e6]),
            np.array([bounds.get("households_min", -np.inf), bounds.get("area_min_m2", -np.inf)]),
            np.array([bounds.get("households_max", np.inf), bounds.get("area_max_m2", np.inf)]),
        )
    return {
        "weights": hours,
        "neighbours": atoms.neighbours,
        "edge_lengths": atoms.lengths,
        "xy": centroids_xy(atoms.pieces, atoms.crs),
        "p": p,
        "current": atoms.current if p == len(atoms.grid_ids) else None,
        "stability_weights": stab / stab.mean() * hours.mean(),
        "tolerance": req.tolerance,
        "stability": req.stability,
        "compactness": req.compactness,
        "limits": limits,
    }


def propose(
    engine: Engine,
    req: ProposalRequest,
    *,
    actor: str,
    progress: Progress | None = None,
    run_partitions: RunPartitions | None = None,
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
        parents = load_parents(session, req.parent_codes, req.locked_grids)
        version = version_in_force(session)
        until = req.until or datetime.now(UTC)
        since = until - timedelta(days=req.window_days)
        today = [len(p.grids) - len(p.locked) for p in parents]
        target = req.target_grids or sum(today)
        if target < len(parents):
            raise InvalidInputError(
                format_message("target_grids must be at least {n} (one each)", n=len(parents))
            )
        step(0.05, "street blocks and what they hold")
        frags = [
            parent_fragments(session, parent, res=req.h3_res, since=since, until=until)
            for parent in parents
        ]
        loads = [block_hours(f, req.weights, req.window_days).sum() for f in frags]
        asked = grids_per_parent(today, loads, req.target_grids)
        totals = [
            {"households": float(f.per["households"].sum()), "area_m2": _area_m2(f)} for f in frags
        ]
        counts, set_by = counts_within_bounds(asked, totals, req.bounds())
        chosen = _plan_rounds(frags, counts, req, step, run_partitions)
        for _ in range(FEWER_GRIDS_TRIES):
            # a grid still short of a minimum: one grid fewer for its parent, and plan again
            short = [
                k
                for k, (atoms, plan) in enumerate(chosen)
                if counts[k] > 1 and _short_of_minimum(atoms, plan, req.bounds())
            ]
            if not short:
                break
            for k in short:
                counts[k] -= 1
                set_by[k] = _short_of_minimum(*chosen[k], req.bounds())
            step(0.9, f"{len(short)} parent(s) again with one grid fewer, for the bounds")
            again = _plan_rounds(
                [frags[k] for k in short], [counts[k] for k in short], req, step, run_partitions
            )
            for k, plan in zip(short, again, strict=True):
                chosen[k] = plan
        step(0.92, "geometry and metrics")
        metrics, new_grids = measure(
            chosen,
            req.weights,
            req.window_days,
            min_count,
            req.tolerance,
            req.bounds(),
        )
        for k, parent_metrics in enumerate(metrics["parents"]):
            # the count of grids the bounds set, instead of the one asked for (no plan can keep
            # 100 households a grid in 3 grids over 20 households)
            parent_metrics["grids_asked"] = asked[k]
            parent_metrics["grid_count_set_by"] = set_by[k]
        replaced = [gid for p in parents for gid in p.free_grids.id.tolist()]
        with engine.begin() as conn:
            version_id = write_draft_version(
                conn,
                version=version,
                name=draft_name(req.parent_codes, req.name),
                new_grids=new_grids,
                replaced=replaced,
                actor=actor,
                metrics=metrics,
                request=asdict(req),
            )
    step(1.0, "done")
    return {"version_id": version_id, "metrics": metrics}


# Times a parent whose plan leaves a grid short of a minimum bound is planned again with one
# grid fewer (each try costs a plan of that parent).
FEWER_GRIDS_TRIES = 3


def _short_of_minimum(atoms: ParentAtoms, plan: Plan, bounds: dict[str, float]) -> str | None:
    """The minimum bound (``households_min`` or ``area_min_m2``) a grid of ``plan`` falls
    short of, counted exactly on its atoms; None when every grid holds them."""
    p = int(plan.labels.max()) + 1
    measured = {
        "households_min": np.bincount(plan.labels, weights=atoms.per["households"], minlength=p),
        "area_min_m2": np.bincount(
            plan.labels, weights=areas_km2(atoms.pieces, atoms.crs) * 1e6, minlength=p
        ),
    }
    for bound, values in measured.items():
        if bounds.get(bound) and (values < bounds[bound]).any():
            return bound
    return None


def _area_m2(frags: ParentFragments) -> float:
    """The area being redrawn (the parent less its locked grids), m²."""
    return float(areas_km2(frags.blocks, frags.crs).sum() * 1e6)


def _sub_progress(step: Progress, start: float, width: float, code: str) -> Progress:
    """A partition's progress as a slice [start, start + width] of the proposal's."""

    def report(fraction: float, message: str) -> None:
        step(start + width * fraction, f"{code}: {message}")

    return report


def _plan_rounds(
    frags: list[ParentFragments],
    counts: list[int],
    req: ProposalRequest,
    step: Progress,
    run_partitions: RunPartitions | None,
) -> list[tuple[ParentAtoms, Plan]]:
    """Partition every parent on whole street blocks, then, for the parents still outside
    their band or the planner's bounds, again with the blocks heavier than the next of
    ``SPLIT_ROUNDS`` cut into fragments (while a plan misses the planner's bounds, only as
    long as a round brings it nearer); keep each parent's best plan (nearest the bounds,
    then the band, then the coarsest atoms).

    Raises ``InvalidInputError`` when a parent has fewer fragments than the grids asked of it.
    """
    best: list[tuple[ParentAtoms, Plan, tuple[float, float]] | None] = [None] * len(frags)
    last_split: list[np.ndarray | None] = [None] * len(frags)
    for k, f in enumerate(frags):
        if len(f.blocks) < counts[k] and len(f.pieces) < counts[k]:  # cut only if need be
            raise InvalidInputError(
                format_message(
                    "{code}: {value} grids need at least as many atoms ({n}); use finer atoms "
                    "(h3_res 11)",
                    code=f.parent.code,
                    value=counts[k],
                    n=len(f.pieces),
                )
            )
    pending = list(range(len(frags)))
    for r, limit in enumerate(SPLIT_ROUNDS):
        batch: list[tuple[int, ParentAtoms]] = []
        for k in pending:
            hours = block_hours(frags[k], req.weights, req.window_days)
            split = hours > limit * hours.sum() / counts[k] if limit > 0 else hours >= 0
            previous = last_split[k]
            if previous is not None and (split == previous).all():
                continue  # the same atoms as the round before
            last_split[k] = split
            atoms = atoms_of(frags[k], split, req.weights, req.window_days)
            if len(atoms.pieces) >= counts[k]:
                batch.append((k, atoms))
        if not batch:
            continue
        jobs = [_partition_job(atoms, counts[k], req) for k, atoms in batch]
        base = 0.1 + 0.8 * r / len(SPLIT_ROUNDS)
        if run_partitions is not None:
            step(base, f"{len(jobs)} partitions sent out")
            plans = run_partitions(jobs)
        else:
            plans = []
            for m, job in enumerate(jobs):
                width = 0.8 / len(jobs) / len(SPLIT_ROUNDS)
                report = _sub_progress(step, base + width * m, width, batch[m][1].parent.code)
                plans.append(partition(**job, progress=report))
        stuck = set()
        for (k, atoms), plan in zip(batch, plans, strict=True):
            spread = spread_above_band(plan.labels, atoms.hours, counts[k], req.tolerance)
            held = best[k]
            if held is None or (plan.excess, spread) < held[2]:
                best[k] = (atoms, plan, (plan.excess, spread))
            elif held[2][0] > 0:
                # finer atoms brought the bounds no nearer: they are what the plan misses
                # (bounds no plan keeps also keep the band out of reach); a plan that misses
                # only the band goes on to finer atoms
                stuck.add(k)
        pending = [
            k for k in pending if k not in stuck and ((b := best[k]) is None or b[2] > (0.0, 0.0))
        ]
        if not pending:
            break
    return [(b[0], b[1]) for b in best if b is not None]
