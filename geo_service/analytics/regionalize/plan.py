"""What a partition returns, and how balanced a set of regional workloads is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """Progress callback that reports nothing (the default of every search step)."""
    return None


@dataclass(frozen=True)
class Plan:
    """A partition and how it was reached."""

    labels: np.ndarray  # region per atom, 0..p-1
    passes: int
    moves: int
    seconds: float
    floor: float = 1.0  # the lowest max/mean any contiguous plan can reach here
    # The wall-clock safety cap ended the search before its iteration budget: the plan may
    # then differ from run to run (never the case in the tests or the README's figures).
    stopped_by_time: bool = False
    # how far the plan lies outside the planner's bounds (``Limits.excess``; 0: within)
    excess: float = 0.0


@dataclass(frozen=True)
class Limits:
    """Bounds a planner sets on every region's totals of additive atom quantities (households,
    area): ``low[k] <= sum of values[:, k] over a region's atoms <= high[k]``.

    Attributes
    ----------
    values : numpy.ndarray, shape (n, k)
        What each atom holds of each quantity.
    low, high : numpy.ndarray, shape (k,)
        The bounds; ``-inf`` / ``inf`` where there is none.
    """

    values: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def excess(self, labels: np.ndarray, p: int) -> float:
        """How far the regions lie outside the bounds, summed over regions and quantities,
        each in units of its mean per region (0: every region within its bounds).

        >>> import numpy as np
        >>> homes = Limits(np.array([[100.0], [300.0], [200.0]]), np.array([150.0]),
        ...                np.array([np.inf]))
        >>> homes.excess(np.array([0, 1, 1]), 2)  # region 0 holds 100, 50 short of 150
        0.1667
        """
        totals = np.zeros((p, self.values.shape[1]))
        np.add.at(totals, labels, self.values)
        scale = np.maximum(totals.mean(axis=0), 1e-9)
        short = np.maximum(0.0, self.low - totals) + np.maximum(0.0, totals - self.high)
        return round(float((short / scale).sum()), 4)


def balance(loads: np.ndarray) -> dict[str, float]:
    """Max/mean, coefficient of variation and Gini of per-region workloads.

    Parameters
    ----------
    loads : numpy.ndarray, shape (p,)
        Workload of each region, in any unit (the service uses hours per window).

    Returns
    -------
    dict of str to float
        ``max_over_mean`` (1 is perfect balance), ``cv`` (standard deviation over the mean)
        and ``gini`` (0 = equal, towards 1 = one region holds everything), each rounded to
        4 decimals; all 0 when the loads are empty or sum to 0.

    Examples
    --------
    >>> import numpy as np
    >>> balance(np.array([10.0, 10.0, 10.0]))
    {'max_over_mean': 1.0, 'cv': 0.0, 'gini': 0.0}
    >>> balance(np.array([0.0, 0.0, 30.0]))
    {'max_over_mean': 3.0, 'cv': 1.4142, 'gini': 0.6667}
    """
    loads = np.asarray(loads, float)
    mean = loads.mean() if len(loads) else 0.0
    if mean <= 0:
        return {"max_over_mean": 0.0, "cv": 0.0, "gini": 0.0}
    ordered = np.sort(loads)
    k = np.arange(1, len(ordered) + 1)
    gini = float(
        (2 * (k * ordered).sum() / (len(ordered) * ordered.sum()))
        - (len(ordered) + 1) / len(ordered)
    )
    return {
        "max_over_mean": round(float(loads.max() / mean), 4),
        "cv": round(float(loads.std() / mean), 4),
        "gini": round(gini, 4),
    }


def spread_above_band(labels: np.ndarray, weights: np.ndarray, p: int, tolerance: float) -> float:
    """How far the heaviest region lies above the tolerance band (0 inside it).

    Parameters
    ----------
    labels : numpy.ndarray of int, shape (n,)
        Region of each atom, 0..p-1.
    weights : numpy.ndarray, shape (n,)
        Workload of each atom.
    p : int
        Number of regions.
    tolerance : float
        Width of the band above the mean, as a share of the mean (0.05 = 5%).

    Returns
    -------
    float
        ``max/mean - 1 - tolerance`` rounded to 4 decimals, or 0 when every region is in
        the band.

    Examples
    --------
    >>> import numpy as np
    >>> float(spread_above_band(np.array([0, 0, 0, 0, 1, 1]), np.ones(6), 2, 0.05))
    0.2833
    >>> float(spread_above_band(np.array([0, 0, 0, 1, 1, 1]), np.ones(6), 2, 0.05))
    0.0
    """
    loads = np.bincount(labels, weights=weights, minlength=p)
    return round(max(0.0, loads.max() / loads.mean() - 1 - tolerance), 4)
