"""Emerging hot spot analysis: space-time Gi* per bin, a Mann-Kendall trend per location, and
ArcGIS's pattern categories (new, consecutive, intensifying, persistent, diminishing, sporadic,
oscillating, historical; the cold counterparts; no pattern).

The space-time neighbourhood of (cell i, bin t) is the spatial neighbourhood of i (itself
included) in bins t - time_step .. t, as ArcGIS builds it; Gi* uses the whole cube's mean and
variance. Written here because no Python library implements the ArcGIS categories; the Gi* part
is the same statistic as ``analytics.hotspots`` (equal to esda's).

References: ArcGIS Pro, "How Emerging Hot Spot Analysis works" (the neighbourhood, the
categories and their rules); Mann, H. B. (1945), "Nonparametric Tests Against Trend",
Econometrica 13(3); Kendall, M. G. (1975), Rank Correlation Methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse, stats

from geo_service.analytics.hotspots import fdr_bh, gi_star_z

SIGNIFICANT = 0.10  # ArcGIS calls a bin a hot or cold spot at 90% confidence
TREND_SIGNIFICANT = 0.05
MOSTLY = 0.90  # "ninety percent of the time-step intervals"
NO_PATTERN = "No Pattern Detected"
PATTERNS = tuple(
    f"{kind} {side} Spot"
    for side in ("Hot", "Cold")
    for kind in (
        "New",
        "Consecutive",
        "Intensifying",
        "Persistent",
        "Diminishing",
        "Sporadic",
        "Oscillating",
        "Historical",
    )
) + (NO_PATTERN,)


@dataclass
class EmergingResult:
    """Per location: pattern, trend statistics, and the per-bin z-scores and significance.

    Attributes
    ----------
    patterns : numpy.ndarray of str, shape (n,)
        One of ``PATTERNS`` per location.
    trend_z, trend_p : numpy.ndarray of float, shape (n,)
        Mann-Kendall z and two-sided p of each location's z-scores over time.
    z : numpy.ndarray of float, shape (n, bins)
        Space-time Gi* z-score per location and bin.
    hot, cold : numpy.ndarray of bool, shape (n, bins)
        Where the bin is a hot (cold) spot at 90% confidence (after FDR when asked).
    """

    patterns: NDArray[np.object_]
    trend_z: NDArray[np.float64]
    trend_p: NDArray[np.float64]
    z: NDArray[np.float64]  # (locations, bins)
    hot: NDArray[np.bool_]
    cold: NDArray[np.bool_]


def space_time_weights(
    spatial: sparse.csr_matrix, bins: int, time_step: int = 1
) -> sparse.csr_matrix:
    """Weights over the flattened cube (bin-major): spatial neighbours in bins t-step..t.

    Parameters
    ----------
    spatial : scipy.sparse.csr_matrix, shape (n, n)
        Binary spatial weights, self included.
    bins : int
        Number of time bins.
    time_step : int, default 1
        How many earlier bins are in a bin's neighbourhood (ArcGIS's "Neighborhood Time
        Step"); the bin itself always is.

    Returns
    -------
    scipy.sparse.csr_matrix of float, shape (n * bins, n * bins)
        Row ``t * n + i`` marks cell i's spatial neighbours in bins ``t - time_step .. t``.

    Examples
    --------
    >>> pair = sparse.csr_matrix(np.ones((2, 2)))  # two cells, neighbours of each other
    >>> space_time_weights(pair, 3).toarray().astype(int).tolist()[2]  # cell 0 in bin 1
    [1, 1, 1, 1, 0, 0]
    """
    lags = sparse.csr_matrix(sum(sparse.eye(bins, k=-lag) for lag in range(time_step + 1)))
    return sparse.kron(lags, spatial, format="csr")


def mann_kendall(series: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mann-Kendall trend test on each row (z and two-sided p; variance without ties).

    S is the sum of signs over all pairs of bins; its variance ``t(t-1)(2t+5)/18`` is the
    no-ties one (z-scores rarely tie); z has the usual continuity correction (Mann 1945,
    Kendall 1975), as ArcGIS's Emerging Hot Spot Analysis uses it. Memory is O(n t): S is
    summed one lag at a time.

    Parameters
    ----------
    series : numpy.ndarray of float, shape (n, t)
        One series per row, in time order.

    Returns
    -------
    z : numpy.ndarray of float, shape (n,)
        Trend z-scores (positive: rising).
    p : numpy.ndarray of float, shape (n,)
        Two-sided p-values.

    Examples
    --------
    >>> z, p = mann_kendall(np.array([[1.0, 2, 3, 4, 5, 6, 7, 8], [8.0, 7, 6, 5, 4, 3, 2, 1]]))
    >>> (z > 0).tolist(), bool(p[0] < 0.01)
    ([True, False], True)
    """
    t = series.shape[1]
    # S summed lag by lag: memory n x t, not the n x t x t of all pairs at once (10 years of
    # weekly bins are 520 x 520 pairs per cell); t - 1 vectorised passes over the series.
    s = np.zeros(series.shape[0])
    for lag in range(1, t):
        s += np.sign(series[:, lag:] - series[:, :-lag]).sum(axis=1)
    variance = t * (t - 1) * (2 * t + 5) / 18.0
    z = np.where(
        s > 0, (s - 1) / np.sqrt(variance), np.where(s < 0, (s + 1) / np.sqrt(variance), 0.0)
    )
    return z, 2 * stats.norm.sf(np.abs(z))


