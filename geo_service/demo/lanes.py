"""The demo city's lanes: minor streets that cut the street lattice's blocks into compounds where
people are dense (as alleys between compounds do in old city centres, every 100-150 m), few or
none towards the edge; drawn from their own random stream and noded into the roads."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_service.demo.density import METRIC_CRS, population_share
from geo_service.demo.roads import BANK_OFFSET_M, bank_of, split_at

LANE_SPEED_KMH = 15.0
# Lanes are drawn for the default city's people (1,500 grids of 300 households), whatever the
# size of the city a grid office then draws: streets do not depend on how grids are counted.
FABRIC_HOUSEHOLDS = 450_000
COMPOUND_HOUSEHOLDS = 50.0  # lanes cut a block into compounds of about this many households
# Lanes one way and the other, by compounds: 1, 2, 3, 4, 6, 9; two lanes each way make
# 100 m compounds of a 300 m block.
LANE_LAYOUTS = ((0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2))
LANE_JITTER = 0.06  # a lane leaves its even spacing by up to this share of the block's side


def draw_lanes(
    rng: np.random.Generator,
    crossings: tuple[np.ndarray, np.ndarray],
    outline: shapely.Polygon,
    river: shapely.LineString,
    cx: float,
    cy: float,
) -> gpd.GeoDataFrame:
    """Lanes across the lattice's blocks where people are dense, cutting them into compounds.

    Parameters
    ----------
    rng : the lanes' own stream (the lattice's stays as it is): five draws a whole block.
    crossings : the lattice (``street_crossings``).
    outline, river : the city outline and the river's centre line (metric).
    cx, cy : the city centre (metric), for the population density field.

    Returns
    -------
    Two-point lines in ``METRIC_CRS`` with the columns of ``draw_roads`` (class "lane", 15
    km/h, two-way, named "Lane <block>-<lane>"), noded where lanes cross, in order of block,
    lane and position. Only whole blocks get lanes (``_whole_blocks``). A block expected to
    hold P households (``FABRIC_HOUSEHOLDS`` spread by the density field) is cut into the
    layout of ``LANE_LAYOUTS`` whose compounds are nearest P / ``COMPOUND_HOUSEHOLDS`` on a log
    scale (one lane from about 70 households, two from 120, a cross from 175, three from 245,
    two each way from 370), lanes at even spacing moved by up to ``LANE_JITTER`` of the side;
    a layout with more lanes one way is turned at random. A lane joins points at the same
    share of two opposite sides (straight in the bilinear patch of the four crossings), so
    crossing lanes share their vertex exactly and every lane ends on a lattice street, where
    ``add_lanes`` splits the street.

    Examples
    --------
    >>> gx, gy = np.meshgrid([0.0, 300.0], [0.0, 300.0])
    >>> square = shapely.box(-10, -10, 310, 310)
    >>> far = shapely.LineString([(-10, 5000), (310, 5000)])
    >>> lanes = draw_lanes(np.random.default_rng(1), (gx, gy), square, far, 150.0, 150.0)
    >>> len(lanes), sorted(set(lanes.name))  # two lanes each way, noded where they cross
    (12, ['Lane 1-1', 'Lane 1-2', 'Lane 1-3', 'Lane 1-4'])
    """
    corners = _whole_blocks(crossings, outline, river, cx, cy)
    draws = rng.random((len(corners), 5))
    households = population_share(_block_polygons(corners), outline, cx, cy) * FABRIC_HOUSEHOLDS
    compounds = np.array([(a + 1) * (b + 1) for a, b in LANE_LAYOUTS])
    cuts = np.sqrt(compounds[:-1] * compounds[1:])
    layout = np.array(LANE_LAYOUTS)[np.searchsorted(cuts, households / COMPOUND_HOUSEHOLDS)]
    turned = draws[:, 0] < 0.5
    south_north = np.where(turned, layout[:, 1], layout[:, 0])
    west_east = np.where(turned, layout[:, 0], layout[:, 1])
    laned = (south_north + west_east) > 0
    number = np.cumsum(laned)  # blocks with lanes, numbered from 1 in lattice order
    parts = [
        _lanes_of(corners[chosen], draws[chosen, 1:], sn, we, number[chosen])
        for sn, we in sorted(set(zip(south_north[laned], west_east[laned], strict=True)))
        if (chosen := laned & (south_north == sn) & (west_east == we)).any()
    ]
    columns = ["block", "lane", "position", "geometry"]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    frame = frame.sort_values(["block", "lane", "position"], kind="stable")
    return gpd.GeoDataFrame(
        {
            "name": ("Lane " + frame.block.astype(str) + "-" + frame.lane.astype(str)).to_numpy(),
            "class": "lane",
            "speed_kmh": LANE_SPEED_KMH,
            "oneway": 0,
        },
        geometry=frame.geometry.to_numpy(),
        crs=METRIC_CRS,
    )


def _whole_blocks(
    crossings: tuple[np.ndarray, np.ndarray],
    outline: shapely.Polygon,
    river: shapely.LineString,
    cx: float,
    cy: float,
) -> np.ndarray:
    """The lattice's whole blocks, in lattice order, as their crossings (n, 4, 2): south-west,
    south-east, north-west, north-east; all inside the outline on one bank, their polygon
    inside the outline and clear of the river and its riverside roads (``add_banks``), so
    that its four sides are roads as ``draw_roads`` drew them."""
    gx, gy = crossings
    inside = shapely.contains_xy(outline, gx, gy)
    bank = bank_of(gx, gy, cx, cy)
    quad = (np.s_[:-1, :-1], np.s_[:-1, 1:], np.s_[1:, :-1], np.s_[1:, 1:])
    corners = np.stack([np.stack([gx[q], gy[q]], axis=-1) for q in quad], axis=2)
    whole = np.all([inside[q] for q in quad], axis=0) & (
        np.ptp([bank[q] for q in quad], axis=0) == 0
    )
    corners = corners[whole]
    polygons = _block_polygons(corners)
    shapely.prepare(outline)
    clear = shapely.contains(outline, polygons) & ~shapely.dwithin(polygons, river, BANK_OFFSET_M)
    return corners[clear]


def _block_polygons(corners: np.ndarray) -> np.ndarray:
    """The quadrilaterals of blocks given by their crossings (``_whole_blocks``)."""
    return shapely.polygons(corners[:, [0, 1, 3, 2, 0]])


def _lanes_of(
    corners: np.ndarray, draws: np.ndarray, south_north: int, west_east: int, block: np.ndarray
) -> pd.DataFrame:
    """The lane segments of blocks that all have ``south_north`` lanes running from their south
    side to their north side and ``west_east`` lanes from west to east (``draw_lanes``).

    ``draws`` (n, 4) are uniform draws for the lanes' shares along the sides (two each way).
    Returns block, lane (numbered from 1: south-north lanes first), position (along the lane)
    and geometry.
    """
    n = len(corners)

    def shares(lanes: int, u: np.ndarray) -> np.ndarray:
        even = np.arange(1, lanes + 1) / (lanes + 1)
        inner = even + LANE_JITTER * (2 * u[:, :lanes] - 1)
        return np.column_stack([np.zeros(n), inner, np.ones(n)])

    t = shares(south_north, draws[:, :2])  # (n, sn + 2) shares along the south and north sides
    s = shares(west_east, draws[:, 2:])  # (n, we + 2) shares along the west and east sides
    tt, ss = t[:, :, None, None], s[:, None, :, None]
    c = corners[:, None, None, :, :]
    south = (1 - tt) * c[..., 0, :] + tt * c[..., 1, :]
    north = (1 - tt) * c[..., 2, :] + tt * c[..., 3, :]
    vertex = (1 - ss) * south + ss * north  # (n, sn + 2, we + 2, 2)
    starts = [vertex[:, 1:-1, :-1], vertex[:, :-1, 1:-1]]
    ends = [vertex[:, 1:-1, 1:], vertex[:, 1:, 1:-1]]
    lane = [
        np.broadcast_to(np.arange(1, south_north + 1)[None, :, None], starts[0].shape[:3]),
        np.broadcast_to(
            south_north + np.arange(1, west_east + 1)[None, None, :], starts[1].shape[:3]
        ),
    ]
    position = [
        np.broadcast_to(np.arange(west_east + 1)[None, None, :], starts[0].shape[:3]),
        np.broadcast_to(np.arange(south_north + 1)[None, :, None], starts[1].shape[:3]),
    ]
    lines = shapely.linestrings(
        np.concatenate(
            [
                np.stack([a.reshape(-1, 2), b.reshape(-1, 2)], axis=1)
                for a, b in zip(starts, ends, strict=True)
            ]
        )
    )
    blocks = [np.broadcast_to(block[:, None, None], a.shape[:3]).ravel() for a in starts]
    return pd.DataFrame(
        {
            "block": np.concatenate(blocks),
            "lane": np.concatenate([x.ravel() for x in lane]),
            "position": np.concatenate([x.ravel() for x in position]),
            "geometry": lines,
        }
    )


def lane_vertices(lanes: gpd.GeoDataFrame) -> np.ndarray:
    """The distinct vertices of ``lanes`` as points: among them, where each meets a street."""
    return shapely.points(np.unique(shapely.get_coordinates(lanes.geometry.to_numpy()), axis=0))


def add_lanes(roads: gpd.GeoDataFrame, lanes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The roads (``draw_roads``) split where lanes meet them, then the lanes.

    A split segment's pieces take its place, with its name, class, speed and direction (a
    piece runs the same way as the segment), so the lattice draws the same lines as before
    and the routing graph meets every lane end at a node.
    """
    if not len(lanes):
        return roads
    pieces, source = split_at(roads.geometry.to_numpy(), lane_vertices(lanes))
    lattice = gpd.GeoDataFrame(
        roads.drop(columns="geometry").iloc[source].reset_index(drop=True),
        geometry=pieces,
        crs=roads.crs,
    )
    return pd.concat([lattice, lanes.to_crs(roads.crs)], ignore_index=True)
