"""H3 helpers on numpy arrays. Cells are stored as bigint (the H3 index's 64 bits fit int64)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import h3.api.basic_int as h3i
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message

if TYPE_CHECKING:
    from geo_service.geo.bbox import BBox

STORED_RESOLUTION = 11
# Resolutions served by heatmaps, hot spots, tiles and batch runs. H3's hierarchy does not
# nest exactly (a child's hexagon pokes out of its parent's), so each point stores its own
# cell at each of them (``incidents.h3_6`` .. ``h3_10``), never a parent of the res-11 cell.
EXACT_RESOLUTIONS = range(6, 11)


def check_served_resolution(res: int) -> None:
    """Refuse a resolution the layers do not serve (``EXACT_RESOLUTIONS``, 6..10).

    >>> check_served_resolution(11)
    Traceback (most recent call last):
    ...
    geo_service.errors.InvalidInputError: res must be 6..10
    """
    if res not in EXACT_RESOLUTIONS:
        raise InvalidInputError(
            format_message(
                "res must be {start}..{value}",
                start=EXACT_RESOLUTIONS.start,
                value=EXACT_RESOLUTIONS.stop - 1,
            )
        )


# Households and rental units store their own cells at these (``h3_5`` .. ``h3_10``, 0025):
# the resolutions their aggregates serve (5..10) and planning atoms read (9, 10; 11 is ``h3``).
RESIDENT_RESOLUTIONS = range(5, 11)
# How far a cell's vertices reach from its centre, in km, per resolution: the average edge
# length (a regular hexagon's circumradius) times 1.5 (H3's distortion measures at most 1.1).
_REACH_KM = np.array([1.5 * h3i.average_hexagon_edge_length(r, "km") for r in range(16)])
_KM_PER_DEGREE = 111.195  # along a meridian on H3's sphere (radius 6371.007 km)


def cells_for_points(
    lon: ArrayLike, lat: ArrayLike, res: int = STORED_RESOLUTION
) -> NDArray[np.int64]:
    """H3 cell (as int64) of each point.

    h3-py 4 has no array API for indexing; its C call costs ~0.5 us a point, so a list
    comprehension over 1M points takes ~0.5 s, which is acceptable for bulk loads.

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        Points in EPSG:4326 degrees (H3 reads them as on its sphere, as every H3 user does).
    res : int, default STORED_RESOLUTION (11)
        H3 resolution 0..15 (res 11: hexagons of about 29 m edge).

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        The cell of each point, as the 64-bit H3 index (``h3.api.basic_int``).

    Raises
    ------
    h3.H3BaseException
        For a latitude or longitude that is not finite, or a resolution outside 0..15.

    Examples
    --------
    >>> int(cells_for_points([114.30], [30.59])[0]) == h3i.latlng_to_cell(30.59, 114.30, 11)
    True
    """
    lon_list = np.asarray(lon, dtype=float).tolist()
    lat_list = np.asarray(lat, dtype=float).tolist()
    fn = h3i.latlng_to_cell
    return np.fromiter(
        (fn(b, a, res) for a, b in zip(lon_list, lat_list, strict=True)),
        dtype=np.int64,
        count=len(lon_list),
    )


def exact_column(res: int) -> str:
    """The column of ``incidents`` holding each point's own cell at ``res``.

    Parameters
    ----------
    res : int
        A served resolution (``EXACT_RESOLUTIONS``, 6..10) or ``STORED_RESOLUTION`` (11).

    Returns
    -------
    str
        ``h3_<res>``, or ``h3`` for resolution 11; an identifier of a fixed set, safe to
        place in SQL text.

    Raises
    ------
    ValueError
        For any other resolution.

    Examples
    --------
    >>> exact_column(8), exact_column(11)
    ('h3_8', 'h3')
    """
    return _cell_column(res, EXACT_RESOLUTIONS, "cells")


def _cell_column(res: int, stored: Iterable[int], what: str) -> str:
    """``h3`` for ``STORED_RESOLUTION``, ``h3_<res>`` for one of ``stored``; else ValueError."""
    if res == STORED_RESOLUTION:
        return "h3"
    if res not in stored:
        raise ValueError(f"no stored {what} at resolution {res}")
    return f"h3_{res}"


def resident_cell_column(res: int) -> str:
    """The column of ``households`` and ``rental_units`` holding each home's cell at ``res``.

    Parameters
    ----------
    res : int
        ``RESIDENT_RESOLUTIONS`` (5..10) or ``STORED_RESOLUTION`` (11).

    Returns
    -------
    str
        ``h3_<res>`` (``h3.latlng_to_cell`` at ``res``, migration 0025), or ``h3`` for 11: an
        identifier of a fixed set, safe in SQL text.

    Raises
    ------
    ValueError
        For any other resolution.

    Examples
    --------
    >>> resident_cell_column(9), resident_cell_column(11)
    ('h3_9', 'h3')
    """
    return _cell_column(res, RESIDENT_RESOLUTIONS, "home cells")


def exact_cells(
    lon: ArrayLike, lat: ArrayLike, resolutions: range = EXACT_RESOLUTIONS
) -> dict[str, NDArray[np.int64]]:
    """Each point's own cell at every served resolution (6..10), keyed by column name.

    ``h3.latlng_to_cell`` at each resolution (the cell whose hexagon contains the point),
    not the parents of the res-11 cell: H3's aperture-7 hierarchy does not nest exactly,
    and about 7% of city points lie outside their res-11 cell's res-8 parent.
    Costs ~0.6 us a point and resolution (5 calls a point: ~3 s for 1M points); the res-11
    cell (``h3``) is ``cells_for_points``.

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        Points in EPSG:4326 degrees.
    resolutions : range, default EXACT_RESOLUTIONS (6..10)
        The resolutions to index; ``RESIDENT_RESOLUTIONS`` (5..10) for households and
        rental units.

    Returns
    -------
    dict of str to numpy.ndarray of int64, shape (n,)
        ``{"h3_6": ..., "h3_10": ...}`` (see ``exact_column``): the columns of
        ``incidents`` a writer fills besides ``h3`` (``h3_5`` .. ``h3_10`` of households and
        rental units with ``RESIDENT_RESOLUTIONS``).

    Raises
    ------
    h3.H3BaseException
        For a latitude or longitude that is not finite.

    Examples
    --------
    >>> cells = exact_cells([-87.6684], [41.8008])
    >>> cell_to_str(cells["h3_8"][0])  # the cell containing the point
    '882664cd59fffff'
    >>> fine = cells_for_points([-87.6684], [41.8008])
    >>> cell_to_str(parent_cells(fine, 8)[0])  # not the parent of its res-11 cell
    '882664cd5dfffff'
    >>> list(exact_cells([-87.6684], [41.8008], RESIDENT_RESOLUTIONS))
    ['h3_5', 'h3_6', 'h3_7', 'h3_8', 'h3_9', 'h3_10']
    """
    return {f"h3_{res}": cells_for_points(lon, lat, res) for res in resolutions}


def resolution_range(res: int) -> tuple[int, int]:
    """The [low, high) range of 64-bit H3 cell indexes at ``res``: a range predicate.

    A cell index starts with 0 (reserved), mode 1 (cell) and three reserved zero bits, then
    the resolution in bits 52-55 (H3 index format), so the cells of one resolution are one
    contiguous integer range, and ``cell >= low AND cell < high`` picks them in a table
    holding cells of several resolutions (a B-tree range scan).

    Parameters
    ----------
    res : int
        H3 resolution 0..15.

    Returns
    -------
    tuple of int
        (low, high), the first index of ``res`` and the first of ``res + 1``.

    Examples
    --------
    >>> low, high = resolution_range(8)
    >>> low <= h3i.latlng_to_cell(41.8, -87.7, 8) < high
    True
    >>> low <= h3i.latlng_to_cell(41.8, -87.7, 9) < high
    False
    """
    return (0x80 + res) << 52, (0x80 + res + 1) << 52


def cell_to_str(cell: int) -> str:
    """The usual hexadecimal string form of a cell stored as int.

    Parameters
    ----------
    cell : int
        An H3 cell as its 64-bit integer.

    Returns
    -------
    str
        The 15-character hexadecimal form (as h3-js, DuckDB and the H3 docs print it).

    Examples
    --------
    >>> cell_to_str(627137689978019839)
    '8b40a6804661fff'
    """
    return h3i.int_to_str(int(cell))


def parent_cells(cells: ArrayLike, res: int) -> NDArray[np.int64]:
    """Parents at ``res`` by bit operations (the same as the SQL function ``h3_parent``).

    Sets the resolution field (bits 52-55) to ``res`` and the digits below it to 7 (unused),
    as the H3 index format specifies, on the whole array at once.

    Parameters
    ----------
    cells : array_like of int64, shape (n,)
        H3 cells, any resolution at or finer than ``res``.
    res : int
        The parents' resolution, 0..15.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        Each cell's parent, equal to ``h3.cell_to_parent(cell, res)``; a coarser ``res``
        than a cell's own gives a meaningless index (not checked).

    Examples
    --------
    >>> parent_cells([627137689978019839], 8).tolist() == [
    ...     h3i.cell_to_parent(627137689978019839, 8)]
    True
    """
    c = np.asarray(cells, dtype=np.int64)
    cleared = c & ~np.int64(15 << 52)
    return cleared | np.int64(res << 52) | np.int64((1 << (3 * (15 - res))) - 1)


def cell_polygon(cell: int) -> dict[str, Any]:
    """A cell's outline as a closed GeoJSON Polygon (lon/lat order).

    Parameters
    ----------
    cell : int
        An H3 cell as its 64-bit integer.

    Returns
    -------
    dict
        A GeoJSON Polygon (RFC 7946): one ring of the cell's vertices, first repeated last
        (7 positions for a hexagon, 6 for a pentagon; more where it crosses an icosahedron
        edge).

    Examples
    --------
    >>> len(cell_polygon(627137689978019839)["coordinates"][0])
    7
    """
    ring = [[lng, lat] for lat, lng in h3i.cell_to_boundary(int(cell))]
    return {"type": "Polygon", "coordinates": [ring + ring[:1]]}


def cell_feature(cell: int, properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature for a cell: its outline, its id, and ``h3`` first among properties.

    Parameters
    ----------
    cell : int
        An H3 cell as its 64-bit integer.
    properties : dict
        Further properties, after ``h3``.

    Returns
    -------
    dict
        A GeoJSON Feature whose ``id`` and ``properties.h3`` are the cell's string form.

    Examples
    --------
    >>> feature = cell_feature(613626891097604095, {"count": 3})
    >>> feature["id"], feature["properties"]
    ('8840a68047fffff', {'h3': '8840a68047fffff', 'count': 3})
    """
    name = h3i.int_to_str(int(cell))
    return {
        "type": "Feature",
        "id": name,
        "geometry": cell_polygon(cell),
        "properties": {"h3": name, **properties},
    }


