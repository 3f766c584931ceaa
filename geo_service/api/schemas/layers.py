"""Response models of the layers room: heatmaps, hot spots, emerging hot spots, TileJSON and
OGC API - Features.

They declare today's bodies exactly (the services build them as dicts); the schema test
validates every response against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from geo_service.api.schemas.geojson import (
    AreaGeometry,
    Feature,
    FeatureCollection,
    MultiPolygon,
    Point,
    Polygon,
    Timestamp,
)
from geo_service.api.schemas.strict import Exact

Level = Literal["grid", "community", "street", "district"]
H3Index = Field(description="H3 cell index, hexadecimal string form")


# --- heatmaps ------------------------------------------------------------------------------


class HeatCellProps(Exact):
    """Incidents counted in one H3 cell."""

    h3: str = H3Index
    count: int


class HeatCell(Feature[Polygon, HeatCellProps]):
    """An H3 cell's hexagon with its count (``id`` is the H3 index)."""


class HeatmapCells(FeatureCollection[HeatCell]):
    """``GET /heatmap/h3``: hexagons of the cells with incidents."""

    total: int = Field(description="incidents counted, all cells")
    res: int = Field(description="H3 resolution")


class CellCount(Exact):
    """One cell of the compact heatmap."""

    h3: str = H3Index
    count: int


class HeatmapCompact(Exact):
    """``GET /heatmap/h3?format=json``: cell/count pairs, unordered, no geometry."""

    res: int
    total: int
    cells: list[CellCount]


class AreaCountProps(Exact):
    """Incidents counted in one area."""

    id: int
    code: str
    name: str
    count: int


class AreaCount(Feature[AreaGeometry, AreaCountProps]):
    """An area's outline (simplified) with its count."""


class AreaHeatmap(FeatureCollection[AreaCount]):
    """``GET /heatmap/grids``: a choropleth of one level."""

    level: Level
    version_id: int = Field(description="the boundary version counted")
    attribution: Literal["stored", "located"] = Field(
        description="``stored``: incidents counted in the grid they are filed under (the "
        "version in force); ``located``: in the grid of this version holding their point"
    )
    total: int


# --- hot spots -----------------------------------------------------------------------------


class HotspotStats(Exact):
    """Getis-Ord Gi* of one place, with ArcGIS's class."""

    count: int
    z: float
    p: float
    p_fdr: float = Field(description="Benjamini-Hochberg adjusted p (equals p without fdr)")
    class_: str = Field(
        alias="class", description="e.g. 'Hot Spot - 99% Confidence', 'Not Significant'"
    )
    class_label: str | None = Field(
        default=None,
        description="the class in the request's language, e.g. '热点 - 99% 置信度' for zh-CN "
        "(/hotspots and its downloads; the OGC layer keeps the value only)",
    )


class HotspotCellProps(HotspotStats):
    """Gi* of one H3 cell."""

    h3: str = H3Index


class HotspotCell(Feature[Polygon, HotspotCellProps]):
    """An H3 cell's hexagon with its Gi* (``id`` is the H3 index)."""


class GridHotspotProps(HotspotStats):
    """Gi* of one grid."""

    id: int
    code: str
    name: str


class GridHotspot(Feature[AreaGeometry, GridHotspotProps]):
    """A grid's outline (simplified) with its Gi*."""


class HotspotParameters(Exact):
    """What was tested."""

    res: int
    k: int
    method: Literal["analytic", "permutation"]
    permutations: int = Field(description="0 for the analytic method")
    fdr: bool
    cells: int = Field(description="places in the study area")
    since: Timestamp | None
    until: Timestamp | None
    category: str | None


class HotspotCells(FeatureCollection[HotspotCell]):
    """The hot spot cells alone (``GET /hotspots/download?format=geojson``)."""


class HotspotLayer(FeatureCollection[HotspotCell]):
    """``GET /hotspots``: every cell of the study area, zero counts included."""

    parameters: HotspotParameters


class GridHotspotLayer(FeatureCollection[GridHotspot]):
    """``GET /hotspots/grids``: every grid of the current version."""

    parameters: HotspotParameters


