"""The demo city's road network: a noded street lattice with arterials, one-way pairs and a
river that only a few bridges cross, with riverside roads along both banks, drawn in the metric
CRS; and the paths the city's blocks are also cut along (from where a street stops to the city
edge, and across the river). Lanes, the finer fabric, are in ``demo.lanes``."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_service.demo.density import METRIC_CRS

ROAD_SPACING_M = 300.0
ARTERIAL_EVERY = 4  # every 4th street (1.2 km) is an arterial
BRIDGES = 3
RIVER_STEP_M = 100.0  # the centre line's vertex spacing: its chords stay within 0.2 m of the curve
SPLIT_TOL_M = 1e-6  # a point splitting a line lies on it up to rounding
BANK_OFFSET_M = 20.0  # the riverside roads run this far from the river's centre line


def river_y(x: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """The river's centre line (metric): it winds across the city from west to east."""
    return cy - 1500.0 + 2500.0 * np.sin((np.asarray(x) - cx) / 5200.0)


def river_line(outline: shapely.Polygon, cx: float, cy: float) -> shapely.LineString:
    """The river's centre line (metric) as a polyline across ``outline`` from west to east.

    A vertex every ``RIVER_STEP_M`` (100 m) from one step west of the outline to one step east
    of it, so the line crosses the whole city; the sag of a 100 m chord of ``river_y`` is under
    0.2 m (curvature at most 2500 / 5200² per metre).
    """
    minx, _, maxx, _ = outline.bounds
    x = np.arange(minx - RIVER_STEP_M, maxx + 2 * RIVER_STEP_M, RIVER_STEP_M)
    return shapely.LineString(np.column_stack([x, river_y(x, cx, cy)]))


