"""Gi* against esda, the permutation test within Monte Carlo error, FDR and classes."""

from __future__ import annotations

import warnings

import geopandas as gpd
import h3.api.basic_int as h3i
import numpy as np
import pytest
from esda import G_Local
from libpysal.weights import WSP, Queen
from scipy import sparse

from geo_service.analytics.hotspots import (
    CLASSES,
    binary_star_weights,
    classify,
    fdr_bh,
    gi_star,
    gi_star_permutation_p,
    gi_star_z,
    h3_ring_weights,
)
from tests.conftest import SHARED_DATA

warnings.filterwarnings("ignore", module="esda")
warnings.filterwarnings("ignore", module="libpysal")


def _h3_case(rings: int = 15, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    cells = np.array(sorted(h3i.grid_disk(h3i.latlng_to_cell(30.59, 114.30, 8), rings)))
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(2, 0.35, len(cells)).astype(float)
    counts[:25] += rng.poisson(8, 25)  # a cluster
    return cells, counts


@pytest.mark.parametrize("k", [1, 2])
def test_z_scores_equal_esda_on_h3_rings(k: int) -> None:
    cells, counts = _h3_case()
    weights = h3_ring_weights(cells, k)
    esda = G_Local(
        counts, WSP(weights).to_W(silence_warnings=True), transform="B", star=True, permutations=0
    )
    np.testing.assert_allclose(gi_star_z(counts, weights), esda.Zs, atol=1e-9, rtol=0)


def test_z_scores_equal_esda_on_chicago_beats_with_queen_contiguity() -> None:
    beats = gpd.read_file(SHARED_DATA / "chicago" / "chicago_beat_bounds.geojson")
    queen = Queen.from_dataframe(beats, use_index=False, silence_warnings=True)
    counts = np.random.default_rng(4).poisson(40, len(beats)).astype(float)
    weights = binary_star_weights(queen.sparse)
    esda = G_Local(
        counts, WSP(weights).to_W(silence_warnings=True), transform="B", star=True, permutations=0
    )
    np.testing.assert_allclose(gi_star_z(counts, weights), esda.Zs, atol=1e-9, rtol=0)


@pytest.mark.parametrize("distinct_values", [False, True])
def test_permutation_p_values_agree_with_esda_within_monte_carlo_error(
    distinct_values: bool,
) -> None:
    cells, counts = _h3_case(rings=12, seed=9)
    if distinct_values:  # forces the cell-by-cell path
        counts = counts + np.random.default_rng(1).random(len(counts))
    weights = h3_ring_weights(cells, 1)
    permutations = 999
    ours = gi_star_permutation_p(counts, weights, permutations=permutations, seed=11)
    esda = G_Local(
        counts,
        WSP(weights).to_W(silence_warnings=True),
        transform="B",
        star=True,
        permutations=permutations,
        seed=12,
    )
    se = np.sqrt(np.maximum(esda.p_sim * (1 - esda.p_sim), 1e-6) / permutations)
    # Both p-values are Monte Carlo estimates: their difference has sqrt(2) x se.
    within = np.abs(ours - esda.p_sim) <= 4 * np.sqrt(2) * se + 2 / (permutations + 1)
    assert within.mean() > 0.99
    assert np.corrcoef(ours, esda.p_sim)[0, 1] > 0.98


def test_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    # Sorted: 0.005, 0.01, 0.03, 0.04, 0.5 -> p * m / rank, then running minimum from the top.
    expected = np.array([0.025, 0.05, 0.05, 0.025, 0.5])
    np.testing.assert_allclose(fdr_bh(p), expected)


def test_classes_follow_arcgis_thresholds() -> None:
    z = np.array([3.0, 2.0, 1.7, 0.1, -1.7, -2.0, -3.0, 2.0])
    p = np.array([0.001, 0.03, 0.08, 0.9, 0.08, 0.03, 0.001, 0.2])
    assert classify(z, p).tolist() == [
        CLASSES[0],
        CLASSES[1],
        CLASSES[2],
        CLASSES[3],
        CLASSES[4],
        CLASSES[5],
        CLASSES[6],
        CLASSES[3],
    ]


def test_planted_cluster_is_a_hot_spot_and_fdr_is_stricter() -> None:
    cells, counts = _h3_case(rings=15, seed=5)
    weights = h3_ring_weights(cells, 1)
    raw = gi_star(counts, weights, fdr=False)
    corrected = gi_star(counts, weights, fdr=True)
    assert (corrected.p_fdr >= corrected.p - 1e-15).all()
    significant_raw = (raw.classes != CLASSES[3]).sum()
    significant_fdr = (corrected.classes != CLASSES[3]).sum()
    assert significant_fdr <= significant_raw
    assert str(corrected.classes[np.argmax(corrected.z)]).startswith("Hot Spot")


def test_ring_weights_are_symmetric_binary_and_include_each_cell() -> None:
    cells, _ = _h3_case(rings=5)
    w = h3_ring_weights(cells, 1)
    assert (w != w.T).nnz == 0 and set(np.unique(w.data)) == {1.0}
    assert (w.diagonal() == 1).all()
    degrees = np.diff(w.indptr)
    assert degrees.max() == 7 and degrees.min() >= 3  # 6 neighbours + self; fewer at the edge
    with pytest.raises(ValueError):
        gi_star(np.ones(len(cells)), sparse.identity(len(cells), format="csr"), method="bogus")
