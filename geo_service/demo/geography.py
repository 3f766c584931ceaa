"""The demo city's areas: district > street > community > grid, assembled from the blocks of its
road network, each level grouping its parent's blocks around k-means centres of population
points into contiguous children, then made an exact coverage so it survives reprojection."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geo_service.demo.blocks import BlockSet, group_blocks

LEVELS = ("district", "street", "community", "grid")
SYLLABLES = (
    "Hong",
    "Qing",
    "Ming",
    "Hua",
    "Jin",
    "Long",
    "Ping",
    "An",
    "Xin",
    "Feng",
    "Yang",
    "He",
    "Shan",
    "Lin",
    "Guang",
    "Tai",
    "Yun",
    "Bai",
    "Chang",
    "Fu",
    "Kang",
    "Le",
    "Mei",
    "Nan",
    "Rui",
    "Shun",
    "Tian",
    "Wen",
    "Xiang",
    "Yu",
)
LEVEL_SUFFIX = {
    "district": "District",
    "street": "Street",
    "community": "Community",
    "grid": "Grid",
}
LEVEL_PREFIX = {"district": "D", "street": "S", "community": "C", "grid": "G"}
# The Chinese character each romanized syllable stands for, and each level's Chinese suffix:
# a demo area is 洪青区, 洪青街道, 洪青社区, and its grids 洪青社区第7网格 (as Wuhan's grids are
# named after their community)
CHARACTERS = dict(
    zip(
        SYLLABLES,
        "洪青明华金龙平安新丰阳和山林光泰云白长福康乐梅南瑞顺天文祥玉",
        strict=True,
    )
)
LEVEL_SUFFIX_ZH = {"district": "区", "street": "街道", "community": "社区"}
_ROMANIZED = re.compile(r"([A-Z][a-z]+) (District|Street|Community|Grid)(?: (\d+))?")


def chinese_name(name: str) -> str | None:
    """The Chinese name of a demo area from its romanized one, or None for any other name.

    >>> [chinese_name(n) for n in ("Hongqing District", "Anhe Community", "Anhe Grid 7")]
    ['洪青区', '安和社区', '安和社区第7网格']
    >>> chinese_name("Main Street 12") is None
    True
    """
    match = _ROMANIZED.fullmatch(name)
    if match is None:
        return None
    word, level, number = match.groups()
    for cut in range(1, len(word)):
        first, second = word[:cut], word[cut:].capitalize()
        if first in CHARACTERS and second in CHARACTERS:
            stem = CHARACTERS[first] + CHARACTERS[second]
            if level == "Grid":
                return f"{stem}社区第{number}网格" if number else None
            return None if number else stem + LEVEL_SUFFIX_ZH[level.lower()]
    return None


def level_counts(grids: int) -> dict[str, int]:
    """How many districts, streets, communities and grids a city of ``grids`` grids has."""
    districts = max(2, round(grids / 250))
    streets = max(districts, round(grids / 37.5))
    communities = max(streets, round(grids / 7.5))
    return {"district": districts, "street": streets, "community": communities, "grid": grids}


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` children over parents by weight: at least one each, largest remainder."""
    n = len(weights)
    base = np.ones(n, dtype=int)
    rest = total - n
    if rest <= 0:
        return base
    share = weights / weights.sum() * rest
    floor = np.floor(share).astype(int)
    remainder = rest - floor.sum()
    order = np.argsort(-(share - floor), kind="stable")
    floor[order[:remainder]] += 1
    return base + floor


def _name(rng: np.random.Generator, level: str, used: set[str]) -> str:
    while True:
        a, b = rng.choice(len(SYLLABLES), 2, replace=False)
        name = f"{SYLLABLES[a]}{SYLLABLES[b].lower()}"
        if name not in used or len(used) > 800:
            used.add(name)
            return f"{name} {LEVEL_SUFFIX[level]}"