class EmergingProps(Exact):
    """One cell's emerging hot spot pattern."""

    h3: str = H3Index
    pattern: str = Field(description="ArcGIS's pattern, e.g. 'New Hot Spot', 'No Pattern Detected'")
    pattern_label: str | None = Field(
        default=None, description="the pattern in the request's language, e.g. '新增的热点'"
    )
    count: int
    trend_z: float = Field(description="Mann-Kendall z of the cell's Gi* z-scores over bins")
    trend_p: float
    hot_bins: int
    cold_bins: int


class EmergingCell(Feature[Polygon, EmergingProps]):
    """An H3 cell's hexagon with its pattern."""


class EmergingTrim(Exact):
    """Time left out at one edge of the window, and why."""

    from_: Timestamp = Field(alias="from")
    to: Timestamp
    why: Literal[
        "partial bin", "before the first incident", "after the last incident", "not over yet"
    ] = Field(
        description="a part of a bin; whole bins before the data begins or after it ends "
        "(they would count as bins with no incidents); bins that have not ended"
    )


class EmergingTrimmed(Exact):
    """The partial bins left out of the window (null at an edge that fell on a bin edge)."""

    start: EmergingTrim | None
    end: EmergingTrim | None


class EmergingData(Exact):
    """The first and last incident of the analysis' filter (category, the caller's grids)."""

    first: Timestamp
    last: Timestamp


class EmergingCost(Exact):
    """The size of the space-time cube analysed."""

    cells: int
    bins: int
    values: int = Field(description="cells x bins")
    memory_bytes: int = Field(description="estimated peak memory of the analysis")
    limit_bytes: int = Field(description="the largest cube accepted (413 above it)")


class EmergingParameters(Exact):
    """The bins analysed: whole calendar bins of the deployment's time zone."""

    res: int
    bin: Literal["day", "week", "month", "quarter", "year"]
    bins: int
    k: int
    start: Timestamp = Field(description="start of the first bin, local time with offset")
    end: Timestamp = Field(description="end of the last bin, local time with offset")
    since: Timestamp = Field(description="the window's start as asked, local time")
    until: Timestamp = Field(description="the window's end as asked, local time")
    timezone: str = Field(description="IANA time zone of the calendar (GEO_TIMEZONE)")
    trimmed: EmergingTrimmed | None = Field(
        description="time left out at the window's edges; null when none"
    )
    data: EmergingData = Field(description="the incidents analysed span this time")
    cost: EmergingCost
    category: str | None


class EmergingLayer(FeatureCollection[EmergingCell]):
    """``GET /hotspots/emerging``."""

    parameters: EmergingParameters


# --- vector tiles --------------------------------------------------------------------------


class VectorLayer(Exact):
    """A layer of the tiles and its attribute types."""

    id: str
    fields: dict[str, str] = Field(description="attribute -> 'Number' | 'String'")
    description: str
    minzoom: int = Field(description="the lowest zoom whose tiles carry the layer's features")
    maxzoom: int = Field(description="the zoom from which clients overzoom (no new detail)")


class TileWindow(Exact):
    """The time window of the incidents layer (TileJSON member ``window``)."""

    since: datetime = Field(description="first instant drawn (inclusive)")
    until: datetime = Field(description="end (exclusive), as of this document")
    default_days: int = Field(description="days before until drawn when no since is given")
    sliding: bool = Field(description="no until given: each tile's window ends when it is made")


class TileJSON(Exact):
    """TileJSON 3.0.0 of a tile layer (``window`` and ``max_points_per_tile`` on incidents)."""

    tilejson: Literal["3.0.0"]
    name: str
    description: str
    scheme: Literal["xyz"]
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float] = Field(min_length=4, max_length=4)
    center: list[float] = Field(min_length=3, max_length=3, description="lon, lat, zoom")
    vector_layers: list[VectorLayer]
    window: TileWindow | None = None
    max_points_per_tile: int | None = Field(
        default=None,
        description="incident points in one tile at most; a fuller tile keeps the highest "
        "priority, then newest, and answers X-Tile-Truncated: kept/matched",
    )


