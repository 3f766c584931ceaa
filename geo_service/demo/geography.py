"""The demo city's areas: district > street > community > grid, each level cut from its parent
by k-means on population points and a Voronoi split clipped to the parent, then made an exact
coverage so it survives reprojection."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import shapely
from scipy.cluster.vq import kmeans2

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


def _split_parent(
    rng: np.random.Generator, parent: shapely.Geometry, pts: np.ndarray, k: int
) -> tuple[list[shapely.Geometry], np.ndarray]:
    """Cut ``parent`` into k pieces around k-means centres of its population points.

    Returns the pieces and, for each point, the index of the piece it falls in.
    """
    if k == 1 or len(pts) <= k:
        return [parent], np.zeros(len(pts), dtype=int)
    centroids, _ = kmeans2(pts, k, minit="++", seed=rng, iter=15)
    # Drop centroids that coincide (empty clusters) by nudging them apart deterministically.
    centroids = centroids + rng.normal(0, 1e-3, centroids.shape)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(centroids), extend_to=shapely.box(*parent.buffer(1000).bounds)
    )
    cell_geoms = np.asarray(shapely.get_parts(cells))
    tree = shapely.STRtree(cell_geoms)
    seed_idx, cell_idx = tree.query(shapely.points(centroids), predicate="within")
    ordered = np.empty(k, dtype=object)
    ordered[seed_idx] = cell_geoms[cell_idx]
    pieces = list(shapely.intersection(ordered, parent))
    pieces = _merge_detached_parts(pieces)
    # Points go to the piece that contains them (nearest centre == Voronoi cell).
    member = np.full(len(pts), -1, dtype=int)
    piece_arr = np.asarray(pieces, dtype=object)
    ptree = shapely.STRtree(piece_arr)
    p_idx, g_idx = ptree.query(shapely.points(pts), predicate="intersects")
    member[p_idx] = g_idx
    if (member < 0).any():  # points exactly on a cut: nearest piece
        lost = np.flatnonzero(member < 0)
        member[lost] = ptree.query_nearest(shapely.points(pts[lost]), return_distance=False)[1]
    return pieces, member


def _merge_detached_parts(pieces: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Give every detached fragment of a piece to the sibling it shares the longest edge with.

    A Voronoi cell clipped to a non-convex parent can fall apart; a grid must be one piece.
    """
    result = list(pieces)
    for i, geom in enumerate(pieces):
        parts = list(shapely.get_parts(geom))
        if len(parts) <= 1:
            continue
        parts.sort(key=lambda g: -g.area)
        result[i] = parts[0]
        for fragment in parts[1:]:
            best, best_len = None, 0.0
            for j, other in enumerate(result):
                if j == i:
                    continue
                shared = fragment.boundary.intersection(other.boundary).length
                if shared > best_len:
                    best, best_len = j, shared
            if best is None:  # touches no sibling: keep it with its own piece
                result[i] = shapely.union(result[i], fragment)
            else:
                result[best] = shapely.union(result[best], fragment)
    return result


def _name(rng: np.random.Generator, level: str, used: set[str]) -> str:
    while True:
        a, b = rng.choice(len(SYLLABLES), 2, replace=False)
        name = f"{SYLLABLES[a]}{SYLLABLES[b].lower()}"
        if name not in used or len(used) > 800:
            used.add(name)
            return f"{name} {LEVEL_SUFFIX[level]}"


def build_hierarchy(
    rng: np.random.Generator,
    outline: shapely.Polygon,
    pop_x: np.ndarray,
    pop_y: np.ndarray,
    grids: int,
    progress: Callable[[str, int], None],
) -> gpd.GeoDataFrame:
    """Cut ``outline`` level by level into the area hierarchy (metric CRS, codes nested)."""
    counts = level_counts(grids)
    pts = np.column_stack([pop_x, pop_y])
    rows: list[dict] = []
    parents = [{"code": None, "geom": outline, "members": np.arange(len(pts))}]
    used: set[str] = set()
    for level in LEVELS:
        weights = np.array([len(p["members"]) for p in parents], dtype=float)
        per_parent = _allocate(counts[level], weights)
        children = []
        for parent, k in zip(parents, per_parent, strict=True):
            members = parent["members"]
            pieces, member = _split_parent(rng, parent["geom"], pts[members], int(k))
            for j, piece in enumerate(pieces):
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
                    "geom": piece,
                    "members": members[member == j],
                }
                children.append(child)
        for child in children:
            rows.append({k: child[k] for k in ("code", "name", "level", "parent_code", "geom")})
        progress("boundaries", len(children))
        parents = children
    gdf = gpd.GeoDataFrame(rows, geometry="geom").rename_geometry("geometry")
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    return gdf


def as_coverage(areas: gpd.GeoDataFrame, tol_m: float = 1e-3) -> gpd.GeoDataFrame:
    """Make the tiling a true coverage, so that it survives reprojection exactly.

    Voronoi cuts leave T-junctions: a vertex of one grid lying in the middle of a neighbour's
    edge (or its parent's). Straight lines in UTM are not straight in lon/lat, so after
    reprojection such a vertex sits metres off the neighbour's edge over long edges, and thin
    gaps open. Inserting every neighbour vertex into each grid's edges (GEOS snapping), then
    rebuilding the upper levels as coverage unions of their grids, gives every shared edge
    the same vertices on both sides.
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
