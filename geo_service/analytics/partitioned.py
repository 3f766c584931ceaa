"""Batch analytics over a partitioned GeoParquet dataset, one task per partition.

Every function here is pure (files and arrays in, frames out) and cheap to ship to a Dask
worker: the engines in ``services.batch`` run the same functions in-process or on a cluster,
so both give the same answer. Two kinds of task:

* per *file* (an H3 res-3 parent x month): read only the columns needed, filter rows by the
  time window, and reduce to counts (per cell, cell x bin, grid x category, old x new grid);
* per *block* of study cells (the cells under one res-3 parent) with a *halo*: the cells
  within k rings that belong to other blocks, so the Gi* neighbour sums at block edges are
  exact. The global moments (n, sum, sum of squares) are computed once and passed in.

Written by hand because dask-geopandas offers partitioned I/O and spatial joins, but no
neighbourhood statistics with halos; the statistic itself is ``analytics.hotspots``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import ArrayLike, NDArray

from geo_service.analytics.emerging import space_time_weights
from geo_service.analytics.hotspots import gi_star_z, h3_ring_weights
from geo_service.geo.h3cells import cells_for_points, exact_column, parent_cells

# Blocks of work group study cells by their res-3 parent: a partition of the work only (each
# cell is still its own exact cell, with every neighbour as halo), so a parent is fine here.
BLOCK_RES = 3


@dataclass(frozen=True)
class Moments:
    """What Gi* needs of the whole study area: cell count, sum and sum of squares.

    Attributes
    ----------
    n : int
        Number of values (cells, or cells x bins for a space-time cube), zeros included.
    total, sum_sq : float
        Their sum and sum of squares.
    """

    n: int
    total: float
    sum_sq: float

    @classmethod
    def of(cls, values: ArrayLike) -> Moments:
        """The moments of every value of the study area (zeros included).

        Parameters
        ----------
        values : array_like of float, shape (n,)
            One value per study cell (or per cell and bin), zeros included.

        Returns
        -------
        Moments
            ``n``, the sum and the sum of squares.

        Examples
        --------
        >>> Moments.of([0, 1, 2])
        Moments(n=3, total=3.0, sum_sq=5.0)
        """
        y = np.asarray(values, dtype=np.float64)
        return cls(len(y), float(y.sum()), float((y * y).sum()))


def _time_filter(since: datetime | None, until: datetime | None) -> Any:
    expr = None
    if since is not None:
        expr = pc.field("reported_at") >= since
    if until is not None:
        upper = pc.field("reported_at") < until
        expr = upper if expr is None else expr & upper
    return expr


def _read(path: str, columns: list[str], since, until, category: str | None = None) -> Any:  # noqa: ANN001
    """The needed columns of one partition file, rows inside the window (row groups outside it
    are skipped by their statistics)."""
    expr = _time_filter(since, until)
    if category is not None:
        match = pc.field("category") == category
        expr = match if expr is None else expr & match
    return pq.read_table(path, columns=columns, filters=expr)


def _cells_at(path: str, res: int, columns: list[str], since, until, category) -> Any:  # noqa: ANN001
    """The rows' own cells at ``res`` (``h3.latlng_to_cell``, never a parent: H3 does not
    nest exactly) and the table of ``columns``: the stored ``h3_<res>`` column when the file
    has it (exports since migration 0021), else indexed here from ``lon``/``lat``."""
    stored = exact_column(res)
    if stored in pq.read_schema(path).names:
        table = _read(path, [stored, *columns], since, until, category)
        return table.column(stored).to_numpy(), table
    table = _read(path, ["lon", "lat", *columns], since, until, category)
    lon, lat = table.column("lon").to_numpy(), table.column("lat").to_numpy()
    return cells_for_points(lon, lat, res), table


def cell_counts(
    path: str,
    res: int,
    since: datetime | None,
    until: datetime | None,
    category: str | None = None,
) -> pd.Series:
    """Incidents per H3 cell at ``res`` in one partition file (index: cell as int64).

    Parameters
    ----------
    path : str
        A partition file of the exported incidents (GeoParquet: ``h3_<res>``, or ``lon`` and
        ``lat``).
    res : int
        The H3 resolution to count at: each point in the cell that contains it.
    since, until : datetime or None
        The window [since, until) (open ends when None); row groups outside it are skipped.
    category : str, optional
        Count this category only.

    Returns
    -------
    pandas.Series
        int64 counts indexed by cell (int64), ascending; cells with none are absent.

    Examples
    --------
    >>> import pyarrow as pa, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "p.parquet")
    >>> pq.write_table(pa.table({"lon": [114.30, 114.30], "lat": [30.59, 30.59],
    ...     "reported_at": pa.array([0, 10**6], pa.timestamp("us", tz="UTC")),
    ...     "category": ["a", "b"]}), path)
    >>> counts = cell_counts(path, 8, None, None)
    >>> int(counts.index[0]) == h3i.latlng_to_cell(30.59, 114.30, 8), int(counts.iloc[0])
    (True, 2)
    """
    columns = ["reported_at"] + (["category"] if category else [])
    cells, _ = _cells_at(path, res, columns, since, until, category)
    values, counts = np.unique(cells, return_counts=True)
    return pd.Series(counts, index=values, dtype=np.int64)


def cell_bin_counts(
    path: str,
    res: int,
    edges: list[datetime],
    category: str | None = None,
) -> pd.DataFrame:
    """Incidents per (cell, time bin) in one file; bin i is ``[edges[i], edges[i + 1])``.

    Parameters
    ----------
    path : str
        A partition file of the exported incidents (GeoParquet, columns ``h3_<res>`` or
        ``lon`` and ``lat``, ``reported_at``, ``category``).
    res : int
        The H3 resolution to count at: each point in the cell that contains it.
    edges : list of datetime
        Increasing, timezone-aware bin edges (calendar bins: months differ in length); an
        incident outside ``[edges[0], edges[-1])`` is not counted.
    category : str, optional
        Count this category only.

    Returns
    -------
    pandas.DataFrame
        Columns ``cell`` (int64), ``bin`` (int64, 0-based) and ``count``; no zero rows.

    Examples
    --------
    >>> import pyarrow as pa, tempfile, os
    >>> from datetime import datetime, timezone
    >>> cell = h3i.latlng_to_cell(30.59, 114.30, 8)
    >>> path = os.path.join(tempfile.mkdtemp(), "p.parquet")
    >>> pq.write_table(pa.table({"h3_8": [cell] * 3, "reported_at": pa.array(
    ...     [0, 10**6, 86_400 * 10**6], pa.timestamp("us", tz="UTC"))}), path)
    >>> edges = [datetime(1970, 1, d, tzinfo=timezone.utc) for d in (1, 2, 3)]
    >>> cell_bin_counts(path, 8, edges)[["bin", "count"]].values.tolist()
    [[0, 2], [1, 1]]
    """
    columns = ["reported_at"] + (["category"] if category else [])
    cells, table = _cells_at(path, res, columns, edges[0], edges[-1], category)
    micros = table.column("reported_at").cast("int64").to_numpy()
    edges_us = np.array([int(e.timestamp() * 1_000_000) for e in edges], dtype=np.int64)
    b = np.searchsorted(edges_us, micros, side="right").astype(np.int64) - 1
    inside = (b >= 0) & (b < len(edges) - 1)
    frame = pd.DataFrame({"cell": cells[inside], "bin": b[inside]})
    return frame.groupby(["cell", "bin"]).size().rename("count").reset_index()


def grid_category_counts(path: str, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """Incidents per (grid_id, category) in one file, inside the window.

    Parameters
    ----------
    path : str
        A partition file of the exported incidents.
    since, until : datetime or None
        The window [since, until) (open ends when None).

    Returns
    -------
    pandas.DataFrame
        Columns ``grid_id`` (int64), ``category`` and ``count``; rows in no grid are left out.

    Examples
    --------
    >>> import pyarrow as pa, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "p.parquet")
    >>> pq.write_table(pa.table({"grid_id": [1, 1, None], "category": ["a", "b", "a"],
    ...     "reported_at": pa.array([0, 0, 0], pa.timestamp("us", tz="UTC"))}), path)
    >>> grid_category_counts(path, None, None).values.tolist()
    [[1, 'a', 1], [1, 'b', 1]]
    """
    table = _read(path, ["grid_id", "category", "reported_at"], since, until)
    frame = table.select(["grid_id", "category"]).to_pandas()
    frame = frame.dropna(subset=["grid_id"]).astype({"grid_id": np.int64})
    return frame.groupby(["grid_id", "category"]).size().rename("count").reset_index()


def grid_sums(path: str, value: str | None = None) -> pd.Series:
    """Rows (or the sum of ``value``) per grid_id in one file of households or rental units.

    Parameters
    ----------
    path : str
        A partition file of exported households or rental units.
    value : str, optional
        A column to sum (e.g. ``unit_count``) instead of counting rows.

    Returns
    -------
    pandas.Series
        int64 totals indexed by ``grid_id``; rows in no grid are left out.

    Examples
    --------
    >>> import pyarrow as pa, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "p.parquet")
    >>> pq.write_table(pa.table({"grid_id": [1, 1, 2, None], "unit_count": [3, 4, 1, 9]}), path)
    >>> grid_sums(path).to_dict(), grid_sums(path, "unit_count").to_dict()
    ({1: 2, 2: 1}, {1: 7, 2: 1})
    """
    columns = ["grid_id"] + ([value] if value else [])
    frame = pq.read_table(path, columns=columns).to_pandas().dropna(subset=["grid_id"])
    frame = frame.astype({"grid_id": np.int64})
    grouped = frame.groupby("grid_id")
    out = grouped[value].sum() if value else grouped.size()
    return out.astype(np.int64)


def regrid_counts(path: str, index: Any) -> pd.DataFrame:
    """Rows per (old grid, new grid) when every point of one file is assigned with ``index``
    (a ``geo.assign.GridIndex`` of the new boundary version). Null grids stay null.

    Parameters
    ----------
    path : str
        A partition file of any exported kind (``grid_id`` and a point ``geometry``, EPSG:4326).
    index : geo.assign.GridIndex
        The grids to assign to; a point in none of them gets a null new grid.

    Returns
    -------
    pandas.DataFrame
        Columns ``old_grid_id``, ``new_grid_id`` (nullable Int64) and ``count``.

    Examples
    --------
    >>> import geopandas as gpd, shapely, tempfile, os
    >>> from geo_service.geo.assign import GridIndex
    >>> path = os.path.join(tempfile.mkdtemp(), "p.parquet")
    >>> gpd.GeoDataFrame({"grid_id": [1, 1, 2]}, crs=4326, geometry=gpd.points_from_xy(
    ...     [0.5, 1.5, 5.0], [0.5, 0.5, 5.0])).to_parquet(path)
    >>> index = GridIndex.build([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], [7, 8])
    >>> regrid_counts(path, index).values.tolist()  # grid 1 split in two; grid 2 left out
    [[1, 7, 1], [1, 8, 1], [2, <NA>, 1]]
    """
    import geopandas as gpd

    gdf = gpd.read_parquet(path, columns=["grid_id", "geometry"])
    new = index.assign(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
    frame = pd.DataFrame(
        {"old_grid_id": gdf.grid_id.astype("Int64"), "new_grid_id": pd.array(new, "Int64")}
    )
    frame.loc[frame.new_grid_id < 0, "new_grid_id"] = pd.NA
    return (
        frame.groupby(["old_grid_id", "new_grid_id"], dropna=False)
        .size()
        .rename("count")
        .reset_index()
    )


def blocks(cells: ArrayLike, k: int) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Split sorted study cells into blocks by their res-3 parent; each block with its halo
    (study cells of other blocks within ``k`` rings).

    Parameters
    ----------
    cells : array_like of int64, shape (n,)
        The study cells, sorted, one resolution.
    k : int
        The neighbourhood of the statistic in rings (1..3).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        Per block, its own cells and its halo (int64); every study cell is own in one block.

    Examples
    --------
    >>> centre = h3i.latlng_to_cell(30.59, 114.30, 5)
    >>> cells = np.array(sorted(h3i.grid_disk(centre, 3)), dtype=np.int64)
    >>> sum(len(own) for own, _ in blocks(cells, 1)) == len(cells)
    True
    """
    cell_arr = np.asarray(cells, dtype=np.int64)
    parents = parent_cells(cell_arr, BLOCK_RES)
    out = []
    for parent in np.unique(parents):
        own = cell_arr[parents == parent]
        ring = np.unique(
            np.fromiter((c for o in own.tolist() for c in h3i.grid_disk(o, k)), np.int64)
        )
        halo = np.setdiff1d(np.intersect1d(ring, cell_arr, assume_unique=True), own)
        out.append((own, halo))
    return out


