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


# The kinds of residential building a grid holds (entrances, floors): walk-ups of six
# floors, mid-rises of eleven, towers of 18 to 33, four flats a floor (rooms 01-04).
BUILDING_KINDS = ((1, 6), (2, 6), (3, 6), (2, 11), (3, 11), (2, 18), (4, 18), (3, 26), (4, 33))
FLATS_PER_FLOOR = 4
MAX_BUILDINGS_PER_GRID = 40  # a grid office's compound numbers its buildings 1..40


def draw_households(rng, outline, cx, cy, n, locate, grid_rows, address_rng=None) -> pd.DataFrame:  # noqa: ANN001
    """n households (lon, lat, size, flags, address, grid_code), denser where people are.

    The address is the door in its building (``12栋2单元301``, ``household_addresses``),
    drawn from ``address_rng`` (a stream of its own, so the rest of the city is what it was
    before addresses, 0034); default: a stream seeded from ``rng``'s seed sequence."""
    # Households live in buildings: draw buildings, then fill them, denser ones fuller.
    n_buildings = max(n // 12, 50)
    bx, by = draw_inside(rng, outline, cx, cy, n_buildings)
    density = density_at(bx, by, cx, cy)
    building = rng.choice(n_buildings, size=n, p=density / density.sum())
    lon, lat, grid = locate(bx, by)
    size = np.minimum(1 + rng.poisson(1.6, n), 8)
    elderly_alone = (size == 1) & (rng.random(n) < 0.35)
    frame = pd.DataFrame(
        {
            "lon": lon[building],
            "lat": lat[building],
            "household_size": size,
            "grid": grid[building],
            "elderly_living_alone": elderly_alone,
            "needs_assistance": rng.random(n) < 0.03,
            "building": building,
        }
    )
    frame = frame[frame.grid != NO_GRID].reset_index(drop=True)
    if address_rng is None:
        address_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
    frame["address"] = household_addresses(
        address_rng, frame.grid.to_numpy(), frame.building.to_numpy()
    )
    frame["grid_code"] = grid_rows.code.values[frame.grid.values]
    return frame.drop(columns=["grid", "building"])


def household_addresses(
    rng: np.random.Generator, grid: np.ndarray, building: np.ndarray
) -> np.ndarray:
    """The door of each household (``12栋2单元301``: building, entrance, floor and flat),
    unique within its grid.

    A grid numbers its buildings 1..``MAX_BUILDINGS_PER_GRID`` (in the generator's order; a
    grid with more buildings than that shares numbers between them, which then hold the flats
    of both). Each numbered building is of a kind (``BUILDING_KINDS``) large enough for its
    households, or up to three sizes larger; its households take distinct flats spread over its
    entrances and floors.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> doors = household_addresses(rng, np.array([0, 0, 0, 1]), np.array([5, 5, 9, 2]))
    >>> [d.split("栋")[0] for d in doors]
    ['1', '1', '2', '1']
    >>> len(set(doors[:3])) == 3
    True
    """
    n = len(grid)
    if n == 0:
        return np.array([], dtype=object)
    grid, building = np.asarray(grid, dtype=np.int64), np.asarray(building, dtype=np.int64)
    # each grid's buildings in order (a building stands in one grid), numbered from 1
    span = int(building.max()) + 1
    pairs, which = np.unique(grid * span + building, return_inverse=True)
    pair_grid = pairs // span
    first = np.flatnonzero(np.r_[True, pair_grid[1:] != pair_grid[:-1]])
    rank = np.arange(len(pairs)) - np.repeat(first, np.diff(np.r_[first, len(pairs)]))
    number = (rank % MAX_BUILDINGS_PER_GRID + 1)[which]
    # a numbered building of a grid: its households together, in a random order
    order = np.lexsort((rng.random(n), number, grid))
    g, num = grid[order], number[order]
    starts = np.flatnonzero(np.r_[True, (g[1:] != g[:-1]) | (num[1:] != num[:-1])])
    sizes = np.diff(np.r_[starts, n])
    group = np.repeat(np.arange(len(starts)), sizes)
    nth = np.arange(n) - starts[group]
    count = sizes[group]
    capacity = np.array([e * f * FLATS_PER_FLOOR for e, f in BUILDING_KINDS])
    # the smallest kind that holds them or up to three sizes larger (the city has old
    # walk-ups and new towers, not only buildings just as full as they can be)
    larger = rng.integers(0, 4, len(starts))[group]
    kind = np.minimum(np.searchsorted(capacity, count) + larger, len(BUILDING_KINDS) - 1)
    # households beyond the largest kind (not in a demo) would share flats
    flats = capacity[kind]
    # the k-th household's flat lies in the k-th of ``count`` equal stretches of the flats
    low = nth * flats // count
    high = np.maximum((nth + 1) * flats // count, low + 1)
    flat = np.minimum(low + (rng.random(n) * (high - low)).astype(np.int64), flats - 1)
    floors = np.array([f for _, f in BUILDING_KINDS])[kind]
    entrance = flat // (floors * FLATS_PER_FLOOR)
    floor = (flat // FLATS_PER_FLOOR) % floors
    room = flat % FLATS_PER_FLOOR
    # the words by lookup (object arrays added in C): half a million doors in a fraction of
    # a second, where formatting each took seconds
    out = np.empty(n, dtype=object)
    out[order] = (
        _BUILDING_WORDS[num - 1]
        + _ENTRANCE_WORDS[entrance]
        + _FLAT_WORDS[floor * FLATS_PER_FLOOR + room]
    )
    return out


_BUILDING_WORDS = np.array([f"{b}栋" for b in range(1, MAX_BUILDINGS_PER_GRID + 1)], dtype=object)
_ENTRANCE_WORDS = np.array(
    [f"{e}单元" for e in range(1, max(e for e, _ in BUILDING_KINDS) + 1)], dtype=object
)
_FLAT_WORDS = np.array(
    [
        f"{floor}{room:02d}"
        for floor in range(1, max(f for _, f in BUILDING_KINDS) + 1)
        for room in range(1, FLATS_PER_FLOOR + 1)
    ],
    dtype=object,
)


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
