"""The workload formula is written once: one area (floats, hidden counts as None) and every
atom of a parent (arrays) give the same hours; a target grid count is shared out by work."""

from __future__ import annotations

import numpy as np
import pytest

from geo_service.services.planning.proposals import grids_per_parent
from geo_service.services.planning.workload import Weights, workload_hours, workload_index


def test_one_area_and_an_array_of_atoms_get_the_same_hours() -> None:
    weights = Weights(incidents=2.0, households=0.5, rental_units=3.0, travel=0.0)
    terms = np.array([[1.5, 10, 2, 0.3], [0.0, 0, 0, 1.2], [7.25, 3, 9, 0.01]])
    per_atom = workload_hours(*terms.T, weights, 365)
    names = ("incident_hours", "households", "rental_units", "area_km2")
    one_by_one = [
        workload_index(dict(zip(names, t, strict=True)), weights, 365) for t in terms.tolist()
    ]
    assert per_atom.tolist() == one_by_one
    # 1.5 x 2 + 10 x 0.25 x 0.5 x 365/90 + 2 x 0.5 x 3 x 365/90 (travel weighs nothing)
    assert one_by_one[0] == pytest.approx(3 + 1.25 * 365 / 90 + 3 * 365 / 90)


def test_a_count_hidden_by_disclosure_counts_as_zero() -> None:
    terms = {"incident_hours": 2.0, "households": None, "rental_units": None, "area_km2": 0.5}
    assert workload_index(terms, Weights(), 90) == pytest.approx(2.0 + 0.5 * 2.0)


def test_target_grids_are_shared_out_by_workload_at_least_one_each() -> None:
    assert grids_per_parent([2, 3], [10.0, 1.0], None) == [2, 3]  # today's counts
    assert grids_per_parent([2, 3], [10.0, 1.0], 4) == [3, 1]
    assert grids_per_parent([1, 1, 1], [1.0, 1.0, 1.0], 4) == [2, 1, 1]
    assert sum(grids_per_parent([5, 5], [3.0, 7.0], 11)) == 11
