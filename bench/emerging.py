"""Benchmark: emerging hot spots over ten years of ISO weeks (520 bins).

Ours (``analytics.emerging.space_time_z``, bin by bin, and the lag-by-lag Mann-Kendall) vs
the whole space-time weight matrix (``gi_star_z`` on ``space_time_weights``, scipy's kron)
and the all-pairs Mann-Kendall (every pair of bins at once), in the same run on the same cube.
Prints time and peak memory (tracemalloc) of both and the ratios, checks the z-scores agree,
and writes JSON to bench/results/emerging.json.

    .venv/bin/python bench/emerging.py [--rings 25] [--bins 520] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
from common import best_seconds

from geo_service.analytics.emerging import mann_kendall, space_time_weights, space_time_z
from geo_service.analytics.hotspots import gi_star_z, h3_ring_weights

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _all_pairs_s(series: np.ndarray) -> np.ndarray:
    """Mann-Kendall's S over every pair of bins at once (n x t x t): the earlier code."""
    t = series.shape[1]
    diff = series[:, None, :] - series[:, :, None]
    return np.sign(diff[:, np.triu(np.ones((t, t), dtype=bool), k=1)]).sum(axis=1)


def _z_of(s: np.ndarray, t: int) -> np.ndarray:
    """Mann-Kendall z of S with the continuity correction (as ``mann_kendall``)."""
    return (s - np.sign(s)) / np.sqrt(t * (t - 1) * (2 * t + 5) / 18.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rings", type=int, default=25, help="H3 res-8 disk around Chicago")
    parser.add_argument("--bins", type=int, default=520)
    parser.add_argument("--mk-cells", type=int, default=200, help="cells for Mann-Kendall")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    centre = h3i.latlng_to_cell(41.85, -87.65, 8)
    cells = np.array(sorted(h3i.grid_disk(centre, args.rings)), dtype=np.int64)
    cube = np.random.default_rng(2026).poisson(2, (len(cells), args.bins)).astype(float)
    spatial = h3_ring_weights(cells, 1)

    def baseline_z() -> np.ndarray:
        weights = space_time_weights(spatial, args.bins)
        return gi_star_z(cube.T.ravel(), weights).reshape(args.bins, len(cells)).T

    ours_s, ours = best_seconds(lambda: space_time_z(cube, spatial), args.repeat)
    kron_s, theirs = best_seconds(baseline_z, args.repeat)
    ours_peak = _peak_bytes(lambda: space_time_z(cube, spatial))
    kron_peak = _peak_bytes(baseline_z)
    agree = bool(np.allclose(ours, theirs, atol=1e-9))

    z = ours[: args.mk_cells]
    mk_s, (mk_z, _) = best_seconds(lambda: mann_kendall(z), args.repeat)
    pairs_s, s_pairs = best_seconds(lambda: _all_pairs_s(z), args.repeat)
    mk_peak = _peak_bytes(lambda: mann_kendall(z))
    pairs_peak = _peak_bytes(lambda: _all_pairs_s(z))

    result = {
        "benchmark": "emerging",
        "cells": len(cells),
        "bins": args.bins,
        "gi_star": {
            "ours": "analytics.emerging.space_time_z (bin by bin)",
            "ours_s": round(ours_s, 4),
            "ours_peak_bytes": ours_peak,
            "baseline": "gi_star_z on space_time_weights (scipy.sparse.kron)",
            "baseline_s": round(kron_s, 4),
            "baseline_peak_bytes": kron_peak,
            "speedup": round(kron_s / ours_s, 2),
            "memory_ratio": round(kron_peak / ours_peak, 2),
            "identical_within_1e-9": agree,
        },
        "mann_kendall": {
            "cells": len(z),
            "ours": "analytics.emerging.mann_kendall (lag by lag)",
            "ours_s": round(mk_s, 4),
            "ours_peak_bytes": mk_peak,
            "baseline": "all pairs at once (n x t x t), the earlier code",
            "baseline_s": round(pairs_s, 4),
            "baseline_peak_bytes": pairs_peak,
            "speedup": round(pairs_s / mk_s, 2),
            "memory_ratio": round(pairs_peak / mk_peak, 2),
            "identical": bool(np.allclose(mk_z, _z_of(s_pairs, args.bins))),
        },
        "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "emerging.json").write_text(json.dumps(result, indent=2) + "\n")
    mib = 1024**2
    print(f"cube: {len(cells):,} cells x {args.bins} bins")
    print(
        f"space-time Gi*: ours {ours_s:.3f} s, {ours_peak / mib:,.0f} MiB; "
        f"kron {kron_s:.3f} s, {kron_peak / mib:,.0f} MiB; ratio {kron_s / ours_s:.1f}x time, "
        f"{kron_peak / ours_peak:.0f}x memory; identical: {agree}"
    )
    print(
        f"Mann-Kendall ({len(z)} cells): ours {mk_s:.3f} s, {mk_peak / mib:,.0f} MiB; "
        f"all pairs {pairs_s:.3f} s, {pairs_peak / mib:,.0f} MiB; ratio {pairs_s / mk_s:.1f}x "
        f"time, {pairs_peak / mk_peak:.0f}x memory"
    )


if __name__ == "__main__":
    main()
