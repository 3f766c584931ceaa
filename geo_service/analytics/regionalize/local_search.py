"""Local search: move single boundary atoms to a neighbouring region while that lowers
``imbalance + compactness x cut edges + stability x moved workload``, never splitting the
region an atom leaves (phase 2 of the two-phase territory design; the same move as AZP's,
Openshaw 1977, with a balance objective instead of a within-region variance)."""

from __future__ import annotations

import time

import numpy as np

from geo_service.analytics.regionalize.plan import Limits, Plan, Progress, no_progress

MAX_PASSES = 200  # local search that still moves atoms after this many passes is cycling
# A region's shortfall against a bound, in units of the mean per region, weighs this much
# against the balance term (a squared share of the mean): bounds come before balance.
LIMITS_WEIGHT = 10.0


def stays_connected(a: int, region: int, labels: list[int], neighbours: list[list[int]]) -> bool:
    """Whether ``region`` stays in one piece without atom ``a``.

    The atom's neighbours in the region must still reach each other: a search from one of
    them that stops as soon as all have met.

    Parameters
    ----------
    a : int
        The atom that would leave.
    region : int
        Its region.
    labels : list of int
        Region of each atom.
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches.

    Returns
    -------
    bool

    Examples
    --------
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]  # six atoms in a row
    >>> stays_connected(2, 0, [0, 0, 0, 0, 1, 1], path)  # the middle of region 0
    False
    >>> stays_connected(3, 0, [0, 0, 0, 0, 1, 1], path)  # its end
    True
    """
    same = [j for j in neighbours[a] if labels[j] == region]
    if len(same) <= 1:
        return True
    targets = set(same[1:])
    seen = {a, same[0]}
    stack = [same[0]]
    while stack:
        i = stack.pop()
        for j in neighbours[i]:
            if j not in seen and labels[j] == region:
                if j in targets:
                    targets.discard(j)
                    if not targets:
                        return True
                seen.add(j)
                stack.append(j)
    return False


def match_labels(labels: np.ndarray, current: np.ndarray, stab: np.ndarray, p: int) -> np.ndarray:
    """Renumber ``labels`` so that each region carries the number of today's region it shares
    the most with (greedy, largest overlaps first).

    Parameters
    ----------
    labels : numpy.ndarray of int, shape (n,)
        A plan, regions 0..p-1.
    current : numpy.ndarray of int, shape (n,)
        Today's plan, regions 0..p-1.
    stab : numpy.ndarray, shape (n,)
        What each atom weighs in the overlap (people and history it holds).
    p : int
        Number of regions in both plans.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        ``labels`` renumbered; the regions themselves are unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> match_labels(np.array([1, 1, 1, 0, 0, 0]), np.array([0, 0, 0, 1, 1, 1]), np.ones(6), 2)
    array([0, 0, 0, 1, 1, 1])
    """
    overlap = np.zeros((p, p))
    np.add.at(overlap, (labels, current), stab + 1e-12)
    mapping: dict[int, int] = {}
    used: set[int] = set()
    for flat in np.argsort(-overlap, axis=None):
        r, c = divmod(int(flat), p)
        if r not in mapping and c not in used:
            mapping[r] = c
            used.add(c)
    return np.array([mapping[int(x)] for x in labels])


def _limits_change(
    held: list[float],
    source: list[float],
    target: list[float],
    low: list[float],
    high: list[float],
    scale: list[float],
) -> float | None:
    """What moving an atom holding ``held`` from a region with totals ``source`` to one with
    ``target`` does to how far they lie outside their bounds (negative: nearer), or None
    when it leaves the source below a low bound or the target above a high bound while
    the target ends fuller than the source (so no move is ever undone)."""
    change = 0.0
    for v, s, t, lo, hi, sc in zip(held, source, target, low, high, scale, strict=True):
        if v <= 0:
            continue
        if (s - v < lo or t + v > hi) and t + v > s - v:
            # a region left short of its bound (or pushed over it) only when the other ends
            # no fuller: such moves even out what cannot be kept and are never undone
            return None
        before = max(0.0, lo - s) + max(0.0, t - hi) + max(0.0, lo - t) + max(0.0, s - hi)
        after = (
            max(0.0, lo - (s - v))
            + max(0.0, (t + v) - hi)
            + max(0.0, lo - (t + v))
            + max(0.0, (s - v) - hi)
        )
        change += LIMITS_WEIGHT * (after - before) / sc
    return change


