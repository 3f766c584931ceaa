"""Getis-Ord Gi* hot spot statistics on counts, with FDR correction and ArcGIS's classes.

The analytic statistic is the one esda's ``G_Local(star=True, transform="B")`` computes, written
with sparse algebra so 50,000 cells take milliseconds. The permutation test is esda's
conditional randomisation (hold the cell, shuffle the rest): it draws one set of random
neighbour positions and reuses it for every cell, as esda's ``crand`` does, but evaluates all
cells as numpy array operations in chunks instead of a per-cell loop. That is the reason for a
hand-written module: esda without numba loops in Python per cell, and with numba it still
dispatches per cell.

p-values are two-sided (ArcGIS's convention): for the analytic test ``2 * sf(|z|)``; for the
permutation test twice esda's folded pseudo p-value, capped at 1.

References: Getis, A. and Ord, J. K. (1992), "The Analysis of Spatial Association by Use of
Distance Statistics", Geographical Analysis 24(3); Ord, J. K. and Getis, A. (1995), "Local
Spatial Autocorrelation Statistics: Distributional Issues and an Application", Geographical
Analysis 27(4); ArcGIS Pro, "How Hot Spot Analysis (Getis-Ord Gi*) works"; Benjamini, Y. and
Hochberg, Y. (1995), "Controlling the False Discovery Rate", JRSS B 57(1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse, stats

CLASSES = (
    "Hot Spot - 99% Confidence",
    "Hot Spot - 95% Confidence",
    "Hot Spot - 90% Confidence",
    "Not Significant",
    "Cold Spot - 90% Confidence",
    "Cold Spot - 95% Confidence",
    "Cold Spot - 99% Confidence",
)
PERMUTATION_CHUNK_CELLS = 256


@dataclass
class GiStar:
    """Per-cell Gi* results (``gi_star``), arrays of one length, in the order of the counts.

    Attributes
    ----------
    z : numpy.ndarray of float, shape (n,)
        Gi* z-scores (positive: clustering of high counts).
    p : numpy.ndarray of float, shape (n,)
        Two-sided p-values.
    p_fdr : numpy.ndarray of float, shape (n,)
        Benjamini-Hochberg adjusted ``p``.
    classes : numpy.ndarray of str, shape (n,)
        One of ``CLASSES`` (ArcGIS's Gi_Bin labels).
    """

    z: NDArray[np.float64]
    p: NDArray[np.float64]
    p_fdr: NDArray[np.float64]
    classes: NDArray[np.object_]


def binary_star_weights(neighbours: sparse.spmatrix) -> sparse.csr_matrix:
    """Binary weights with every cell its own neighbour (the diagonal Gi* needs).

    Parameters
    ----------
    neighbours : scipy.sparse matrix, shape (n, n)
        Any nonzero marks a neighbour (contiguity, k-ring, distance band...).

    Returns
    -------
    scipy.sparse.csr_matrix of float, shape (n, n)
        1.0 at every neighbour and on the diagonal (esda's ``transform="B"`` with
        ``star=True``; ArcGIS's "Gi*" with its self-inclusion).

    Examples
    --------
    >>> chain = sparse.diags([1, 1], [-1, 1], shape=(3, 3), dtype=float)
    >>> binary_star_weights(chain).toarray().astype(int).tolist()
    [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    """
    w = sparse.csr_matrix(neighbours, dtype=np.float64, copy=True)
    w.data[:] = 1.0
    w = w.tolil()
    w.setdiag(1.0)
    return w.tocsr()


def gi_star_z(
    counts: ArrayLike,
    weights: sparse.csr_matrix,
    *,
    moments: tuple[int, float, float] | None = None,
) -> NDArray[np.float64]:
    """Analytic Gi* z-scores for binary weights that include the cell itself.

    With ``moments`` (n, sum, sum of squares of the whole study area) the weights may cover
    only part of it: rows are the cells to score, columns the cells of ``counts`` (those
    cells and their neighbours). That is how a partition with a halo gets exact scores.

    The statistic is Getis & Ord (1992) / Ord & Getis (1995) Gi* with binary weights, as
    esda's ``G_Local(star=True, transform="B")`` and ArcGIS's Hot Spot Analysis compute it:
    ``(sum_j w_ij x_j / sum x - k_i / n)`` over its standard deviation under randomisation.

    Parameters
    ----------
    counts : array_like of float, shape (m,)
        The values (e.g. incident counts) of the cells the columns of ``weights`` refer to.
    weights : scipy.sparse.csr_matrix, shape (r, m)
        Binary weights, self included (``binary_star_weights``, ``h3_ring_weights``).
    moments : tuple of (int, float, float), optional
        ``(n, sum, sum of squares)`` of the whole study area; by default those of ``counts``.

    Returns
    -------
    numpy.ndarray of float, shape (r,)
        z-scores; all 0 when the area has fewer than 3 cells or no counts, 0 where the
        variance is 0.

    Examples
    --------
    >>> w = binary_star_weights(sparse.diags([1, 1], [-1, 1], shape=(5, 5), dtype=float))
    >>> gi_star_z([0, 1, 9, 9, 1], w).round(3).tolist()
    [-1.394, -0.398, 1.394, 1.394, 0.398]
    >>> gi_star_z([0, 1, 9], w[:2, :3], moments=(5, 20.0, 164.0)).round(3).tolist()
    [-1.394, -0.398]
    """
    y = np.asarray(counts, dtype=np.float64)
    if moments is None:
        n, total, sum_sq = len(y), float(y.sum()), float((y * y).sum())
    else:
        n, total, sum_sq = moments
    rows = weights.shape[0]
    if n < 3 or total == 0:
        return np.zeros(rows)
    statistic = (weights @ y) / total
    mean = total / n
    variance = sum_sq / n - mean * mean
    cardinality = np.asarray(weights.sum(axis=1)).ravel()
    expected = cardinality / n
    expected_variance = cardinality * (n - cardinality) / (n - 1) / n**2 * variance / mean**2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (statistic - expected) / np.sqrt(expected_variance)
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


def gi_star_permutation_p(
    counts: ArrayLike, weights: sparse.csr_matrix, *, permutations: int = 999, seed: int | None = 0
) -> NDArray[np.float64]:
    """esda's folded pseudo p-values of Gi* under conditional randomisation.

    For each cell the other ``k - 1`` neighbours are replaced by values drawn without
    replacement from all other cells, ``permutations`` times; p = (m + 1) / (permutations + 1)
    where m counts draws at least as extreme on the observed side.

    Parameters
    ----------
    counts : array_like of float, shape (n,)
        The values of every cell of the study area.
    weights : scipy.sparse.csr_matrix, shape (n, n)
        Binary weights, self included.
    permutations : int, default 999
        Random draws per cell (the p-value's resolution is ``1 / (permutations + 1)``).
    seed : int or None, default 0
        Seed of numpy's default generator; the same seed gives the same p-values.

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        One-sided folded pseudo p-values in ``[1 / (permutations + 1), 0.5]`` (esda's
        ``p_sim``); ``gi_star`` doubles them for its two-sided test.

    Examples
    --------
    >>> w = binary_star_weights(sparse.diags([1, 1], [-1, 1], shape=(5, 5), dtype=float))
    >>> gi_star_permutation_p([0, 1, 9, 9, 1], w, permutations=99).tolist()
    [0.01, 0.21, 0.33, 0.33, 0.49]
    """
    y = np.asarray(counts, dtype=np.float64)
    n = len(y)
    rng = np.random.default_rng(seed)
    cardinality = np.diff(weights.indptr)  # binary: neighbours incl. self
    others = int(cardinality.max()) - 1
    # One block of draws from range(n - 1), shared by every cell (as esda's crand does):
    # each row is a draw without replacement of up to `others` positions.
    draws = (
        np.argsort(rng.random((permutations, n - 1)), axis=1)[:, :others]
        if n - 1 <= 4096
        else _draws_without_replacement(rng, permutations, n - 1, others)
    )
    observed = weights @ y
    keys, inverse = np.unique(
        np.stack([cardinality.astype(np.float64), y]), axis=1, return_inverse=True
    )
    inverse = inverse.ravel()
    if keys.shape[1] <= max(64, n // 8):
        larger = _larger_by_group(y, observed, draws, keys, inverse, permutations)
    else:
        larger = _larger_per_cell(y, observed, cardinality, draws, others)
    low = (permutations - larger) < larger
    larger[low] = permutations - larger[low]
    return ((larger + 1.0) / (permutations + 1.0)).astype(np.float64)


def _larger_by_group(
    y: NDArray[np.float64],
    observed: NDArray[np.float64],
    draws: NDArray[np.int64],
    keys: NDArray[np.float64],
    inverse: NDArray[np.int64],
    permutations: int,
) -> NDArray[np.int64]:
    """Count, per cell, random sums at least as large as the observed one.

    A cell's null distribution depends only on its neighbour count and on its own value (the
    pool is "all values but one occurrence of it"), so cells sharing both share one set of
    random sums; each cell's count is then a binary search in its group's sorted sums.
    """
    larger = np.empty(len(y), dtype=np.int64)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(keys.shape[1] + 1))
    first_with_value = {v: int(np.flatnonzero(y == v)[0]) for v in np.unique(y)}
    for g in range(keys.shape[1]):
        card, value = int(keys[0, g]), keys[1, g]
        members = order[bounds[g] : bounds[g + 1]]
        removed = first_with_value[value]  # any cell with this value leaves the same pool
        idx = draws[:, : card - 1]
        idx = idx + (idx >= removed)
        sums = np.sort(y[idx].sum(axis=1) + value)
        larger[members] = permutations - np.searchsorted(sums, observed[members], side="left")
    return larger


def _larger_per_cell(
    y: NDArray[np.float64],
    observed: NDArray[np.float64],
    cardinality: NDArray[np.int64],
    draws: NDArray[np.int64],
    others: int,
) -> NDArray[np.int64]:
    """The same count cell by cell (in array chunks), for values that are mostly distinct."""
    n = len(y)
    larger = np.empty(n, dtype=np.int64)
    for start in range(0, n, PERMUTATION_CHUNK_CELLS):
        cells = np.arange(start, min(start + PERMUTATION_CHUNK_CELLS, n))
        k = cardinality[cells] - 1
        # Position m among "all cells but i" is cell m for m < i and m + 1 otherwise.
        idx = draws[None, :, :] + (draws[None, :, :] >= cells[:, None, None])
        values = y[idx]  # (cells, permutations, others)
        mask = np.arange(others)[None, None, :] < k[:, None, None]
        random_sums = (values * mask).sum(axis=2) + y[cells][:, None]
        larger[cells] = (random_sums >= observed[cells][:, None]).sum(axis=1)
    return larger


def _draws_without_replacement(
    rng: np.random.Generator, rows: int, population: int, size: int
) -> NDArray[np.int64]:
    """``rows`` independent draws of ``size`` distinct values from range(population)."""
    out = rng.integers(0, population, (rows, size))
    # Redraw the rare collisions until every row is distinct (size << population here).
    while True:
        ordered = np.sort(out, axis=1)
        clash = (np.diff(ordered, axis=1) == 0).any(axis=1)
        if not clash.any():
            return out
        out[clash] = rng.integers(0, population, (int(clash.sum()), size))


def fdr_bh(p: ArrayLike) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values.

    Parameters
    ----------
    p : array_like of float, shape (n,)
        p-values, each in [0, 1].

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        Adjusted p-values (Benjamini & Hochberg 1995, scipy's ``false_discovery_control``),
        in the order given; an empty array for none.

    Examples
    --------
    >>> fdr_bh([0.01, 0.02, 0.03, 0.5]).round(4).tolist()
    [0.04, 0.04, 0.04, 0.5]
    """
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return p
    return stats.false_discovery_control(p, method="bh")


def classify(z: ArrayLike, p: ArrayLike) -> NDArray[np.object_]:
    """ArcGIS's hot/cold spot classes from z-scores and (possibly adjusted) p-values.

    The sign of z says hot or cold; p below 0.01, 0.05 or 0.10 gives 99%, 95% or 90%
    confidence (ArcGIS Pro's Gi_Bin field, "How Hot Spot Analysis works").

    Parameters
    ----------
    z : array_like of float, shape (n,)
        z-scores.
    p : array_like of float, shape (n,)
        Their p-values (two-sided, raw or FDR-adjusted).

    Returns
    -------
    numpy.ndarray of str, shape (n,)
        One of ``CLASSES`` per cell.

    Examples
    --------
    >>> classify([3.0, 2.0, -1.8, 0.5], [0.001, 0.04, 0.08, 0.5]).tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    ['Hot Spot - 99% Confidence', 'Hot Spot - 95% Confidence',
     'Cold Spot - 90% Confidence', 'Not Significant']
    """
    z = np.asarray(z, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    level = np.select([p < 0.01, p < 0.05, p < 0.10], [0, 1, 2], default=3)
    out = np.full(len(z), CLASSES[3], dtype=object)
    hot = (z > 0) & (level < 3)
    cold = (z < 0) & (level < 3)
    out[hot] = np.array(CLASSES)[level[hot]]
    out[cold] = np.array(CLASSES)[6 - level[cold]]
    return out


def gi_star(
    counts: ArrayLike,
    weights: sparse.csr_matrix,
    *,
    method: str = "analytic",
    permutations: int = 999,
    fdr: bool = True,
    seed: int | None = 0,
) -> GiStar:
    """Gi* z, two-sided p, BH-adjusted p and ArcGIS class for every cell.

    The public entry point of hot spot analysis: ArcGIS's Hot Spot Analysis (Getis-Ord Gi*)
    on counts with binary weights, the FDR correction on by default as ArcGIS offers it.

    Parameters
    ----------
    counts : array_like of float, shape (n,)
        One value per cell of the study area (zeros included: the area is the cells given).
    weights : scipy.sparse.csr_matrix, shape (n, n)
        Binary weights, self included (``binary_star_weights``, ``h3_ring_weights``).
    method : {"analytic", "permutation"}, default "analytic"
        p from the normal approximation (``2 * sf(|z|)``), or from conditional randomisation.
    permutations : int, default 999
        Draws for the permutation test.
    fdr : bool, default True
        Classify by the BH-adjusted p-values (else by the raw ones).
    seed : int or None, default 0
        Seed of the permutation test.

    Returns
    -------
    GiStar
        z, p, p_fdr and class per cell, in the order of ``counts``.

    Raises
    ------
    ValueError
        If ``method`` is neither "analytic" nor "permutation".

    Examples
    --------
    >>> w = binary_star_weights(sparse.diags([1, 1], [-1, 1], shape=(6, 6), dtype=float))
    >>> result = gi_star([0, 0, 1, 30, 32, 1], w)
    >>> result.z.round(2).tolist()
    [-1.17, -1.61, -0.05, 1.61, 1.61, 0.64]
    >>> result.classes.tolist()[3]  # six cells are too few for 90% confidence
    'Not Significant'
    >>> gi_star([0, 0, 1, 30, 32, 1], w, method="bootstrap")
    Traceback (most recent call last):
    ...
    ValueError: method must be analytic or permutation
    """
    z = gi_star_z(counts, weights)
    if method == "analytic":
        p = 2.0 * stats.norm.sf(np.abs(z))
    elif method == "permutation":
        p = np.minimum(
            1.0, 2.0 * gi_star_permutation_p(counts, weights, permutations=permutations, seed=seed)
        )
    else:
        raise ValueError("method must be analytic or permutation")
    p_fdr = fdr_bh(p)
    return GiStar(z, p, p_fdr, classify(z, p_fdr if fdr else p))


def h3_ring_weights(
    cells: ArrayLike, k: int = 1, columns: ArrayLike | None = None
) -> sparse.csr_matrix:
    """Binary k-ring weights (self included) among a set of H3 cells (ints).

    Neighbours outside the set are ignored: the study area is the set. With ``columns`` the
    matrix is rectangular: rows are ``cells``, columns the cells of ``columns`` (a block of the
    study area and its halo), which is how ``analytics.partitioned`` scores one block.

    Parameters
    ----------
    cells : array_like of int64, shape (n,)
        H3 cells of one resolution (the rows).
    k : int, default 1
        Rings of neighbours (``h3.grid_disk(cell, k)``): 7 cells at k=1, 19 at k=2.
    columns : array_like of int64, shape (m,), optional
        The cells the columns refer to; by default ``cells`` (a square matrix).

    Returns
    -------
    scipy.sparse.csr_matrix of float, shape (n, m)
        1.0 where the column's cell is within ``k`` rings of the row's cell (itself included).

    Examples
    --------
    >>> import h3.api.basic_int as h3i
    >>> centre = h3i.latlng_to_cell(30.59, 114.30, 8)
    >>> cells = np.array(sorted(h3i.grid_disk(centre, 1)), dtype=np.int64)
    >>> w = h3_ring_weights(cells)
    >>> w.shape, int(w[cells.tolist().index(centre)].sum())  # the centre sees all seven
    ((7, 7), 7)
    >>> h3_ring_weights(cells[:2], columns=cells).shape
    (2, 7)
    """
    import h3.api.basic_int as h3i

    cell_arr = np.asarray(cells, dtype=np.int64)
    col_arr = cell_arr if columns is None else np.asarray(columns, dtype=np.int64)
    order = np.argsort(col_arr)
    sorted_cols = col_arr[order]
    rows, cols = [], []
    for i, cell in enumerate(cell_arr.tolist()):
        ring = np.fromiter(h3i.grid_disk(cell, k), dtype=np.int64)
        pos = np.searchsorted(sorted_cols, ring)
        pos = np.minimum(pos, len(sorted_cols) - 1)
        hit = sorted_cols[pos] == ring
        rows.append(np.full(int(hit.sum()), i))
        cols.append(order[pos[hit]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(cell_arr), len(col_arr)))