def block_gi_star_z(
    own: NDArray[np.int64],
    halo: NDArray[np.int64],
    values: NDArray[np.float64],
    moments: Moments,
    k: int,
) -> NDArray[np.float64]:
    """Gi* z of the ``own`` cells; ``values`` are the counts of own then halo cells (a
    space-time cube of one bin: its weights are the spatial weights).

    Parameters
    ----------
    own, halo : numpy.ndarray of int64
        A block's cells and its halo (``blocks``).
    values : numpy.ndarray of float, shape (len(own) + len(halo),)
        Counts of the own cells, then of the halo cells.
    moments : Moments
        The moments of the whole study area (Gi* is global in its mean and variance).
    k : int
        Rings of neighbours (binary weights, the cell itself included).

    Returns
    -------
    numpy.ndarray of float, shape (len(own),)
        The z score of each own cell, equal to Gi* over the whole area.

    Examples
    --------
    >>> from geo_service.analytics.hotspots import gi_star_z
    >>> centre = h3i.latlng_to_cell(30.59, 114.30, 5)
    >>> cells = np.array(sorted(h3i.grid_disk(centre, 3)), dtype=np.int64)
    >>> counts = dict(zip(cells.tolist(), np.arange(len(cells), dtype=float)))
    >>> whole = dict(zip(counts, gi_star_z(list(counts.values()), h3_ring_weights(cells))))
    >>> own, halo = blocks(cells, 1)[0]
    >>> values = np.array([counts[c] for c in [*own.tolist(), *halo.tolist()]])
    >>> z = block_gi_star_z(own, halo, values, Moments.of(list(counts.values())), 1)
    >>> np.allclose(z, [whole[c] for c in own.tolist()])  # exact at the block's edges too
    True
    """
    cube = np.asarray(values, dtype=np.float64)[:, None]
    return block_space_time_z(own, halo, cube, moments, k)[:, 0]