def improve(
    labels_arr: np.ndarray,
    weights: np.ndarray,
    neighbours: list[list[int]],
    p: int,
    *,
    original: np.ndarray,
    stab: np.ndarray,
    tolerance: float,
    stability: float,
    compactness: float,
    max_seconds: float,
    seed: int,
    progress: Progress = no_progress,
    limits: Limits | None = None,
    edge_lengths: list[list[float]] | None = None,
) -> Plan:
    """Local search from ``labels_arr``: single boundary atoms move while the objective drops.

    Out of the tolerance band, balance comes first and shape and stability only break ties;
    once every region is in the band, a polish phase keeps them there (a hard bound) and
    trades only shape against moves. Each pass visits the atoms in a random order seeded by
    ``seed + pass``; the search ends when a pass moves nothing or after ``MAX_PASSES``
    passes, so the result depends only on the input and the seed. ``max_seconds`` is a
    safety cap that ends it earlier (the Plan then says ``stopped_by_time``).

    Parameters
    ----------
    labels_arr : numpy.ndarray of int, shape (n,)
        The start, contiguous regions 0..p-1.
    weights : numpy.ndarray, shape (n,)
        Workload of each atom.
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches.
    p : int
        Number of regions.
    original : numpy.ndarray of int, shape (n,)
        Today's region of each atom (-1: none), which the stability term stays close to.
    stab : numpy.ndarray, shape (n,)
        What moving each atom away from its original region costs.
    tolerance : float
        Width of the balance band, as a share of the mean.
    stability, compactness : float
        Weights of the moved-workload and cut-edge terms (0..100).
    max_seconds : float
        Wall-clock safety cap (seconds).
    seed : int
        Seed of the visiting order.
    progress : callable, optional
        ``progress(fraction, message)`` after each pass.
    limits : Limits, optional
        Bounds on every region's households, area...: a move that takes a region below its
        low bound or above its high bound is refused, and moves that bring regions back
        within them count before balance.
    edge_lengths : list of list of float, optional
        The length of the border each atom shares with each of its ``neighbours`` (metres):
        the shape term then counts the length of the borders drawn (the grids' perimeters,
        as Polsby-Popper measures them) instead of the number of cut edges.

    Returns
    -------
    Plan
        The improved labels, with the passes and moves it took (``floor`` left at 1).

    Examples
    --------
    >>> import numpy as np
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]  # six atoms in a row
    >>> plan = improve(np.array([0, 0, 0, 0, 0, 1]), np.ones(6), path, 2,
    ...                original=np.full(6, -1), stab=np.ones(6), tolerance=0.05,
    ...                stability=1.0, compactness=1.0, max_seconds=5.0, seed=0)
    >>> plan.labels.tolist(), plan.moves
    ([0, 0, 0, 1, 1, 1], 2)
    """
    t0 = time.perf_counter()
    n = len(weights)
    progress(0.1, "initial plan")
    labels = labels_arr.tolist()
    w = weights.tolist()
    orig = original.tolist()
    stab_l = stab.tolist()
    load = np.bincount(labels_arr, weights=weights, minlength=p).tolist()
    size = np.bincount(labels_arr, minlength=p).tolist()
    mean = sum(w) / p or 1.0
    degree = max(1.0, sum(len(x) for x in neighbours) / max(n, 1))
    # the shape term in edges: each shared border counts its length over the mean edge's
    if edge_lengths is not None:
        mean_edge = max(sum(map(sum, edge_lengths)) / max(sum(map(len, edge_lengths)), 1), 1e-9)
        edge = [[x / mean_edge for x in row] for row in edge_lengths]
    else:
        edge = [[1.0] * len(row) for row in neighbours]
    if limits is not None:
        held = limits.values.tolist()
        lim_lo, lim_hi = limits.low.tolist(), limits.high.tolist()
        tot = np.zeros((p, limits.values.shape[1]))
        np.add.at(tot, labels_arr, limits.values)
        totals = tot.tolist()
        lim_scale = [max(x, 1e-9) for x in tot.mean(axis=0).tolist()]
    # The terms in one unit: squared deviation from the mean, relative to mean^2.
    lam_cut = 0.002 * compactness / degree
    lam_stab = 0.02 * stability / mean
    high, low = mean * (1 + tolerance / 2), mean * (1 - tolerance / 2)
    # Once every region is inside the band, the polish phase keeps them there (a hard bound)
    # and trades only shape against moves: fewer cut edges, i.e. rounder grids.
    band_hi, band_lo = mean * (1 + 0.8 * tolerance), mean * (1 - 0.8 * tolerance)
    polish = False
    passes = moves = 0
    capped = False
    while passes < MAX_PASSES:
        if time.perf_counter() - t0 >= max_seconds:
            capped = True
            break
        passes += 1
        moved = 0
        order = np.random.default_rng(seed + passes).permutation(n)
        cut_weight = lam_cut * (10.0 if polish else 1.0)
        for a in order.tolist():
            ra = labels[a]
            if size[ra] <= 1:
                continue
            wa = w[a]
            best, best_score = -1, -1e-12
            counts: dict[int, float] = {}
            for j, length in zip(neighbours[a], edge[a], strict=True):
                counts[labels[j]] = counts.get(labels[j], 0.0) + length
            if len(counts) == 1 and ra in counts:
                continue  # an interior atom
            na = counts.get(ra, 0)
            la = load[ra]
            if polish and la - wa < band_lo:
                continue
            # Out of tolerance, balance comes first: stability and shape only break ties.
            urgent = la > high
            for rb, nb in counts.items():
                if rb == ra:
                    continue
                lb = load[rb]
                if polish and lb + wa > band_hi:
                    continue
                bal = (
                    (la - wa - mean) ** 2
                    + (lb + wa - mean) ** 2
                    - (la - mean) ** 2
                    - (lb - mean) ** 2
                ) / (mean * mean)
                soft = 0.05 if not polish and (urgent or lb < low) else 1.0
                cut = soft * cut_weight * (na - nb)
                st = soft * lam_stab * stab_l[a] * ((orig[a] == ra) - (orig[a] == rb))
                score = bal + cut + st
                if limits is not None:
                    fix = _limits_change(held[a], totals[ra], totals[rb], lim_lo, lim_hi, lim_scale)
                    if fix is None:
                        continue
                    score += fix
                if score < best_score:
                    best, best_score = rb, score
            if best >= 0 and stays_connected(a, ra, labels, neighbours):
                labels[a] = best
                load[ra] -= wa
                load[best] += wa
                if limits is not None:
                    for k, v in enumerate(held[a]):
                        totals[ra][k] -= v
                        totals[best][k] += v
                size[ra] -= 1
                size[best] += 1
                moved += 1
        moves += moved
        spread = max(load) / mean
        progress(
            min(0.95, 0.1 + 0.85 * (time.perf_counter() - t0) / max_seconds),
            f"pass {passes}: max/mean {spread:.3f}" + (" (shaping)" if polish else ""),
        )
        balanced = spread <= 1 + tolerance / 2 and min(load) / mean >= 1 - tolerance / 2
        if moved == 0:
            if polish or not balanced:
                break
        if balanced and not polish and passes > 3:
            polish = True
    return Plan(np.array(labels), passes, moves, time.perf_counter() - t0, stopped_by_time=capped)