def cells_in_bbox(cells: ArrayLike, bbox: BBox) -> NDArray[np.bool_]:
    """Whether each cell's hexagon intersects a WGS84 box: the one meaning of "cell in bbox".

    A cell is in the box when its outline (the polygon through its vertices in lon/lat, as
    stored in ``h3_cells``) shares any point with the box, the way a GIS user reads a
    bbox filter: a box touching three hexagons holds those three even when it holds none of
    their centres. Cells whose centre is inside are in; cells too far from the box for any
    vertex to reach it are out; only the cells in between are tested polygon by polygon.

    Parameters
    ----------
    cells : array_like of int64, shape (n,)
        H3 cells as integers, any mix of resolutions.
    bbox : BBox
        The box (degrees, EPSG:4326), not crossing the antimeridian.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True where the cell's hexagon intersects the box (edges and corners count).

    Examples
    --------
    >>> from geo_service.geo.bbox import BBox
    >>> cell = h3i.latlng_to_cell(30.59, 114.30, 8)
    >>> lat, lng = h3i.cell_to_boundary(cell)[0]  # a vertex, shared by three hexagons
    >>> corner = BBox(lng - 1e-5, lat - 1e-5, lng + 1e-5, lat + 1e-5)
    >>> around = np.array(h3i.grid_disk(cell, 2), dtype=np.int64)
    >>> int(cells_in_bbox(around, corner).sum())
    3
    >>> cells_in_bbox([cell], BBox(0.0, 0.0, 1.0, 1.0)).tolist()
    [False]
    """
    c = np.asarray(cells, dtype=np.int64).reshape(-1)
    if not len(c):
        return np.zeros(0, dtype=bool)
    centres = np.array([h3i.cell_to_latlng(x) for x in c.tolist()], dtype=np.float64)
    lat, lng = centres[:, 0], centres[:, 1]
    inside = (lng >= bbox.minx) & (lng <= bbox.maxx) & (lat >= bbox.miny) & (lat <= bbox.maxy)
    reach_lat = _REACH_KM[(c >> 52) & 15] / _KM_PER_DEGREE
    # east-west degrees are longest at the cell's most poleward vertex
    cos_lat = np.cos(np.radians(np.minimum(np.abs(lat) + reach_lat, 90.0)))
    reach_lng = np.where(cos_lat > 1e-6, reach_lat / np.maximum(cos_lat, 1e-6), 360.0)
    near = ~inside
    near &= (lng >= bbox.minx - reach_lng) & (lng <= bbox.maxx + reach_lng)
    near &= (lat >= bbox.miny - reach_lat) & (lat <= bbox.maxy + reach_lat)
    out = inside
    if near.any():
        rings = [[(x, y) for y, x in h3i.cell_to_boundary(int(cell))] for cell in c[near]]
        box = shapely.box(bbox.minx, bbox.miny, bbox.maxx, bbox.maxy)
        out[near] = shapely.intersects(
            np.array([shapely.Polygon(r) for r in rings], dtype=object), box
        )
    return out
