"""Benchmark: redrawing grids as a planner gets them (``propose``) vs today's plan vs spopt
(AZP, SKATER, max-p), measured on the drawn polygons in PostGIS, same run.

Instance sets, each loaded into a scratch database of its own with the service's loaders:

* ``chicago``: the police districts of ``../shared/data/chicago`` that have beats (beats as
  grids, imported with ``import_file`` as the test suite does, the 2019 crimes sample as
  incidents), redrawn over 2019 (``until`` 2020-01-01T06:00Z, 365 days). No road network:
  atoms are H3 fragments.
* ``demo``: the demo city (``generate_city`` + ``load_city``, ``--demo-grids``), its
  communities (all, or the ``--demo-communities`` biggest), redrawn over its last 365 days.
  It has roads: atoms are street blocks, cut into H3 fragments where too heavy.

Methods, per parent (an instance):

* ``today``: the published grids, the reference.
* ``ours``: one ``propose()`` per parent (a draft version each), timed end to end (reads,
  plan, drawing, metrics, write); ``--constrain-households`` passes ``--households-min`` as a
  bound (demo only: Chicago has no households).
* ``skater``, ``azp``, ``maxp``: spopt, each in a subprocess with a time budget for the whole
  set (``--budget``), on the very atoms the proposal's chosen plan was drawn on (rebuilt with
  ``parent_fragments`` + ``atoms_of``, the split identified by the plan's atom and whole-block
  counts among ``SPLIT_ROUNDS``), weighed by the same workload; their regions are drawn as the
  proposal draws its grids (union of atoms, ``one_piece_each``). Max-p picks its own number
  of regions (each at least 95% of the mean workload).

Every figure is measured independently of the proposal's own: the grids of each method are
read back as polygons (ours from the draft in the database) into one table and counted in
PostGIS, point in polygon, by the same SQL for every method: workload per grid (the service's
formula on exact counts: handling hours of the incidents in the window, households, rental
units, km2), max/mean, CV and status against the band (``band_status``: within
1 + tolerance, or at the parent's ``lowest_possible_max_over_mean``), share of the inner
borders within 1.5 m of a road, households per grid, Polsby-Popper, and moves: the share of
incidents (in the window) and households whose grid changes, a new grid continuing the old
one it shares most of them with (largest overlaps first, one each).

Ratios: end to end (``propose`` against spopt's solve plus the same atoms read back and its
regions drawn) and solver against solver (spopt's solve against the partition of our chosen
plan). Writes bench/results/rebalance.json (``--out``). Needs ``pip install -e '.[bench]'``
(spopt). With the defaults (all 23 districts, 40 communities, 300 s a method and set) a run
takes about 35 minutes on 2 cores; ``--chicago-districts 2 --demo-grids 60
--demo-communities 3 --budget 20`` about 3.

    .venv/bin/python bench/rebalance.py [--budget 300] [--demo-grids 300]
        [--demo-communities N] [--households-min 100 [--constrain-households]]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue as queue_module
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from geo_service.analytics.atoms import local_utm, one_piece_each
from geo_service.analytics.regionalize import balance
from geo_service.db.bulk import lift_statement_timeout
from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.engine import make_engine, recreate_cluster_database
from geo_service.demo.chicago import import_crimes, import_police_areas
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.planning.metrics import band_status
from geo_service.services.planning.parents import (
    ParentAtoms,
    atoms_of,
    block_hours,
    load_parents,
    parent_fragments,
)
from geo_service.services.planning.proposals import SPLIT_ROUNDS, ProposalRequest, propose
from geo_service.services.planning.workload import Weights, workload_hours
from geo_service.settings import DatabaseSettings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CHICAGO = Path(os.environ.get("GEO_SHARED_DATA", REPO.parent / "shared" / "data")) / "chicago"
SPOPT = ("skater", "azp", "maxp")
METHODS = ("today", "ours", *SPOPT)
ROAD_M = 1.5  # a border within this distance of a road centre line lies on the road
DEMO_END = datetime(2026, 11, 1, tzinfo=UTC)  # a fixed history: the same city every run


@dataclass
class InstanceSet:
    """A database with a city loaded, the parents to redraw and the history window."""

    name: str
    engine: Engine
    parents: list[str]
    until: datetime
    window_days: int = 365
    households_min: int | None = None  # passed to the proposal as a bound
    setup_s: float = 0.0


@dataclass
class Instance:
    """One parent: what the proposal did with it and the atoms its plan was drawn on."""

    parent: str
    grids_today: int
    floor: float = 1.0
    version_id: int | None = None
    propose_s: float = 0.0
    proposal: dict[str, Any] = field(default_factory=dict)  # the proposal's own figures
    atoms: ParentAtoms | None = None
    atoms_s: float = 0.0  # rebuilding those atoms from the database
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # spopt method -> labels
    solve_s: dict[str, float] = field(default_factory=dict)
    draw_s: dict[str, float] = field(default_factory=dict)  # their labels drawn as polygons

    @property
    def grids(self) -> int:
        """The grids the proposal drew (today's count unless the bounds set another), which
        spopt is asked for too."""
        return int(self.proposal.get("grids_after", self.grids_today))


# ------------------------------------------------------------------------------------ data


def cluster() -> EmbeddedCluster:
    """The embedded cluster of ``GEO_DATA_DIR`` (started if it is not running)."""
    found = EmbeddedCluster(DatabaseSettings().data_dir)
    found.start()
    return found


def chicago_set(server: EmbeddedCluster, districts: int | None) -> InstanceSet:
    """Chicago's districts and beats, published, and the 2019 crimes sample, imported through
    the service's importer into ``bench_rebalance_chicago``; the districts that have beats
    (the first ``districts`` by code when given)."""
    t0 = time.perf_counter()
    engine = make_engine(recreate_cluster_database(server, "bench_rebalance_chicago"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        import_police_areas(
            engine, CHICAGO, workdir, effective_from=datetime(2019, 1, 1, tzinfo=UTC), actor="bench"
        )
        import_crimes(engine, CHICAGO, workdir, actor="bench")
    parents = _parents_with_grids(engine, "district", by_size=False)
    return InstanceSet(
        "chicago",
        engine,
        parents[:districts] if districts else parents,
        until=datetime(2020, 1, 1, 6, tzinfo=UTC),  # midnight in Chicago: the whole of 2019
        setup_s=time.perf_counter() - t0,
    )


def demo_set(
    server: EmbeddedCluster, grids: int, communities: int | None, households_min: int | None
) -> InstanceSet:
    """The demo city of ``grids`` grids (333 incidents a grid over a year, 300 households a
    grid) loaded into ``bench_rebalance_demo``; its communities, the ``communities`` biggest
    (most grids) when given."""
    t0 = time.perf_counter()
    engine = make_engine(recreate_cluster_database(server, "bench_rebalance_demo"))
    city = generate_city(
        seed=42, grids=grids, incidents=grids * 333, households_per_grid=300, end=DEMO_END
    )
    load_city(engine, city)
    parents = _parents_with_grids(engine, "community", by_size=True)
    return InstanceSet(
        "demo",
        engine,
        parents[:communities] if communities else parents,
        until=DEMO_END,
        households_min=households_min,
        setup_s=time.perf_counter() - t0,
    )


_PARENTS = text(
    "SELECT p.code FROM areas p JOIN areas g ON g.parent_id = p.id AND g.level = 'grid' "
    "WHERE p.version_id = :v AND p.level = :level GROUP BY p.code "
    "ORDER BY CASE WHEN :by_size THEN -count(*) ELSE 0 END, p.code"
)


def _parents_with_grids(engine: Engine, level: str, *, by_size: bool) -> list[str]:
    with Session(engine) as session:
        version = version_in_force(session)
        rows = session.execute(_PARENTS, {"v": version, "level": level, "by_size": by_size})
        return [code for (code,) in rows]


# ------------------------------------------------------------------------------------ ours


def run_ours(s: InstanceSet, res: int, tolerance: float) -> list[Instance]:
    """One proposal per parent, timed end to end, then the atoms its chosen plan used."""
    out = []
    for code in s.parents:
        req = ProposalRequest(
            parent_codes=[code],
            window_days=s.window_days,
            until=s.until,
            h3_res=res,
            tolerance=tolerance,
            households_min=s.households_min,
            name=f"bench {code}",
        )
        t0 = time.perf_counter()
        result = propose(s.engine, req, actor="bench")
        seconds = time.perf_counter() - t0
        (mine,) = result["metrics"]["parents"]
        inst = Instance(
            code,
            mine["grids_before"],
            floor=float(mine["lowest_possible_max_over_mean"]),
            version_id=result["version_id"],
            propose_s=seconds,
            proposal={
                k: mine[k]
                for k in (
                    "after",
                    "status",
                    "atoms",
                    "whole_blocks",
                    "blocks",
                    "seconds",
                    "border_on_roads_after",
                    "continues",
                    "grids_after",
                )
            }
            | {"violations": len(result["metrics"]["constraints"]["violations"])},
        )
        t0 = time.perf_counter()
        inst.atoms = _chosen_atoms(s, inst, res)
        inst.atoms_s = time.perf_counter() - t0
        print(
            f"    ours {code}: {seconds:.1f} s, {mine['atoms']} atoms, "
            f"max/mean {mine['after']['max_over_mean']} ({mine['status']})",
            flush=True,
        )
        out.append(inst)
    return out


def _chosen_atoms(s: InstanceSet, inst: Instance, res: int) -> ParentAtoms:
    """The atoms the proposal's chosen plan for ``inst`` was drawn on: its blocks cut as in
    the first round of ``SPLIT_ROUNDS`` that gives its atom and whole-block counts."""
    weights, days = Weights(), s.window_days
    with Session(s.engine) as session:
        (parent,) = load_parents(session, [inst.parent], [])
        frags = parent_fragments(
            session, parent, res=res, since=s.until - timedelta(days=days), until=s.until
        )
        hours = block_hours(frags, weights, days)
        for limit in SPLIT_ROUNDS:
            split = hours > limit * hours.sum() / inst.grids if limit > 0 else hours >= 0
            whole = int((~split).sum())
            if (
                whole == inst.proposal["whole_blocks"]
                and whole + int(split[frags.block].sum()) == inst.proposal["atoms"]
            ):
                return atoms_of(frags, split, weights, days)  # in the session: reads fragments
    raise RuntimeError(f"{inst.parent}: no round of SPLIT_ROUNDS gives the proposal's atoms")


# ----------------------------------------------------------------------------------- spopt


def _spopt_child(
    method: str, pieces: np.ndarray, hours: np.ndarray, neighbours: list, p: int, out: mp.Queue
) -> None:
    """Solve one instance with one spopt method; put (labels or error, seconds) on ``out``."""
    import libpysal
    from spopt.region import AZP, MaxPHeuristic, Skater

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    try:
        gdf = gpd.GeoDataFrame({"w": hours}, geometry=pieces, crs=4326)
        w = libpysal.weights.W(dict(enumerate(neighbours)), silence_warnings=True)
        if method == "skater":
            model: Any = Skater(gdf, w, ["w"], n_clusters=p)
        elif method == "azp":
            model = AZP(gdf, w, ["w"], n_clusters=p, random_state=0)
        else:  # as many regions as it can, each with at least 95% of the mean workload
            model = MaxPHeuristic(gdf, w, ["w"], "w", hours.sum() / p * 0.95, top_n=2)
        model.solve()
        out.put(("ok", np.asarray(model.labels_).astype(int), time.perf_counter() - t0))
    except Exception as exc:  # noqa: BLE001 (any failure of the baseline is its result)
        out.put(("error", repr(exc), time.perf_counter() - t0))


def run_spopt(method: str, instances: list[Instance], budget_s: float) -> dict[str, Any]:
    """``method`` on each instance in turn until ``budget_s`` of wall time is spent."""
    import spopt.region  # noqa: F401 (imported here so that every forked child has it)

    spent, done, errors = 0.0, 0, []
    for inst in instances:
        left = budget_s - spent
        if left <= 0:
            break
        atoms = inst.atoms
        assert atoms is not None
        out: mp.Queue = mp.get_context("fork").Queue()
        args = (method, atoms.pieces, atoms.hours + 1e-6, atoms.neighbours, inst.grids, out)
        proc = mp.get_context("fork").Process(target=_spopt_child, args=args)
        t0 = time.perf_counter()
        proc.start()
        try:
            status, labels, seconds = out.get(timeout=left)
        except queue_module.Empty:
            status, labels, seconds = "timeout", None, left
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        spent += time.perf_counter() - t0
        if status == "timeout":
            print(f"    {method} {inst.parent}: budget spent", flush=True)
            break
        if status == "error":
            errors.append({"instance": inst.parent, "error": labels})
            print(f"    {method} {inst.parent}: {labels}", flush=True)
            continue
        inst.labels[method] = labels
        inst.solve_s[method] = seconds
        done += 1
        print(f"    {method} {inst.parent}: {seconds:.1f} s", flush=True)
    return {"attempted_s": round(spent, 1), "finished": done, "errors": errors}


def drawn_regions(atoms: ParentAtoms, labels: np.ndarray) -> list[Any]:
    """Regions drawn as the proposal draws its grids: atoms unioned, stray parts joined to
    the neighbour they share most border with."""
    labels = np.unique(labels, return_inverse=True)[1]
    return list(
        one_piece_each(
            [
                shapely.make_valid(shapely.union_all(atoms.pieces[labels == r]))
                for r in range(int(labels.max()) + 1)
            ]
        )
    )


# --------------------------------------------------------------------------------- measure

_PLANS = text(
    "CREATE TEMPORARY TABLE bench_plans "
    "(method text, parent text, code text, geom geometry(Geometry, 4326))"
)
_PLANS_TODAY = text(
    "INSERT INTO bench_plans SELECT 'today', p.code, g.code, g.geom FROM areas g "
    "JOIN areas p ON p.id = g.parent_id WHERE g.version_id = :v AND g.level = 'grid' "
    "AND p.code = ANY(:parents)"
)
_PLANS_DRAFT = text(
    "INSERT INTO bench_plans SELECT 'ours', p.code, g.code, g.geom FROM areas g "
    "JOIN areas p ON p.id = g.parent_id WHERE g.version_id = :v AND g.level = 'grid' "
    "AND p.code = :parent"
)
_PLANS_DRAWN = text(
    "INSERT INTO bench_plans SELECT :method, :parent, code, ST_GeomFromWKB(wkb, 4326) "
    "FROM unnest(CAST(:codes AS text[]), CAST(:wkbs AS bytea[])) AS t(code, wkb)"
)
# One grid per record and method (the lowest code when a point lies on a shared border).
_HELD = {
    "incidents": text(
        "SELECT DISTINCT ON (b.method, x.id) b.method, b.parent, b.code, x.id, "
        "c.handling_effort_min / 60.0 FROM bench_plans b "
        "JOIN incidents x ON ST_Intersects(b.geom, x.location) "
        "JOIN categories c ON c.code = x.category "
        "WHERE x.reported_at >= :since AND x.reported_at < :until "
        "ORDER BY b.method, x.id, b.parent, b.code"
    ),
    "households": text(
        "SELECT DISTINCT ON (b.method, h.id) b.method, b.parent, b.code, h.id, 1.0 "
        "FROM bench_plans b JOIN households h ON ST_Intersects(b.geom, h.location) "
        "ORDER BY b.method, h.id, b.parent, b.code"
    ),
    "rental_units": text(
        "SELECT DISTINCT ON (b.method, r.id) b.method, b.parent, b.code, r.id, r.unit_count "
        "FROM bench_plans b JOIN rental_units r ON ST_Intersects(b.geom, r.location) "
        "ORDER BY b.method, r.id, b.parent, b.code"
    ),
}
_SHAPES = text(
    "SELECT method, parent, code, ST_Area(geom::geography) / 1e6 AS area_km2, "
    "4 * pi() * ST_Area(geom::geography) / nullif(ST_Perimeter(geom::geography), 0) ^ 2 "
    "AS polsby_popper, ST_NumGeometries(ST_CollectionExtract(geom, 3)) AS parts "
    "FROM bench_plans"
)
# The roads of each parent, as one polygon in its UTM zone: all within ROAD_M of a centre line.
_ROADS = text("CREATE TEMPORARY TABLE bench_roads (parent text, srid int, geom geometry)")
_PARENT_ROADS = text(
    "INSERT INTO bench_roads SELECT :parent, :srid, "
    "ST_Union(ST_Buffer(ST_Transform(r.geom, :srid), :within)) FROM road_segments r "
    "WHERE ST_Intersects(r.geom, (SELECT ST_Union(geom) FROM bench_plans "
    "WHERE method = 'today' AND parent = :parent)) HAVING count(*) > 0"
)
# Each plan's inner border (its grids' boundaries less its own outer edge), metres, and how
# much of it lies on the roads.
_BORDERS = text(
    "WITH g AS (SELECT b.method, b.parent, ST_Transform(b.geom, r.srid) AS geom "
    "           FROM bench_plans b JOIN bench_roads r ON r.parent = b.parent), "
    "inner_border AS (SELECT method, parent, ST_Difference(ST_Union(ST_Boundary(geom)), "
    "                 ST_Buffer(ST_Boundary(ST_Union(geom)), :within)) AS line "
    "                 FROM g GROUP BY method, parent) "
    "SELECT i.method, i.parent, ST_Length(i.line), ST_Length(ST_Intersection(i.line, r.geom)) "
    "FROM inner_border i JOIN bench_roads r ON r.parent = i.parent"
)


def measure(s: InstanceSet, instances: list[Instance], tolerance: float, hh_min: int) -> dict:
    """Every method's grids of every instance, counted in PostGIS: per method and instance."""
    since = s.until - timedelta(days=s.window_days)
    codes = [i.parent for i in instances]
    with Session(s.engine) as session:
        version = version_in_force(session)
    with s.engine.begin() as conn:
        lift_statement_timeout(conn)
        conn.execute(_PLANS)
        conn.execute(_PLANS_TODAY, {"v": version, "parents": codes})
        for inst in instances:
            conn.execute(_PLANS_DRAFT, {"v": inst.version_id, "parent": inst.parent})
            for method, labels in inst.labels.items():
                assert inst.atoms is not None
                t0 = time.perf_counter()
                geoms = drawn_regions(inst.atoms, labels)
                inst.draw_s[method] = time.perf_counter() - t0
                conn.execute(
                    _PLANS_DRAWN,
                    {
                        "method": method,
                        "parent": inst.parent,
                        "codes": [str(r) for r in range(len(geoms))],
                        "wkbs": [bytes(w) for w in shapely.to_wkb(np.array(geoms))],
                    },
                )
        conn.execute(text("CREATE INDEX ON bench_plans USING gist (geom)"))
        conn.execute(text("ANALYZE bench_plans"))
        held = _held(conn, since, s.until)
        shapes = pd.DataFrame(conn.execute(_SHAPES).mappings().all())
        roads = _road_shares(conn, instances)
    grids = _grid_table(shapes, held, s.window_days)
    out: dict[str, list[dict]] = {m: [] for m in METHODS}
    for inst in instances:
        today = held[(held.method == "today") & (held.parent == inst.parent)]
        for method in METHODS:
            mine = grids[(grids.method == method) & (grids.parent == inst.parent)]
            if mine.empty:
                continue
            row = _figures(mine, inst, tolerance, hh_min)
            row["border_on_roads"] = roads.get((method, inst.parent))
            mine_held = held[(held.method == method) & (held.parent == inst.parent)]
            row |= _moves(mine_held, today)
            if method == "ours":
                row["seconds"] = round(inst.propose_s, 2)
                row["partition_s"] = inst.proposal["seconds"]  # its chosen plan's
                row["atoms_rebuild_s"] = round(inst.atoms_s, 2)  # for spopt, not in seconds
                row |= _moves(mine_held, today, heir=inst.proposal["continues"], tag="continues")
                row["proposal_says"] = {
                    "max_over_mean": inst.proposal["after"]["max_over_mean"],
                    "status": inst.proposal["status"],
                    "border_on_roads": inst.proposal["border_on_roads_after"],
                    "atoms": inst.proposal["atoms"],
                    "whole_blocks": inst.proposal["whole_blocks"],
                    "blocks": inst.proposal["blocks"],
                    "violations": inst.proposal["violations"],
                }
            elif method in SPOPT:
                row["seconds"] = round(inst.solve_s[method], 2)
                # what a user of spopt would also run: the same atoms, the regions drawn
                row["with_atoms_and_drawing_s"] = round(
                    inst.atoms_s + inst.solve_s[method] + inst.draw_s[method], 2
                )
            else:
                row["seconds"] = 0.0
            out[method].append(row)
    return out


def _held(conn: Connection, since: datetime, until: datetime) -> pd.DataFrame:
    """Who holds what: (method, parent, code, kind, id, value) per record and method; value is
    handling hours for incidents, 1 for households, units for rental units."""
    frames = []
    for kind, query in _HELD.items():
        rows = conn.execute(query, {"since": since, "until": until}).all()
        frame = pd.DataFrame(rows, columns=["method", "parent", "code", "id", "value"])
        frames.append(frame.assign(kind=kind, value=frame.value.astype(float)))
    return pd.concat(frames, ignore_index=True)


def _road_shares(conn: Connection, instances: list[Instance]) -> dict[tuple[str, str], float]:
    """Share of each plan's inner border length within ROAD_M of a road (none without
    roads)."""
    conn.execute(_ROADS)
    for inst in instances:
        assert inst.atoms is not None
        srid = local_utm(inst.atoms.parent.geom).to_epsg()
        conn.execute(_PARENT_ROADS, {"srid": srid, "within": ROAD_M, "parent": inst.parent})
    return {
        (method, parent): round(on_roads / total, 4)
        for method, parent, total, on_roads in conn.execute(_BORDERS, {"within": ROAD_M})
        if total
    }


def _grid_table(shapes: pd.DataFrame, held: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Per method, parent and grid: the counts, area, shape and workload."""
    sums = (
        held.groupby(["method", "parent", "code", "kind"])
        .value.agg(["sum", "count"])
        .unstack("kind", fill_value=0)
    )
    table = shapes.set_index(["method", "parent", "code"])

    def column(stat: str, kind: str) -> pd.Series:
        key = (stat, kind)
        found = sums[key] if key in sums.columns else pd.Series(dtype=float)
        return found.reindex(table.index, fill_value=0.0).astype(float)

    table["incident_hours"] = column("sum", "incidents")
    table["incidents"] = column("count", "incidents")
    table["households"] = column("count", "households")
    table["rental_units"] = column("sum", "rental_units")
    table["workload"] = workload_hours(
        table.incident_hours.to_numpy(),
        table.households.to_numpy(),
        table.rental_units.to_numpy(),
        table.area_km2.to_numpy(),
        Weights(),
        window_days,
    )
    return table.reset_index()


def _figures(grids: pd.DataFrame, inst: Instance, tolerance: float, hh_min: int) -> dict:
    """Balance, households, shape of one method's grids of one parent."""
    loads = grids.workload.to_numpy()
    figures = balance(loads)
    mean = loads.mean()
    homes = grids.households.to_numpy()
    return {
        "instance": inst.parent,
        "grids": len(grids),
        **figures,
        "min_over_mean": round(float(loads.min() / mean), 4) if mean > 0 else 0.0,
        "status": band_status(figures["max_over_mean"], inst.floor, tolerance),
        "both_sides_in_band": bool(
            mean > 0 and np.all(np.abs(loads / mean - 1) <= tolerance + 1e-9)
        ),
        "floor": inst.floor,
        "contiguous_share": round(float((grids.parts == 1).mean()), 4),
        "polsby_popper": round(float(grids.polsby_popper.mean()), 4),
        "households": (
            {
                "min": int(homes.min()),
                "median": float(np.median(homes)),
                "max": int(homes.max()),
                "below_min": int((homes < hh_min).sum()),
            }
            if homes.sum() > 0
            else None
        ),
        "households_by_grid": [int(v) for v in homes],
        "workload_by_grid": [round(float(v), 1) for v in loads],
    }


def _moves(
    mine: pd.DataFrame,
    today: pd.DataFrame,
    heir: dict[str, str | None] | None = None,
    tag: str = "",
) -> dict[str, float | None]:
    """Share of incidents (in the window) and of households whose grid changes: a record stays
    when its new grid continues its old one. Without ``heir`` (new code -> old code), each new
    grid continues the old grid it shares most of these records with, largest overlaps first,
    one each."""
    people = ["incidents", "households"]
    pairs = mine[mine.kind.isin(people)].merge(
        today[today.kind.isin(people)][["kind", "id", "code"]],
        on=["kind", "id"],
        suffixes=("", "_old"),
    )
    if heir is None:
        heir = {}
        overlap = pairs.groupby(["code", "code_old"]).size().sort_values(ascending=False)
        for new, old in overlap.index:
            if new not in heir and old not in heir.values():
                heir[new] = old
    stays = pairs.code.map(heir) == pairs.code_old
    out = {}
    for kind in people:
        of_kind = pairs.kind == kind
        name = f"{kind}_moved_share" + (f"_{tag}" if tag else "")
        out[name] = round(float(1 - stays[of_kind].mean()), 4) if of_kind.any() else None
    return out


# --------------------------------------------------------------------------------- summary


def summarise(rows: list[dict], of: int, hh_min: int) -> dict[str, Any]:
    """One method over an instance set."""
    if not rows:
        return {"finished": 0, "of": of}
    homes = np.concatenate([r["households_by_grid"] for r in rows if r["households"]] or [[]])
    roads = [r["border_on_roads"] for r in rows if r["border_on_roads"] is not None]

    def pooled(key: str) -> float | None:
        known = [r[key] for r in rows if r.get(key) is not None]
        return round(float(np.mean(known)), 4) if known else None

    return {
        "finished": len(rows),
        "of": of,
        "within_band": sum(r["status"] == "within" for r in rows),
        "at_floor": sum(r["status"] == "at_floor" for r in rows),
        "both_sides_in_band": sum(r["both_sides_in_band"] for r in rows),
        "worst_max_over_mean": max(r["max_over_mean"] for r in rows),
        "mean_max_over_mean": pooled("max_over_mean"),
        "mean_cv": pooled("cv"),
        "contiguous_share": pooled("contiguous_share"),
        "polsby_popper": pooled("polsby_popper"),
        "border_on_roads": round(float(np.mean(roads)), 4) if roads else None,
        # over all grids of the set
        "households_per_grid": (
            {
                "min": int(homes.min()),
                "median": float(np.median(homes)),
                "max": int(homes.max()),
                "below_min": int((homes < hh_min).sum()),
                "grids": len(homes),
            }
            if len(homes)
            else None
        ),
        "incidents_moved_share": pooled("incidents_moved_share"),
        "households_moved_share": pooled("households_moved_share"),
        "seconds": round(sum(r["seconds"] for r in rows), 2),
        "seconds_per_instance_max": max(r["seconds"] for r in rows),
        "constraint_violations": sum(
            r["proposal_says"]["violations"] for r in rows if "proposal_says" in r
        ),
    }


def compare(results: dict[str, list[dict]]) -> dict[str, Any]:
    """Ours against each spopt method on the instances that method finished."""
    ours = {r["instance"]: r for r in results["ours"]}
    out = {}
    for method in SPOPT:
        theirs = results[method]
        if not theirs:
            continue
        mine = [ours[r["instance"]] for r in theirs]
        their_s = sum(r["seconds"] for r in theirs)
        their_whole_s = sum(r["with_atoms_and_drawing_s"] for r in theirs)
        out[method] = {
            "instances": len(theirs),
            "ours_propose_s": round(sum(r["seconds"] for r in mine), 2),
            "ours_partition_s": round(sum(r["partition_s"] for r in mine), 2),
            "theirs_solve_s": round(their_s, 2),
            "theirs_with_atoms_and_drawing_s": round(their_whole_s, 2),
            # end to end: propose (reads, rounds of partitions, drawing, metrics, write)
            # against the same atoms rebuilt + spopt's solve + its regions drawn
            "speedup_end_to_end": round(
                their_whole_s / max(sum(r["seconds"] for r in mine), 1e-9), 1
            ),
            # the optimisers alone: spopt's solve against the partition of our chosen plan
            # (the proposal may have run one or two more rounds on other atoms before it)
            "speedup_solver": round(their_s / max(sum(r["partition_s"] for r in mine), 1e-9), 1),
            "ours_within_band": sum(r["status"] != "outside" for r in mine),
            "theirs_within_band": sum(r["status"] != "outside" for r in theirs),
            "ours_worst_max_over_mean": max(r["max_over_mean"] for r in mine),
            "theirs_worst_max_over_mean": max(r["max_over_mean"] for r in theirs),
            "ours_mean_cv": round(float(np.mean([r["cv"] for r in mine])), 4),
            "theirs_mean_cv": round(float(np.mean([r["cv"] for r in theirs])), 4),
        }
    return out


def print_set(name: str, summary: dict[str, dict], ratios: dict[str, dict]) -> None:
    """The set's table and ratios, readable."""
    head = (
        f"{'method':<7} {'done':>6} {'in band':>8} {'max/mean':>15} {'CV':>6} {'roads':>6} "
        f"{'households/grid':>22} {'PP':>5} {'moved inc/hh':>13} {'seconds':>9}"
    )
    print(f"\n{name}\n{head}\n{'-' * len(head)}")
    for method, s in summary.items():
        if not s["finished"]:
            print(f"{method:<7} {'0/' + str(s['of']):>6}  did not finish one instance")
            continue
        hh = s["households_per_grid"]
        homes = f"{hh['min']}/{hh['median']:.0f}/{hh['max']} ({hh['below_min']}<)" if hh else "-"
        roads = f"{s['border_on_roads']:.2f}" if s["border_on_roads"] is not None else "-"
        moved = "/".join(
            f"{s[k]:.2f}" if s[k] is not None else "-"
            for k in ("incidents_moved_share", "households_moved_share")
        )
        print(
            f"{method:<7} {s['finished']:>3}/{s['of']:<2} "
            f"{s['within_band'] + s['at_floor']:>4}/{s['finished']:<3} "
            f"{s['mean_max_over_mean']:>6.3f} (≤{s['worst_max_over_mean']:>6.2f}) "
            f"{s['mean_cv']:>6.3f} {roads:>6} {homes:>22} {s['polsby_popper']:>5.2f} "
            f"{moved:>13} {s['seconds']:>9.1f}"
        )
    for method, c in ratios.items():
        print(
            f"  ours vs {method} on its {c['instances']}: {c['speedup_end_to_end']}× faster end to "
            f"end, {c['speedup_solver']}× solver against solver; in band "
            f"{c['ours_within_band']} vs {c['theirs_within_band']}; worst max/mean "
            f"{c['ours_worst_max_over_mean']} vs {c['theirs_worst_max_over_mean']}"
        )


# ------------------------------------------------------------------------------------ main


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit + ("+uncommitted" if dirty else ""),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="s per spopt method and set")
    parser.add_argument("--chicago-districts", type=int, default=0, help="first N (0: all)")
    parser.add_argument("--demo-grids", type=int, default=300)
    parser.add_argument("--demo-communities", type=int, default=0, help="N biggest (0: all)")
    parser.add_argument("--households-min", type=int, default=100, help="households a grid")
    parser.add_argument(
        "--constrain-households",
        action="store_true",
        help="pass --households-min to the demo's proposals as a bound",
    )
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--h3-res", type=int, default=10)
    parser.add_argument("--sets", default="chicago,demo")
    parser.add_argument("--out", type=Path, default=RESULTS / "rebalance.json")
    args = parser.parse_args()
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "rebalance",
        "machine": machine(),
        "parameters": vars(args),
        "sets": {},
    }
    server = cluster()
    makers = {
        "chicago": lambda: chicago_set(server, args.chicago_districts or None),
        "demo": lambda: demo_set(
            server,
            args.demo_grids,
            args.demo_communities or None,
            args.households_min if args.constrain_households else None,
        ),
    }
    for name in args.sets.split(","):
        print(f"{name}: loading", flush=True)
        s = makers[name]()
        print(f"{name}: {len(s.parents)} parents, loaded in {s.setup_s:.0f} s", flush=True)
        t0 = time.perf_counter()
        instances = run_ours(s, args.h3_res, args.tolerance)
        ours_wall = time.perf_counter() - t0
        spopt_runs = {m: run_spopt(m, instances, args.budget) for m in SPOPT}
        results = measure(s, instances, args.tolerance, args.households_min)
        summary = {m: summarise(results[m], len(instances), args.households_min) for m in METHODS}
        ratios = compare(results)
        print_set(name, summary, ratios)
        report["sets"][name] = {
            "parents": len(instances),
            "atoms": sum(len(i.atoms.pieces) for i in instances if i.atoms is not None),
            "setup_s": round(s.setup_s, 1),
            "ours_wall_s_with_atom_rebuild": round(ours_wall, 1),
            "window": {"until": s.until.isoformat(), "days": s.window_days},
            "households_min_bound": s.households_min,
            "spopt_runs": spopt_runs,
            "summary": summary,
            "vs_spopt": ratios,
            "per_instance": results,
        }
        s.engine.dispose()
        _save(report, args.out)  # after every set: a long run interrupted keeps what it measured
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report["wall_s"] = round(time.perf_counter() - t_start, 1)
    _save(report, args.out)
    print(f"\n{report['wall_s']:.0f} s in all; {args.out}")


def _save(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
