"""Issue 13, item 2: a differencing attacker against disclosure control, on the demo city.

The attacker reads every figure that counts households, residents or rental units -- the
aggregates at every level and H3 resolution, ``/areas/{id}``, ``/workload`` with each weight
alone, a batch workload run, the boundary diff crosswalk -- as analyst, dispatcher (city-wide
and bound to a community) and planner, and combines them by interval reasoning:

* a published null means the true count lies in ``[0, B-1]``, a published ``v`` in
  ``[v-(B-1), v+(B-1)]`` (fixed random rounding to base ``B``);
* a parent is the sum of its children (levels of the hierarchy, H3 parents and children, the
  city total by either route, a grid before a redraw = what stayed + what moved out);
* households <= residents, registrations <= units.

Bounds propagate through these constraints to a fixpoint. A hidden value (true 1..B-1) counts as
*recovered* when its feasible interval is a single value. Disclosure control must leave none;
the same attacker, fed the old behaviour (exact counts, null below B), recovers many.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity, generate_city
from geo_service.services.access import disclosure
from geo_service.services.batch.execute import BatchRequest, run_batch
from geo_service.services.batch.export import export_dataset
from geo_service.services.planning.workload import Weights
from tests.conftest import TEST_DATABASE, as_role, make_database, problem

LEVELS = ("district", "street", "community", "grid")
MEASURES = ("households", "residents", "rental_units")
INF = math.inf


# --- the attacker ------------------------------------------------------------------------------


class Attacker:
    """Interval reasoning over published counts and the sums that tie them together."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.lo: dict[Any, float] = defaultdict(float)
        self.hi: dict[Any, float] = defaultdict(lambda: INF)
        self.sums: list[tuple[Any, tuple[Any, ...]]] = []
        self.orders: list[tuple[Any, Any]] = []

    def _narrow(self, var: Any, lo: float, hi: float) -> bool:
        """Intersect ``var``'s interval with [lo, hi]; whether it changed."""
        old = (self.lo[var], self.hi[var])
        self.lo[var] = max(old[0], lo)
        self.hi[var] = min(old[1], hi)
        return (self.lo[var], self.hi[var]) != old

    def published(self, var: Any, value: int | None) -> None:
        """A count published by disclosure control (null: hidden)."""
        b = self.base
        if value is None and str(var[0]).startswith("residents"):
            return  # hidden with its households: says nothing of the residents' number
        if value is None:
            self._narrow(var, 0, b - 1)
        else:
            self._narrow(var, max(0, value - (b - 1)), value + (b - 1))

    def old_rule(self, var: Any, value: int | None) -> None:
        """A count under the old rule: exact, or null when below the base."""
        if value is None:
            self._narrow(var, 0, self.base - 1)
        else:
            self._narrow(var, value, value)

    def sum_of(self, parent: Any, children: Iterable[Any]) -> None:
        """``parent`` = the sum of ``children``."""
        self.sums.append((parent, tuple(children)))

    def at_most(self, small: Any, large: Any) -> None:
        """``small`` <= ``large``."""
        self.orders.append((small, large))

    def solve(self, rounds: int = 200) -> None:
        """Propagate bounds to a fixpoint."""
        lo, hi = self.lo, self.hi
        for _ in range(rounds):
            changed = False
            for parent, children in self.sums:
                los = [lo[c] for c in children]
                his = [hi[c] for c in children]
                lo_sum = sum(los)
                changed |= self._narrow(parent, lo_sum, sum(his))
                infinite = sum(1 for h in his if h == INF)
                finite_hi = sum(h for h in his if h != INF)
                for c, c_lo, c_hi in zip(children, los, his, strict=True):
                    if c_hi == INF:
                        others_hi = INF if infinite > 1 else finite_hi
                    else:
                        others_hi = INF if infinite else finite_hi - c_hi
                    changed |= self._narrow(c, lo[parent] - others_hi, hi[parent] - (lo_sum - c_lo))
            for small, large in self.orders:
                changed |= self._narrow(small, 0, hi[large])
                changed |= self._narrow(large, lo[small], INF)
            if not changed:
                return
        raise AssertionError("no fixpoint")

    def check_sound(self, truth: dict[Any, int]) -> None:
        """Every true value lies in its feasible interval (the model of the attack is right)."""
        wrong = {
            v: (self.lo[v], t, self.hi[v])
            for v, t in truth.items()
            if v in self.lo or v in self.hi
            if not self.lo[v] <= t <= self.hi[v]
        }
        assert not wrong, list(wrong.items())[:5]

    def recovered(self, truth: dict[Any, int]) -> dict[Any, int]:
        """Hidden values (true 1..B-1) the attacker pins to one value."""
        return {
            v: t
            for v, t in truth.items()
            if 0 < t < self.base and (v in self.lo or v in self.hi) and self.lo[v] == self.hi[v]
        }


# --- what the attacker reads -------------------------------------------------------------------


