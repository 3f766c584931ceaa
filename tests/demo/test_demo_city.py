"""The demo city generator: deterministic, exactly nested, density-driven."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import shapely

from geo_service.demo.city import DemoCity, generate_city

METRIC = "EPSG:32650"


def test_levels_nest_exactly_with_no_gaps_or_overlaps(demo_city: DemoCity) -> None:
    areas = demo_city.areas.to_crs(METRIC)
    for child, parent in (("street", "district"), ("community", "street"), ("grid", "community")):
        children = areas[areas.level == child]
        parents = areas[areas.level == parent].set_index("code")
        assert set(children.parent_code) == set(parents.index)
        for code, group in children.groupby("parent_code"):
            union = shapely.union_all(group.geometry.values)
            parent_geom = parents.geometry[code]
            assert shapely.symmetric_difference(union, parent_geom).area < 1.0  # m²
            overlap = group.geometry.area.sum() - union.area
            assert overlap < 1.0


def test_tiling_stays_exact_in_wgs84_as_a_valid_coverage(demo_city: DemoCity) -> None:
    # Checked in lon/lat, where reprojection would have opened gaps at T-junctions.
    areas = demo_city.areas
    for level in ("grid", "community", "street", "district"):
        assert shapely.coverage_is_valid(areas[areas.level == level].geometry.values), level
    parents = areas.set_index("code").geometry
    children = areas[areas.parent_code.notna()]
    overhang = [
        shapely.difference(g, parents[p]).area
        for g, p in zip(children.geometry, children.parent_code, strict=True)
    ]
    assert max(overhang) < 1e-14  # degrees², i.e. far below 1 mm²


def test_every_area_is_one_valid_polygon(demo_city: DemoCity) -> None:
    geoms = demo_city.areas.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_num_geometries(geoms) == 1).all()


def test_same_seed_same_city_other_seed_other_city() -> None:
    kwargs = {
        "grids": 30,
        "incidents": 500,
        "households_per_grid": 10,
        "end_date": date(2026, 1, 1),
    }
    a, b = generate_city(seed=5, **kwargs), generate_city(seed=5, **kwargs)
    c = generate_city(seed=6, **kwargs)
    assert a.areas.geometry.geom_equals_exact(b.areas.geometry, 0).all()
    assert a.incidents.equals(b.incidents)
    assert not a.areas.geometry.values[-1].equals(c.areas.geometry.values[-1])


def test_grids_are_smaller_where_people_are_dense(demo_city: DemoCity) -> None:
    grids = demo_city.areas[demo_city.areas.level == "grid"].to_crs(METRIC)
    per_grid = demo_city.households.groupby("grid_code").size()
    density = per_grid.reindex(grids.code).fillna(0).values / grids.area.values
    small = grids.area.values < np.median(grids.area.values)
    assert density[small].mean() > 3 * density[~small].mean()


def test_incidents_cover_a_year_with_planted_hotspots(demo_city: DemoCity) -> None:
    inc = demo_city.incidents
    span = inc.reported_at.max() - inc.reported_at.min()
    assert span.days >= 360
    assert set(inc.category) == {
        "disputes",
        "public_order",
        "safety_hazard",
        "sanitation",
        "facilities",
        "traffic",
        "social_assistance",
    }
    assert {h.expected_pattern for h in demo_city.hotspots} >= {
        "intensifying",
        "persistent",
        "diminishing",
        "new",
    }
    assert inc.priority.between(1, 4).all()


def test_the_history_runs_up_to_the_moment_the_city_is_generated() -> None:
    """Issue 17: the demo's history ends when it starts (not at the last local midnight), so
    the last hours are as busy as any and the open backlog is the recent one."""
    end = datetime(2026, 3, 4, 9, 14, tzinfo=UTC)  # 17:14 in Wuhan
    city = generate_city(seed=3, grids=40, incidents=40_000, households_per_grid=20, end=end)
    inc = city.incidents
    per_hour = len(inc) / (365 * 24)
    last_6h = inc[inc.reported_at >= end - timedelta(hours=6)]
    assert inc.reported_at.max() < end
    assert end - inc.reported_at.max() < timedelta(hours=2)  # not the last midnight, 17 h back
    assert len(last_6h) > 0.5 * 6 * per_hour, len(last_6h)  # a Wuhan afternoon is busy
    last_hour = inc[inc.reported_at >= end - timedelta(hours=1)]
    assert (last_hour.status.isin(["reported", "dispatched", "accepted", "on_scene"])).mean() > 0.5
    older = inc[inc.reported_at < end - timedelta(days=1)]
    assert not older.status.isin(["reported", "dispatched", "accepted", "on_scene"]).any()