def emerging_hotspots(
    counts: ArrayLike, spatial: sparse.csr_matrix, *, time_step: int = 1, fdr: bool = True
) -> EmergingResult:
    """Classify each location from its counts per bin (``counts`` is locations x bins).

    ``spatial`` is the binary spatial weight matrix with the diagonal set (as for Gi*).
    The public entry point: ArcGIS's Emerging Hot Spot Analysis on a space-time cube.

    Parameters
    ----------
    counts : array_like of float, shape (n, bins)
        Counts per location and time bin, oldest bin first (zeros included).
    spatial : scipy.sparse.csr_matrix, shape (n, n)
        Binary spatial weights, self included (``hotspots.h3_ring_weights``).
    time_step : int, default 1
        Earlier bins in a bin's neighbourhood.
    fdr : bool, default True
        Judge significance by BH-adjusted p-values over the whole cube.

    Returns
    -------
    EmergingResult
        Pattern, trend and per-bin significance per location, in the order of ``counts``.

    Examples
    --------
    >>> from geo_service.analytics.hotspots import binary_star_weights
    >>> counts = np.random.default_rng(0).poisson(2, (30, 12)).astype(float)
    >>> counts[:3, 6:] += 25  # cells 0-2 turn hot in the last six bins (their neighbour too)
    >>> chain = binary_star_weights(sparse.diags([1, 1], [-1, 1], shape=(30, 30), dtype=float))
    >>> emerging_hotspots(counts, chain).patterns[:5].tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['Consecutive Hot Spot', 'Consecutive Hot Spot', 'Consecutive Hot Spot',
     'Consecutive Hot Spot', 'No Pattern Detected']
    """
    return classify_emerging(space_time_z(counts, spatial, time_step=time_step), fdr=fdr)


