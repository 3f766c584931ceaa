"""The demo city's road network: a noded street lattice with arterials, one-way pairs and a
river that only a few bridges cross, drawn in the metric CRS; and the street lines the city's
blocks are cut along (the roads, and paths from where a street stops to the edge or the river)."""

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


def street_lines(crossings: tuple[np.ndarray, np.ndarray], outline: shapely.Polygon) -> np.ndarray:
    """Every lattice segment with a crossing inside ``outline``, as two-point lines (metric).

    These are the roads of ``draw_roads`` plus, where a street stops short of the city edge or
    at the river, the path on to it: the lines the city's blocks are bounded by, so that no
    block is a strip running along the whole edge or bank.
    """
    gx, gy = crossings
    inside = shapely.contains_xy(outline, gx, gy)
    starts, ends = [], []
    for di, dj in ((0, 1), (1, 0)):
        here = (slice(0, gx.shape[0] - di), slice(0, gx.shape[1] - dj))
        there = (slice(di, None), slice(dj, None))
        keep = inside[here] | inside[there]
        starts.append(np.column_stack([gx[here][keep], gy[here][keep]]))
        ends.append(np.column_stack([gx[there][keep], gy[there][keep]]))
    return shapely.linestrings(np.stack([np.concatenate(starts), np.concatenate(ends)], axis=1))


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
    bank = np.sign(gy - river_y(gx, cx, cy))
    crossing_columns = [
        j for j in range(0, gx.shape[1], ARTERIAL_EVERY) if len(set(bank[inside[:, j], j])) > 1
    ]
    picks = np.linspace(0, len(crossing_columns) - 1, BRIDGES + 2)[1:-1].round().astype(int)
    bridges = {crossing_columns[i] for i in picks} if crossing_columns else set()
    rows = []
    rng_rows, rng_cols = gx.shape
    for i in range(rng_rows):
        for j in range(rng_cols):
            for di, dj in ((0, 1), (1, 0)):
                k, m = i + di, j + dj
                if k >= rng_rows or m >= rng_cols or not (inside[i, j] and inside[k, m]):
                    continue
                horizontal = di == 0
                line = i if horizontal else j
                if bank[i, j] != bank[k, m] and not (not horizontal and j in bridges):
                    continue  # the river: no crossing but at the bridges
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
                if not horizontal and j in bridges and bank[i, j] != bank[k, m]:
                    name = f"Bridge {sorted(bridges).index(j) + 1}"
                rows.append((gx[i, j], gy[i, j], gx[k, m], gy[k, m], name, klass, speed, oneway))
    frame = pd.DataFrame(
        rows, columns=["x0", "y0", "x1", "y1", "name", "class", "speed_kmh", "oneway"]
    )
    coords = np.stack([frame[["x0", "x1"]].to_numpy(), frame[["y0", "y1"]].to_numpy()], axis=-1)
    lines = shapely.linestrings(coords)
    return gpd.GeoDataFrame(
        frame[["name", "class", "speed_kmh", "oneway"]], geometry=lines, crs=METRIC_CRS
    )