def build_hierarchy(
    rng: np.random.Generator,
    blocks: np.ndarray,
    pop_x: np.ndarray,
    pop_y: np.ndarray,
    grids: int,
    progress: Callable[[str, int], None],
    bank: np.ndarray | None = None,
    at_bridge: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """Assemble the area hierarchy from the city's blocks, level by level (codes nested).

    Parameters
    ----------
    rng : the k-means starts and the names.
    blocks : polygons tiling the city (metric), the faces of its roads (``road_blocks``).
    pop_x, pop_y : population sample points (metric): areas are balanced by their counts.
    grids : number of grids; ``level_counts`` gives the other levels.
    bank, at_bridge : per block, its side of the river and whether it touches a bridge: areas
        reach across the river only at a bridge (``BlockSet``); without them, anywhere.

    Returns
    -------
    code, name, level, parent_code and geometry (metric): every area is the union of whole
    blocks (a parent with fewer blocks than children splits some, see ``group_blocks``), one
    piece, and the children of an area tile it, so area borders run along roads or the river.
    """
    counts = level_counts(grids)
    pts = np.column_stack([pop_x, pop_y])
    city = BlockSet.build(blocks, pts, bank, at_bridge)
    rows: list[dict] = []
    parents: list[dict[str, Any]] = [
        {"code": None, "blocks": np.arange(len(blocks)), "members": np.arange(len(pts))}
    ]
    used: set[str] = set()
    for level in LEVELS:
        weights = np.array([len(p["members"]) for p in parents], dtype=float)
        per_parent = _allocate(counts[level], weights)
        children = []
        for parent, k in zip(parents, per_parent, strict=True):
            members = parent["members"]
            groups = group_blocks(rng, city, parent["blocks"], members, int(k))
            child_of_block = np.empty(len(city.geoms), dtype=int)
            for j, group in enumerate(groups):
                child_of_block[group] = j
            child_of_member = child_of_block[city.of_point[members]]
            for j, group in enumerate(groups):
                code_part = f"{LEVEL_PREFIX[level]}{j + 1:02d}"
                code = code_part if parent["code"] is None else f"{parent['code']}-{code_part}"
                name = (
                    _name(rng, level, used)
                    if level != "grid"
                    else f"{parent['name'].rsplit(' ', 1)[0]} Grid {j + 1}"
                )
                child = {
                    "code": code,
                    "name": name,
                    "level": level,
                    "parent_code": parent["code"],
                    "blocks": group,
                    "members": members[child_of_member == j],
                }
                children.append(child)
        for child in children:
            row = {k: child[k] for k in ("code", "name", "level", "parent_code")}
            row["name_zh"] = chinese_name(child["name"])
            row["geom"] = city.union(child["blocks"])
            rows.append(row)
        progress("boundaries", len(children))
        parents = children
    gdf = gpd.GeoDataFrame(rows, geometry="geom").rename_geometry("geometry")
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    return gdf


def as_coverage(areas: gpd.GeoDataFrame, tol_m: float = 1e-3) -> gpd.GeoDataFrame:
    """Make the tiling a true coverage, so that it survives reprojection exactly.

    A vertex of one area lying in the middle of a neighbour's edge (a T-junction) opens thin
    gaps after reprojection: straight lines in UTM are not straight in lon/lat. Areas made of
    blocks share their borders vertex for vertex, except where a lane's end was added to a
    neighbouring block after that block's area was drawn (an upper level, or a grid of a
    community done before). Inserting every neighbour vertex into each grid's edges (GEOS
    snapping), then rebuilding the upper levels as coverage unions of their grids, gives
    every shared edge the same vertices on both sides.
    """
    grids = areas[areas.level == "grid"]
    geoms = grids.geometry.to_numpy()
    vertices = shapely.points(np.unique(shapely.get_coordinates(geoms), axis=0))
    tree = shapely.STRtree(vertices)
    noded = np.empty(len(geoms), dtype=object)
    for i, geom in enumerate(geoms):
        near = tree.query(geom.boundary, predicate="dwithin", distance=tol_m)
        noded[i] = shapely.snap(geom, shapely.multipoints(vertices[near]), tol_m)
    if not shapely.coverage_is_valid(noded):
        raise RuntimeError("demo city grids do not form a valid coverage")
    out = areas.copy()
    out.loc[grids.index, "geometry"] = noded
    for level, depth in (("community", 3), ("street", 2), ("district", 1)):
        prefix = grids.code.str.split("-").str[:depth].str.join("-")
        unions = {
            code: shapely.coverage_union_all(noded[(prefix == code).to_numpy()])
            for code in prefix.unique()
        }
        rows = out.level == level
        out.loc[rows, "geometry"] = out.loc[rows, "code"].map(unions)
    return out
