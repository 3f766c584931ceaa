"""Atoms of a redistricting plan: H3 cells clipped to an area, their adjacency and positions,
and the shape measures of the grids made from them. Pure geometry: no database, no HTTP.

Geometries are shapely 2 objects in WGS84 (EPSG:4326, lon/lat degrees); anything measured
in metres is first projected to a metric CRS the caller passes (the area's UTM zone,
``local_utm``).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import h3
import numpy as np
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
    return gpd.GeoSeries([area], crs="EPSG:4326").estimate_utm_crs()


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
