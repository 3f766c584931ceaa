"""Issue 18 (planners): the demo city is drawn along its own road network, as grid offices draw
grids along streets and blocks; lanes split blocks only where a parent has too few."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import shapely

from geo_service.demo.city import METRIC_CRS, DemoCity, generate_city
from geo_service.demo.geography import build_hierarchy


@pytest.fixture(scope="module")
def city() -> DemoCity:
    """A small city: 200 grids on the full road network (about 8,300 blocks)."""
    return generate_city(
        seed=11, grids=200, incidents=500, households_per_grid=10, end_date=date(2026, 1, 1)
    )


def test_grid_borders_run_along_roads(city: DemoCity) -> None:
    grids = city.areas[city.areas.level == "grid"].to_crs(METRIC_CRS).geometry.values
    outline = shapely.coverage_union_all(grids)
    borders = shapely.union_all(shapely.boundary(grids))
    internal = shapely.difference(borders, shapely.buffer(outline.exterior, 0.5))
    # Cut the borders into pieces of at most 5 m; a piece is on a road when its middle is
    # within 1 m of one.
    parts = shapely.get_parts(shapely.segmentize(internal, 5.0))
    coords, part = shapely.get_coordinates(parts, return_index=True)
    same = part[:-1] == part[1:]
    start, end = coords[:-1][same], coords[1:][same]
    length = np.hypot(*(end - start).T)
    roads = shapely.STRtree(city.roads.to_crs(METRIC_CRS).geometry.values)
    near, _ = roads.query(shapely.points((start + end) / 2), predicate="dwithin", distance=1.0)
    on_road = length[np.unique(near)].sum() / length.sum()
    assert length.sum() > 500_000  # m: 200 grids have long borders between them
    assert on_road >= 0.9, on_road


def test_every_grid_is_one_piece_and_grids_tile_their_community(city: DemoCity) -> None:
    areas = city.areas.to_crs(METRIC_CRS)
    grids = areas[areas.level == "grid"]
    assert len(grids) == 200
    assert (shapely.get_type_id(grids.geometry.values) == 3).all()  # Polygon, not Multi
    communities = areas[areas.level == "community"].set_index("code").geometry
    for code, group in grids.groupby("parent_code"):
        union = shapely.union_all(group.geometry.values)
        assert shapely.symmetric_difference(union, communities[code]).area < 1.0  # m²
        assert group.geometry.area.sum() - union.area < 1.0  # no overlaps


def test_a_parent_with_too_few_blocks_splits_its_heaviest_along_lanes() -> None:
    # Four 300 m blocks, two communities, eight grids: each community needs two more blocks.
    blocks = shapely.box(
        [0, 300, 0, 300], [0, 0, 300, 300], [300, 600, 300, 600], [300] * 2 + [600] * 2
    )
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 600, 2000), rng.uniform(0, 600, 2000)
    areas = build_hierarchy(rng, blocks, x, y, 8, lambda step, n: None)
    grids = areas[areas.level == "grid"].geometry.values
    assert len(grids) == 8
    assert (shapely.get_type_id(grids) == 3).all()
    assert shapely.coverage_is_valid(grids)
    assert shapely.union_all(grids).equals(shapely.box(0, 0, 600, 600))
    # a lane halves a block: no grid is smaller than half a block, or crosses a street
    assert shapely.area(grids).min() > 0.45 * 300 * 300
    streets = shapely.MultiLineString([[(300, 0), (300, 600)], [(0, 300), (600, 300)]])
    assert not shapely.crosses(grids, streets).any()
