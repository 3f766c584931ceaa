"""The demo city's people and things: households in buildings, rental units (near the centres
and along transit lines) and responders (a grid worker per grid, units per area)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from geo_service.demo.density import CENTRES, DensityCentre, density_at, draw_inside
from geo_service.geo.assign import NO_GRID

# Transit lines (metres from the centre): rental units cluster along them.
TRANSIT_LINES = (
    ((-13000.0, -2000.0), (-5500.0, -4000.0), (0.0, 0.0), (6500.0, 3000.0), (14000.0, 5000.0)),
    ((-2000.0, -12000.0), (2500.0, -7500.0), (0.0, 0.0), (-7500.0, 5500.0), (-9000.0, 11000.0)),
)


def draw_households(rng, outline, cx, cy, n, locate, grid_rows) -> pd.DataFrame:  # noqa: ANN001
    """n households (lon, lat, size, flags, address, grid_code), denser where people are.

    The address is the door in its building (``12栋2单元301``: building, entrance, flat), four
    flats a floor in two entrances' turn, from the household's place in its building: no draw
    of ``rng``, so the rest of the city is what it was before addresses (0034)."""
    # Households live in buildings: draw buildings, then fill them, denser ones fuller.
    n_buildings = max(n // 12, 50)
    bx, by = draw_inside(rng, outline, cx, cy, n_buildings)
    density = density_at(bx, by, cx, cy)
    building = rng.choice(n_buildings, size=n, p=density / density.sum())
    lon, lat, grid = locate(bx, by)
    size = np.minimum(1 + rng.poisson(1.6, n), 8)
    elderly_alone = (size == 1) & (rng.random(n) < 0.35)
    nth = pd.Series(building).groupby(building).cumcount()  # 0, 1, ... within a building
    address = (
        (pd.Series(building) + 1).astype(str)
        + "栋"
        + (nth % 2 + 1).astype(str)
        + "单元"
        + (nth // 4 + 1).astype(str)
        + "0"
        + ((nth // 2) % 2 + 1).astype(str)
    ).to_numpy()
    frame = pd.DataFrame(
        {
            "lon": lon[building],
            "lat": lat[building],
            "household_size": size,
            "grid": grid[building],
            "elderly_living_alone": elderly_alone,
            "needs_assistance": rng.random(n) < 0.03,
            "address": address,
        }
    )
    frame = frame[frame.grid != NO_GRID].reset_index(drop=True)
    frame["grid_code"] = grid_rows.code.values[frame.grid.values]
    return frame.drop(columns="grid")


def draw_rental_units(rng, outline, cx, cy, n, locate, grid_rows) -> pd.DataFrame:  # noqa: ANN001
    """About n rental units: half near the density centres, half along the transit lines."""
    tight = tuple(DensityCentre(c.dx, c.dy, c.weight, c.sigma * 0.5) for c in CENTRES)
    n_centre = n // 2
    x1, y1 = draw_inside(rng, outline, cx, cy, n_centre, tight, background=0.002)
    # Along transit lines: uniform along the polyline, normal offset of 250 m.
    lines = np.array([shapely.LineString(np.array(line) + [cx, cy]) for line in TRANSIT_LINES])
    which = rng.integers(0, len(lines), n - n_centre)
    along = rng.random(n - n_centre)
    pts = shapely.get_coordinates(
        shapely.line_interpolate_point(lines[which], along, normalized=True)
    )
    x2 = pts[:, 0] + rng.normal(0, 250, len(pts))
    y2 = pts[:, 1] + rng.normal(0, 250, len(pts))
    x, y = np.concatenate([x1, x2]), np.concatenate([y1, y2])
    lon, lat, grid = locate(x, y)
    units = 1 + rng.geometric(0.45, len(x)) - 1
    frame = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "unit_count": units,
            "occupants": units * rng.integers(1, 4, len(x)),
            "registered_at": pd.Timestamp("2026-01-01", tz="UTC")
            - pd.to_timedelta(rng.integers(0, 3 * 365, len(x)), unit="D"),
            "status": rng.choice(
                ["registered", "expired", "unregistered"], len(x), p=[0.8, 0.12, 0.08]
            ),
            "landlord_ref": [f"L{v:06x}" for v in rng.integers(0, 2**24, len(x))],
            "grid": grid,
        }
    )
    frame = frame[frame.grid != NO_GRID].reset_index(drop=True)
    frame.loc[frame.status == "unregistered", "registered_at"] = pd.NaT
    frame["grid_code"] = grid_rows.code.values[frame.grid.values]
    return frame.drop(columns="grid")


def draw_responders(rng, grid_rows, areas, households) -> pd.DataFrame:  # noqa: ANN001
    """A grid worker per grid, and patrol, mediator, fire and medical units per area."""
    rows = []
    by_grid = households.groupby("grid_code")[["lon", "lat"]].first()
    reps = shapely.point_on_surface(grid_rows.geometry.values)
    for i, code in enumerate(grid_rows.code):
        if code in by_grid.index:
            lon, lat = by_grid.loc[code]
        else:
            lon, lat = reps[i].x, reps[i].y
        rows.append(
            {
                "callsign": f"GW-{code}",
                "kind": "grid_worker",
                "home_grid_code": code,
                "lon": lon,
                "lat": lat,
                "skills": ["mediation", "welfare"],
            }
        )
    units = (
        ("patrol", "community", 1, ["order", "traffic"]),
        ("mediator", "street", 1, ["mediation"]),
        ("fire", "district", 2, ["fire", "rescue"]),
        ("medical", "district", 3, ["first_aid"]),
    )
    for kind, level, per_area, skills in units:
        level_areas = areas[areas.level == level]
        for code, geom in zip(level_areas.code, level_areas.geometry, strict=True):
            minx, miny, maxx, maxy = geom.bounds
            for j in range(per_area):
                for _ in range(100):
                    lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
                    if geom.contains(shapely.Point(lon, lat)):
                        break
                rows.append(
                    {
                        "callsign": f"{kind[:3].upper()}-{code}-{j + 1}",
                        "kind": kind,
                        "home_grid_code": None,
                        "lon": lon,
                        "lat": lat,
                        "skills": skills,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["status"] = rng.choice(["available", "busy", "off_duty"], len(frame), p=[0.7, 0.2, 0.1])
    frame["position_age_s"] = rng.integers(5, 600, len(frame))
    return frame
