"""Emerging hot spot analysis: space-time Gi* per bin, a Mann-Kendall trend per location, and
ArcGIS's pattern categories (new, consecutive, intensifying, persistent, diminishing, sporadic,
oscillating, historical; the cold counterparts; no pattern).

The space-time neighbourhood of (cell i, bin t) is the spatial neighbourhood of i (itself
included) in bins t - time_step .. t, as ArcGIS builds it; Gi* uses the whole cube's mean and
variance. Written here because no Python library implements the ArcGIS categories; the Gi* part
is the same statistic as ``analytics.hotspots`` (equal to esda's).
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
    """Per location: pattern, trend statistics, and the per-bin z-scores and significance."""

    patterns: NDArray[np.object_]
    trend_z: NDArray[np.float64]
    trend_p: NDArray[np.float64]
    z: NDArray[np.float64]  # (locations, bins)
    hot: NDArray[np.bool_]
    cold: NDArray[np.bool_]


def space_time_weights(
    spatial: sparse.csr_matrix, bins: int, time_step: int = 1
) -> sparse.csr_matrix:
    """Weights over the flattened cube (bin-major): spatial neighbours in bins t-step..t."""
    lags = sparse.csr_matrix(sum(sparse.eye(bins, k=-lag) for lag in range(time_step + 1)))
    return sparse.kron(lags, spatial, format="csr")


def mann_kendall(series: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mann-Kendall trend test on each row (z and two-sided p; variance without ties).

    Examples
    --------
    >>> z, p = mann_kendall(np.array([[1.0, 2, 3, 4, 5, 6, 7, 8], [8.0, 7, 6, 5, 4, 3, 2, 1]]))
    >>> (z > 0).tolist(), bool(p[0] < 0.01)
    ([True, False], True)
    """
    t = series.shape[1]
    diff = series[:, None, :] - series[:, :, None]  # [i, a, b] = x_b - x_a
    upper = np.triu(np.ones((t, t), dtype=bool), k=1)
    s = np.sign(diff[:, upper]).sum(axis=1)
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
    """
    cube = np.asarray(counts, dtype=np.float64)
    n, bins = cube.shape
    weights = space_time_weights(spatial, bins, time_step)
    flat = cube.T.reshape(-1)  # bin-major, matching the kron order
    z = gi_star_z(flat, weights).reshape(bins, n).T
    return classify_emerging(z, fdr=fdr)


def classify_emerging(z: NDArray[np.float64], *, fdr: bool = True) -> EmergingResult:
    """Patterns from space-time Gi* z-scores (locations x bins): p-values, FDR over the whole
    cube, hot and cold bins, the Mann-Kendall trend and ArcGIS's rules."""
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
