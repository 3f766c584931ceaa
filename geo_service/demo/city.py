"""The synthetic demo city: a deterministic, density-driven district > street > community > grid
hierarchy at real coordinates in central China, with households, rental units, responders and a
year of incidents that contains planted, evolving hotspots.

Everything is drawn in a metric CRS (UTM 50N) from one seeded generator and converted to WGS84
at the end. Each level is cut from its parent by k-means on population sample points inside the
parent followed by a Voronoi split clipped to the parent, so children tile their parent exactly
and are small where people are dense.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.cluster.vq import kmeans2

from geo_service.geo.assign import NO_GRID, GridIndex

CENTRE_LON, CENTRE_LAT = 114.30, 30.59
METRIC_CRS = "EPSG:32650"  # UTM zone 50N holds 114.3 E
LEVELS = ("district", "street", "community", "grid")
CATEGORY_MIX = {
    "disputes": 0.17,
    "public_order": 0.14,
    "safety_hazard": 0.07,
    "sanitation": 0.23,
    "facilities": 0.16,
    "traffic": 0.15,
    "social_assistance": 0.08,
}
DEFAULT_PRIORITY = {
    "disputes": 3,
    "public_order": 2,
    "safety_hazard": 1,
    "sanitation": 4,
    "facilities": 4,
    "traffic": 3,
    "social_assistance": 2,
}
DESCRIPTIONS = {
    "disputes": [
        "Neighbours arguing over shared corridor",
        "Family dispute, asks for mediation",
        "Dispute over parking space",
    ],
    "public_order": [
        "Noise from late-night gathering",
        "Street vendor blocking entrance",
        "Loud construction outside permitted hours",
    ],
    "safety_hazard": [
        "Smell of gas in stairwell",
        "Loose facade tiles over footpath",
        "Electric bikes charging in corridor",
    ],
    "sanitation": [
        "Overflowing waste bins",
        "Illegal dumping of furniture",
        "Blocked drain with standing water",
    ],
    "facilities": [
        "Broken street light",
        "Damaged handrail in public stairs",
        "Lift out of service",
    ],
    "traffic": [
        "Cars parked on pedestrian crossing",
        "Traffic light out of order",
        "Illegally parked truck blocking lane",
    ],
    "social_assistance": [
        "Elderly resident living alone not seen for days",
        "Resident asks for help with benefits application",
        "Welfare check requested by relative",
    ],
}
SYLLABLES = (
    "Hong",
    "Qing",
    "Ming",
    "Hua",
    "Jin",
    "Long",
    "Ping",
    "An",
    "Xin",
    "Feng",
    "Yang",
    "He",
    "Shan",
    "Lin",
    "Guang",
    "Tai",
    "Yun",
    "Bai",
    "Chang",
    "Fu",
    "Kang",
    "Le",
    "Mei",
    "Nan",
    "Rui",
    "Shun",
    "Tian",
    "Wen",
    "Xiang",
    "Yu",
)
LEVEL_SUFFIX = {
    "district": "District",
    "street": "Street",
    "community": "Community",
    "grid": "Grid",
}
LEVEL_PREFIX = {"district": "D", "street": "S", "community": "C", "grid": "G"}


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

# Transit lines (metres from the centre): rental units cluster along them.
TRANSIT_LINES = (
    ((-13000.0, -2000.0), (-5500.0, -4000.0), (0.0, 0.0), (6500.0, 3000.0), (14000.0, 5000.0)),
    ((-2000.0, -12000.0), (2500.0, -7500.0), (0.0, 0.0), (-7500.0, 5500.0), (-9000.0, 11000.0)),
)


@dataclass(frozen=True)
class PlantedHotspot:
    """A hotspot the generator plants, with the emerging-hotspot category it should produce."""

    name: str
    expected_pattern: str
    lon: float
    lat: float
    sigma_m: float
    incidents: int
    category: str
    profile: str  # how daily intensity evolves over the year


@dataclass
class DemoCity:
    """Everything the generator produces, in WGS84."""

    seed: int
    areas: gpd.GeoDataFrame  # code, name, level, parent_code, area_m2, geometry
    households: pd.DataFrame  # lon, lat, household_size, grid_code, flags
    rental_units: pd.DataFrame
    responders: pd.DataFrame
    incidents: pd.DataFrame
    hotspots: list[PlantedHotspot] = field(default_factory=list)
    start: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    roads: gpd.GeoDataFrame | None = None  # name, class, speed_kmh, oneway, geometry


Progress = Callable[[str, int], None]


def _no_progress(step: str, advance: int) -> None:
    return None


def generate_city(
    seed: int = 42,
    grids: int = 1500,
    incidents: int = 500_000,
    households_per_grid: int = 300,
    end_date: date | None = None,
    days: int = 365,
    progress: Progress = _no_progress,
) -> DemoCity:
    """Generate the demo city.

    Parameters
    ----------
    seed : the only source of randomness; the same seed and sizes give the same city.
    grids : number of grids (districts, streets, communities scale with it).
    incidents : number of incidents over ``days`` days ending at ``end_date`` (default today).

    Examples
    --------
    >>> city = generate_city(seed=1, grids=40, incidents=1000, households_per_grid=20)
    >>> sorted(city.areas.level.unique())
    ['community', 'district', 'grid', 'street']
    >>> int((city.areas.level == "grid").sum())
    40
    """
    if grids < 4:
        raise ValueError("the demo city needs at least 4 grids")
    rng = np.random.default_rng(seed)
    to_wgs = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    to_metric = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    cx, cy = to_metric.transform(CENTRE_LON, CENTRE_LAT)

    outline = _city_outline(cx, cy)
    pop_x, pop_y = _sample_population(rng, outline, cx, cy, max(120 * grids, 20_000))
    progress("boundaries", 0)
    areas = _build_hierarchy(rng, outline, pop_x, pop_y, grids, progress)
    areas = _as_coverage(areas)
    areas["area_m2"] = areas.geometry.area
    areas = areas.set_crs(METRIC_CRS).to_crs("EPSG:4326")
    areas["geometry"] = shapely.make_valid(areas.geometry.values)

    grid_rows = areas[areas.level == "grid"].reset_index(drop=True)
    index = GridIndex.build(grid_rows.geometry.values, np.arange(len(grid_rows)))

    def locate(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lon, lat = to_wgs.transform(x, y)
        return np.asarray(lon), np.asarray(lat), index.assign(lon, lat)

    n_households = households_per_grid * grids
    households = _households(rng, outline, cx, cy, n_households, locate, grid_rows)
    progress("households", n_households)
    rentals = _rental_units(rng, outline, cx, cy, int(n_households * 0.085), locate, grid_rows)
    progress("rental units", len(rentals))
    responders = _responders(rng, grid_rows, areas, households)
    end = datetime.combine(end_date or datetime.now(UTC).date(), datetime.min.time(), UTC)
    start = end - timedelta(days=days)
    hotspots = _plan_hotspots(rng, households, n_incidents=incidents)
    events = _incidents(
        rng, incidents, days, start, end, households, hotspots, to_metric, to_wgs, index, grid_rows
    )
    progress("incidents", len(events))
    # Its own random stream: adding roads changes nothing else the seed draws.
    roads = _roads(np.random.default_rng(seed + 7919), outline, cx, cy, to_wgs)
    progress("roads", len(roads))
    return DemoCity(
        seed, areas, households, rentals, responders, events, hotspots, start, end, roads
    )


# --- geometry ------------------------------------------------------------------------------

ROAD_SPACING_M = 300.0
ARTERIAL_EVERY = 4  # every 4th street (1.2 km) is an arterial
BRIDGES = 3


def river_y(x: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """The river's centre line (metric): it winds across the city from west to east."""
    return cy - 1500.0 + 2500.0 * np.sin((np.asarray(x) - cx) / 5200.0)


