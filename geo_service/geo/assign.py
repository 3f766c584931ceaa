"""Assign points to polygons (incidents, households, rental units to grids) in bulk.

``geopandas.sjoin`` (an STRtree query plus an exact predicate per candidate pair) is the
general tool. For the one question asked millions of times here -- which grid of a fixed tiling
holds each point -- a precomputed *cover raster* answers most points with two array lookups:

* The city's bounding box is cut into square pixels (default 1e-4 degrees, about 10 m).
* A quadtree pass labels each pixel with the one polygon that covers it entirely, with
  ``OUTSIDE`` when no polygon touches it, and ``MIXED`` when a boundary crosses it.
  Large blocks that lie inside one polygon are labelled at once, so only boundary pixels cost.
* Points in labelled pixels take the label; points in ``MIXED`` pixels (a few percent) get an
  exact STRtree ``intersects`` test. Ties on a shared edge go to the lowest id, the same rule as
  the SQL ``grid_at()`` function, so bulk and per-request assignment agree.

No library ships this (S2's RegionCoverer is the same idea for S2 cells, not for arbitrary
polygon tilings in numpy), hence the hand-written module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

OUTSIDE = -1
MIXED = -2
NO_GRID = -1


@dataclass
class GridIndex:
    """A cover raster over a set of polygons, for fast bulk point-in-polygon assignment.

    Build it with ``GridIndex.build``; the fields are the raster and what it was built from.

    Attributes
    ----------
    polygons : numpy.ndarray of shapely.Geometry, shape (n,)
        The (Multi)Polygons in EPSG:4326, sorted by id.
    ids : numpy.ndarray of int64, shape (n,)
        One id per polygon (the value returned for points inside it), ascending.
    x0, y0 : float
        Lower-left corner of the raster (degrees).
    pixel_deg : float
        Side of a pixel in degrees.
    labels : numpy.ndarray of int32, shape (rows, columns)
        Per pixel: the index of the polygon covering it, ``OUTSIDE`` or ``MIXED``.
    tree : shapely.STRtree
        Over ``polygons``, for the exact test in ``MIXED`` pixels.

    Examples
    --------
    >>> from shapely import box
    >>> index = GridIndex.build([box(0, 0, 1, 1), box(1, 0, 2, 1)], [10, 20], pixel_deg=0.01)
    >>> index.assign([0.5, 1.5, 3.0], [0.5, 0.5, 0.5]).tolist()
    [10, 20, -1]
    """

    polygons: NDArray[np.object_]
    ids: NDArray[np.int64]
    x0: float
    y0: float
    pixel_deg: float
    labels: NDArray[np.int32]
    tree: shapely.STRtree

    @classmethod
    def build(
        cls, polygons: ArrayLike, ids: ArrayLike, *, pixel_deg: float = 1e-4, top_level: int = 7
    ) -> GridIndex:
        """Build the cover raster; ``top_level`` is log2 of the coarsest block size in pixels.

        Parameters
        ----------
        polygons : array_like of shapely.Geometry, shape (n,)
            (Multi)Polygons in EPSG:4326 (lon/lat degrees), a tiling or any set.
        ids : array_like of int, shape (n,)
            One id per polygon; on a shared edge the lowest id wins (as SQL ``grid_at()``).
        pixel_deg : float, default 1e-4
            Side of a pixel in degrees (1e-4 is about 11 m north-south).
        top_level : int, default 7
            log2 of the side of the coarsest block in pixels (128 pixels at 7); blocks
            covered by one polygon are labelled whole, the others split in four.

        Returns
        -------
        GridIndex
            The index; memory is 4 bytes a pixel of the polygons' bounding box.

        Raises
        ------
        ValueError
            If ``polygons`` and ``ids`` differ in length.

        Examples
        --------
        >>> from shapely import box
        >>> index = GridIndex.build([box(0, 0, 1, 1)], [7], pixel_deg=0.01)
        >>> index.labels.shape, index.mixed_share < 0.05
        ((128, 128), True)
        """
        polys = np.asarray(polygons, dtype=object)
        id_arr = np.asarray(ids, dtype=np.int64)
        if len(polys) != len(id_arr):
            raise ValueError("polygons and ids differ in length")
        # Sort by id so that "first hit" is "lowest id" on shared edges.
        order = np.argsort(id_arr, kind="stable")
        polys, id_arr = polys[order], id_arr[order]
        shapely.prepare(polys)
        tree = shapely.STRtree(polys)
        minx, miny, maxx, maxy = shapely.total_bounds(polys)
        block = 1 << top_level
        nx = math.ceil((maxx - minx) / pixel_deg / block) * block
        ny = math.ceil((maxy - miny) / pixel_deg / block) * block
        labels = np.full((ny, nx), OUTSIDE, dtype=np.int32)
        index = cls(polys, id_arr, float(minx), float(miny), pixel_deg, labels, tree)
        index._label_blocks(top_level)
        return index

    def _label_blocks(self, top_level: int) -> None:
        ny, nx = self.labels.shape
        size = 1 << top_level
        gx, gy = np.meshgrid(np.arange(nx // size), np.arange(ny // size))
        bx, by = gx.ravel() * size, gy.ravel() * size  # block origins in pixels
        level = top_level
        while len(bx):
            boxes = shapely.box(
                self.x0 + bx * self.pixel_deg,
                self.y0 + by * self.pixel_deg,
                self.x0 + (bx + size) * self.pixel_deg,
                self.y0 + (by + size) * self.pixel_deg,
            )
            box_idx, poly_idx = self.tree.query(boxes, predicate="intersects")
            hits = np.bincount(box_idx, minlength=len(boxes))
            single = np.flatnonzero(hits == 1)
            # For blocks touching exactly one polygon: which one, and does it cover the block?
            first = np.full(len(boxes), -1, dtype=np.int64)
            first[box_idx[::-1]] = poly_idx[::-1]
            covered = np.zeros(len(boxes), dtype=bool)
            covered[single] = shapely.covers(self.polygons[first[single]], boxes[single])
            done = np.flatnonzero(covered)
            if len(done):
                # Paint whole blocks at once: block origin + broadcast offsets.
                off = np.arange(size)
                rows = by[done][:, None, None] + off[None, :, None]
                cols = bx[done][:, None, None] + off[None, None, :]
                self.labels[rows, cols] = first[done][:, None, None].astype(np.int32)
            unresolved = (hits > 0) & ~covered
            if level == 0:
                self.labels[by[unresolved], bx[unresolved]] = MIXED
                break
            # Split each unresolved block into its four children.
            size //= 2
            level -= 1
            ux, uy = bx[unresolved], by[unresolved]
            bx = np.concatenate([ux, ux + size, ux, ux + size])
            by = np.concatenate([uy, uy, uy + size, uy + size])

    @property
    def mixed_share(self) -> float:
        """Share of pixels inside the polygons that need an exact test (lower is faster)."""
        inside = self.labels != OUTSIDE
        return float((self.labels == MIXED).sum() / max(inside.sum(), 1))

    def assign(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.int64]:
        """Return the id of the polygon holding each point, or ``NO_GRID`` (-1) for none.

        Parameters
        ----------
        lon, lat : array_like of float, shape (n,)
            Points in EPSG:4326 degrees.

        Returns
        -------
        numpy.ndarray of int64, shape (n,)
            The id of the polygon that intersects each point (boundary included; the lowest
            id on a shared edge), ``NO_GRID`` where none does.

        Examples
        --------
        >>> from shapely import box
        >>> index = GridIndex.build([box(0, 0, 1, 1), box(1, 0, 2, 1)], [10, 20], pixel_deg=0.01)
        >>> index.assign([1.0, 0.5, 9.0], [0.5, 1.0, 9.0]).tolist()  # shared edge, edge, none
        [10, 10, -1]
        """
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        ny, nx = self.labels.shape
        ix = np.floor((lon - self.x0) / self.pixel_deg)
        iy = np.floor((lat - self.y0) / self.pixel_deg)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        label = np.full(lon.shape, OUTSIDE, dtype=np.int32)
        label[inside] = self.labels[iy[inside].astype(np.intp), ix[inside].astype(np.intp)]
        result = np.full(lon.shape, NO_GRID, dtype=np.int64)
        known = label >= 0
        result[known] = self.ids[label[known]]
        mixed = np.flatnonzero(label == MIXED)
        if len(mixed):
            points = shapely.points(lon[mixed], lat[mixed])
            pt_idx, poly_idx = self.tree.query(points, predicate="intersects")
            # query() returns pairs sorted by point; keep the lowest polygon index per point.
            best = np.full(len(mixed), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(best, pt_idx, poly_idx)
            hit = best != np.iinfo(np.int64).max
            result[mixed[hit]] = self.ids[best[hit]]
        return result
