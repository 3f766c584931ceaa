"""The public entry point: ``partition`` runs seeding, local search and, for hard cases,
repair, and keeps the best plan (see the package docstring)."""

from __future__ import annotations

import time

import numpy as np

from geo_service.analytics.regionalize.local_search import improve, match_labels
from geo_service.analytics.regionalize.plan import (
    Limits,
    Plan,
    Progress,
    no_progress,
    spread_above_band,
)
from geo_service.analytics.regionalize.recombination import merge_split, recombine
from geo_service.analytics.regionalize.seeding import (
    components,
    grow_regions,
    lowest_max_over_mean,
)

MAX_REPAIRS = 40  # recombination rounds tried when the starts end outside the tolerance band
# Wall-clock safety cap of one partition: the iteration budgets end every search long before
# it on the tests' and the README's data (Chicago's worst district: about 2 s).
SAFETY_SECONDS = 120.0


def partition(
    weights: np.ndarray,
    neighbours: list[list[int]],
    xy: np.ndarray,
    p: int,
    *,
    current: np.ndarray | None = None,
    stability_weights: np.ndarray | None = None,
    tolerance: float = 0.05,
    stability: float = 1.0,
    compactness: float = 1.0,
    max_seconds: float = SAFETY_SECONDS,
    seed: int = 0,
    progress: Progress = no_progress,
    limits: Limits | None = None,
    edge_lengths: list[list[float]] | None = None,
) -> Plan:
    """``p`` contiguous regions of atoms with near-equal total ``weights``.

    Two starts are improved and the better kept: today's plan (few moves) and fresh compact
    regions grown from workload-weighted k-means seeds, relabelled to match today's (round
    grids); with no usable ``current`` only the fresh start. Better means within tolerance
    first, then ``compactness x cut share + stability x moved share``. When the best plan is
    still outside the band and the map's shape allows the band (``lowest_max_over_mean``),
    up to ``MAX_REPAIRS`` rounds of recombination (ReCom), fresh starts from other seeds and
    merge-splits follow, each improved again, keeping what ends better.

    Parameters
    ----------
    weights : numpy.ndarray, shape (n,)
        Workload of each atom (hours per window in the service; any non-negative unit).
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches (symmetric; H3 neighbours in
        the service, ``analytics.atoms.hex_neighbours``).
    xy : numpy.ndarray, shape (n, 2)
        Atom positions in a metric CRS (metres, e.g. the parent's UTM zone); seeds and
        region growing use their distances.
    p : int
        Number of regions, 1..n.
    current : numpy.ndarray of int, shape (n,), optional
        Today's region of each atom, which the stability term stays close to; used as a
        start (and its numbering kept) only when it has exactly ``p`` regions numbered
        0..p-1.
    stability_weights : numpy.ndarray, shape (n,), optional
        What moving an atom away from its current region costs (default: ``weights``).
    tolerance : float, default 0.05
        Width of the balance band as a share of the mean: max/mean <= 1 + tolerance is
        "within tolerance".
    stability : float, default 1.0
        Weight of moved workload in the objective (0..100).
    compactness : float, default 1.0
        Weight of cut edges in the objective (0..100); higher gives rounder regions.
    max_seconds : float, default SAFETY_SECONDS (120)
        Wall-clock safety cap only. Iteration budgets end the search (``MAX_PASSES`` local
        search passes, ``MAX_REPAIRS`` repairs of ``ROUNDS_PER_REGION x p`` recombination
        rounds), so the plan depends on the input and the seed alone, however busy the
        machine; a search that hits the cap says so (``Plan.stopped_by_time``).
    seed : int, default 0
        Seed of k-means, the visiting orders and the random spanning trees: the same input
        and seed give the same plan.
    progress : callable, optional
        ``progress(fraction, message)``, fraction in 0..1.
    limits : Limits, optional
        Bounds on every region's totals (households, area: ``Limits``); plans within them
        count as better before balance, and the local search never breaks a bound that
        holds. ``Plan.excess`` says how far the plan kept lies outside them.
    edge_lengths : list of list of float, optional
        Length of the border each atom shares with each neighbour (metres): shape is then
        the length of the borders drawn rather than the number of cut edges.

    Returns
    -------
    Plan
        ``labels`` (region per atom, 0..p-1, each region contiguous within its part of the
        map), the local-search passes and moves summed over all starts, the seconds taken and
        ``floor``, the lowest max/mean any contiguous plan can reach (rounded to 4 decimals).

    Raises
    ------
    ValueError
        When ``p`` is not in 1..n.

    See Also
    --------
    balance : max/mean, CV and Gini of the regions' loads.
    lowest_max_over_mean : the floor under max/mean set by a map in separate parts.

    Notes
    -----
    A two-phase territory-design heuristic (Kalcsics, Nickel & Schröder 2005, "Towards a
    unified territorial design approach", TOP 13(1)) with ReCom repair (DeFord, Duchin &
    Solomon 2021, "Recombination: a family of Markov chains for redistricting", Harvard Data
    Science Review 3(1)). Baselines in ``bench/rebalance.py``: max-p regions (Duque, Anselin
    & Rey 2012, J. Regional Science 52(3)), AZP (Openshaw 1977, Trans. IBG 2(4)) and SKATER
    (Assunção et al. 2006, IJGIS 20(7)) as implemented by ``spopt``. Cost per local-search
    pass is O(atoms x degree) on the sparse adjacency list.

    Examples
    --------
    Six atoms in a row, one of them three times as busy, cut into two regions:

    >>> import numpy as np
    >>> from geo_service.analytics.regionalize import balance
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]
    >>> xy = np.column_stack([np.arange(6) * 100.0, np.zeros(6)])  # 100 m apart
    >>> plan = partition(np.array([3.0, 1, 1, 1, 1, 1]), path, xy, 2)
    >>> plan.labels.tolist()
    [1, 1, 0, 0, 0, 0]
    >>> balance(np.bincount(plan.labels, weights=[3.0, 1, 1, 1, 1, 1]))["max_over_mean"]
    1.0

    Today's plan is kept when it is already balanced:

    >>> partition(np.ones(6), path, xy, 2, current=np.array([0, 0, 0, 1, 1, 1])).labels.tolist()
    [0, 0, 0, 1, 1, 1]
    """
    t0 = time.perf_counter()
    n = len(weights)
    if p < 1 or p > n:
        raise ValueError(f"cannot make {p} regions of {n} atoms")
    weights = np.asarray(weights, float)
    original = current.astype(np.int64) if current is not None else np.full(n, -1, dtype=np.int64)
    stab = np.asarray(stability_weights if stability_weights is not None else weights, float)
    component = components(neighbours)  # the separate parts of the map, found once
    grown = grow_regions(weights, neighbours, xy, p, seed, component)
    starts = [grown]
    if current is not None and len(np.unique(current)) == p and current.min() == 0:
        starts = [current.copy(), match_labels(grown, current, stab, p)]

    def search(start: np.ndarray, seconds: float, start_seed: int, report: Progress) -> Plan:
        return improve(
            start,
            weights,
            neighbours,
            p,
            original=original,
            stab=stab,
            tolerance=tolerance,
            stability=stability,
            compactness=compactness,
            max_seconds=seconds,
            seed=start_seed,
            progress=report,
            limits=limits,
            edge_lengths=edge_lengths,
        )

    def left() -> float:
        return max(max_seconds - (time.perf_counter() - t0), 0.0)

    plans = []
    for k, start in enumerate(starts):

        def report(fraction: float, message: str, k: int = k) -> None:
            progress((k + fraction) / len(starts), message)

        plans.append(search(start, left(), seed, report))
    lengths = edge_lengths if edge_lengths is not None else [[1.0] * len(x) for x in neighbours]
    edges = max(1e-9, sum(map(sum, lengths)))

    def score(plan: Plan) -> tuple[float, float, float]:
        excess = limits.excess(plan.labels, p) if limits is not None else 0.0
        spread = spread_above_band(plan.labels, weights, p, tolerance)
        cut = (
            sum(
                length
                for i, nb in enumerate(neighbours)
                for j, length in zip(nb, lengths[i], strict=True)
                if plan.labels[i] != plan.labels[j]
            )
            / edges
        )
        moved = stab[(plan.labels != original) & (original >= 0)].sum() / max(stab.sum(), 1e-12)
        return excess, round(spread, 4), compactness * cut + stability * moved

    best = min(plans, key=score)
    # Hard instances (a heavy atom, a part of the map behind a corridor) leave the best plan
    # outside the band with most of the time unused. Repair it: recombine pairs of regions;
    # then, while still outside, alternate fresh starts from other seeds with moving a region
    # to where the work is (merge the lightest, split the heaviest), each recombined and
    # improved, keeping what ends better. Easy instances never get here.
    rng = np.random.default_rng(seed)
    repairs = 0
    floor = lowest_max_over_mean(weights, neighbours, p, component)
    # (not while the plan misses the planner's bounds: the repairs seek the band alone, and
    # bounds that cannot be kept may leave no plan in the band at all)
    while (
        score(best)[0] == 0
        and score(best)[1] > 0
        and floor <= 1 + tolerance
        and left() > 0
        and repairs < MAX_REPAIRS
    ):
        repairs += 1
        if repairs == 1:
            origin: np.ndarray | None = best.labels
        elif repairs % 2 == 0:  # a fresh start from other seeds
            origin = grow_regions(weights, neighbours, xy, p, seed + repairs, component)
        else:
            origin = merge_split(best.labels, weights, neighbours, p, rng)
        if origin is None:
            continue
        progress(0.95, f"repair {repairs}: outside the tolerance band")
        labels = recombine(origin, weights, neighbours, p, tolerance, left(), rng)
        if current is not None and len(starts) > 1:  # keep today's numbering
            labels = match_labels(labels, current, stab, p)
        candidate = search(labels, left(), seed + repairs, no_progress)
        plans.append(candidate)
        if score(candidate) < score(best):
            best = candidate
    return Plan(
        best.labels,
        sum(q.passes for q in plans),
        sum(q.moves for q in plans),
        time.perf_counter() - t0,
        round(floor, 4),
        stopped_by_time=left() <= 0 or any(q.stopped_by_time for q in plans),
        excess=score(best)[0],
    )
