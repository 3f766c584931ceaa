"""Repair for what single-atom moves cannot fix (a heavy atom, a corridor): recombination of
two neighbouring regions along a random spanning tree (ReCom: DeFord, Duchin & Solomon 2021,
"Recombination: a family of Markov chains for redistricting", Harvard Data Science Review
3(1)), and a merge-split that moves a region to where the work is.

By hand: GerryChain has ReCom for districting, but on networkx graphs and for Markov chains,
not for repairing one plan in milliseconds.
"""

from __future__ import annotations

import time

import numpy as np

ROUNDS_PER_REGION = 2  # recombination rounds per region before a repair gives up


def tree_split(
    atoms: np.ndarray,
    weights: np.ndarray,
    neighbours: list[list[int]],
    target: float,
    rng: np.random.Generator,
    trees: int,
) -> tuple[float, np.ndarray] | None:
    """Split the connected set ``atoms`` in two along one edge of a random spanning tree.

    The side under the edge weighs as near ``target`` as the best of ``trees`` trees allows;
    both sides are connected by construction.

    Parameters
    ----------
    atoms : numpy.ndarray of int, shape (m,)
        Positions of the atoms to split (a connected set).
    weights : numpy.ndarray, shape (n,)
        Workload of every atom of the map.
    neighbours : list of list of int
        For each atom of the map, the positions of the atoms it touches.
    target : float
        Wanted workload of the split-off side.
    rng : numpy.random.Generator
        Source of the random edge weights.
    trees : int
        Spanning trees tried.

    Returns
    -------
    tuple of (float, numpy.ndarray of bool, shape (m,)) or None
        ``|side - target|`` and the mask of the side over ``atoms``; None when ``atoms`` is
        not in one piece.

    Examples
    --------
    >>> import numpy as np
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]  # six atoms in a row
    >>> gap, side = tree_split(np.arange(6), np.ones(6), path, 2.0, np.random.default_rng(0), 4)
    >>> gap, side.tolist()
    (0.0, [False, False, False, False, True, True])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    index = {int(a): i for i, a in enumerate(atoms)}
    rows, cols = [], []
    for i, a in enumerate(atoms.tolist()):
        for j in neighbours[a]:
            k = index.get(j)
            if k is not None and k > i:
                rows.append(i)
                cols.append(k)
    w = weights[atoms]
    best: tuple[float, np.ndarray] | None = None
    for _ in range(trees):
        # a minimum spanning tree under random edge weights: a random spanning tree
        graph = coo_matrix((rng.random(len(rows)) + 1.0, (rows, cols)), shape=(len(atoms),) * 2)
        order, parent = breadth_first_order(minimum_spanning_tree(graph.tocsr()), 0, directed=False)
        if len(order) < len(atoms):
            return None  # not one piece
        below = w.copy()  # the weight under each node of the tree
        for v in order[:0:-1].tolist():
            below[parent[v]] += below[v]
        below[0] = np.inf  # the root has no edge above it
        v = int(np.argmin(np.abs(below - target)))
        gap = float(abs(below[v] - target))
        if best is None or gap < best[0]:
            side = np.zeros(len(atoms), dtype=bool)
            side[v] = True
            for u in order.tolist():  # breadth-first: parents come before children
                if u != v and parent[u] >= 0 and side[parent[u]]:
                    side[u] = True
            best = (gap, side)
    return best


def touching_regions(r: int, labels: np.ndarray, neighbours: list[list[int]]) -> set[int]:
    """The regions that touch region ``r``.

    Parameters
    ----------
    r : int
        A region.
    labels : numpy.ndarray of int, shape (n,)
        Region of each atom.
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches.

    Returns
    -------
    set of int

    Examples
    --------
    >>> import numpy as np
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]  # six atoms in a row
    >>> touching_regions(1, np.array([0, 0, 1, 1, 2, 2]), path)
    {0, 2}
    """
    return {int(labels[j]) for a in np.flatnonzero(labels == r) for j in neighbours[a]} - {r}


def recombine(
    labels_arr: np.ndarray,
    weights: np.ndarray,
    neighbours: list[list[int]],
    p: int,
    tolerance: float,
    max_seconds: float,
    rng: np.random.Generator,
    trees: int = 24,
    max_rounds: int | None = None,
) -> np.ndarray:
    """ReCom-style repair of a plan whose worst region single-atom moves cannot bring in.

    Merge the worst region with a neighbour (a heavy region gives to its lightest neighbour,
    a light one takes from the heaviest) and split the pair again along an edge of a random
    spanning tree, the best of ``trees`` trees. A split is kept only when it lowers the
    pair's squared deviation from the mean, which lowers it for the whole plan, so the repair
    cannot cycle. Source: DeFord, Duchin & Solomon (2021), recombination.

    Parameters
    ----------
    labels_arr : numpy.ndarray of int, shape (n,)
        A contiguous plan, regions 0..p-1.
    weights : numpy.ndarray, shape (n,)
        Workload of each atom.
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches.
    p : int
        Number of regions.
    tolerance : float
        Width of the balance band, as a share of the mean.
    max_seconds : float
        Wall-clock safety cap (seconds); the round budget ends the repair in normal use.
    rng : numpy.random.Generator
        Source of the random spanning trees.
    trees : int, default 24
        Spanning trees tried per split.
    max_rounds : int, optional
        Pairs tried at most (default ``ROUNDS_PER_REGION x p``): with the seed, this decides
        the result, however fast the machine is.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        The repaired plan (still contiguous, still ``p`` regions).

    Examples
    --------
    >>> import numpy as np
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]  # six atoms in a row
    >>> recombine(np.array([0, 0, 0, 0, 0, 1]), np.ones(6), path, 2, 0.05, 1.0,
    ...           np.random.default_rng(0)).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    t0 = time.perf_counter()
    labels = labels_arr.copy()
    load = np.bincount(labels, weights=weights, minlength=p).astype(float)
    mean = load.sum() / p
    high, low = mean * (1 + tolerance / 2), mean * (1 - tolerance / 2)
    stuck: set[tuple[int, int]] = set()  # pairs with no better split since they last changed
    rounds = max_rounds if max_rounds is not None else ROUNDS_PER_REGION * p
    while rounds > 0 and time.perf_counter() - t0 < max_seconds:
        rounds -= 1
        pair = None
        for r in sorted(range(p), key=lambda r: -abs(load[r] - mean)):
            if low <= load[r] <= high:
                break  # every region from here on is inside the band
            # a heavy region gives to its lightest neighbour, a light one takes from the heaviest
            sign = 1 if load[r] > mean else -1
            ranked = sorted(touching_regions(r, labels, neighbours), key=lambda s: sign * load[s])
            pair = next(((r, s) for s in ranked if (min(r, s), max(r, s)) not in stuck), None)
            if pair:
                break
        if pair is None:
            break
        r, s = pair
        atoms = np.flatnonzero((labels == r) | (labels == s))
        total = load[r] + load[s]
        found = tree_split(atoms, weights, neighbours, total / 2, rng, trees)
        before = (load[r] - mean) ** 2 + (load[s] - mean) ** 2
        if found is None or 2 * found[0] ** 2 >= before - 1e-9 * mean * mean:
            stuck.add((min(r, s), max(r, s)))
            continue
        side = found[1]
        # the half holding more of r's atoms stays r (fewer moves)
        keep = (labels[atoms[side]] == r).sum() >= (labels[atoms[~side]] == r).sum()
        labels[atoms[side]] = r if keep else s
        labels[atoms[~side]] = s if keep else r
        load[r] = weights[labels == r].sum()
        load[s] = weights[labels == s].sum()
        stuck = {q for q in stuck if r not in q and s not in q}
    return labels


