"""Emerging hot spot patterns: the ArcGIS rules on known sequences, and Mann-Kendall."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from geo_service.analytics.emerging import NO_PATTERN, _pattern, mann_kendall

H, C, N = True, False, None  # hot, cold, neither in the sequences below


def _seq(marks: str) -> tuple[np.ndarray, np.ndarray]:
    hot = np.array([m == "H" for m in marks])
    cold = np.array([m == "C" for m in marks])
    return hot, cold


@pytest.mark.parametrize(
    ("marks", "trend_z", "trend_p", "expected"),
    [
        ("...........H", 0.5, 0.6, "New Hot Spot"),
        ("........HHHH", 2.0, 0.04, "Consecutive Hot Spot"),
        ("HHHHHHHHHHHH", 3.0, 0.001, "Intensifying Hot Spot"),
        ("HHHHHHHHHHHH", 0.3, 0.7, "Persistent Hot Spot"),
        ("HHHHHHHHHHHH", -3.0, 0.001, "Diminishing Hot Spot"),
        ("H..H...H..HH", 0.2, 0.8, "Sporadic Hot Spot"),
        ("C..C..H..H.H", 1.0, 0.3, "Oscillating Hot Spot"),
        ("HHHHHHHHHHH.", 0.0, 1.0, "Historical Hot Spot"),
        ("...........C", 0.0, 1.0, "New Cold Spot"),
        ("CCCCCCCCCCCC", -2.5, 0.01, "Intensifying Cold Spot"),
        ("CCCCCCCCCCCC", 2.5, 0.01, "Diminishing Cold Spot"),
        ("............", 0.0, 1.0, NO_PATTERN),
        ("..H..H......", 0.0, 1.0, NO_PATTERN),
    ],
)
def test_arcgis_pattern_rules(marks: str, trend_z: float, trend_p: float, expected: str) -> None:
    hot, cold = _seq(marks)
    assert _pattern(hot, cold, trend_z, trend_p) == expected


def test_mann_kendall_matches_kendalls_tau_on_untied_series() -> None:
    rng = np.random.default_rng(3)
    series = rng.normal(size=(50, 20)) + np.linspace(0, 1.5, 20)
    z, p = mann_kendall(series)
    for i in range(len(series)):
        tau = stats.kendalltau(np.arange(20), series[i])
        assert np.sign(z[i]) == np.sign(tau.statistic)
        # Kendall's exact and Mann-Kendall's normal (continuity-corrected) p agree closely.
        assert abs(p[i] - tau.pvalue) < 0.03
