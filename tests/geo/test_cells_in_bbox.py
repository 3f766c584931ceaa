"""One meaning of "H3 cell in bbox": the cell's hexagon intersects the box."""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import shapely

from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import cells_in_bbox

CENTRE = h3i.latlng_to_cell(30.59, 114.30, 8)


def _around(res: int = 8, k: int = 3) -> np.ndarray:
    return np.array(sorted(h3i.grid_disk(h3i.latlng_to_cell(30.59, 114.30, res), k)), np.int64)


def test_a_small_box_on_a_corner_holds_the_three_hexagons_that_meet_there() -> None:
    lat, lng = h3i.cell_to_boundary(CENTRE)[2]
    box = BBox(lng - 1e-5, lat - 1e-5, lng + 1e-5, lat + 1e-5)  # about 2 m a side
    cells = _around()
    found = set(cells[cells_in_bbox(cells, box)].tolist())
    assert len(found) == 3 and CENTRE in found
    # the three meet at that vertex: each has it (within float noise) among its own
    for cell in found:
        assert any(
            abs(a - lat) < 1e-9 and abs(b - lng) < 1e-9 for a, b in h3i.cell_to_boundary(cell)
        )


def test_a_box_inside_one_hexagon_holds_that_hexagon_only() -> None:
    lat, lng = h3i.cell_to_latlng(CENTRE)
    box = BBox(lng - 1e-4, lat - 1e-4, lng + 1e-4, lat + 1e-4)
    assert _around()[cells_in_bbox(_around(), box)].tolist() == [CENTRE]


def test_the_answer_is_the_polygon_intersection_for_random_boxes() -> None:
    rng = np.random.default_rng(7)
    for res in (6, 8, 10):
        cells = _around(res, 12)
        polygons = np.array(
            [shapely.Polygon([(x, y) for y, x in h3i.cell_to_boundary(int(c))]) for c in cells]
        )
        for _ in range(40):
            x0, y0 = 114.30 + rng.uniform(-0.1, 0.1), 30.59 + rng.uniform(-0.1, 0.1)
            box = BBox(x0, y0, x0 + rng.uniform(1e-6, 0.05), y0 + rng.uniform(1e-6, 0.05))
            expected = shapely.intersects(polygons, shapely.box(*vars(box).values()))
            assert np.array_equal(cells_in_bbox(cells, box), expected)


def test_no_cells_and_far_boxes_hold_nothing() -> None:
    assert cells_in_bbox(np.array([], dtype=np.int64), BBox(0, 0, 1, 1)).tolist() == []
    assert not cells_in_bbox(_around(), BBox(-10, -10, -9, -9)).any()


def test_a_buffered_box_grows_by_at_least_the_distance() -> None:
    box = BBox(114.2, 30.5, 114.4, 30.7)
    grown = box.buffered(10.0)
    assert grown.miny < box.miny - 0.09 and grown.maxy > box.maxy + 0.09
    assert grown.minx < box.minx - 0.1 and grown.maxx > box.maxx + 0.1  # a degree is shorter
    polar = BBox(-179.9, 89.0, 179.9, 89.9).buffered(500.0)  # clamped to the globe
    assert (polar.minx, polar.maxx, polar.maxy) == (-180.0, 180.0, 90.0)
    assert abs(polar.miny - (89.0 - 500.0 / 110.574)) < 1e-9