def _features(client: TestClient, params: dict, headers: dict | None = None) -> list[dict]:
    response = client.get("/households/aggregate", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["features"]


def _hierarchy(client: TestClient, headers: dict) -> dict[int, dict]:
    areas = client.get("/areas", headers=headers).json()["features"]
    return {f["id"]: f["properties"] for f in areas}


def _read_levels(
    attacker: Attacker,
    client: TestClient,
    headers: dict | None,
    observe: str,
    truth: dict,
    tag: str = "",
) -> None:
    """Aggregates at every level, as ``headers`` (None: admin, for the truth)."""
    for level in LEVELS:
        for f in _features(client, {"level": level}, headers):
            for m in MEASURES:
                var = (m + tag, "area", f["id"])
                value = f["properties"][m]
                if headers is None:
                    truth[var] = value
                else:
                    getattr(attacker, observe)(var, value)


def _level_constraints(attacker: Attacker, areas: dict[int, dict], tag: str = "") -> None:
    children: dict[int, list[int]] = defaultdict(list)
    for area_id, props in areas.items():
        if props["parent_id"] is not None:
            children[props["parent_id"]].append(area_id)
    for m in MEASURES:
        for parent, kids in children.items():
            attacker.sum_of((m + tag, "area", parent), [(m + tag, "area", k) for k in kids])
        districts = [a for a, p in areas.items() if p["level"] == "district"]
        attacker.sum_of((m + tag, "city"), [(m + tag, "area", d) for d in districts])
    for area_id in areas:
        attacker.at_most(
            ("households" + tag, "area", area_id), ("residents" + tag, "area", area_id)
        )


def _read_h3(
    attacker: Attacker,
    client: TestClient,
    headers: dict | None,
    observe: str,
    truth: dict,
    tag: str = "",
) -> dict[int, set[str]]:
    """Cells at every resolution; returns the cells seen per resolution."""
    seen: dict[int, set[str]] = {}
    for res in range(5, 11):
        seen[res] = set()
        for f in _features(client, {"res": res}, headers):
            cell = f["properties"]["h3"]
            seen[res].add(cell)
            for m in MEASURES:
                var = (m + tag, "h3", cell)
                if headers is None:
                    truth[var] = f["properties"][m]
                else:
                    getattr(attacker, observe)(var, f["properties"][m])
    return seen


def _overlaps(coarse: set[str], fine: set[str], res: int) -> list[tuple[str, str]]:
    """Listed pairs (cell at ``res``, cell at ``res + 1``) whose hexagons meet.

    Each home counts in its own cell at every resolution (migration 0025) and H3 does not
    nest, so a cell holds parts of several finer cells and a finer cell parts of several
    coarser ones: a home of both cells of a pair lies in both hexagons, so only meeting pairs
    share homes (a finer hexagon meets its parent's hexagon or that one's neighbours)."""

    def shape(cell: str) -> shapely.Polygon:
        return shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(cell)])

    shapes = {c: shape(c) for c in coarse | fine}
    return [
        (p, k)
        for k in sorted(fine)
        for p in sorted(h3.grid_disk(h3.cell_to_parent(k, res), 1))
        if p in coarse and shapes[p].intersects(shapes[k])
    ]


def _nesting(attacker: Attacker, seen: dict[int, set[str]], tag: str) -> None:
    """What each pair of resolutions ties together: a cell's homes are the sum of the parts
    it shares with the finer cells it meets, and a finer cell's the sum of the parts it
    shares with the coarser ones (a part is an unknown >= 0; a cell not listed holds none)."""
    for res in range(5, 10):
        pairs = _overlaps(seen[res], seen[res + 1], res)
        for m in MEASURES:
            parts: dict[tuple[int, str], list[Any]] = defaultdict(list)
            for p, k in pairs:
                part = (m + tag, "h3-part", p, k)
                parts[(res, p)].append(part)
                parts[(res + 1, k)].append(part)
            for r in (res, res + 1):
                for cell in seen[r]:
                    attacker.sum_of((m + tag, "h3", cell), parts[(r, cell)])


def _grid_shapes(client: TestClient, headers: dict) -> dict[int, Any]:
    """Every grid's published outline (simplified by ~2 m)."""
    return {
        f["id"]: shapely.geometry.shape(f["geometry"])
        for f in _features(client, {"level": "grid"}, headers)
    }


def _grids_and_cells(attacker: Attacker, seen: set[str], grids: dict[int, Any], tag: str) -> None:
    """Grids against the cells of one resolution: a grid's homes are the sum of the parts it
    shares with the cells it meets, a cell's the sum of its parts in the grids it meets (and,
    where its hexagon reaches outside every grid, an unknown rest). Outlines count as meeting
    within ~20 m (published outlines are simplified)."""
    near = 2e-4
    ids = list(grids)
    tree = shapely.STRtree([grids[g] for g in ids])
    covered = shapely.union_all(list(grids.values())).buffer(near)
    parts: dict[Any, list[Any]] = defaultdict(list)
    for cell in sorted(seen):
        hexagon = shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(cell)])
        for i in tree.query(hexagon, predicate="dwithin", distance=near):
            parts[("grid", ids[i])].append(("grid-part", ids[i], cell))
            parts[("cell", cell)].append(("grid-part", ids[i], cell))
        if not covered.contains(hexagon):
            parts[("cell", cell)].append(("outside-part", cell))
    for m in MEASURES:
        for g in ids:
            attacker.sum_of((m + tag, "area", g), [(m + tag, *p) for p in parts[("grid", g)]])
        for cell in seen:
            attacker.sum_of((m + tag, "h3", cell), [(m + tag, *p) for p in parts[("cell", cell)]])


