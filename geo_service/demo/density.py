"""Where people are in the demo city: its centre, outline and population density field
(a background plus Gaussian bumps), and seeded draws of points from that field.

All in the metric CRS (UTM 50N); the city converts to WGS84 at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

CENTRE_LON, CENTRE_LAT = 114.30, 30.59
METRIC_CRS = "EPSG:32650"  # UTM zone 50N holds 114.3 E


@dataclass(frozen=True)
class DensityCentre:
    """One Gaussian bump of the population density field (metres from the city centre)."""

    dx: float
    dy: float
    weight: float
    sigma: float


CENTRES = (
    DensityCentre(0.0, 0.0, 1.0, 3200.0),
    DensityCentre(6500.0, 3000.0, 0.7, 2200.0),
    DensityCentre(-5500.0, -4000.0, 0.55, 2600.0),
    DensityCentre(2500.0, -7500.0, 0.35, 1600.0),
    DensityCentre(-7500.0, 5500.0, 0.3, 2000.0),
)
BACKGROUND_DENSITY = 0.02


def city_outline(cx: float, cy: float) -> shapely.Polygon:
    """The city's boundary: a wobbly ellipse of about 14 km radius around (cx, cy)."""
    theta = np.linspace(0, 2 * np.pi, 241)[:-1]
    radius = 14_000 * (
        1
        + 0.12 * np.sin(3 * theta + 0.7)
        + 0.07 * np.cos(5 * theta + 1.3)
        + 0.04 * np.sin(7 * theta)
    )
    x = cx + 1.15 * radius * np.cos(theta)
    y = cy + radius * np.sin(theta)
    return shapely.Polygon(np.column_stack([x, y]))


def density_at(
    x: np.ndarray,
    y: np.ndarray,
    cx: float,
    cy: float,
    centres: tuple[DensityCentre, ...] = CENTRES,
    background: float = BACKGROUND_DENSITY,
) -> np.ndarray:
    """The population density field at (x, y) (metric), relative: background + Gaussian bumps."""
    return np.asarray(
        sum(
            c.weight * np.exp(-((x - cx - c.dx) ** 2 + (y - cy - c.dy) ** 2) / (2 * c.sigma**2))
            for c in centres
        )
        + background
    )


def population_share(
    polygons: np.ndarray, outline: shapely.Polygon, cx: float, cy: float
) -> np.ndarray:
    """The share of the city's population expected in each of ``polygons`` (metric, inside
    ``outline``): the density at its centroid times its area, over the field's integral on the
    outline (summed on a 100 m raster). Polygons much smaller than the field's bumps (σ of
    1.6 km and more) are meant, such as blocks.
    """
    minx, miny, maxx, maxy = outline.bounds
    step_m = 100.0
    gx, gy = np.meshgrid(
        np.arange(minx + step_m / 2, maxx, step_m), np.arange(miny + step_m / 2, maxy, step_m)
    )
    keep = inside(outline, gx.ravel(), gy.ravel())
    total = density_at(gx.ravel()[keep], gy.ravel()[keep], cx, cy).sum() * step_m**2
    centroid = shapely.get_coordinates(shapely.centroid(polygons))
    return density_at(centroid[:, 0], centroid[:, 1], cx, cy) * shapely.area(polygons) / total


def sample_density(
    rng: np.random.Generator,
    n: int,
    cx: float,
    cy: float,
    bounds: tuple[float, float, float, float],
    centres: tuple[DensityCentre, ...] = CENTRES,
    background: float = BACKGROUND_DENSITY,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n points from background + sum of Gaussians (mixture sampling, no rejection)."""
    minx, miny, maxx, maxy = bounds
    masses = np.array(
        [c.weight * 2 * np.pi * c.sigma**2 for c in centres]
        + [background * (maxx - minx) * (maxy - miny)]
    )
    which = rng.choice(len(masses), size=n, p=masses / masses.sum())
    x = np.empty(n)
    y = np.empty(n)
    for i, c in enumerate(centres):
        sel = which == i
        k = int(sel.sum())
        x[sel] = rng.normal(cx + c.dx, c.sigma, k)
        y[sel] = rng.normal(cy + c.dy, c.sigma, k)
    sel = which == len(centres)
    k = int(sel.sum())
    x[sel] = rng.uniform(minx, maxx, k)
    y[sel] = rng.uniform(miny, maxy, k)
    return x, y


def inside(outline: shapely.Polygon, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which of the points (x, y) lie inside ``outline``."""
    shapely.prepare(outline)
    return shapely.contains_xy(outline, x, y)


def sample_population(
    rng: np.random.Generator, outline: shapely.Polygon, cx: float, cy: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n population sample points inside ``outline`` (the hierarchy is cut from them)."""
    xs, ys = [], []
    have = 0
    while have < n:
        x, y = sample_density(rng, n, cx, cy, outline.bounds)
        keep = inside(outline, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def draw_inside(
    rng: np.random.Generator,
    outline: shapely.Polygon,
    cx: float,
    cy: float,
    n: int,
    centres: tuple[DensityCentre, ...] = CENTRES,
    background: float = BACKGROUND_DENSITY,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n points inside ``outline`` from the density field (or ``centres``)."""
    xs, ys, have = [], [], 0
    while have < n:
        x, y = sample_density(rng, int(n * 1.3) + 10, cx, cy, outline.bounds, centres, background)
        keep = inside(outline, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]