def _roads(
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


def _city_outline(cx: float, cy: float) -> shapely.Polygon:
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


def _sample_density(
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


def _inside(outline: shapely.Polygon, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    shapely.prepare(outline)
    return shapely.contains_xy(outline, x, y)


def _sample_population(
    rng: np.random.Generator, outline: shapely.Polygon, cx: float, cy: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    have = 0
    while have < n:
        x, y = _sample_density(rng, n, cx, cy, outline.bounds)
        keep = _inside(outline, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def level_counts(grids: int) -> dict[str, int]:
    """How many districts, streets, communities and grids a city of ``grids`` grids has."""
    districts = max(2, round(grids / 250))
    streets = max(districts, round(grids / 37.5))
    communities = max(streets, round(grids / 7.5))
    return {"district": districts, "street": streets, "community": communities, "grid": grids}


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` children over parents by weight: at least one each, largest remainder."""
    n = len(weights)
    base = np.ones(n, dtype=int)
    rest = total - n
    if rest <= 0:
        return base
    share = weights / weights.sum() * rest
    floor = np.floor(share).astype(int)
    remainder = rest - floor.sum()
    order = np.argsort(-(share - floor), kind="stable")
    floor[order[:remainder]] += 1
    return base + floor


def _split_parent(
    rng: np.random.Generator, parent: shapely.Geometry, pts: np.ndarray, k: int
) -> tuple[list[shapely.Geometry], np.ndarray]:
    """Cut ``parent`` into k pieces around k-means centres of its population points.

    Returns the pieces and, for each point, the index of the piece it falls in.
    """
    if k == 1 or len(pts) <= k:
        return [parent], np.zeros(len(pts), dtype=int)
    centroids, _ = kmeans2(pts, k, minit="++", seed=rng, iter=15)
    # Drop centroids that coincide (empty clusters) by nudging them apart deterministically.
    centroids = centroids + rng.normal(0, 1e-3, centroids.shape)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(centroids), extend_to=shapely.box(*parent.buffer(1000).bounds)
    )
    cell_geoms = np.asarray(shapely.get_parts(cells))
    tree = shapely.STRtree(cell_geoms)
    seed_idx, cell_idx = tree.query(shapely.points(centroids), predicate="within")
    ordered = np.empty(k, dtype=object)
    ordered[seed_idx] = cell_geoms[cell_idx]
    pieces = list(shapely.intersection(ordered, parent))
    pieces = _merge_detached_parts(pieces)
    # Points go to the piece that contains them (nearest centre == Voronoi cell).
    member = np.full(len(pts), -1, dtype=int)
    piece_arr = np.asarray(pieces, dtype=object)
    ptree = shapely.STRtree(piece_arr)
    p_idx, g_idx = ptree.query(shapely.points(pts), predicate="intersects")
    member[p_idx] = g_idx
    if (member < 0).any():  # points exactly on a cut: nearest piece
        lost = np.flatnonzero(member < 0)
        member[lost] = ptree.query_nearest(shapely.points(pts[lost]), return_distance=False)[1]
    return pieces, member


def _merge_detached_parts(pieces: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Give every detached fragment of a piece to the sibling it shares the longest edge with.

    A Voronoi cell clipped to a non-convex parent can fall apart; a grid must be one piece.
    """
    result = list(pieces)
    for i, geom in enumerate(pieces):
        parts = list(shapely.get_parts(geom))
        if len(parts) <= 1:
            continue
        parts.sort(key=lambda g: -g.area)
        result[i] = parts[0]
        for fragment in parts[1:]:
            best, best_len = None, 0.0
            for j, other in enumerate(result):
                if j == i:
                    continue
                shared = fragment.boundary.intersection(other.boundary).length
                if shared > best_len:
                    best, best_len = j, shared
            if best is None:  # touches no sibling: keep it with its own piece
                result[i] = shapely.union(result[i], fragment)
            else:
                result[best] = shapely.union(result[best], fragment)
    return result


def _name(rng: np.random.Generator, level: str, used: set[str]) -> str:
    while True:
        a, b = rng.choice(len(SYLLABLES), 2, replace=False)
        name = f"{SYLLABLES[a]}{SYLLABLES[b].lower()}"
        if name not in used or len(used) > 800:
            used.add(name)
            return f"{name} {LEVEL_SUFFIX[level]}"


def _build_hierarchy(
    rng: np.random.Generator,
    outline: shapely.Polygon,
    pop_x: np.ndarray,
    pop_y: np.ndarray,
    grids: int,
    progress: Progress,
) -> gpd.GeoDataFrame:
    counts = level_counts(grids)
    pts = np.column_stack([pop_x, pop_y])
    rows: list[dict] = []
    parents = [{"code": None, "geom": outline, "members": np.arange(len(pts))}]
    used: set[str] = set()
    for level in LEVELS:
        weights = np.array([len(p["members"]) for p in parents], dtype=float)
        per_parent = _allocate(counts[level], weights)
        children = []
        for parent, k in zip(parents, per_parent, strict=True):
            members = parent["members"]
            pieces, member = _split_parent(rng, parent["geom"], pts[members], int(k))
            for j, piece in enumerate(pieces):
                code_part = f"{LEVEL_PREFIX[level]}{j + 1:02d}"
                code = code_part if parent["code"] is None else f"{parent['code']}-{code_part}"
                name = (
                    _name(rng, level, used)
                    if level != "grid"
                    else f"{parent['name'].rsplit(' ', 1)[0]} Grid {j + 1}"
                )
                child = {
                    "code": code,
                    "name": name,
                    "level": level,
                    "parent_code": parent["code"],
                    "geom": piece,
                    "members": members[member == j],
                }
                children.append(child)
        for child in children:
            rows.append({k: child[k] for k in ("code", "name", "level", "parent_code", "geom")})
        progress("boundaries", len(children))
        parents = children
    gdf = gpd.GeoDataFrame(rows, geometry="geom").rename_geometry("geometry")
    gdf["geometry"] = shapely.make_valid(gdf.geometry.values)
    return gdf


def _as_coverage(areas: gpd.GeoDataFrame, tol_m: float = 1e-3) -> gpd.GeoDataFrame:
    """Make the tiling a true coverage, so that it survives reprojection exactly.

    Voronoi cuts leave T-junctions: a vertex of one grid lying in the middle of a neighbour's
    edge (or its parent's). Straight lines in UTM are not straight in lon/lat, so after
    reprojection such a vertex sits metres off the neighbour's edge over long edges, and thin
    gaps open. Inserting every neighbour vertex into each grid's edges (GEOS snapping), then
    rebuilding the upper levels as coverage unions of their grids, gives every shared edge
    the same vertices on both sides.
    """
    grids = areas[areas.level == "grid"]
    geoms = grids.geometry.to_numpy()
    vertices = shapely.points(np.unique(shapely.get_coordinates(geoms), axis=0))
    tree = shapely.STRtree(vertices)
    noded = np.empty(len(geoms), dtype=object)
    for i, geom in enumerate(geoms):
        near = tree.query(geom.boundary, predicate="dwithin", distance=tol_m)
        noded[i] = shapely.snap(geom, shapely.multipoints(vertices[near]), tol_m)
    if not shapely.coverage_is_valid(noded):
        raise RuntimeError("demo city grids do not form a valid coverage")
    out = areas.copy()
    out.loc[grids.index, "geometry"] = noded
    for level, depth in (("community", 3), ("street", 2), ("district", 1)):
        prefix = grids.code.str.split("-").str[:depth].str.join("-")
        unions = {
            code: shapely.coverage_union_all(noded[(prefix == code).to_numpy()])
            for code in prefix.unique()
        }
        rows = out.level == level
        out.loc[rows, "geometry"] = out.loc[rows, "code"].map(unions)
    return out


# --- people and things ---------------------------------------------------------------------


def _draw_inside(
    rng: np.random.Generator,
    outline: shapely.Polygon,
    cx: float,
    cy: float,
    n: int,
    centres: tuple[DensityCentre, ...] = CENTRES,
    background: float = BACKGROUND_DENSITY,
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys, have = [], [], 0
    while have < n:
        x, y = _sample_density(rng, int(n * 1.3) + 10, cx, cy, outline.bounds, centres, background)
        keep = _inside(outline, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def _households(rng, outline, cx, cy, n, locate, grid_rows) -> pd.DataFrame:  # noqa: ANN001
    # Households live in buildings: draw buildings, then fill them, denser ones fuller.
    n_buildings = max(n // 12, 50)
    bx, by = _draw_inside(rng, outline, cx, cy, n_buildings)
    density = (
        sum(
            c.weight * np.exp(-((bx - cx - c.dx) ** 2 + (by - cy - c.dy) ** 2) / (2 * c.sigma**2))
            for c in CENTRES
        )
        + BACKGROUND_DENSITY
    )
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
        }
    )
    frame = frame[frame.grid != NO_GRID].reset_index(drop=True)
    frame["grid_code"] = grid_rows.code.values[frame.grid.values]
    return frame.drop(columns="grid")


def _rental_units(rng, outline, cx, cy, n, locate, grid_rows) -> pd.DataFrame:  # noqa: ANN001
    tight = tuple(DensityCentre(c.dx, c.dy, c.weight, c.sigma * 0.5) for c in CENTRES)
    n_centre = n // 2
    x1, y1 = _draw_inside(rng, outline, cx, cy, n_centre, tight, background=0.002)
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


def _responders(rng, grid_rows, areas, households) -> pd.DataFrame:  # noqa: ANN001
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


# --- incidents -----------------------------------------------------------------------------

HOTSPOT_PLANS = (
    # name, expected emerging pattern, profile, share of incidents, category, sigma (m)
    ("market_night_noise", "intensifying", "ramp_up", 0.012, "public_order", 180.0),
    ("old_estate_disputes", "persistent", "steady", 0.010, "disputes", 220.0),
    ("construction_site", "diminishing", "ramp_down", 0.010, "safety_hazard", 160.0),
    ("new_development", "new", "late_burst", 0.006, "sanitation", 170.0),
)


def _profile(name: str, days: int) -> np.ndarray:
    """Daily intensity of a planted hotspot, shaped like the ArcGIS pattern it should produce.

    Intensifying, persistent and diminishing hotspots are hot throughout (ArcGIS asks for 90% of
    the bins) and differ in trend; a new hotspot appears only in the last two weeks.
    """
    t = np.arange(days) / max(days - 1, 1)
    if name == "ramp_up":
        return 0.6 + 1.4 * t
    if name == "steady":
        return np.ones(days)
    if name == "ramp_down":
        return 2.0 - 1.4 * t
    if name == "late_burst":
        return np.where(t > 1 - 14 / max(days, 1), 1.0, 0.0)
    raise ValueError(name)


def _plan_hotspots(
    rng: np.random.Generator, households: pd.DataFrame, n_incidents: int
) -> list[PlantedHotspot]:
    spots: list[PlantedHotspot] = []
    # Hotspots sit in populated places, apart from each other.
    candidates = households.sample(n=min(len(households), 4000), random_state=rng.integers(2**31))
    chosen: list[tuple[float, float]] = []
    for name, pattern, profile, share, category, sigma in HOTSPOT_PLANS:
        for lon, lat in zip(candidates.lon, candidates.lat, strict=True):
            far = all(abs(lon - a) > 0.03 or abs(lat - b) > 0.03 for a, b in chosen)
            # A new development grows on the edge of town, away from the busy centre.
            edge = pattern != "new" or np.hypot(lon - CENTRE_LON, lat - CENTRE_LAT) > 0.07
            if far and edge:
                chosen.append((lon, lat))
                spots.append(
                    PlantedHotspot(
                        name,
                        pattern,
                        float(lon),
                        float(lat),
                        sigma,
                        int(n_incidents * share),
                        category,
                        profile,
                    )
                )
                break
    return spots


def _incidents(
    rng, n, days, start, end, households, hotspots, to_metric, to_wgs, index, grid_rows
) -> pd.DataFrame:  # noqa: ANN001
    n_spot = sum(h.incidents for h in hotspots)
    n_base = max(n - n_spot, 0)
    categories = np.array(list(CATEGORY_MIX))
    # Background: where people live, with a short walk around the building.
    src = rng.integers(0, len(households), n_base)
    hx, hy = to_metric.transform(households.lon.values[src], households.lat.values[src])
    bx = np.asarray(hx) + rng.normal(0, 60, n_base)
    by = np.asarray(hy) + rng.normal(0, 60, n_base)
    base_cat = rng.choice(categories, n_base, p=list(CATEGORY_MIX.values()))
    # Day of year: mild seasonality, busier weekends for disputes and public order.
    day_w = 1 + 0.15 * np.sin(np.arange(days) / days * 2 * np.pi)
    base_day = rng.choice(days, n_base, p=day_w / day_w.sum())
    weekend = (start + pd.to_timedelta(base_day, unit="D")).day_of_week >= 5
    social = np.isin(base_cat, ["disputes", "public_order"])
    redraw = social & ~weekend & (rng.random(n_base) < 0.12)
    base_day[redraw] = rng.choice(days, int(redraw.sum()))

    xs, ys, cats, day = [bx], [by], [base_cat], [base_day]
    for spot in hotspots:
        sx, sy = to_metric.transform(spot.lon, spot.lat)
        xs.append(sx + rng.normal(0, spot.sigma_m, spot.incidents))
        ys.append(sy + rng.normal(0, spot.sigma_m, spot.incidents))
        cats.append(np.full(spot.incidents, spot.category))
        p = _profile(spot.profile, days)
        day.append(rng.choice(days, spot.incidents, p=p / p.sum()))
    x, y = np.concatenate(xs), np.concatenate(ys)
    cat, day_idx = np.concatenate(cats), np.concatenate(day)
    total = len(x)
    # Hour of day in local time (UTC+8): morning and evening peaks; public order at night.
    hours = np.arange(24)
    daytime = 0.2 + np.exp(-((hours - 10) ** 2) / 8) + 1.2 * np.exp(-((hours - 19) ** 2) / 6)
    night = 0.3 + np.exp(-(((hours - 23) % 24) ** 2) / 6) + np.exp(-((hours + 1) ** 2) / 6)
    hour = np.where(
        cat == "public_order",
        rng.choice(24, total, p=night / night.sum()),
        rng.choice(24, total, p=daytime / daytime.sum()),
    )
    seconds = rng.integers(0, 3600, total)
    local = (
        pd.Timestamp(start).tz_convert("Asia/Shanghai").normalize()
        + pd.to_timedelta(day_idx, unit="D")
        + pd.to_timedelta(hour * 3600 + seconds, unit="s")
    )
    reported = local.tz_convert("UTC")
    lon, lat = to_wgs.transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    grid = index.assign(lon, lat)
    priority = np.array([DEFAULT_PRIORITY[c] for c in cat])
    shift = rng.choice([-1, 0, 1], total, p=[0.1, 0.8, 0.1])
    priority = np.clip(priority + shift, 1, 4)
    age_h = (pd.Timestamp(end) - reported).total_seconds().values / 3600
    status = np.where(rng.random(total) < 0.04, "cancelled", "closed").astype(object)
    recent = age_h < 72
    status[recent] = rng.choice(
        ["reported", "dispatched", "accepted", "on_scene", "resolved"],
        int(recent.sum()),
        p=[0.3, 0.15, 0.15, 0.1, 0.3],
    )
    frame = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "category": cat,
            "priority": priority,
            "status": status,
            "reported_at": reported,
            "source": rng.choice(
                ["citizen", "grid_worker", "hotline", "sensor"], total, p=[0.45, 0.3, 0.2, 0.05]
            ),
            "grid": grid,
        }
    )
    frame["description"] = [
        DESCRIPTIONS[c][k] for c, k in zip(cat, rng.integers(0, 3, total), strict=True)
    ]
    frame = frame[(frame.grid != NO_GRID) & (frame.reported_at < pd.Timestamp(end))]
    frame = frame.sort_values("reported_at", kind="stable").reset_index(drop=True)
    frame["grid_code"] = grid_rows.code.values[frame.grid.values]
    return frame.drop(columns="grid")