# --- OGC API - Features --------------------------------------------------------------------


class Link(Exact):
    """A typed link."""

    rel: str
    type: str
    href: str


class LandingPage(Exact):
    """The OGC API landing page."""

    title: str
    description: str
    links: list[Link]


class Conformance(Exact):
    """The conformance classes implemented."""

    conformsTo: list[str]  # noqa: N815 - the OGC member name


class SpatialExtent(Exact):
    """Bounding boxes and their CRS."""

    bbox: list[list[float]]
    crs: str


class TemporalExtent(Exact):
    """The first and last instants of the data (OGC API - Features, /req/core/fc-md-extent)."""

    interval: list[list[Timestamp | None]]
    trs: str = Field(description="http://www.opengis.net/def/uom/ISO-8601/0/Gregorian")


class Extent(Exact):
    """A collection's extent: in space (CRS84) and, for layers of incidents, in time."""

    spatial: SpatialExtent | None = None
    temporal: TemporalExtent | None = Field(None, description="absent for layers without time")


class Collection(Exact):
    """One collection's metadata."""

    id: str
    title: str = Field(description="in the request's language")
    description: str = Field(description="in the request's language")
    itemType: Literal["feature"]  # noqa: N815 - the OGC member name
    crs: list[str] = Field(description="CRSs offered by the crs parameter (Part 2)")
    storageCrs: str = Field(  # noqa: N815 - the OGC member name
        description="the CRS the data is kept in (Part 2)"
    )
    links: list[Link]
    extent: Extent | None = Field(None, description="absent while the city has no areas")


class Collections(Exact):
    """All collections."""

    collections: list[Collection]
    links: list[Link]


class AreaItemProps(Exact):
    """An area as an OGC feature."""

    code: str
    name: str = Field(description="the name as imported")
    names: dict[str, str] = Field(
        default_factory=dict, description="the name per language, BCP 47 tag -> name"
    )
    display_name: str = Field(description="the name in the request's language, else `name`")
    level: Level
    parent_id: int | None
    area_m2: float


class AreaItem(Feature[AreaGeometry, AreaItemProps]):
    """An area (``id`` is its row id)."""


class BatchCellProps(Exact):
    """A cell of a batch run: ``count`` always, the statistics of its kind."""

    h3: str = H3Index
    count: int
    z: float | None = None
    p: float | None = None
    p_fdr: float | None = None
    class_: str | None = Field(None, alias="class")
    class_label: str | None = Field(None, description="`class` in the request's language")
    pattern: str | None = None
    pattern_label: str | None = Field(None, description="`pattern` in the request's language")
    trend_z: float | None = None
    trend_p: float | None = None


class BatchCell(Feature[Polygon, BatchCellProps]):
    """A cell of a batch run (``id`` is the H3 index)."""


class IncidentItemProps(Exact):
    """An incident as an OGC feature: no description, address or people."""

    category: str
    priority: int
    status: str
    source: str
    reported_at: Timestamp
    grid_id: int | None


class IncidentItem(Feature[Point, IncidentItemProps]):
    """An incident (``id`` is its UUID)."""


OgcFeature = AreaItem | HeatCell | HotspotCell | EmergingCell | IncidentItem | BatchCell
OgcGeometry = Annotated[Point | Polygon | MultiPolygon, Field(discriminator="type")]


class OgcItem(Exact):
    """``GET /collections/{id}/items/{featureId}``: one feature of any collection, with its
    ``self`` and ``collection`` links."""

    type: Literal["Feature"]
    id: int | str
    geometry: OgcGeometry
    properties: (
        AreaItemProps
        | HeatCellProps
        | HotspotCellProps
        | EmergingProps
        | IncidentItemProps
        | BatchCellProps
    )
    links: list[Link]


class OgcItems(FeatureCollection[OgcFeature]):
    """A page of a collection's features."""

    numberMatched: int  # noqa: N815 - the OGC member names
    numberReturned: int  # noqa: N815
    timeStamp: Timestamp  # noqa: N815
    links: list[Link]