def _h3_constraints(
    attacker: Attacker,
    seen: dict[int, set[str]],
    tag: str = "",
    grids: dict[int, Any] | None = None,
) -> None:
    _nesting(attacker, seen, tag)
    if grids is not None:
        for res in range(5, 11):
            _grids_and_cells(attacker, seen[res], grids, tag)
    for m in MEASURES:
        # every resolution's cells hold every home once
        for res in range(5, 11):
            attacker.sum_of((m + tag, "h3-city"), [(m + tag, "h3", c) for c in seen[res]])
        # the city by either route; records outside every grid are an unknown >= 0
        attacker.sum_of((m + tag, "h3-city"), [(m + tag, "city"), (m + tag, "outside-grids")])
    for res in range(5, 11):
        for cell in seen[res]:
            attacker.at_most(("households" + tag, "h3", cell), ("residents" + tag, "h3", cell))


@pytest.fixture(scope="module")
def base(settings) -> int:  # noqa: ANN001
    return settings.auth.min_cell_count


@pytest.fixture(scope="module")
def truth(client: TestClient, loaded_city: DemoCity) -> dict:
    """Exact counts, as the admin reads them, of every variable the attacker meets."""
    found: dict[Any, int] = {}
    _read_levels(Attacker(5), client, None, "published", found)
    _read_h3(Attacker(5), client, None, "published", found)
    # workload units (sum of unit_count), per area at every level
    for level in LEVELS:
        body = client.get("/workload", params={"level": level}).json()
        for a in body["areas"]:
            found[("units", "area", a["id"])] = a["rental_units"]
    return found


def _workload_reads(
    attacker: Attacker, client: TestClient, headers: dict, observe: str, areas: dict
) -> None:
    """``/workload`` at every level with each count weight alone: the index decoded back."""
    for level in LEVELS:
        for weights, measure, hours in (
            (
                {"w_households": 1, "w_incidents": 0, "w_rental_units": 0, "w_travel": 0},
                "households",
                0.25,
            ),
            (
                {"w_households": 0, "w_incidents": 0, "w_rental_units": 1, "w_travel": 0},
                "units",
                0.5,
            ),
        ):
            body = client.get(
                "/workload", params={"level": level, "window_days": 90, **weights}, headers=headers
            ).json()
            for a in body["areas"]:
                decoded = round(a["index"] / hours)
                field = "households" if measure == "households" else "rental_units"
                # the index encodes no more than the published count (0 when hidden)
                assert decoded == (a[field] or 0), (level, a)
                getattr(attacker, observe)((measure, "area", a["id"]), a[field])
    children: dict[int, list[int]] = defaultdict(list)
    for area_id, props in areas.items():
        if props["parent_id"] is not None:
            children[props["parent_id"]].append(area_id)
    for parent, kids in children.items():
        attacker.sum_of(("units", "area", parent), [("units", "area", k) for k in kids])
    for area_id in areas:
        attacker.at_most(("rental_units", "area", area_id), ("units", "area", area_id))


def _attack_city(client: TestClient, role_keys: dict, base: int) -> Attacker:
    """Read every published figure of the shared demo city and reason over all of it."""
    attacker, observe = Attacker(base), "published"
    analyst = as_role(role_keys, "analyst")
    dispatcher = as_role(role_keys, "dispatcher")
    planner = as_role(role_keys, "planner")
    local = as_role(role_keys, "dispatcher@community")
    areas = _hierarchy(client, analyst)
    for headers in (analyst, dispatcher, local):  # the local one: its community and grids
        _read_levels(attacker, client, headers, observe, {})
    for headers in (analyst, dispatcher):
        seen = _read_h3(attacker, client, headers, observe, {})
    _level_constraints(attacker, areas)
    _h3_constraints(attacker, seen, grids=_grid_shapes(client, analyst))
    # /areas/{id}: every district, street, community and grid, as analyst and local dispatcher
    for area_id in areas:
        for headers in (analyst, local):
            response = client.get(f"/areas/{area_id}", headers=headers)
            if response.status_code in (403, 404):  # outside the caller's area
                continue
            stats = response.json()["properties"]["stats"]
            for m in MEASURES:
                getattr(attacker, observe)((m, "area", area_id), stats[m])
    # the community-bound dispatcher's H3 cells count only its grids' records: a part of each
    # city-wide cell, with its own hierarchy
    local_seen = _read_h3(attacker, client, local, observe, {}, tag="@local")
    for res in range(5, 11):
        for cell in local_seen[res]:
            for m in MEASURES:
                attacker.sum_of((m, "h3", cell), [(m + "@local", "h3", cell), (m, "rest", cell)])
    _nesting(attacker, local_seen, "@local")
    for res in range(5, 11):  # every resolution holds each of its homes once (0025)
        for m in MEASURES:
            attacker.sum_of(
                (m + "@local", "h3-city"), [(m + "@local", "h3", c) for c in local_seen[res]]
            )
    _workload_reads(attacker, client, planner, observe, areas)
    attacker.solve()
    return attacker


# --- the tests ---------------------------------------------------------------------------------


def test_differencing_attacker_recovers_no_hidden_count(
    client: TestClient, role_keys: dict, base: int, truth: dict
) -> None:
    attacker = _attack_city(client, role_keys, base)
    attacker.check_sound(truth)
    hidden = {v: t for v, t in truth.items() if 0 < t < base}
    assert len(hidden) > 100, "the demo city must hold many small counts to attack"
    assert attacker.recovered(truth) == {}
    # and no small count is narrowed to a pair of values either, on average far from it
    widths = [attacker.hi[v] - attacker.lo[v] for v in hidden if v in attacker.lo]
    assert min(widths) >= 1 and sum(widths) / len(widths) >= 2