def merge_split(
    labels_arr: np.ndarray,
    weights: np.ndarray,
    neighbours: list[list[int]],
    p: int,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Move a region to where the work is: merge a light region into its lightest neighbour
    and split the heaviest other region in two.

    Pair recombination keeps the number of regions in each part of the map, and cannot fix a
    part that got one too many (a district whose airport hangs on a corridor); this can. The
    plan gets worse before recombination and local search make it better; the caller keeps
    it only if it does.

    Parameters
    ----------
    labels_arr : numpy.ndarray of int, shape (n,)
        A contiguous plan, regions 0..p-1.
    weights : numpy.ndarray, shape (n,)
        Workload of each atom.
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches.
    p : int
        Number of regions.
    rng : numpy.random.Generator
        Picks one of the three lightest regions, and the spanning trees.

    Returns
    -------
    numpy.ndarray of int, shape (n,) or None
        The new plan, still ``p`` regions (the freed number names the new half); None when
        the light region touches no other or the heavy one is not in one piece.

    Examples
    --------
    >>> import numpy as np
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]  # six atoms in a row
    >>> merge_split(np.array([0, 1, 2, 2, 2, 2]), np.ones(6), path, 3,
    ...             np.random.default_rng(1)).tolist()  # 1 joins 0; 2 splits, half renamed 1
    [0, 0, 2, 2, 1, 1]
    """
    labels = labels_arr.copy()
    load = np.bincount(labels, weights=weights, minlength=p)
    order = np.argsort(load)
    light = int(order[rng.integers(0, min(3, p))])  # one of the three lightest
    touching = touching_regions(light, labels, neighbours)
    if not touching:
        return None
    into = min(touching, key=lambda s: load[s])
    heavy = next(int(h) for h in order[::-1] if h not in (light, into))
    labels[labels == light] = into
    atoms = np.flatnonzero(labels == heavy)
    found = tree_split(atoms, weights, neighbours, load[heavy] / 2, rng, 8)
    if found is None:
        return None
    labels[atoms[found[1]]] = light  # the freed number names the new half
    return labels
