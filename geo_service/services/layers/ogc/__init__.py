"""OGC API - Features (Part 1: Core, GeoJSON; Part 2: CRS84 and EPSG:4326) over the city's
areas, incidents, heatmap, hot spot and emerging hot spot layers and the batch layers.

Layers are read through the same services as the rest of the API, so access control and the
privacy rules apply unchanged: ``catalogue`` says which collections exist for a caller and
their extents, ``computed`` computes a layer once per parameter set, ``features`` pages
features and answers single ones, with links that keep the client's parameters.
"""

from geo_service.services.layers.ogc.catalogue import (
    CONFORMANCE,
    CRS84,
    EPSG4326,
    SUPPORTED_CRS,
    collection,
    collections,
    landing,
)
from geo_service.services.layers.ogc.features import check_crs, item, items, parse_datetime

__all__ = [
    "CONFORMANCE",
    "CRS84",
    "EPSG4326",
    "SUPPORTED_CRS",
    "check_crs",
    "collection",
    "collections",
    "item",
    "items",
    "landing",
    "parse_datetime",
]
