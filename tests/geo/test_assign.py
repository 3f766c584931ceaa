"""Bulk point-in-grid assignment against geopandas.sjoin on real polygons (Chicago beats)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_service.geo.assign import NO_GRID, GridIndex
from geo_service.geo.h3cells import cells_for_points, parent_cells
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def beats() -> gpd.GeoDataFrame:
    frame = gpd.read_file(SHARED_DATA / "chicago" / "chicago_beat_bounds.geojson")
    frame["beat_id"] = frame.beat_num.astype(int)
    return frame


def _sjoin_lowest(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame) -> np.ndarray:
    joined = gpd.sjoin(points, polys[["beat_id", "geometry"]], how="left", predicate="intersects")
    lowest = joined.groupby(level=0).beat_id.min()
    return lowest.reindex(range(len(points))).fillna(NO_GRID).astype(np.int64).values


def test_assignment_equals_sjoin_on_chicago_beats(beats: gpd.GeoDataFrame) -> None:
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = beats.total_bounds
    lon = rng.uniform(minx - 0.01, maxx + 0.01, 100_000)
    lat = rng.uniform(miny - 0.01, maxy + 0.01, 100_000)
    index = GridIndex.build(beats.geometry.values, beats.beat_id.values)
    ours = index.assign(lon, lat)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=beats.crs)
    np.testing.assert_array_equal(ours, _sjoin_lowest(points, beats))
    assert (ours == NO_GRID).any() and (ours != NO_GRID).mean() > 0.3
    assert index.mixed_share < 0.2


def test_points_on_a_shared_vertex_go_to_the_lowest_id() -> None:
    left, right = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    index = GridIndex.build([right, left], [9, 4], pixel_deg=0.1)
    assert index.assign([1.0, 0.5, 1.5], [0.5, 0.5, 0.5]).tolist() == [4, 4, 9]


def test_points_outside_every_polygon_and_nan_get_no_grid() -> None:
    index = GridIndex.build([shapely.box(0, 0, 1, 1)], [1], pixel_deg=0.01)
    out = index.assign([5.0, -0.5, np.nan], [5.0, 0.5, 0.5])
    assert out.tolist() == [NO_GRID, NO_GRID, NO_GRID]


def test_build_refuses_mismatched_ids() -> None:
    with pytest.raises(ValueError):
        GridIndex.build([shapely.box(0, 0, 1, 1)], [1, 2])


def test_h3_parent_bits_equal_h3_library() -> None:
    import h3.api.basic_int as h3i

    cells = cells_for_points([114.30, -87.6, 2.35], [30.59, 41.9, 48.85])
    for res in (0, 5, 8, 10):
        expected = [h3i.cell_to_parent(int(c), res) for c in cells]
        assert parent_cells(cells, res).tolist() == expected
    assert pd.Series(cells).map(h3i.get_resolution).eq(11).all()
