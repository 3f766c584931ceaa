"""The synthetic demo city: a deterministic, density-driven district > street > community > grid
hierarchy at real coordinates in central China, with households, rental units, responders and a
year of incidents that contains planted, evolving hotspots.

Everything is drawn in a metric CRS (UTM 50N) from one seeded generator and converted to WGS84
at the end. The road network comes first (a street lattice, lanes where people are dense,
riverside roads): its blocks (the faces of the roads, the river and the outline) are what every
area is made of, as grid offices draw grids along streets. Each level groups its parent's
blocks around k-means centres of population sample points into contiguous children (across the
river only at a bridge), so children tile their parent exactly, borders follow roads and areas
are small where people are dense.
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

from geo_service.demo.blocks import road_blocks
from geo_service.demo.density import (
    CENTRE_LAT,
    CENTRE_LON,
    METRIC_CRS,
    city_outline,
    sample_population,
)
from geo_service.demo.descriptions import community_names, describe_incidents
from geo_service.demo.geography import LEVELS, as_coverage, build_hierarchy
from geo_service.demo.incidents import (
    PlantedHotspot,
    assign_responders,
    draw_incidents,
    plan_hotspots,
    responder_status,
)
from geo_service.demo.lanes import add_lanes, draw_lanes
from geo_service.demo.people import draw_households, draw_rental_units, draw_responders
from geo_service.demo.roads import (
    add_banks,
    bank_of,
    draw_roads,
    edge_paths,
    river_band,
    river_line,
    street_crossings,
)
from geo_service.geo.assign import GridIndex

# The city's public vocabulary, defined in its parts (the loader and the tests use these).
__all__ = [
    "CENTRE_LAT",
    "CENTRE_LON",
    "LEVELS",
    "METRIC_CRS",
    "DemoCity",
    "PlantedHotspot",
    "Progress",
    "generate_city",
]


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
    end: datetime | None = None,
    language: str = "zh-CN",
) -> DemoCity:
    """Generate the demo city.

    Parameters
    ----------
    seed : the only source of randomness; the same seed and sizes give the same city.
    grids : number of grids (districts, streets, communities scale with it).
    incidents : number of incidents over ``days`` days ending at ``end`` (an instant), else
        at midnight (UTC) starting ``end_date``, else now (to the minute): the history of a
        demo ends when it starts, with the recent open backlog of a city that keeps up.
    language : the language residents write the incidents' descriptions in (``zh-CN`` or
        ``en``; the demo's ``GEO_LOCALE``).

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

    outline = city_outline(cx, cy)
    # Its own random stream: the road network is the same whatever else the seed draws.
    crossings = street_crossings(np.random.default_rng(seed + 7919), outline)
    river = river_line(outline, cx, cy)
    # The lanes have a stream of their own too: the lattice stays as it was drawn without them.
    lanes = draw_lanes(np.random.default_rng(seed + 7919 * 2), crossings, outline, river, cx, cy)
    roads = add_lanes(draw_roads(crossings, outline, cx, cy), lanes)
    roads, river_paths = add_banks(roads, crossings, outline, river, cx, cy)
    progress("roads", len(roads))
    lines = np.concatenate([roads.geometry.to_numpy(), river_paths, edge_paths(crossings, outline)])
    blocks = road_blocks(outline, lines, river, river_band(river))
    inner = shapely.get_coordinates(shapely.point_on_surface(blocks))
    bridges = shapely.union_all(roads.geometry[roads.name.str.startswith("Bridge ")].to_numpy())
    pop_x, pop_y = sample_population(rng, outline, cx, cy, max(120 * grids, 20_000))
    progress("boundaries", 0)
    areas = build_hierarchy(
        rng,
        blocks,
        pop_x,
        pop_y,
        grids,
        progress,
        bank=bank_of(inner[:, 0], inner[:, 1], cx, cy),
        at_bridge=shapely.intersects(blocks, bridges),
    )
    areas = as_coverage(areas)
    areas["area_m2"] = areas.geometry.area
    areas = areas.set_crs(METRIC_CRS).to_crs("EPSG:4326")
    areas["geometry"] = shapely.make_valid(areas.geometry.values)

    grid_rows = areas[areas.level == "grid"].reset_index(drop=True)
    index = GridIndex.build(grid_rows.geometry.values, np.arange(len(grid_rows)))

    def locate(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lon, lat = to_wgs.transform(x, y)
        return np.asarray(lon), np.asarray(lat), index.assign(lon, lat)

    n_households = households_per_grid * grids
    households = draw_households(
        rng,
        outline,
        cx,
        cy,
        n_households,
        locate,
        grid_rows,
        # the doors have a stream of their own: the rest of the city is as it was before
        address_rng=np.random.default_rng(seed + 7919 * 3),
    )
    progress("households", n_households)
    rentals = draw_rental_units(rng, outline, cx, cy, int(n_households * 0.085), locate, grid_rows)
    progress("rental units", len(rentals))
    responders = draw_responders(rng, grid_rows, areas, households)
    if end is None:
        end = (
            datetime.combine(end_date, datetime.min.time(), UTC)
            if end_date is not None
            else datetime.now(UTC).replace(second=0, microsecond=0)
        )
    elif end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    start = end - timedelta(days=days)
    hotspots = plan_hotspots(rng, households, n_incidents=incidents)
    events = draw_incidents(
        rng, incidents, days, start, end, households, hotspots, to_metric, to_wgs, index, grid_rows
    )
    # who was sent: drawn last, from a stream of its own (the rest stays as it was)
    community_of_grid = pd.Series(grid_rows.parent_code.values, index=grid_rows.code.values)
    events = assign_responders(
        np.random.default_rng(rng.integers(2**63)), events, community_of_grid
    )
    # the descriptions last, from a stream of their own, in the demo's language
    events["description"] = describe_incidents(
        np.random.default_rng(seed + 7919 * 4),
        events.category.to_numpy(),
        events.reported_at.dt.tz_convert("Asia/Shanghai").dt.hour.to_numpy(),
        events.grid_code.map(community_names(areas, language)).to_numpy(),
        language,
    )
    responders["status"] = responder_status(responders, events)
    progress("incidents", len(events))
    return DemoCity(
        seed,
        areas,
        households,
        rentals,
        responders,
        events,
        hotspots,
        start,
        end,
        roads.to_crs("EPSG:4326"),
    )
