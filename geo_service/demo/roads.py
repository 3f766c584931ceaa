"""The demo city's road network: a noded street lattice with arterials, one-way pairs and a
river that only a few bridges cross."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

ROAD_SPACING_M = 300.0
ARTERIAL_EVERY = 4  # every 4th street (1.2 km) is an arterial
BRIDGES = 3


def river_y(x: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """The river's centre line (metric): it winds across the city from west to east."""
    return cy - 1500.0 + 2500.0 * np.sin((np.asarray(x) - cx) / 5200.0)


def draw_roads(
    rng: np.random.Generator, outline: shapely.Polygon, cx: float, cy: float, to_wgs: Transformer
) -> gpd.GeoDataFrame:
    """A street lattice (300 m blocks, slightly irregular) noded at every crossing: arterials
    every 1.2 km at 50 km/h, local streets at 25 km/h, one-way pairs (two neighbouring streets
    in opposite directions) at 35 km/h, and a river that only a few bridges cross, so straight
    line and road distance really disagree on either bank.
    """
    minx, miny, maxx, maxy = outline.bounds
    xs = np.arange(minx, maxx + ROAD_SPACING_M, ROAD_SPACING_M)
    ys = np.arange(miny, maxy + ROAD_SPACING_M, ROAD_SPACING_M)
    gx, gy = np.meshgrid(xs, ys)  # [row, column]
    gx = gx + rng.normal(0, 20, gx.shape)
    gy = gy + rng.normal(0, 20, gy.shape)
    inside = shapely.contains_xy(outline, gx, gy)
    bank = np.sign(gy - river_y(gx, cx, cy))
    crossing_columns = [
        j for j in range(0, len(xs), ARTERIAL_EVERY) if len(set(bank[inside[:, j], j])) > 1
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
    lon0, lat0 = to_wgs.transform(frame.x0.values, frame.y0.values)
    lon1, lat1 = to_wgs.transform(frame.x1.values, frame.y1.values)
    coords = np.stack([np.column_stack([lon0, lon1]), np.column_stack([lat0, lat1])], axis=-1)
    lines = shapely.linestrings(coords)
    return gpd.GeoDataFrame(
        frame[["name", "class", "speed_kmh", "oneway"]], geometry=lines, crs="EPSG:4326"
    )
