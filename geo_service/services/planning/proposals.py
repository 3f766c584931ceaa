"""Proposals: redraw grids inside their parents and store the result as a draft version.

A proposal cuts each parent (community or street) into H3 cells clipped to it (the *atoms*,
``analytics.atoms``), weighs them by the workload formula (``workload``), and regroups them
into balanced, contiguous, compact grids with few moves (``analytics.regionalize``). New grids
are unions of atoms, so they tile the parent exactly; the result is a draft boundary version
(``drafts``) that ``validate`` and ``publish`` take as any, with its figures (``metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.analytics.atoms import centroids_xy, local_utm
from geo_service.analytics.regionalize import Plan, partition
from geo_service.errors import InvalidInputError, PermissionDeniedError
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.planning.drafts import draft_name, write_draft_version
from geo_service.services.planning.metrics import measure
from geo_service.services.planning.parents import (
    REDRAWABLE_LEVELS,
    ParentAtoms,
    load_parents,
    parent_atoms,
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

    def check(self) -> None:
        """Refuse what cannot be planned."""
        self.weights.check()
        if not self.parent_codes:
            raise InvalidInputError(
                "name at least one area (community, street, district) to redraw"
            )
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
        if self.until is not None and self.until.tzinfo is None:
            raise InvalidInputError("until must carry a timezone offset")


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
        if found[code][1] not in REDRAWABLE_LEVELS:
            raise InvalidInputError(
                f"{code} is a {found[code][1]}: name areas above grid level (community, "
                "street, district)"
            )
        if not scope.has_area(found[code][0]):
            raise PermissionDeniedError(f"{code} lies outside your area")
    for code in req.locked_grids:
        if found[code][1] != "grid":
            raise InvalidInputError(f"locked_grids must be grids; {code} is a {found[code][1]}")


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


def _partition_job(atoms: ParentAtoms, p: int, req: ProposalRequest) -> dict[str, Any]:
    """The keyword arguments of ``partition`` for one parent cut into ``p`` grids."""
    if p > len(atoms.cells):
        raise InvalidInputError(
            f"{atoms.parent.code}: {p} grids need at least as many atoms ({len(atoms.cells)}); "
            "use finer atoms (h3_res 11)"
        )
    per, hours = atoms.per, atoms.hours
    stab = per["households"] + per["rental_units"] + per["history"] + 1e-9
    return {
        "weights": hours,
        "neighbours": atoms.neighbours,
        "xy": centroids_xy(atoms.pieces, local_utm(atoms.parent.geom)),
        "p": p,
        "current": atoms.current if p == len(atoms.grid_ids) else None,
        "stability_weights": stab / stab.mean() * hours.mean(),
        "tolerance": req.tolerance,
        "stability": req.stability,
        "compactness": req.compactness,
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
            raise InvalidInputError(f"target_grids must be at least {len(parents)} (one each)")
        step(0.05, "atoms")
        planned = [
            parent_atoms(
                session,
                parent,
                res=req.h3_res,
                weights=req.weights,
                window_days=req.window_days,
                since=since,
                until=until,
            )
            for parent in parents
        ]
        counts = grids_per_parent(today, [a.hours.sum() for a in planned], req.target_grids)
        jobs = [_partition_job(atoms, counts[k], req) for k, atoms in enumerate(planned)]
        if run_partitions is not None:
            step(0.1, f"{len(jobs)} partitions sent out")
            plans = run_partitions(jobs)
        else:
            plans = []
            for k, job in enumerate(jobs):

                def report(fraction: float, message: str, k: int = k) -> None:
                    code = planned[k].parent.code
                    step(0.1 + 0.8 * (k + fraction) / len(jobs), f"{code}: {message}")

                plans.append(partition(**job, progress=report))
        step(0.92, "geometry and metrics")
        metrics, new_grids = measure(
            list(zip(planned, plans, strict=True)),
            req.weights,
            req.window_days,
            min_count,
            req.tolerance,
        )
        replaced = [gid for a in planned for gid in a.parent.free_grids.id.tolist()]
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
