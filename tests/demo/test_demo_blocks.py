"""Issue 18 (planners): the demo city is drawn along its own road network, as grid offices draw
grids along streets and blocks: a lattice, lanes cutting its blocks into compounds where people
are dense, riverside roads; a block is split off the roads only where a parent has too few."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from scipy.sparse.csgraph import connected_components

from geo_service.demo.city import CENTRE_LAT, CENTRE_LON, METRIC_CRS, DemoCity, generate_city
from geo_service.demo.density import city_outline
from geo_service.demo.geography import build_hierarchy
from geo_service.demo.roads import BANK_OFFSET_M, draw_roads, river_line, street_crossings
from geo_service.geo.roads import RoadGraph, line_lengths_m


@pytest.fixture(scope="module")
def city() -> DemoCity:
    """A small city: 200 grids on the full road network (about 12,900 blocks)."""
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


def _centre() -> tuple[float, float]:
    return Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True).transform(
        CENTRE_LON, CENTRE_LAT
    )


def test_lanes_cut_blocks_into_compounds_where_people_are_dense_and_not_at_the_edge(
    city: DemoCity,
) -> None:
    roads = city.roads.to_crs(METRIC_CRS)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(roads.geometry.values)))
    cx, cy = _centre()
    xy = shapely.get_coordinates(shapely.centroid(faces))
    from_centre = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy)
    hectares = shapely.area(faces) / 1e4
    # compounds of a 9 ha block near the centre, whole blocks 11 km out
    assert np.median(hectares[from_centre < 2000]) < 2.5
    assert np.median(hectares[from_centre > 11_000]) > 8.0
    lanes = city.roads[city.roads["class"] == "lane"]
    assert len(lanes) > 3000
    assert lanes.name.str.fullmatch(r"Lane \d+-\d+").all()
    assert set(lanes.speed_kmh) == {15.0} and set(lanes.oneway) == {0}


def test_lanes_and_riverside_roads_are_noded_into_one_network(city: DemoCity) -> None:
    roads = city.roads
    graph = RoadGraph.build(
        roads.geometry.values,
        roads.speed_kmh.values,
        roads.oneway.values,
        line_lengths_m(roads.geometry.values),
    )
    # every node reaches every other, one-way streets and bridges included
    assert connected_components(graph.forward, directed=True, connection="strong")[0] == 1
    # a lane ends where it meets a street or another lane: no dead end, no loose end
    lane = (roads["class"] == "lane").to_numpy()
    degree = np.bincount(np.concatenate([graph.seg_a, graph.seg_b]), minlength=graph.nodes)
    assert degree[np.concatenate([graph.seg_a[lane], graph.seg_b[lane]])].min() >= 3
    riverside = roads[roads.name.str.startswith("Riverside Road")].to_crs(METRIC_CRS)
    cx, cy = _centre()
    river = river_line(city_outline(cx, cy), cx, cy)
    distance = shapely.distance(shapely.get_parts(riverside.union_all()), river)
    assert distance == pytest.approx(BANK_OFFSET_M, abs=0.01)


def test_the_street_lattice_stays_as_drawn_away_from_the_river(city: DemoCity) -> None:
    cx, cy = _centre()
    outline = city_outline(cx, cy)
    lattice = draw_roads(
        street_crossings(np.random.default_rng(11 + 7919), outline), outline, cx, cy
    )
    roads = city.roads.to_crs(METRIC_CRS)
    roads = roads[(roads["class"] != "lane") & ~roads.name.str.startswith("Riverside")]
    middle = shapely.line_interpolate_point(roads.geometry.values, 0.5, normalized=True)
    (_, segment), off_m = shapely.STRtree(lattice.geometry.values).query_nearest(
        middle, return_distance=True, all_matches=False
    )
    on = off_m < 1e-3  # the others lead streets that stopped at the river on to its banks
    assert (roads.name.values[on] == lattice.name.values[segment[on]]).all()
    drawn = np.bincount(segment[on], shapely.length(roads.geometry.values[on]), len(lattice))
    dry = ~shapely.dwithin(lattice.geometry.values, river_line(outline, cx, cy), 25.0)
    assert dry.sum() > 0.99 * len(lattice)
    # the pieces of every lattice segment (split where lanes meet it) add up to it exactly
    np.testing.assert_allclose(drawn[dry], lattice.length.values[dry], atol=1e-3)


def test_areas_cross_the_river_only_at_a_bridge(city: DemoCity) -> None:
    cx, cy = _centre()
    river = river_line(city_outline(cx, cy), cx, cy)
    roads = city.roads.to_crs(METRIC_CRS)
    bridges = shapely.union_all(roads.geometry[roads.name.str.startswith("Bridge ")].values)
    areas = city.areas.to_crs(METRIC_CRS)
    interior = shapely.buffer(areas.geometry.values, -1.0)
    across = shapely.length(shapely.intersection(river, interior)) > 0
    assert across.sum() >= 2  # some do, at the bridges that join the banks
    assert shapely.intersects(areas.geometry.values[across], bridges).all()