def test_the_same_attacker_breaks_the_old_null_below_base_rule(
    client: TestClient, role_keys: dict, base: int, truth: dict
) -> None:
    """The attacker is no straw man: fed exact counts with small ones nulled (the rule before
    issue 13), the same reasoning pins down hidden counts."""
    attacker = Attacker(base)
    areas = _hierarchy(client, as_role(role_keys, "analyst"))
    for var, value in truth.items():
        if var[0] in MEASURES:
            attacker.old_rule(var, value if value >= base else None)
    _level_constraints(attacker, areas)
    seen: dict[int, set[str]] = {
        res: {f["properties"]["h3"] for f in _features(client, {"res": res})}
        for res in range(5, 11)
    }
    _h3_constraints(attacker, seen, grids=_grid_shapes(client, as_role(role_keys, "analyst")))
    attacker.solve()
    attacker.check_sound(truth)
    assert len(attacker.recovered(truth)) >= 10


def test_the_same_records_publish_the_same_number_on_every_path(
    client: TestClient, role_keys: dict, loaded_city: DemoCity, base: int
) -> None:
    analyst = as_role(role_keys, "analyst")
    planner = as_role(role_keys, "planner")
    by_level = {
        level: {f["id"]: f["properties"] for f in _features(client, {"level": level}, analyst)}
        for level in ("grid", "community")
    }
    workload = {
        level: {
            a["id"]: a
            for a in client.get("/workload", params={"level": level}, headers=planner).json()[
                "areas"
            ]
        }
        for level in ("grid", "community")
    }
    for level, features in by_level.items():
        for area_id, props in list(features.items())[:25]:
            stats = client.get(f"/areas/{area_id}", headers=analyst).json()["properties"]["stats"]
            for m in MEASURES:
                assert stats[m] == props[m], (level, area_id, m)
            assert workload[level][area_id]["households"] == props["households"]
    # asking again gives the same figures: nothing to average away
    again = {f["id"]: f["properties"] for f in _features(client, {"level": "grid"}, analyst)}
    assert again == by_level["grid"]


def test_residents_are_never_shown_beside_hidden_households(
    client: TestClient, role_keys: dict, base: int
) -> None:
    analyst = as_role(role_keys, "analyst")
    hidden = 0
    for params in [{"level": lv} for lv in LEVELS] + [{"res": r} for r in range(5, 11)]:
        for f in _features(client, params, analyst):
            p = f["properties"]
            assert all(p[m] is None or p[m] % base == 0 for m in MEASURES), p
            if p["households"] is None:
                hidden += 1
                assert p["residents"] is None
                assert {"households", "residents"} <= set(p["suppressed"])
            if p["rental_units"] is None:
                assert "rental_units" in p["suppressed"]
    assert hidden > 0


def test_no_response_carries_a_record_key(client: TestClient, role_keys: dict) -> None:
    worker = as_role(role_keys, "grid_worker")
    grid_id = next(f["id"] for f in _features(client, {"level": "grid"}, worker))
    bodies = [
        client.get("/households", params={"grid_id": grid_id}, headers=worker).text,
        client.get("/households", params={"grid_id": grid_id}).text,
        client.get("/households/aggregate", params={"level": "grid"}).text,
        client.get(f"/areas/{grid_id}").text,
        client.get("/workload").text,
    ]
    assert all("dc_key" not in body and "key_sum" not in body for body in bodies)


def test_admin_and_the_grids_own_worker_still_see_exact_counts(
    client: TestClient, role_keys: dict, loaded_city: DemoCity
) -> None:
    exact = loaded_city.households.grid_code.value_counts()
    worker = as_role(role_keys, "grid_worker")
    admin_grids = {f["properties"]["code"]: f for f in _features(client, {"level": "grid"})}
    assert all(admin_grids[c]["properties"]["households"] == n for c, n in exact.items())
    mine = _features(client, {"level": "grid"}, worker)
    assert len(mine) == 1  # bound to the busiest grid
    code = mine[0]["properties"]["code"]
    assert mine[0]["properties"]["households"] == exact[code]
    assert mine[0]["properties"]["suppressed"] == []
    stats = client.get(f"/areas/{mine[0]['id']}", headers=worker).json()["properties"]["stats"]
    assert stats["households"] == exact[code]
    rows = client.get("/households", params={"grid_id": mine[0]["id"]}, headers=worker).json()
    assert len(rows["data"]) == min(exact[code], 100)
    # the worker's H3 cells hold only its own grid's records: exact as well
    cells = _features(client, {"res": 10}, worker)
    assert sum(f["properties"]["households"] for f in cells) == exact[code]