def space_time_z(
    counts: ArrayLike, spatial: sparse.csr_matrix, *, time_step: int = 1
) -> NDArray[np.float64]:
    """Space-time Gi* z per location and bin, bin by bin: the scores of ``gi_star_z`` with
    ``space_time_weights`` without building that (n * bins)^2 matrix.

    Bin t's rows are the spatial weights repeated once per bin of its neighbourhood
    (``t - time_step .. t``) and scored with the whole cube's moments, so memory grows with
    the cube (n x bins), not with its neighbours: ten years of weeks fit where the whole
    space-time matrix would take gigabytes.

    Parameters
    ----------
    counts : array_like of float, shape (n, bins)
        Counts per location and bin, oldest bin first.
    spatial : scipy.sparse.csr_matrix, shape (n, n)
        Binary spatial weights, self included.
    time_step : int, default 1
        Earlier bins in a bin's neighbourhood.

    Returns
    -------
    numpy.ndarray of float, shape (n, bins)
        The z-scores ``gi_star_z(cube.T.ravel(), space_time_weights(spatial, bins))`` gives.

    Examples
    --------
    >>> from geo_service.analytics.hotspots import binary_star_weights
    >>> cube = np.random.default_rng(1).poisson(3, (20, 6)).astype(float)
    >>> chain = binary_star_weights(sparse.diags([1, 1], [-1, 1], shape=(20, 20), dtype=float))
    >>> whole = gi_star_z(cube.T.ravel(), space_time_weights(chain, 6)).reshape(6, 20).T
    >>> bool(np.allclose(space_time_z(cube, chain), whole))
    True
    """
    cube = np.asarray(counts, dtype=np.float64)
    n, bins = cube.shape
    moments = (cube.size, float(cube.sum()), float((cube * cube).sum()))
    # the spatial weights once per bin of a neighbourhood: columns run bin-major, oldest first
    stacked = [
        sparse.hstack([spatial] * (depth + 1), format="csr") for depth in range(time_step + 1)
    ]
    z = np.empty((n, bins))
    for t in range(bins):
        first = max(t - time_step, 0)
        window = cube[:, first : t + 1].T.ravel()  # bin-major, as the stacked columns
        z[:, t] = gi_star_z(window, stacked[t - first], moments=moments)
    return z


def classify_emerging(z: NDArray[np.float64], *, fdr: bool = True) -> EmergingResult:
    """Patterns from space-time Gi* z-scores (locations x bins): p-values, FDR over the whole
    cube, hot and cold bins, the Mann-Kendall trend and ArcGIS's rules.

    Parameters
    ----------
    z : numpy.ndarray of float, shape (n, bins)
        Space-time Gi* z-scores, oldest bin first (e.g. from a partitioned run).
    fdr : bool, default True
        Judge significance by BH-adjusted p-values over the whole cube.

    Returns
    -------
    EmergingResult
        Pattern, trend and per-bin significance per location.

    Examples
    --------
    >>> z = np.zeros((2, 10))
    >>> z[0, -1] = 4.0  # significant only in the last bin
    >>> z[1, :] = -3.0  # cold throughout, no trend
    >>> classify_emerging(z, fdr=False).patterns.tolist()
    ['New Hot Spot', 'Persistent Cold Spot']
    """
    n = z.shape[0]
    p = 2 * stats.norm.sf(np.abs(z))
    if fdr:
        p = fdr_bh(p.reshape(-1)).reshape(z.shape)
    hot = (z > 0) & (p < SIGNIFICANT)
    cold = (z < 0) & (p < SIGNIFICANT)
    trend_z, trend_p = mann_kendall(z)
    patterns = np.array(
        [_pattern(hot[i], cold[i], trend_z[i], trend_p[i]) for i in range(n)], dtype=object
    )
    return EmergingResult(patterns, trend_z, trend_p, z, hot, cold)


def _pattern(
    hot: NDArray[np.bool_], cold: NDArray[np.bool_], trend_z: float, trend_p: float
) -> str:
    for side, on, other, rising in (
        ("Hot", hot, cold, trend_z > 0),
        ("Cold", cold, hot, trend_z < 0),
    ):
        if not on.any():
            continue
        share = on.mean()
        trending = trend_p < TREND_SIGNIFICANT
        if on[-1]:
            if not on[:-1].any():
                return f"New {side} Spot"
            if share >= MOSTLY:
                if trending:
                    return f"{'Intensifying' if rising else 'Diminishing'} {side} Spot"
                return f"Persistent {side} Spot"
            run = len(on) - np.flatnonzero(~on)[-1] - 1  # trailing run of significant bins
            if run >= 2 and not on[: len(on) - run].any():
                return f"Consecutive {side} Spot"
            if other.any():
                return f"Oscillating {side} Spot"
            return f"Sporadic {side} Spot"
        if share >= MOSTLY:
            return f"Historical {side} Spot"
    return NO_PATTERN