def bank_of(x: np.ndarray, y: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """The side of the river points (metric) lie on: 1 north, -1 south."""
    return np.sign(np.asarray(y) - river_y(x, cx, cy))


def river_band(river: shapely.LineString) -> shapely.Polygon:
    """The river between its riverside roads: ``BANK_OFFSET_M`` either side of its centre line."""
    return shapely.buffer(river, BANK_OFFSET_M, cap_style="flat")


def street_crossings(
    rng: np.random.Generator, outline: shapely.Polygon
) -> tuple[np.ndarray, np.ndarray]:
    """Where the streets cross: a 300 m lattice over ``outline``'s bounds, each crossing moved
    by a normal draw (σ 20 m), as x and y arrays (metric) indexed [row, column].
    """
    minx, miny, maxx, maxy = outline.bounds
    xs = np.arange(minx, maxx + ROAD_SPACING_M, ROAD_SPACING_M)
    ys = np.arange(miny, maxy + ROAD_SPACING_M, ROAD_SPACING_M)
    gx, gy = np.meshgrid(xs, ys)
    return gx + rng.normal(0, 20, gx.shape), gy + rng.normal(0, 20, gy.shape)


def edge_paths(crossings: tuple[np.ndarray, np.ndarray], outline: shapely.Polygon) -> np.ndarray:
    """The lattice segments from a crossing inside ``outline`` to one outside it, as two-point
    lines (metric): where a street stops short of the city edge, the path on to it.

    With the roads and the paths across the river (``add_banks``) these are the lines the
    city's blocks are bounded by, so that no block is a strip running along the whole edge.
    """
    gx, gy = crossings
    inside = shapely.contains_xy(outline, gx, gy)
    starts, ends = [], []
    for di, dj in ((0, 1), (1, 0)):
        here = (slice(0, gx.shape[0] - di), slice(0, gx.shape[1] - dj))
        there = (slice(di, None), slice(dj, None))
        keep = inside[here] != inside[there]
        starts.append(np.column_stack([gx[here][keep], gy[here][keep]]))
        ends.append(np.column_stack([gx[there][keep], gy[there][keep]]))
    return shapely.linestrings(np.stack([np.concatenate(starts), np.concatenate(ends)], axis=1))


def _bridge_columns(inside: np.ndarray, bank: np.ndarray) -> list[int]:
    """The lattice columns whose street crosses the river on a bridge: ``BRIDGES`` of the
    avenues that reach both banks, evenly spread."""
    crossing_columns = [
        j for j in range(0, inside.shape[1], ARTERIAL_EVERY) if len(set(bank[inside[:, j], j])) > 1
    ]
    picks = np.linspace(0, len(crossing_columns) - 1, BRIDGES + 2)[1:-1].round().astype(int)
    return sorted({crossing_columns[i] for i in picks}) if crossing_columns else []


def _street_kind(horizontal: bool, line: int) -> tuple[str, str, float, int]:
    """Name, class, speed (km/h) and direction of the lattice street ``line`` (a row when
    ``horizontal``, else a column): arterials every ``ARTERIAL_EVERY``, one-way pairs, local
    streets."""
    arterial = line % ARTERIAL_EVERY == 0
    pair = horizontal and line % ARTERIAL_EVERY in (1, 2) and line % 8 < 4
    if arterial:
        klass, speed, oneway = "arterial", 50.0, 0
    elif pair:  # row 1 eastbound, row 2 westbound
        klass, speed, oneway = "secondary", 35.0, 1 if line % 4 == 1 else -1
    else:
        klass, speed, oneway = "local", 25.0, 0
    name = (
        f"{'East-West' if horizontal else 'North-South'} "
        f"{'Avenue' if arterial else 'Street'} {line}"
    )
    return name, klass, speed, oneway


def _lattice_frame(rows: list[tuple]) -> gpd.GeoDataFrame:
    """Rows (x0, y0, x1, y1, name, class, speed_kmh, oneway) as two-point lines (metric)."""
    frame = pd.DataFrame(
        rows, columns=["x0", "y0", "x1", "y1", "name", "class", "speed_kmh", "oneway"]
    )
    coords = np.stack([frame[["x0", "x1"]].to_numpy(), frame[["y0", "y1"]].to_numpy()], axis=-1)
    lines = shapely.linestrings(coords) if len(frame) else np.array([], dtype=object)
    return gpd.GeoDataFrame(
        frame[["name", "class", "speed_kmh", "oneway"]], geometry=lines, crs=METRIC_CRS
    )


def draw_roads(
    crossings: tuple[np.ndarray, np.ndarray], outline: shapely.Polygon, cx: float, cy: float
) -> gpd.GeoDataFrame:
    """A street lattice (300 m blocks, slightly irregular) noded at every crossing: arterials
    every 1.2 km at 50 km/h, local streets at 25 km/h, one-way pairs (two neighbouring streets
    in opposite directions) at 35 km/h, and a river that only a few bridges cross, so straight
    line and road distance really disagree on either bank.

    One two-point line per segment between neighbouring crossings, in ``METRIC_CRS`` (UTM 50N,
    metres), with columns name, class, speed_kmh and oneway (0 both ways, 1 along the line, -1
    against it). ``crossings`` come from ``street_crossings``.
    """
    gx, gy = crossings
    inside = shapely.contains_xy(outline, gx, gy)
    bank = bank_of(gx, gy, cx, cy)
    bridges = _bridge_columns(inside, bank)
    rows = []
    rng_rows, rng_cols = gx.shape
    for i in range(rng_rows):
        for j in range(rng_cols):
            for di, dj in ((0, 1), (1, 0)):
                k, m = i + di, j + dj
                if k >= rng_rows or m >= rng_cols or not (inside[i, j] and inside[k, m]):
                    continue
                horizontal = di == 0
                across = bank[i, j] != bank[k, m]
                if across and not (not horizontal and j in bridges):
                    continue  # the river: no crossing but at the bridges
                name, klass, speed, oneway = _street_kind(horizontal, i if horizontal else j)
                if across:
                    name = f"Bridge {bridges.index(j) + 1}"
                rows.append((gx[i, j], gy[i, j], gx[k, m], gy[k, m], name, klass, speed, oneway))
    return _lattice_frame(rows)


def _stopped_at_river(
    crossings: tuple[np.ndarray, np.ndarray], outline: shapely.Polygon, cx: float, cy: float
) -> gpd.GeoDataFrame:
    """The lattice segments ``draw_roads`` leaves out for the river: between two crossings
    inside the outline on opposite banks, but the bridges; with their street's name and class."""
    gx, gy = crossings
    inside = shapely.contains_xy(outline, gx, gy)
    bank = bank_of(gx, gy, cx, cy)
    bridges = _bridge_columns(inside, bank)
    rows = []
    for di, dj in ((0, 1), (1, 0)):
        here = (slice(0, gx.shape[0] - di), slice(0, gx.shape[1] - dj))
        there = (slice(di, None), slice(dj, None))
        across = inside[here] & inside[there] & (bank[here] != bank[there])
        for i, j in zip(*np.nonzero(across), strict=True):
            horizontal = di == 0
            if not horizontal and j in bridges:
                continue
            kind = _street_kind(horizontal, int(i if horizontal else j))
            rows.append((gx[i, j], gy[i, j], gx[i + di, j + dj], gy[i + di, j + dj], *kind))
    return _lattice_frame(rows)


def add_banks(
    roads: gpd.GeoDataFrame,
    crossings: tuple[np.ndarray, np.ndarray],
    outline: shapely.Polygon,
    river: shapely.LineString,
    cx: float,
    cy: float,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Riverside roads along both banks, and the streets that stopped at the river led on to
    them, so that the land along the river is cut into blocks by roads as everywhere else.

    Parameters
    ----------
    roads : the roads so far (``draw_roads``, ``add_lanes``), metric.
    crossings : the lattice (``street_crossings``).
    outline, river : the city outline and the river's centre line (metric).
    cx, cy : the city centre (metric).

    Returns
    -------
    The roads, and the paths across the river (two-point lines, metric: block borders that
    are not roads). The riverside roads ("Riverside Road North" and "South", class
    secondary, 35 km/h, two-way) run ``BANK_OFFSET_M`` from the river's centre line inside
    the outline; every road but the bridges is cut where it meets them and loses what lies
    between them (the river), and the streets ``draw_roads`` stopped at the river now reach
    them (with their street's name and class). All are noded where they meet: a cut is one
    vertex of both lines. Appended after ``roads``, whose order is kept.
    """
    quays = _stopped_at_river(crossings, outline, cx, cy)
    frame = pd.concat([roads, quays.to_crs(roads.crs)], ignore_index=True)
    geoms = frame.geometry.to_numpy()
    band = river_band(river)
    bank_lines = shapely.get_parts(shapely.intersection(shapely.boundary(band), outline))
    coords, which = shapely.get_coordinates(bank_lines, return_index=True)
    same = which[:-1] == which[1:]
    bank_segments = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    hit = np.flatnonzero(shapely.intersects(geoms, band))
    cuts = shapely.get_parts(
        shapely.intersection(geoms[hit], shapely.multilinestrings(bank_segments))
    )
    cuts = shapely.points(np.unique(shapely.get_coordinates(cuts), axis=0))
    pieces, source = split_at(geoms[hit], cuts)
    middle = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    wet = shapely.contains(band, middle)
    bridge = frame.name.iloc[hit].str.startswith("Bridge ").to_numpy()[source]
    keep = ~wet | bridge
    # the cut roads' pieces take their places; the quays follow the roads
    row = np.concatenate([np.setdiff1d(np.arange(len(frame)), hit), hit[source[keep]]])
    geometry = np.concatenate([np.delete(geoms, hit), pieces[keep]])
    order = np.argsort(row, kind="stable")
    cut = gpd.GeoDataFrame(
        frame.drop(columns="geometry").iloc[row[order]].reset_index(drop=True),
        geometry=geometry[order],
        crs=roads.crs,
    )
    banks, _ = split_at(bank_segments, cuts)
    middle_xy = shapely.get_coordinates(shapely.line_interpolate_point(banks, 0.5, normalized=True))
    north = middle_xy[:, 1] > river_y(middle_xy[:, 0], cx, cy)
    riverside = gpd.GeoDataFrame(
        {
            "name": np.where(north, "Riverside Road North", "Riverside Road South"),
            "class": "secondary",
            "speed_kmh": 35.0,
            "oneway": 0,
        },
        geometry=banks,
        crs=roads.crs,
    )
    paths = pieces[wet & (hit[source] >= len(roads))]
    return pd.concat([cut, riverside], ignore_index=True), paths


def split_at(lines: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split two-point ``lines`` at the ``points`` lying on them (within ``SPLIT_TOL_M``).

    Returns the pieces, two-point lines in order of line and along it (a line no point lies
    on is its own piece), and the index of the line each piece comes from. A piece ends at
    the point itself, so a line meeting the split line there is noded with it.

    Examples
    --------
    >>> line = shapely.LineString([(0, 0), (300, 0)])
    >>> pieces, source = split_at(np.array([line]), shapely.points([(200, 0), (50, 0), (9, 9)]))
    >>> shapely.to_wkt(pieces).tolist(), source.tolist()
    (['LINESTRING (0 0, 50 0)', 'LINESTRING (50 0, 200 0)', 'LINESTRING (200 0, 300 0)'], [0, 0, 0])
    """
    on, line = shapely.STRtree(lines).query(points, predicate="dwithin", distance=SPLIT_TOL_M)
    n = len(lines)
    xy = np.concatenate(
        [
            shapely.get_coordinates(shapely.get_point(lines, 0)),
            shapely.get_coordinates(points[on]),
            shapely.get_coordinates(shapely.get_point(lines, -1)),
        ]
    )
    owner = np.concatenate([np.arange(n), line, np.arange(n)])
    along = np.concatenate(
        [
            np.full(n, -np.inf),
            shapely.line_locate_point(lines[line], points[on]),
            np.full(n, np.inf),
        ]
    )
    order = np.lexsort((along, owner))
    first, second = order[:-1], order[1:]
    # a point at a line's end, or on two lines where they meet, makes no piece of its own
    same = (owner[first] == owner[second]) & (np.hypot(*(xy[second] - xy[first]).T) > SPLIT_TOL_M)
    first, second = first[same], second[same]
    return shapely.linestrings(np.stack([xy[first], xy[second]], axis=1)), owner[first]
