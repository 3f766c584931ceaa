"""The regionalization core on 16,000 H3 atoms: balanced, contiguous, and stable when today's
plan is already good."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from geo_service.analytics.regionalize import balance, partition


@pytest.fixture(scope="module")
def hexes() -> tuple[list[list[int]], np.ndarray]:
    centre = h3.latlng_to_cell(30.59, 114.30, 10)
    cells: list[str] = []
    k = 0
    while len(cells) < 16_000:
        k += 1
        cells = h3.grid_disk(centre, k)
    cells = sorted(cells)[:16_000]
    index = {c: i for i, c in enumerate(cells)}
    neighbours = [[index[j] for j in h3.grid_ring(c, 1) if j in index] for c in cells]
    ll = np.array([h3.cell_to_latlng(c) for c in cells])
    return neighbours, np.column_stack([ll[:, 1] * 96_000, ll[:, 0] * 111_000])


def _contiguous(labels: np.ndarray, neighbours: list[list[int]]) -> bool:
    for region in np.unique(labels):
        members = set(np.flatnonzero(labels == region).tolist())
        start = next(iter(members))
        seen, stack = {start}, [start]
        while stack:
            for j in neighbours[stack.pop()]:
                if j in members and j not in seen:
                    seen.add(j)
                    stack.append(j)
        if seen != members:
            return False
    return True


def test_16000_atoms_into_40_balanced_contiguous_regions(hexes) -> None:  # noqa: ANN001
    neighbours, xy = hexes
    rng = np.random.default_rng(1)
    hot = np.exp(-((xy - xy.mean(axis=0)) ** 2).sum(axis=1) / (2 * 3000**2))
    weights = rng.gamma(1.0, 1.0, len(xy)) * (1 + 3 * hot)  # a dense centre
    plan = partition(weights, neighbours, xy, 40, tolerance=0.05)
    loads = np.bincount(plan.labels, weights=weights, minlength=40)
    assert len(np.unique(plan.labels)) == 40
    assert balance(loads)["max_over_mean"] <= 1.05
    assert _contiguous(plan.labels, neighbours)


def test_a_balanced_plan_is_kept(hexes) -> None:  # noqa: ANN001
    neighbours, xy = hexes
    weights = np.ones(len(xy))
    first = partition(weights, neighbours, xy, 16, tolerance=0.05)
    again = partition(weights, neighbours, xy, 16, current=first.labels, tolerance=0.05)
    assert (again.labels != first.labels).mean() < 0.02  # almost nothing moves
    with pytest.raises(ValueError, match="regions"):
        partition(weights[:3], neighbours[:3], xy[:3], 5)


def test_balance_metrics() -> None:
    assert balance(np.array([10.0, 10.0, 10.0])) == {"max_over_mean": 1.0, "cv": 0.0, "gini": 0.0}
    skew = balance(np.array([0.0, 0.0, 30.0]))
    assert skew["max_over_mean"] == 3.0 and skew["gini"] == pytest.approx(2 / 3, abs=1e-4)