def block_space_time_z(
    own: NDArray[np.int64],
    halo: NDArray[np.int64],
    cube: NDArray[np.float64],
    moments: Moments,
    k: int,
    time_step: int = 1,
) -> NDArray[np.float64]:
    """Space-time Gi* z (own cells x bins); ``cube`` holds own then halo cells' counts per
    bin, and ``moments`` are those of the whole cube.

    Parameters
    ----------
    own, halo : numpy.ndarray of int64
        A block's cells and its halo (``blocks``).
    cube : numpy.ndarray of float, shape (len(own) + len(halo), bins)
        Counts per cell and time bin, own cells first.
    moments : Moments
        The moments of the whole cube.
    k : int
        Rings of spatial neighbours.
    time_step : int, default 1
        Bins before and after that count as neighbours in time.

    Returns
    -------
    numpy.ndarray of float, shape (len(own), bins)
        The space-time z score of each own cell in each bin.

    Examples
    --------
    >>> from geo_service.analytics.emerging import emerging_hotspots
    >>> centre = h3i.latlng_to_cell(30.59, 114.30, 5)
    >>> cells = np.array(sorted(h3i.grid_disk(centre, 3)), dtype=np.int64)
    >>> cube = np.random.default_rng(0).poisson(3, (len(cells), 4)).astype(float)
    >>> whole = emerging_hotspots(cube, h3_ring_weights(cells)).z
    >>> row = {c: i for i, c in enumerate(cells.tolist())}
    >>> own, halo = blocks(cells, 1)[0]
    >>> rows = [row[c] for c in [*own.tolist(), *halo.tolist()]]
    >>> z = block_space_time_z(own, halo, cube[rows], Moments.of(cube.ravel()), 1)
    >>> z.shape == (len(own), 4), np.allclose(z, whole[rows[: len(own)]])
    (True, True)
    """
    cols = np.concatenate([own, halo])
    bins = cube.shape[1]
    weights = space_time_weights(h3_ring_weights(own, k, columns=cols), bins, time_step)
    flat = np.asarray(cube, dtype=np.float64).T.reshape(-1)  # bin-major, as the kron order
    z = gi_star_z(flat, weights, moments=(moments.n, moments.total, moments.sum_sq))
    return z.reshape(bins, len(own)).T
