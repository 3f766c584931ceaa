"""Atoms of a redistricting plan: H3 cells clipped to an area, their adjacency and positions,
and the shape measures of the grids made from them. Pure geometry: no database, no HTTP.

Geometries are shapely 2 objects in WGS84 (EPSG:4326, lon/lat degrees); anything measured
in metres is first projected to a metric CRS the caller passes (the area's UTM zone,
``local_utm``).
"""

from __future__ import annotations

import functools
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pyproj
import shapely


def atomize(area: Any, res: int) -> tuple[list[int], np.ndarray]:
    """H3 cells of resolution ``res`` clipped to ``area``: the cells and their pieces.

    Every cell that overlaps the area is cut to it, so the pieces tile the area exactly
    (no gap, no overlap); cells whose piece is empty or has no area are left out.

    Parameters
    ----------
    area : shapely.Polygon or shapely.MultiPolygon
        The area, WGS84 lon/lat.
    res : int
        H3 resolution (the service uses 9, 10 or 11: about 0.1, 0.015 and 0.002 km2 a cell).

    Returns
    -------
    cells : list of int, length n
        The H3 cells as 64-bit integers, in the order of their string ids.
    pieces : numpy.ndarray of shapely geometries, shape (n,)
        Each cell intersected with ``area``, WGS84.

    Examples
    --------
    >>> import shapely
    >>> box = shapely.box(114.30, 30.59, 114.31, 30.60)  # about 1 km x 1.1 km in Wuhan
    >>> cells, pieces = atomize(box, 9)
    >>> len(cells), pieces.shape
    (20, (20,))
    >>> round(shapely.union_all(pieces).area / box.area, 6)  # the pieces tile the box
    1.0
    """
    cells: set[str] = set()
    for poly in getattr(area, "geoms", [area]):
        if poly.is_empty:
            continue
        shape = h3.geo_to_h3shape(poly.__geo_interface__)
        cells.update(h3.h3shape_to_cells_experimental(shape, res, contain="overlap"))
    ordered = sorted(cells)
    hexes = shapely.polygons([[(lng, lat) for lat, lng in h3.cell_to_boundary(c)] for c in ordered])
    pieces = shapely.intersection(hexes, area)
    keep = ~shapely.is_empty(pieces) & (shapely.area(pieces) > 0)
    return [h3.str_to_int(c) for c, k in zip(ordered, keep, strict=True) if k], pieces[keep]


def hex_neighbours(cells: list[int]) -> list[list[int]]:
    """For each cell, the positions of its H3 neighbours among ``cells``.

    Parameters
    ----------
    cells : list of int, length n
        H3 cells as 64-bit integers, all of one resolution.

    Returns
    -------
    list of list of int, length n
        The adjacency list ``analytics.regionalize.partition`` takes (symmetric; at most 6
        neighbours a cell).

    Examples
    --------
    >>> import h3
    >>> centre = h3.latlng_to_cell(30.59, 114.30, 9)
    >>> cells = [h3.str_to_int(c) for c in sorted(h3.grid_disk(centre, 1))]
    >>> [len(nb) for nb in hex_neighbours(cells)]  # the centre touches all six others
    [3, 3, 3, 3, 6, 3, 3]
    """
    index_of = {c: i for i, c in enumerate(cells)}
    return [
        [
            index_of[h3.str_to_int(j)]
            for j in h3.grid_ring(h3.int_to_str(c), 1)
            if h3.str_to_int(j) in index_of
        ]
        for c in cells
    ]


