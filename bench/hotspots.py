"""Benchmark: Gi* hot spots on 50,000 H3 cells, ours vs esda ``G_Local`` in the same run.

Data: the res-9 cells within ~130 rings of the demo city centre (about 50,000 cells), with
clustered counts (negative binomial background plus a few planted clusters); binary 1-ring
weights with the cell itself included (Gi*).

- analytic Gi* + Benjamini-Hochberg FDR: ours vs ``esda.G_Local(..., permutations=0)``
  (goal: <= 50 ms);
- 999 permutations: ours vs ``esda.G_Local`` with its default arguments otherwise
  (``transform`` and ``star`` set to the same statistic; goal: >= 10x faster).

Checks: z-scores equal to 1e-9; permutation p-values agree within Monte Carlo error.
Writes bench/results/hotspots.json.

    .venv/bin/python bench/hotspots.py [--rings 129]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import h3.api.basic_int as h3i
import numpy as np
from common import best_seconds

from geo_service.analytics.hotspots import (
    fdr_bh,
    gi_star,
    gi_star_permutation_p,
    gi_star_z,
    h3_ring_weights,
)

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rings", type=int, default=129)
    parser.add_argument("--permutations", type=int, default=999)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from esda import G_Local
    from libpysal.weights import WSP

    centre = h3i.latlng_to_cell(30.59, 114.30, 9)
    cells = np.array(sorted(h3i.grid_disk(centre, args.rings)), dtype=np.int64)
    rng = np.random.default_rng(7)
    counts = rng.negative_binomial(1.5, 0.4, len(cells)).astype(float)
    for hub in rng.choice(len(cells), 12, replace=False):
        ring = np.searchsorted(cells, np.array(sorted(h3i.grid_disk(int(cells[hub]), 3))))
        counts[ring[ring < len(cells)]] += rng.poisson(6, len(ring[ring < len(cells)]))
    t0 = time.perf_counter()
    weights = h3_ring_weights(cells, 1)
    weights_s = time.perf_counter() - t0
    w = WSP(weights).to_W(silence_warnings=True)

    ours_analytic_s, result = best_seconds(lambda: gi_star(counts, weights, method="analytic"))
    esda_analytic_s, esda_analytic = best_seconds(
        lambda: G_Local(counts, w, transform="B", star=True, permutations=0), repeat=3
    )
    z_diff = float(np.abs(esda_analytic.Zs - gi_star_z(counts, weights)).max())
    fdr_s, _ = best_seconds(lambda: fdr_bh(result.p))

    t0 = time.perf_counter()
    ours_p = gi_star_permutation_p(counts, weights, permutations=args.permutations, seed=1)
    ours_perm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    esda_perm = G_Local(counts, w, transform="B", star=True, permutations=args.permutations, seed=2)
    esda_perm_s = time.perf_counter() - t0
    p_diff = np.abs(ours_p - esda_perm.p_sim)
    # Monte Carlo standard error of a pseudo p-value near its value p: sqrt(p (1 - p) / P).
    mc_se = np.sqrt(np.maximum(esda_perm.p_sim * (1 - esda_perm.p_sim), 1e-6) / args.permutations)
    # Both are Monte Carlo estimates: their difference has sqrt(2) x the standard error.
    within = float((p_diff <= 4 * np.sqrt(2) * mc_se + 2 / (args.permutations + 1)).mean())

    result_json = {
        "benchmark": "hotspots",
        "cells": len(cells),
        "permutations": args.permutations,
        "weights_build_s": round(weights_s, 3),
        "ours_analytic_fdr_ms": round(ours_analytic_s * 1000, 2),
        "esda_analytic_ms": round(esda_analytic_s * 1000, 1),
        "analytic_speedup": round(esda_analytic_s / ours_analytic_s, 1),
        "fdr_ms": round(fdr_s * 1000, 2),
        "z_max_abs_diff": z_diff,
        "ours_permutation_s": round(ours_perm_s, 2),
        "esda_permutation_s": round(esda_perm_s, 2),
        "permutation_speedup": round(esda_perm_s / ours_perm_s, 1),
        "p_sim_share_within_mc_error": round(within, 4),
        "p_sim_corr": round(float(np.corrcoef(ours_p, esda_perm.p_sim)[0, 1]), 4),
        "baseline": "esda.G_Local(transform='B', star=True), numba "
        + ("present" if _has_numba() else "absent"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hotspots.json").write_text(json.dumps(result_json, indent=2) + "\n")
    print(f"cells: {len(cells):,}  (weights built in {weights_s:.2f} s)")
    print(
        f"analytic Gi* + FDR: ours {ours_analytic_s * 1000:.1f} ms, esda "
        f"{esda_analytic_s * 1000:.0f} ms ({esda_analytic_s / ours_analytic_s:.0f}x); "
        f"max |z diff| {z_diff:.1e}"
    )
    print(
        f"{args.permutations} permutations: ours {ours_perm_s:.1f} s, esda {esda_perm_s:.1f} s "
        f"({esda_perm_s / ours_perm_s:.1f}x); p within MC error: {within:.1%}"
    )


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
