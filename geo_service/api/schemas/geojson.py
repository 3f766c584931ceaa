"""GeoJSON response models (RFC 7946): geometries, and ``Feature`` / ``FeatureCollection``
generic over their geometry and properties, so every GeoJSON answer documents its fields.

A room declares its features as subclasses, e.g.
``class IncidentFeature(Feature[Point, IncidentProperties])``, and its answer as
``FeatureCollection[IncidentFeature]`` (subclassed when it carries more members).
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import Field, WithJsonSchema

from geo_service.api.schemas.strict import Exact

Position = Annotated[list[float], Field(min_length=2, max_length=3)]
# Timestamps the services already render (``datetime.isoformat()``): passed through as they
# are, documented as RFC 3339 date-times.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]

GeometryT = TypeVar("GeometryT")
PropertiesT = TypeVar("PropertiesT")
FeatureT = TypeVar("FeatureT")


class Point(Exact):
    """A GeoJSON Point: [lon, lat] in WGS84."""

    type: Literal["Point"]
    coordinates: Position


class Polygon(Exact):
    """A GeoJSON Polygon: rings of [lon, lat] positions in WGS84, the outer ring first."""

    type: Literal["Polygon"]
    coordinates: list[list[Position]]


class MultiPolygon(Exact):
    """A GeoJSON MultiPolygon: polygons of rings of [lon, lat] positions in WGS84."""

    type: Literal["MultiPolygon"]
    coordinates: list[list[list[Position]]]


# An area's outline: a Polygon or a MultiPolygon.
AreaGeometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class Feature(Exact, Generic[GeometryT, PropertiesT]):
    """A GeoJSON Feature with typed geometry and properties."""

    type: Literal["Feature"]
    id: int | str
    geometry: GeometryT
    properties: PropertiesT


class FeatureCollection(Exact, Generic[FeatureT]):
    """A GeoJSON FeatureCollection of typed features."""

    type: Literal["FeatureCollection"]
    features: list[FeatureT]