def local_utm(area: Any) -> Any:
    """The UTM zone of a WGS84 geometry, where areas and distances are in metres.

    Parameters
    ----------
    area : shapely geometry
        WGS84 lon/lat.

    Returns
    -------
    pyproj.CRS

    Examples
    --------
    >>> import shapely
    >>> local_utm(shapely.box(114.30, 30.59, 114.31, 30.60)).to_epsg()
    32650
    """
    # The zone of the centre (as pyproj's estimate, which queries its database each call:
    # 70 ms, a tenth of a small proposal); the zone's CRS built once.
    centre = shapely.centroid(area)
    zone = min(int((centre.x + 180) // 6) + 1, 60)
    return _utm_crs((32700 if centre.y < 0 else 32600) + zone)


@functools.lru_cache(maxsize=64)
def _utm_crs(epsg: int) -> Any:
    return pyproj.CRS.from_epsg(epsg)


def areas_km2(pieces: np.ndarray, crs: Any) -> np.ndarray:
    """Area of each WGS84 polygon in km2, measured in the metric ``crs``.

    Parameters
    ----------
    pieces : numpy.ndarray of shapely geometries, shape (n,)
        WGS84 polygons.
    crs : pyproj.CRS or str
        A metric CRS (e.g. ``local_utm``).

    Returns
    -------
    numpy.ndarray, shape (n,)
        km2.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> box = shapely.box(114.30, 30.59, 114.31, 30.60)
    >>> areas_km2(np.array([box]), local_utm(box)).round(3).tolist()
    [1.064]
    """
    return gpd.GeoSeries(pieces, crs="EPSG:4326").to_crs(crs).area.to_numpy() / 1e6


def centroids_xy(pieces: np.ndarray, crs: Any) -> np.ndarray:
    """Centroid of each WGS84 polygon, as x, y in the metric ``crs``.

    Parameters
    ----------
    pieces : numpy.ndarray of shapely geometries, shape (n,)
        WGS84 polygons.
    crs : pyproj.CRS or str
        A metric CRS (e.g. ``local_utm``).

    Returns
    -------
    numpy.ndarray, shape (n, 2)
        Metres (easting, northing).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> box = shapely.box(114.30, 30.59, 114.31, 30.60)
    >>> centroids_xy(np.array([box]), local_utm(box)).round(-2).tolist()
    [[241600.0, 3387800.0]]
    """
    return np.column_stack(
        gpd.GeoSeries(shapely.centroid(pieces), crs="EPSG:4326")
        .to_crs(crs)
        .pipe(lambda s: (s.x.to_numpy(), s.y.to_numpy()))
    )


def grid_of_atoms(pieces: np.ndarray, grids: np.ndarray) -> np.ndarray:
    """Today's grid of each atom: the one holding the atom's interior point (0 when none).

    Parameters
    ----------
    pieces : numpy.ndarray of shapely geometries, shape (n,)
        The atoms, WGS84.
    grids : numpy.ndarray of shapely geometries, shape (g,)
        Today's grids, WGS84.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        Position of each atom's grid in ``grids``.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> atoms = shapely.box([0, 1, 5], [0, 0, 5], [1, 2, 6], [1, 1, 6])  # the third in no grid
    >>> grid_of_atoms(atoms, shapely.box([1, 0], [0, 0], [3, 1], [1, 1])).tolist()
    [1, 0, 0]
    """
    inner = shapely.point_on_surface(pieces)
    hit_atom, hit_grid = shapely.STRtree(grids).query(inner, predicate="intersects")
    current = np.full(len(pieces), -1)
    current[hit_atom] = hit_grid
    current[current < 0] = 0
    return current


def polygon_parts(geom: Any) -> list[Any]:
    """The polygons of a geometry that have an area (lines and points left out).

    Parameters
    ----------
    geom : shapely geometry

    Returns
    -------
    list of shapely.Polygon

    Examples
    --------
    >>> import shapely
    >>> mixed = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.Point(5, 5)])
    >>> [p.area for p in polygon_parts(mixed)]
    [1.0]
    """
    return [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon" and g.area > 0]


def one_piece_each(geoms: list[Any]) -> np.ndarray:
    """Make each grid one piece where it can be.

    Stray parts of a grid (where the parent's edge cuts an atom in two, or two atoms that
    are H3 neighbours meet only outside the parent) go to the grid they share the longest
    border with; the largest part stays. Parts touching no other grid (an island of the
    parent) stay where they are. At most five rounds.

    Parameters
    ----------
    geoms : list of shapely geometries, length g
        The grids, WGS84 (any CRS works: only lengths are compared).

    Returns
    -------
    numpy.ndarray of shapely geometries, shape (g,)
        The grids, made valid; together they cover the same ground.

    Examples
    --------
    >>> import shapely
    >>> split = shapely.union(shapely.box(0, 0, 2, 1), shapely.box(3, 0, 4, 1))  # two parts
    >>> island = shapely.box(10, 10, 11, 11)
    >>> fixed = one_piece_each([split, shapely.union(shapely.box(2, 0, 3, 1), island)])
    >>> [int(shapely.get_num_geometries(g)) for g in fixed], [g.area for g in fixed]
    ([1, 2], [2.0, 3.0])
    """
    geoms = list(geoms)
    for _ in range(5):
        changed = False
        for r, geom in enumerate(geoms):
            parts = sorted(polygon_parts(geom), key=lambda g: -g.area)
            if len(parts) <= 1:
                continue
            keep = [parts[0]]
            for part in parts[1:]:
                border = [
                    0.0 if s == r else shapely.intersection(part.boundary, other.boundary).length
                    for s, other in enumerate(geoms)
                ]
                s = int(np.argmax(border))
                if border[s] > 0:
                    geoms[s] = shapely.union(geoms[s], part)
                    changed = True
                else:
                    keep.append(part)
            geoms[r] = shapely.union_all(keep)
        if not changed:
            break
    return np.array([shapely.make_valid(g) for g in geoms], dtype=object)


def polsby_popper(geoms: np.ndarray, crs: Any) -> np.ndarray:
    """Compactness of each polygon: 4 pi area / perimeter^2 (1 for a circle).

    Source: Polsby & Popper (1991), "The third criterion: compactness as a procedural
    safeguard against partisan gerrymandering", Yale Law & Policy Review 9(2).

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries, shape (g,)
        WGS84 polygons.
    crs : pyproj.CRS or str
        A metric CRS in which area and perimeter are measured (e.g. ``local_utm``).

    Returns
    -------
    numpy.ndarray, shape (g,)
        Unitless, in (0, 1].

    Examples
    --------
    >>> import numpy as np, shapely
    >>> square = shapely.box(114.30, 30.59, 114.31, 30.60)
    >>> disc = shapely.Point(114.30, 30.60).buffer(0.01)
    >>> polsby_popper(np.array([square, disc]), local_utm(square)).round(3).tolist()
    [0.781, 0.991]
    """
    metric = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(crs)
    return (4 * np.pi * metric.area / metric.length**2).to_numpy()


# Faces thinner than this (area over perimeter, metres) or smaller than SLIVER_M2 are slivers
# between a road and a border drawn a little beside it, not blocks: they join a neighbour.
SLIVER_WIDTH_M = 2.0
SLIVER_M2 = 100.0
# Lines this close to the area's border (degrees, ~0.5 m) are snapped onto it first, so a road
# that is the border leaves no sliver at all.
SNAP_DEG = 5e-6


def street_blocks(area: Any, lines: np.ndarray, crs: Any) -> np.ndarray:
    """The blocks of ``area``: the faces its road lines cut it into.

    The lines are clipped to the area, snapped onto its border where they run along it, noded
    with the border and polygonized; faces outside the area (its holes) are left out, and
    slivers (thinner than ``SLIVER_WIDTH_M`` or smaller than ``SLIVER_M2``) join the
    neighbouring block they share the longest border with. Dead ends cut nothing. With no
    lines the area is one block.

    Parameters
    ----------
    area : shapely.Polygon or shapely.MultiPolygon
        The area, WGS84 lon/lat.
    lines : numpy.ndarray of shapely geometries, shape (m,)
        Road centre lines (any that touch the area), WGS84.
    crs : pyproj.CRS or str
        A metric CRS (e.g. ``local_utm``) for the sliver test.

    Returns
    -------
    numpy.ndarray of shapely.Polygon, shape (b,)
        The blocks, WGS84, each one polygon; they tile the area (no gap, no overlap, to
        floating point).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> box = shapely.box(114.30, 30.59, 114.31, 30.60)
    >>> cross = np.array([shapely.LineString([(114.305, 30.58), (114.305, 30.61)]),
    ...                   shapely.LineString([(114.29, 30.595), (114.32, 30.595)]),
    ...                   shapely.LineString([(114.301, 30.591), (114.302, 30.592)])])  # dead end
    >>> blocks = street_blocks(box, cross, local_utm(box))
    >>> len(blocks), round(float(shapely.area(blocks).sum() / box.area), 9)
    (4, 1.0)
    """
    lines = np.asarray(lines, dtype=object)
    border = shapely.boundary(area)
    if len(lines):
        lines = shapely.intersection(shapely.snap(lines, border, SNAP_DEG), area)
        lines = lines[~shapely.is_empty(lines)]
    if not len(lines):
        return np.array([area], dtype=object)
    linework = shapely.union_all(np.concatenate([lines, [border]]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    faces = faces[shapely.within(shapely.point_on_surface(faces), area)]
    faces = shapely.make_valid(shapely.intersection(faces, area))
    faces = np.array([g for f in faces for g in polygon_parts(f)], dtype=object)
    merged = _merge_slivers(faces, crs)
    return np.array([g for f in merged for g in polygon_parts(shapely.make_valid(f))], dtype=object)


def _merge_slivers(faces: np.ndarray, crs: Any) -> np.ndarray:
    """Join each sliver to the face it shares the longest border with (see ``street_blocks``)."""
    metric = gpd.GeoSeries(faces, crs="EPSG:4326").to_crs(crs)
    area, perimeter = metric.area.to_numpy(), metric.length.to_numpy()
    sliver = (area < SLIVER_M2) | (area < SLIVER_WIDTH_M * perimeter)
    if sliver.all() or not sliver.any():
        return faces
    faces = faces.copy()
    owner = np.arange(len(faces))
    tree = shapely.STRtree(faces)
    for i in np.flatnonzero(sliver)[np.argsort(area[sliver])]:
        near = [j for j in tree.query(faces[i], predicate="intersects") if not sliver[j]]
        if not near:
            continue  # a sliver alone (an island): it stays a block of its own
        shared = shapely.length(shapely.intersection(faces[i].boundary, faces[near]))
        if shared.max() <= 0:
            continue
        j = owner[near[int(np.argmax(shared))]]
        owner[i] = j
    groups: dict[int, list[int]] = {}
    for i, j in enumerate(owner):
        groups.setdefault(int(j), []).append(i)
    return np.array(
        [shapely.union_all(faces[members]) for _, members in sorted(groups.items())], dtype=object
    )


def fragments(blocks: np.ndarray, res: int) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Each block cut by the H3 cells of ``res``: the pieces a heavy block splits into.

    Parameters
    ----------
    blocks : numpy.ndarray of shapely geometries, shape (b,)
        Blocks (``street_blocks``), WGS84.
    res : int
        H3 resolution (9, 10 or 11 in the service).

    Returns
    -------
    pieces : numpy.ndarray of shapely.Polygon, shape (f,)
        The fragments, WGS84, each one polygon; together they tile the blocks.
    cells : list of int, length f
        The H3 cell of each fragment (64-bit integer).
    block : numpy.ndarray of int, shape (f,)
        The block each fragment lies in.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> halves = np.array([shapely.box(114.30, 30.59, 114.305, 30.60),
    ...                    shapely.box(114.305, 30.59, 114.31, 30.60)])
    >>> pieces, cells, block = fragments(halves, 9)
    >>> len(pieces) > len(halves), sorted(set(block.tolist()))
    (True, [0, 1])
    """
    cells, hexes = atomize(shapely.union_all(blocks), res)
    hexes = shapely.polygons(
        [[(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(c))] for c in cells]
    )
    block, cell = shapely.STRtree(hexes).query(blocks, predicate="intersects")
    pieces = shapely.intersection(blocks[block], hexes[cell])
    # one polygon each: a cell can cut a bent block in two, and an atom in two pieces would
    # let a grid that is connected on the atom graph fall apart on the map
    parts = [polygon_parts(g) for g in pieces]
    count = np.array([len(x) for x in parts], dtype=int)
    pieces = np.array([g for x in parts for g in x], dtype=object)
    block, cell = np.repeat(block, count), np.repeat(cell, count)
    # a block too small for any cell's overlap test: the block is its own fragment
    alone = np.setdiff1d(np.arange(len(blocks)), block)
    pieces = np.concatenate([pieces, blocks[alone]])
    found = [cells[c] for c in cell.tolist()]
    found += [h3.str_to_int(_cell_of(g, res)) for g in blocks[alone]]
    return pieces, found, np.concatenate([block, alone]).astype(int)


def _cell_of(geom: Any, res: int) -> str:
    point = shapely.point_on_surface(geom)
    return h3.latlng_to_cell(point.y, point.x, res)


def shared_borders(
    pieces: np.ndarray, min_shared_deg: float = 1e-6
) -> tuple[list[list[int]], list[list[float]]]:
    """For each polygon, the polygons it shares a border with and how long each border is.

    Polygons that meet at a point only are not neighbours (as H3 edge neighbours); borders
    that agree to within about a centimetre count as shared. Lengths are in metres on the
    local plane (degrees scaled at the pieces' mean latitude: within 0.5% over a city).

    Parameters
    ----------
    pieces : numpy.ndarray of shapely geometries, shape (n,)
        Polygons that tile an area, WGS84.
    min_shared_deg : float
        Shortest shared border that counts, in degrees (1e-6: about 0.1 m).

    Returns
    -------
    neighbours : list of list of int, length n
        Symmetric adjacency lists, ``analytics.regionalize.partition``'s ``neighbours``.
    lengths : list of list of float, length n
        The length of each of those borders, metres (``partition``'s ``edge_lengths``).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> tiles = shapely.box([0, 0.01, 0.01], [0, 0, 0.01], [0.01, 0.02, 0.02], [0.01, 0.01, 0.02])
    >>> neighbours, lengths = shared_borders(tiles)  # two below, one above (1.1 km squares)
    >>> neighbours, [[round(x) for x in row] for row in lengths]
    ([[1], [0, 2], [1]], [[1106], [1106, 1113], [1113]])
    """
    left, right = shapely.STRtree(pieces).query(pieces, predicate="dwithin", distance=1e-9)
    pairs = left < right
    left, right = left[pairs], right[pairs]
    # Exactly shared edges (a coverage's) meet in lines. Edges that agree only to floating
    # point meet in points (2 pairs in 55,000 on a demo community): a piece left with no
    # neighbour at all is measured again against a hair's buffer.
    lines = shapely.intersection(shapely.boundary(pieces[left]), shapely.boundary(pieces[right]))
    shared = shapely.length(lines)
    found = np.zeros(len(pieces), dtype=bool)
    found[left[shared > min_shared_deg]] = found[right[shared > min_shared_deg]] = True
    loose = np.flatnonzero(~found[left] | ~found[right])
    if len(loose):
        lines[loose] = shapely.intersection(
            shapely.boundary(pieces[left[loose]]), shapely.buffer(pieces[right[loose]], 1e-9)
        )
        shared[loose] = shapely.length(lines[loose])
    keep = shared > min_shared_deg
    lat = np.radians(shapely.get_coordinates(pieces)[:, 1].mean()) if len(pieces) else 0.0
    scale = np.array([111_320.0 * np.cos(lat), 110_574.0])  # metres per degree
    metres = shapely.length(shapely.transform(lines[keep], lambda xy: xy * scale))
    neighbours: list[list[int]] = [[] for _ in range(len(pieces))]
    lengths: list[list[float]] = [[] for _ in range(len(pieces))]
    for i, j, m in zip(left[keep].tolist(), right[keep].tolist(), metres.tolist(), strict=True):
        neighbours[i].append(j)
        neighbours[j].append(i)
        lengths[i].append(m)
        lengths[j].append(m)
    order = [np.argsort(nb, kind="stable") for nb in neighbours]
    return (
        [[nb[k] for k in o] for nb, o in zip(neighbours, order, strict=True)],
        [[ln[k] for k in o] for ln, o in zip(lengths, order, strict=True)],
    )


def border_on_lines_share(
    geoms: np.ndarray, outer: Any, lines: np.ndarray, crs: Any, within_m: float = 1.0
) -> float | None:
    """Share of the borders between ``geoms`` (not their outer edge) lying on ``lines``.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries, shape (g,)
        Polygons tiling ``outer`` (grids of a parent), WGS84.
    outer : shapely geometry
        What they tile (the parent); its border is not theirs to draw.
    lines : numpy.ndarray of shapely geometries, shape (m,)
        Road centre lines, WGS84.
    crs : pyproj.CRS or str
        A metric CRS (e.g. ``local_utm``).
    within_m : float
        How close to a line a border must run to lie on it, metres.

    Returns
    -------
    float or None
        0..1 of the inner border length, rounded to 4 decimals; None when there is no inner
        border (one grid) or no line.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> box = shapely.box(114.30, 30.59, 114.31, 30.60)
    >>> halves = np.array([shapely.box(114.30, 30.59, 114.305, 30.60),
    ...                    shapely.box(114.305, 30.59, 114.31, 30.60)])
    >>> road = np.array([shapely.LineString([(114.305, 30.58), (114.305, 30.595)])])
    >>> border_on_lines_share(halves, box, road, local_utm(box))  # half the cut is on it
    0.5
    """
    if len(geoms) < 2 or not len(lines):
        return None
    frame = (
        gpd.GeoSeries(np.concatenate([geoms, [outer], lines]), crs="EPSG:4326")
        .to_crs(crs)
        .to_numpy()
    )
    g, edge, roads = frame[: len(geoms)], frame[len(geoms)], frame[len(geoms) + 1 :]
    # The inner borders in pieces of at most 5 m, each on a road when its middle is.
    inner = shapely.segmentize(shapely.union_all(shapely.boundary(g)), 5.0)
    coords = [shapely.get_coordinates(part) for part in shapely.get_parts(inner)]
    a_xy = np.concatenate([c[:-1] for c in coords])
    b_xy = np.concatenate([c[1:] for c in coords])
    middle = shapely.points((a_xy + b_xy) / 2)
    length = np.hypot(*(b_xy - a_xy).T)
    rim = shapely.boundary(edge)
    shapely.prepare(rim)  # one line tested against every middle
    on_edge = shapely.dwithin(rim, middle, within_m)
    total = length[~on_edge].sum()
    if total <= 0:
        return None
    hit, _ = shapely.STRtree(roads).query(middle, predicate="dwithin", distance=within_m)
    on_road = np.zeros(len(middle), dtype=bool)
    on_road[hit] = True
    on = length[on_road & ~on_edge].sum()
    return round(float(on / total), 4)
