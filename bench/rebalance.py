"""Benchmark: redrawing grids, ours vs today's plan vs spopt (SKATER, AZP, max-p), same run.

Instances (each a parent area cut into H3 res-10 atoms clipped to it, with a workload weight
per atom and today's grid per atom):

* ``chicago``: the 22 police districts of ``../shared/data/chicago``, each redrawn into its own
  number of beats, by 2019 incident workload (the 50,000-row sample: incidents per atom).
* ``demo``: the demo city's biggest communities, by incidents plus 0.25 per household.

Per method and instance: balance (max/mean, CV), contiguity (share of regions in one piece on
the atom graph), compactness (mean Polsby-Popper), stability (share of incidents and
households whose region is not the continuation of their grid today) and runtime. Each spopt
method has a budget (``--budget``, default 600 s) for a whole instance set; instances it does
not reach are reported as not finished, and comparisons use the instances it finished.
Writes bench/results/rebalance.json. Needs ``pip install -e '.[bench]'`` (spopt).

    .venv/bin/python bench/rebalance.py [--budget 600] [--demo-communities 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_service.analytics.atoms import atomize, hex_neighbours, one_piece_each, polsby_popper
from geo_service.analytics.regionalize import balance, partition
from geo_service.demo.city import generate_city

RESULTS = Path(__file__).resolve().parent / "results"
CHICAGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "chicago"
RES = {"chicago": 10, "demo": 11}  # demo communities are small: finer atoms


def _instance(name: str, area, grids: gpd.GeoDataFrame, points: pd.DataFrame, res: int) -> dict:  # noqa: ANN001
    """Atoms of ``area``, their weights (points' ``w`` summed), people counts and today's grid."""
    cells, pieces = atomize(area, res)
    inner = shapely.point_on_surface(pieces)
    atom_of, grid_of = shapely.STRtree(grids.geometry.values).query(inner, predicate="intersects")
    current = np.zeros(len(cells), dtype=int)
    current[atom_of] = grid_of
    pts = shapely.points(points.lon.to_numpy(), points.lat.to_numpy())
    hit_pt, hit_atom = shapely.STRtree(pieces).query(pts, predicate="intersects")
    first = pd.Series(hit_atom).groupby(hit_pt).first()
    weights = np.bincount(
        first.values, weights=points.w.to_numpy()[first.index], minlength=len(cells)
    )
    people = np.zeros((len(cells), len(grids)))  # what each atom holds of each grid today
    pt_grid = shapely.STRtree(grids.geometry.values).query(pts, predicate="intersects")
    grid_of_pt = pd.Series(pt_grid[1]).groupby(pt_grid[0]).first()
    common = first.index.intersection(grid_of_pt.index)
    np.add.at(people, (first[common].values, grid_of_pt[common].values), 1.0)
    ll = gpd.GeoSeries(shapely.centroid(pieces), crs=4326).to_crs(
        gpd.GeoSeries([area], crs=4326).estimate_utm_crs()
    )
    return {
        "name": name,
        "cells": cells,
        "pieces": pieces,
        "weights": weights + 1e-6,  # an empty atom still weighs something
        "neighbours": hex_neighbours(cells),
        "xy": np.column_stack([ll.x, ll.y]),
        "current": current,
        "people": people,
        "p": len(grids),
        "crs": gpd.GeoSeries([area], crs=4326).estimate_utm_crs(),
    }


def _spopt(method: str, inst: dict, queue: mp.Queue) -> None:
    import libpysal
    from spopt.region import AZP, MaxPHeuristic, Skater

    warnings.filterwarnings("ignore")
    gdf = gpd.GeoDataFrame({"w": inst["weights"]}, geometry=inst["pieces"], crs=4326)
    w = libpysal.weights.W(dict(enumerate(inst["neighbours"])), silence_warnings=True)
    p = inst["p"]
    if method == "skater":
        model = Skater(gdf, w, ["w"], n_clusters=p)
    elif method == "azp":
        model = AZP(gdf, w, ["w"], n_clusters=p, random_state=0)
    else:  # max-p: as many regions as possible, each with at least 95% of the mean workload
        model = MaxPHeuristic(gdf, w, ["w"], "w", inst["weights"].sum() / p * 0.95, top_n=2)
    model.solve()
    queue.put(np.asarray(model.labels_).astype(int))


def _run(method: str, inst: dict, timeout: float) -> tuple[np.ndarray | None, float]:
    t0 = time.perf_counter()
    if method == "current":
        return inst["current"], 0.0
    if method == "ours":
        plan = partition(
            inst["weights"],
            inst["neighbours"],
            inst["xy"],
            inst["p"],
            current=inst["current"],
            tolerance=0.05,
        )
        return plan.labels, time.perf_counter() - t0
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=_spopt, args=(method, inst, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None, time.perf_counter() - t0
    labels = queue.get() if not queue.empty() else None
    return labels, time.perf_counter() - t0


def _metrics(inst: dict, labels: np.ndarray, seconds: float) -> dict:
    labels = np.unique(labels, return_inverse=True)[1]
    p = int(labels.max()) + 1
    loads = np.bincount(labels, weights=inst["weights"], minlength=p)
    members = [set(np.flatnonzero(labels == r).tolist()) for r in range(p)]
    connected = 0
    for m in members:
        start = next(iter(m))
        seen, stack = {start}, [start]
        while stack:
            for j in inst["neighbours"][stack.pop()]:
                if j in m and j not in seen:
                    seen.add(j)
                    stack.append(j)
        connected += seen == m
    geoms = one_piece_each([shapely.union_all(inst["pieces"][labels == r]) for r in range(p)])
    people = inst["people"]
    held = np.zeros((p, people.shape[1]))
    np.add.at(held, labels, people)
    # which grid of today each region continues: most people shared, atoms breaking ties
    atoms_shared = np.zeros_like(held)
    np.add.at(atoms_shared, labels, np.eye(people.shape[1])[inst["current"]])
    overlap = held + 1e-9 * atoms_shared
    heir: dict[int, int] = {}
    for r in np.argsort(-overlap.max(axis=1)):
        options = [g for g in np.argsort(-overlap[r]) if g not in heir.values()]
        heir[int(r)] = int(options[0]) if options else -1
    kept = sum(held[r, g] for r, g in heir.items() if g >= 0)
    return {
        "regions": p,
        **balance(loads),
        "contiguous_share": round(connected / p, 4),
        "polsby_popper": round(float(np.mean(polsby_popper(geoms, inst["crs"]))), 4),
        "moved_share": round(1 - kept / people.sum(), 4) if people.sum() else None,
        "seconds": round(seconds, 3),
    }


def chicago() -> list[dict]:
    # District 31 comes as three polygons (O'Hare and two enclaves): one district, one instance.
    districts = gpd.read_file(CHICAGO / "chicago_district_bounds.geojson").dissolve(
        "dist_num", as_index=False
    )
    beats = gpd.read_file(CHICAGO / "chicago_beat_bounds.geojson")
    crimes = pd.read_csv(CHICAGO / "chicago_crimes_2019_sample50k.csv.gz")
    crimes = crimes.dropna(subset=["latitude", "longitude"])
    points = pd.DataFrame({"lon": crimes.longitude, "lat": crimes.latitude, "w": 1.0})
    beats["district"] = beats.beat_num.astype(str).str.zfill(4).str[:2].astype(int)
    out = []
    for _, d in districts.sort_values("dist_num").iterrows():
        mine = beats[beats.district == int(d.dist_num)].reset_index(drop=True)
        if len(mine) < 2:
            continue
        area = shapely.make_valid(d.geometry)
        out.append(_instance(f"district {d.dist_num}", area, mine, points, RES["chicago"]))
    return out


def demo(communities: int) -> list[dict]:
    city = generate_city(seed=42, grids=1500, incidents=200_000, households_per_grid=60)
    grids = city.areas[city.areas.level == "grid"]
    biggest = grids.parent_code.value_counts().index[:communities]
    points = pd.concat(
        [
            pd.DataFrame({"lon": city.incidents.lon, "lat": city.incidents.lat, "w": 1.0}),
            pd.DataFrame({"lon": city.households.lon, "lat": city.households.lat, "w": 0.25}),
        ]
    )
    out = []
    for code in biggest:
        area = city.areas[city.areas.code == code].geometry.iloc[0]
        mine = grids[grids.parent_code == code].reset_index(drop=True)
        out.append(_instance(f"community {code}", area, mine, points, RES["demo"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per spopt method")
    parser.add_argument("--demo-communities", type=int, default=4)
    args = parser.parse_args()
    report: dict = {"benchmark": "rebalance", "h3_res": RES, "budget_s": args.budget, "sets": {}}
    for set_name, make in (("chicago", chicago), ("demo", lambda: demo(args.demo_communities))):
        instances = make()
        atoms = sum(len(i["cells"]) for i in instances)
        print(f"{set_name}: {len(instances)} instances, {atoms:,} atoms")
        results: dict[str, dict] = {}
        for method in ("current", "ours", "skater", "azp", "maxp"):
            spent, rows = 0.0, []
            for inst in instances:
                left = args.budget - spent
                if method in ("skater", "azp", "maxp") and left <= 0:
                    break
                labels, seconds = _run(method, inst, left)
                spent += seconds
                if labels is None:
                    break
                rows.append({"instance": inst["name"], **_metrics(inst, labels, seconds)})
            results[method] = {"finished": len(rows), "of": len(instances), "per_instance": rows}
            if rows:
                results[method]["summary"] = {
                    "worst_max_over_mean": max(r["max_over_mean"] for r in rows),
                    "mean_max_over_mean": round(
                        float(np.mean([r["max_over_mean"] for r in rows])), 4
                    ),
                    "mean_cv": round(float(np.mean([r["cv"] for r in rows])), 4),
                    "contiguous_share": round(
                        float(np.mean([r["contiguous_share"] for r in rows])), 4
                    ),
                    "polsby_popper": round(float(np.mean([r["polsby_popper"] for r in rows])), 4),
                    "moved_share": round(
                        float(
                            np.mean(
                                [r["moved_share"] for r in rows if r["moved_share"] is not None]
                            )
                        ),
                        4,
                    ),
                    "seconds": round(sum(r["seconds"] for r in rows), 2),
                }
            s = results[method].get("summary", {})
            print(
                f"  {method:<8} {len(rows):>2}/{len(instances)}  "
                + ("  ".join(f"{k} {v}" for k, v in s.items()) if s else "did not finish")
            )
        # ours against each spopt method on the instances that method finished
        for method in ("skater", "azp", "maxp"):
            done = {r["instance"] for r in results[method]["per_instance"]}
            if not done:
                continue
            ours = [r for r in results["ours"]["per_instance"] if r["instance"] in done]
            theirs = results[method]["per_instance"]
            results[method]["vs_ours"] = {
                "instances": len(done),
                "ours_worst_max_over_mean": max(r["max_over_mean"] for r in ours),
                "theirs_worst_max_over_mean": max(r["max_over_mean"] for r in theirs),
                "speedup": round(
                    sum(r["seconds"] for r in theirs) / max(sum(r["seconds"] for r in ours), 1e-9),
                    1,
                ),
            }
        report["sets"][set_name] = {"instances": len(instances), "atoms": atoms, **results}
        _save(report)  # after every set: a long run interrupted keeps what it measured
    _save(report)


def _save(report: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rebalance.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