def test_publish_rounds_a_count_to_one_of_its_two_neighbouring_multiples() -> None:
    for n in range(0, 40):
        shown = {disclosure.round_count(n, key, "households", 5) for key in range(0, 2**32, 2**26)}
        assert shown <= {5 * (n // 5), 5 * (n // 5) + 5}
        if n % 5 == 0:
            assert shown == {n}
        else:
            # unbiased: over uniform keys the mean is the count itself
            mean = sum(
                disclosure.round_count(n, key, "households", 5) for key in range(0, 2**32, 2**22)
            ) / (2**10)
            assert abs(mean - n) < 0.05
    up = disclosure.publish(
        {"households": 2, "residents": 30, "rental_units": 7},
        household_key=0,  # u = 0: rounds up
        rental_key=0,
        base=5,
    )
    assert up["households"] == 5 and up["residents"] == 30 and up["suppressed"] == []
    down = disclosure.publish({"households": 2, "residents": 30}, household_key=2**32 - 1, base=5)
    assert down["households"] is None and down["residents"] is None
    assert down["suppressed"] == ["households", "residents"]


# --- a bbox on the aggregates -------------------------------------------------------------------


def _box(*edges: float) -> str:
    return ",".join(f"{e:.7f}" for e in edges)


def _lone_home(city: DemoCity, half_deg: float) -> tuple[float, float, float]:
    """A home alone on its parallel within ``half_deg`` east and west (no other home within
    1e-6 degrees north or south there): its lon, lat and the strip's half-height."""
    homes = city.households[["lon", "lat"]].to_numpy()
    eps = 1e-6
    for lon, lat in homes[np.argsort(homes[:, 1])][len(homes) // 3 :]:
        near = (np.abs(homes[:, 0] - lon) <= half_deg) & (np.abs(homes[:, 1] - lat) <= eps)
        if near.sum() == 1:
            return float(lon), float(lat), eps
    raise AssertionError("no home alone on its parallel")


def test_a_bbox_lists_the_features_it_meets_with_their_whole_counts(
    client: TestClient, role_keys: dict, loaded_city: DemoCity
) -> None:
    analyst = as_role(role_keys, "analyst")
    code = busiest_grid_code(loaded_city)
    home = loaded_city.households[loaded_city.households.grid_code == code].iloc[0]
    lon, lat = float(home.lon), float(home.lat)
    box = _box(lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)
    for params in ({"level": "grid"}, {"level": "community"}, {"res": 8}, {"res": 10}):
        everything = {f["id"]: f for f in _features(client, params, analyst)}
        inside = _features(client, {**params, "bbox": box}, analyst)
        assert 0 < len(inside) < len(everything), params
        for f in inside:  # the same feature, the same figures: all of its homes, its own key
            assert f == everything[f["id"]], params
    grids = _features(client, {"level": "grid", "bbox": box}, analyst)
    assert code in {f["properties"]["code"] for f in grids}
    # the admin's counts in the box are the grids' whole counts
    exact = loaded_city.households.grid_code.value_counts()
    for f in _features(client, {"level": "grid", "bbox": box}):
        assert f["properties"]["households"] == exact.get(f["properties"]["code"], 0)
    # a box off the city lists nothing; an H3 cell is listed when its hexagon meets the box
    assert _features(client, {"level": "grid", "bbox": "10,10,10.1,10.1"}, analyst) == []
    cell = h3.latlng_to_cell(lat, lon, 9)
    corner_lat, corner_lon = h3.cell_to_boundary(cell)[0]
    corner = _box(corner_lon - 1e-6, corner_lat - 1e-6, corner_lon + 1e-6, corner_lat + 1e-6)
    listed = {f["properties"]["h3"] for f in _features(client, {"res": 9, "bbox": corner})}
    assert listed <= set(h3.grid_disk(cell, 1)) and len(listed) <= 3


def busiest_grid_code(city: DemoCity) -> str:
    return str(city.households.grid_code.value_counts().index[0])


def test_two_bboxes_differing_by_one_home_do_not_isolate_it(
    client: TestClient, role_keys: dict, loaded_city: DemoCity, base: int
) -> None:
    """The differencing attempt: box A holds exactly one home more than box B (a strip around
    it along its parallel). Counting the homes inside each box would publish 1 for the
    difference; listing whole features with their own keys publishes only sums of published
    cells, each the same figure as without a box."""
    half = 0.01
    lon, lat, eps = _lone_home(loaded_city, half)
    a = (lon - half, lat - 0.01, lon + half, lat + eps)
    b = (lon - half, lat - 0.01, lon + half, lat - eps)
    homes = loaded_city.households
    in_a = homes.lon.between(a[0], a[2]) & homes.lat.between(a[1], a[3])
    in_b = homes.lon.between(b[0], b[2]) & homes.lat.between(b[1], b[3])
    assert int(in_a.sum()) - int(in_b.sum()) == 1  # the strip holds the one home
    for role in ("analyst", "dispatcher", "planner"):
        headers = as_role(role_keys, role)
        for params in ({"level": "grid"}, {"level": "community"}, {"res": 9}, {"res": 10}):
            everything = {f["id"]: f for f in _features(client, params, headers)}
            shown = {}
            for name, box in (("a", a), ("b", b)):
                listed = _features(client, {**params, "bbox": _box(*box)}, headers)
                assert all(f == everything[f["id"]] for f in listed), (role, params)
                shown[name] = {f["id"]: f["properties"] for f in listed}
            assert set(shown["b"]) <= set(shown["a"])
            for m in MEASURES:
                total = {
                    n: sum(disclosure.published_value(p[m]) for p in shown[n].values())
                    for n in ("a", "b")
                }
                difference = total["a"] - total["b"]
                assert difference % base == 0, (role, params, m, difference)
                assert difference == sum(
                    disclosure.published_value(shown["a"][i][m])
                    for i in set(shown["a"]) - set(shown["b"])
                )


def test_a_bad_bbox_on_the_aggregates_is_a_422_problem(client: TestClient, role_keys: dict) -> None:
    analyst = as_role(role_keys, "analyst")
    for bad in (
        "114.2,30.5,114.4",  # three numbers
        "a,b,c,d",
        "114.4,30.5,114.2,30.7",  # crosses the antimeridian (west > east)
        "114.2,30.7,114.4,30.5",  # south > north
        "114.2,30.5,114.2,30.7",  # empty
        "114.2,95,114.4,96",  # off the globe
        "nan,30.5,114.4,30.7",
        "100,20,120,40",  # larger than GEO_LIMITS_BBOX_KM2
    ):
        for params in ({"level": "grid"}, {"res": 8}):
            response = client.get(
                "/households/aggregate", params={**params, "bbox": bad}, headers=analyst
            )
            body = problem(response)
            assert body["status"] == 422 and body["code"] == "invalid-input", (bad, body)
            assert "bbox" in body["detail"]


# --- the batch run -----------------------------------------------------------------------------


def test_batch_workload_run_publishes_what_the_api_publishes(
    engine: Engine,
    client: TestClient,
    role_keys: dict,
    base: int,
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    for kind in ("incidents", "households", "rental-units"):
        export_dataset(engine, kind, tmp_path)
    weights = Weights(incidents=0, households=1, rental_units=0, travel=0)
    run = run_batch(
        engine,
        BatchRequest("workload", tmp_path, window_days=90, weights=weights),
        engine_name="local",
        actor="test",
    )
    planner = as_role(role_keys, "planner")
    body = client.get(f"/analytics/runs/{run['run_id']}", headers=planner).json()
    exact = client.get(f"/analytics/runs/{run['run_id']}").json()
    live = {
        f["id"]: f["properties"]
        for f in _features(client, {"level": "grid"}, as_role(role_keys, "analyst"))
    }
    true = {r["grid_id"]: r["households"] for r in exact["data"]}
    assert true == dict(_exact_households_per_grid(client))  # the admin reads the exact run
    assert len(body["data"]) == len(true)
    assert any(0 < n < base for n in true.values()), "the demo city must have small grids"
    for row in body["data"]:
        # the same households as the live grid: the same published figure
        assert row["households"] == live[row["grid_id"]]["households"]
        # w_households=1, the rest 0: the index is a quarter of the published count, no more
        assert row["index"] == pytest.approx((row["households"] or 0) * 0.25)
        if row["households"] is None:
            assert true[row["grid_id"]] < base
        else:
            assert row["households"] % base == 0
            assert abs(row["households"] - true[row["grid_id"]]) < base
    indexes = [r["index"] for r in body["data"]]
    assert body["run"]["summary"]["max_over_mean"] == round(
        max(indexes) / (sum(indexes) / len(indexes)), 4
    )


def _exact_households_per_grid(client: TestClient) -> dict[int, int]:
    """Exact households per grid id, as the admin reads them."""
    return {f["id"]: f["properties"]["households"] for f in _features(client, {"level": "grid"})}


# --- the boundary diff crosswalk ---------------------------------------------------------------


def _shifted_grids(city: DemoCity) -> gpd.GeoDataFrame:
    """Today's grids re-cut: inside each community, the Voronoi cells of the grids' interior
    points each moved by a third of the grid's size, clipped to the community. Each new grid
    keeps the code of the grid whose point it grew from: many moves, of many sizes."""
    rng = np.random.default_rng(5)
    grids = city.areas[city.areas.level == "grid"].copy().reset_index(drop=True)
    communities = city.areas[city.areas.level == "community"].set_index("code").geometry
    geoms = list(grids.geometry.values)
    for code, members in grids.groupby("parent_code"):
        if len(members) < 2:
            continue
        parent = communities[code]
        seeds = []
        for i in members.index:
            inner = geoms[i].representative_point()
            step = rng.normal(0, math.sqrt(geoms[i].area) / 3, 2)
            moved = shapely.Point(inner.x + step[0], inner.y + step[1])
            seeds.append(moved if parent.contains(moved) else inner)
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=parent)
        )
        for i, seed in zip(members.index, seeds, strict=True):
            cell = next(c for c in cells if c.contains(seed))
            geoms[i] = _polygonal(cell.intersection(parent))
    return grids.set_geometry(gpd.GeoSeries(geoms, crs=4326))


def _polygonal(geom: Any) -> Any:
    """The polygons of a geometry, as one (Multi)Polygon."""
    parts = [p for p in shapely.get_parts(shapely.make_valid(geom)) if p.geom_type == "Polygon"]
    return shapely.union_all(parts)


@pytest.fixture(scope="module")
def redrawn(settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:  # noqa: ANN001
    """A city of its own (so the shared one keeps its grids), redrawn and published, with the
    aggregates an analyst read before and after, and an API on it."""
    from geo_service.api.app import create_app
    from geo_service.demo.load import load_city
    from geo_service.services.access.auth import create_key, create_user
    from tests.boundaries.test_boundary_versions import _draft_from

    url = make_database(f"{TEST_DATABASE}_disclosure_diff")
    from geo_service.db.engine import make_engine

    engine = make_engine(url)
    city = generate_city(
        seed=29, grids=24, incidents=200, households_per_grid=12, end_date=date.today()
    )
    load_city(engine, city)
    grids = city.areas[city.areas.level == "grid"]
    community = grids.parent_code.iloc[0]
    district = grids.code.iloc[0].split("-")[0]
    keys = {}
    with Session(engine) as session:
        for label, role, area in (
            ("admin", "admin", None),
            ("planner", "planner", None),
            ("analyst", "analyst", None),
            ("dispatcher@community", "dispatcher", community),
            ("analyst@district", "analyst", district),
        ):
            user = create_user(session, name=f"diff-{label}", role=role, area_code=area, actor="t")
            keys[label] = create_key(session, user, actor="t")[1]
        session.commit()
    own = settings.model_copy(deep=True)
    own.database.database_url = url
    tmp = tmp_path_factory.mktemp("redraw")
    draft = _draft_from(city, tmp, engine, _shifted_grids(city))
    with TestClient(create_app(own)) as api:
        admin = {"X-API-Key": keys["admin"]}
        analyst = {"X-API-Key": keys["analyst"]}
        before = {
            "published": _features(api, {"level": "grid"}, analyst),
            "exact": _features(api, {"level": "grid"}, admin),
        }
        with engine.connect() as conn:
            old = conn.execute(
                text("SELECT id FROM boundary_versions WHERE status = 'published'")
            ).scalar_one()
        switch = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        published = api.post(
            f"/boundaries/versions/{draft}/publish",
            json={"effective_from": switch.isoformat(), "force": True},
            headers={"X-API-Key": keys["planner"]},
        )
        assert published.status_code == 200, published.text
        after = {
            "published": _features(api, {"level": "grid"}, analyst),
            "exact": _features(api, {"level": "grid"}, admin),
        }
        yield {
            "api": api,
            "keys": keys,
            "old": old,
            "new": draft,
            "before": before,
            "after": after,
            "engine": engine,
            "community": community,
            "district": district,
            "published": published.json(),
        }
    engine.dispose()


def test_crosswalk_moves_are_rounded_and_differencing_them_recovers_nothing(
    redrawn: dict, base: int
) -> None:
    api, keys = redrawn["api"], redrawn["keys"]
    path = f"/boundaries/versions/{redrawn['old']}/diff/{redrawn['new']}"
    exact = api.get(path, headers={"X-API-Key": keys["admin"]}).json()["entity_moves"]
    shown = api.get(path, headers={"X-API-Key": keys["analyst"]}).json()["entity_moves"]
    counted = [m for m in exact if m["entity"] in ("households", "rental_units")]
    small = [m for m in counted if 0 < m["count"] < base]
    assert len(small) >= 5, "the redraw must move a few homes here and there"

    def key(m: dict) -> tuple:
        return (m["entity"], m["old_grid_id"], m["new_grid_id"])

    true = {key(m): m["count"] for m in counted}
    assert {key(m) for m in shown if m["entity"] in ("households", "rental_units")} == set(true)

    for mode, attacker in (("published", Attacker(base)), ("old", Attacker(base))):
        moves = shown if mode == "published" else exact
        for m in moves:
            if m["entity"] not in ("households", "rental_units"):
                continue
            if mode == "published":
                assert m["count"] is None or m["count"] % base == 0
                assert (m["count"] is None) == ("count" in m["suppressed"])
                attacker.published(("move",) + key(m), m["count"])
            else:
                attacker.old_rule(("move",) + key(m), m["count"])  # listed exactly before
        # grid totals before and after (households), what stayed is an unknown >= 0
        codes_old = {f["id"]: f["properties"]["code"] for f in redrawn["before"]["exact"]}
        codes_new = {f["id"]: f["properties"]["code"] for f in redrawn["after"]["exact"]}
        for when in ("before", "after"):
            for f in redrawn[when]["published" if mode == "published" else "exact"]:
                value = f["properties"]["households"]
                if mode == "published":
                    attacker.published(("grid", when, f["id"]), value)
                else:
                    attacker.old_rule(("grid", when, f["id"]), value if value >= base else None)
        for gid, code in codes_old.items():
            out = [("move",) + k for k in true if k[0] == "households" and k[1] == gid]
            attacker.sum_of(("grid", "before", gid), [("stay", code), *out])
        for gid, code in codes_new.items():
            into = [("move",) + k for k in true if k[0] == "households" and k[2] == gid]
            attacker.sum_of(("grid", "after", gid), [("stay", code), *into])
        attacker.solve()
        truth = {("move",) + k: v for k, v in true.items()}
        truth |= {
            ("grid", "before", f["id"]): f["properties"]["households"]
            for f in redrawn["before"]["exact"]
        }
        truth |= {
            ("grid", "after", f["id"]): f["properties"]["households"]
            for f in redrawn["after"]["exact"]
        }
        attacker.check_sound(truth)
        if mode == "published":
            assert attacker.recovered(truth) == {}
        else:
            assert len(attacker.recovered(truth)) >= 5


def test_crosswalk_for_an_area_bound_caller_is_limited_to_their_area(redrawn: dict) -> None:
    api, keys = redrawn["api"], redrawn["keys"]
    path = f"/boundaries/versions/{redrawn['old']}/diff/{redrawn['new']}"
    everything = api.get(path, headers={"X-API-Key": keys["admin"]}).json()["entity_moves"]
    for label, prefix in (
        ("analyst@district", redrawn["district"] + "-"),
        ("dispatcher@community", redrawn["community"] + "-"),
    ):
        mine = api.get(path, headers={"X-API-Key": keys[label]}).json()["entity_moves"]
        assert mine, label
        assert all(
            str(m["old_code"]).startswith(prefix) or str(m["new_code"]).startswith(prefix)
            for m in mine
        ), label
        assert len(mine) < len(everything)


def test_publish_response_rounds_the_homes_it_moved_for_a_planner(redrawn: dict, base: int) -> None:
    with redrawn["engine"].connect() as conn:
        audit = conn.execute(
            text("SELECT diff FROM audit_log WHERE action = 'publish' ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    shown = redrawn["published"]["reattributed"]
    for entity in ("households", "rental_units"):
        for figure in ("total", "moved"):
            true, value = audit["moves"][entity][figure], shown[entity][figure]
            assert true > 0  # the audit log keeps the exact figures
            assert value is None or (value % base == 0 and abs(value - true) < base)
            if value is None:
                assert true < base
    # incidents and responders are no counts of homes: exact
    assert shown["incidents"] == audit["moves"]["incidents"]


def test_batch_reattribute_run_rounds_its_crosswalk(
    redrawn: dict, base: int, tmp_path: Path
) -> None:
    """A what-if crosswalk from a batch run (back to the old grids) is published like the
    diff: homes moved rounded with the moved records' keys, looked up at read time."""
    api, keys, engine = redrawn["api"], redrawn["keys"], redrawn["engine"]
    for kind in ("incidents", "households", "rental-units"):
        export_dataset(engine, kind, tmp_path)
    run = run_batch(
        engine,
        BatchRequest("reattribute", tmp_path, version_id=redrawn["old"]),
        engine_name="local",
        actor="test",
    )
    path = f"/analytics/runs/{run['run_id']}"
    exact = api.get(path, headers={"X-API-Key": keys["admin"]}).json()
    shown = api.get(path, headers={"X-API-Key": keys["analyst"]}).json()

    def rows(body: dict) -> dict:
        return {(r["entity"], r["old_grid_id"], r["new_grid_id"]): r["count"] for r in body["data"]}

    true, published = rows(exact), rows(shown)
    assert true.keys() == published.keys()
    homes = {k: v for k, v in true.items() if k[0] in ("households", "rental-units")}
    assert any(0 < v < base for v in homes.values()), "the run must move a few homes"
    for k, v in homes.items():
        p = published[k]
        assert p is None or (p % base == 0 and abs(p - v) < base), (k, v, p)
        if p is None:
            assert v < base
    for k, v in true.items():  # incidents are no homes: exact
        if k[0] == "incidents":
            assert published[k] == v
    for name in ("rows", "changed_grid_ids"):
        for entity in ("households", "rental-units"):
            total = shown["run"]["summary"][name].get(entity)
            assert total is None or total % base == 0


def _steps(n: int, t: int, base: int) -> int | None:
    """What a cell whose rounding threshold is residue ``t`` publishes for a true ``n``."""
    floor, rest = divmod(n, base)
    shown = base * floor + (base if rest >= t else 0)
    return None if shown == 0 else shown


def test_adding_households_one_by_one_does_not_pin_a_small_count(
    client: TestClient, role_keys: dict, engine: Engine, base: int
) -> None:
    """The tracker attack found in review: someone who may add households (a grid worker) adds
    them one at a time to a cell and reads the analysts' figure after each. With keys summed
    over records every addition re-drew the rounding and ~20 additions pinned the true count;
    with the cell's own key the figure only steps once every ``base`` additions, at a secret
    residue, so ``base`` starting counts stay possible however many are added."""
    analyst = as_role(role_keys, "analyst")
    worker = as_role(role_keys, "grid_worker")
    grid = _features(client, {"level": "grid"}, worker)[0]["id"]
    with engine.connect() as conn:
        source_id, cell10 = conn.execute(
            text("SELECT id, h3_10 FROM households WHERE grid_id = :g LIMIT 1"), {"g": grid}
        ).one()
    cell = h3.int_to_str(int(cell10))  # the household's own res-10 cell (0025)

    def shown() -> int | None:
        found = [
            f for f in _features(client, {"res": 10}, analyst) if f["properties"]["h3"] == cell
        ]
        return found[0]["properties"]["households"] if found else None

    with engine.connect() as conn:
        start = conn.execute(
            text("SELECT count(*) FROM households WHERE h3_10 = :c"),
            {"c": int(cell10)},
        ).scalar_one()
    readings = [shown()]
    added = 3 * base + 2
    for _ in range(added):
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO households (location, household_size, grid_id, h3, h3_5, "
                    "h3_6, h3_7, h3_8, h3_9, h3_10) SELECT location, 2, :g, h3, h3_5, h3_6, "
                    "h3_7, h3_8, h3_9, h3_10 FROM households WHERE id = :src"
                ),
                {"g": grid, "src": source_id},
            )
        readings.append(shown())
    # The attacker knows the method: a fixed threshold residue t per cell (t = base: never up).
    candidates = {
        n0
        for n0 in range(0, start + 4 * base)
        for t in range(1, base + 1)
        if all(_steps(n0 + k, t, base) == r for k, r in enumerate(readings))
    }
    assert start in candidates
    assert len(candidates) >= base - 1, (start, candidates, readings)
    # and against the old rule (a fresh draw per addition) the same readings would have pinned
    # it: each reading alone bounds the count to within base-1, the steps do not narrow that
    assert all(r is None or abs(r - (start + k)) < base for k, r in enumerate(readings))
