"""First plans: the map's separate parts, regions shared out among them, and balanced region
growing from workload-weighted k-means seeds (phase 1 of the two-phase territory design of
Kalcsics, Nickel & Schröder 2005); also the floor no contiguous plan can beat."""

from __future__ import annotations

import heapq

import numpy as np


def components(neighbours: list[list[int]]) -> np.ndarray:
    """Connected component of each atom on the adjacency list.

    Parameters
    ----------
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches (symmetric).

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        Component number of each atom, 0..k-1, numbered in order of first appearance.

    Examples
    --------
    >>> components([[1], [0], [], [4], [3], []]).tolist()
    [0, 0, 1, 2, 2, 3]
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(neighbours)
    rows = np.repeat(np.arange(n), [len(x) for x in neighbours])
    cols = np.fromiter((j for x in neighbours for j in x), dtype=np.int64, count=len(rows))
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def share_regions(loads: np.ndarray, p: int) -> np.ndarray:
    """Regions per component, so that the heaviest load per region is as small as it can be.

    One region each for the heaviest components (all of them, when there are enough), then
    each further region to the component with the most load per region.

    Parameters
    ----------
    loads : numpy.ndarray, shape (k,)
        Workload of each component.
    p : int
        Number of regions to share out.

    Returns
    -------
    numpy.ndarray of int, shape (k,)
        Regions given to each component; sums to ``p``.

    Examples
    --------
    >>> import numpy as np
    >>> share_regions(np.array([10.0, 1.0, 4.0]), 5).tolist()
    [3, 1, 1]
    >>> share_regions(np.array([10.0, 1.0, 4.0]), 2).tolist()
    [1, 0, 1]
    """
    shares = np.zeros(len(loads), dtype=np.int64)
    shares[np.argsort(-loads, kind="stable")[: min(p, len(loads))]] = 1
    for _ in range(p - int(shares.sum())):
        per_region = np.where(shares > 0, loads / np.maximum(shares, 1), -np.inf)
        shares[int(np.argmax(per_region))] += 1
    return shares


def weighted_kmeans(
    xy: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 20
) -> np.ndarray:
    """``k`` centres placed by workload, not by area.

    Lloyd's steps with weighted means, started from k-means++ on the positions. By hand
    because scipy's ``kmeans2`` takes no weights; a little of the mean weight is spread over
    every atom so empty land still pulls a little.

    Parameters
    ----------
    xy : numpy.ndarray, shape (n, 2)
        Atom positions in a metric CRS (metres).
    weights : numpy.ndarray, shape (n,)
        Workload of each atom.
    k : int
        Number of centres.
    rng : numpy.random.Generator
        Source of the k-means++ start (the result is deterministic for a seeded generator).
    iterations : int, default 20
        Weighted Lloyd steps after the start.

    Returns
    -------
    numpy.ndarray, shape (k, 2)
        The centres, in the units of ``xy``.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.column_stack([np.arange(6.0), np.zeros(6)])
    >>> weighted_kmeans(xy, np.ones(6), 2, np.random.default_rng(0)).tolist()
    [[4.0, 0.0], [1.0, 0.0]]
    """
    from scipy.cluster.vq import kmeans2  # scipy loads in ~0.2 s: only when proposing

    centres, _ = kmeans2(xy.astype(float), k, minit="++", seed=rng, iter=5)
    pull = weights + 0.05 * weights.mean()
    for _ in range(iterations):
        nearest = np.argmin(((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
        mass = np.bincount(nearest, weights=pull, minlength=k)
        for d in range(2):
            moved = np.bincount(nearest, weights=pull * xy[:, d], minlength=k)
            centres[:, d] = np.where(mass > 0, moved / np.maximum(mass, 1e-12), centres[:, d])
    return centres


def grow_regions(
    weights: np.ndarray,
    neighbours: list[list[int]],
    xy: np.ndarray,
    p: int,
    seed: int,
    component: np.ndarray,
) -> np.ndarray:
    """Balanced region growing from k-means seeds, contiguous within each ``component``.

    The lightest region takes its nearest free neighbour next; atoms no seed reaches (islands)
    join the nearest region.

    Parameters
    ----------
    weights : numpy.ndarray, shape (n,)
        Workload of each atom.
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches.
    xy : numpy.ndarray, shape (n, 2)
        Atom positions in a metric CRS (metres).
    p : int
        Number of regions, 1..n.
    seed : int
        Seed of the k-means starts.
    component : numpy.ndarray of int, shape (n,)
        Connected component of each atom (``components``).

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        Region of each atom, 0..p-1.

    Examples
    --------
    >>> import numpy as np
    >>> path = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]  # six atoms in a row
    >>> xy = np.column_stack([np.arange(6.0), np.zeros(6)])
    >>> grow_regions(np.ones(6), path, xy, 2, 0, np.zeros(6, dtype=int)).tolist()
    [1, 1, 1, 0, 0, 0]
    """
    n = len(weights)
    rng = np.random.default_rng(seed)
    # Regions never cross between pieces that do not touch (a district in several parts), so
    # how many regions each piece gets is decided here, once: share them out so that the
    # heaviest load per region is as small as it can be, then seed each piece on its own.
    shares = share_regions(np.bincount(component, weights=weights), p)
    seeds: list[int] = []
    taken: set[int] = set()
    for c in np.flatnonzero(shares):
        members = np.flatnonzero(component == c)
        k = int(shares[c])
        if k >= len(members):
            centres = xy[members]
        else:
            centres = weighted_kmeans(xy[members], weights[members], k, rng)
        for centre in centres:
            order = members[np.argsort(((xy[members] - centre) ** 2).sum(axis=1))]
            seeds.append(next(int(i) for i in order if int(i) not in taken))
            taken.add(seeds[-1])
    lab = [-1] * n
    load = [0.0] * p
    w = np.asarray(weights, float).tolist()
    xs, ys = xy[:, 0].tolist(), xy[:, 1].tolist()
    # Each region's frontier is a heap of (squared distance to its seed, atom): the nearest
    # free atom comes first, ties to the lower atom number (deterministic).
    frontier: list[list[tuple[float, int]]] = [[] for _ in range(p)]

    def push(r: int, atom: int) -> None:
        sx, sy = xs[seeds[r]], ys[seeds[r]]
        for j in neighbours[atom]:
            if lab[j] < 0:
                heapq.heappush(frontier[r], ((xs[j] - sx) ** 2 + (ys[j] - sy) ** 2, j))

    for r, s in enumerate(seeds):
        lab[s] = r
        load[r] += w[s]
    for r, s in enumerate(seeds):
        push(r, s)
    free = n - p
    active = set(range(p))
    while free and active:
        r = min(active, key=lambda k: (load[k], k))
        heap = frontier[r]
        while heap and lab[heap[0][1]] >= 0:
            heapq.heappop(heap)
        if not heap:
            active.discard(r)
            continue
        j = heapq.heappop(heap)[1]
        lab[j] = r
        load[r] += w[j]
        free -= 1
        push(r, j)
    labels = np.array(lab, dtype=np.int64)
    if free:  # pieces no seed reaches (islands): join the nearest region
        done = np.flatnonzero(labels >= 0)
        for a in np.flatnonzero(labels < 0):
            nearest = done[np.argmin(((xy[done] - xy[a]) ** 2).sum(axis=1))]
            labels[a] = labels[nearest]
    return labels


def lowest_max_over_mean(
    weights: np.ndarray,
    neighbours: list[list[int]],
    p: int,
    component: np.ndarray | None = None,
) -> float:
    """A floor under max/mean for any contiguous plan.

    Regions cannot cross between parts of the map that do not touch, so the part with the
    most work per region sets it (with the regions shared out as well as they can be): 1.5
    for a district of three separate pieces holding three grids of unequal work, where no
    plan is within 5%.

    Parameters
    ----------
    weights : numpy.ndarray, shape (n,)
        Workload of each atom.
    neighbours : list of list of int
        For each atom, the positions of the atoms it touches.
    p : int
        Number of regions.
    component : numpy.ndarray of int, shape (n,), optional
        Connected component of each atom, when already known (``components``).

    Returns
    -------
    float
        The floor (1.0 for a map in one piece); ``inf`` when some part gets no region, so
        that no plan can give every part a region of its own.

    Examples
    --------
    >>> import numpy as np
    >>> two_pairs = [[1], [0], [3], [2]]  # two parts that do not touch
    >>> lowest_max_over_mean(np.array([1.0, 1.0, 2.0, 2.0]), two_pairs, 2)
    1.3333333333333333
    >>> lowest_max_over_mean(np.ones(4), two_pairs, 1)
    inf
    """
    if component is None:
        component = components(neighbours)
    loads = np.bincount(component, weights=weights)
    shares = share_regions(loads, p)
    used = shares > 0
    if not used.all():  # some parts get no region: they cannot be anyone's grid alone
        return float("inf")
    return float((loads / shares).max() / (loads.sum() / p))
