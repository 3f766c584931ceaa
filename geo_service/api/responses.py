"""JSON responses encoded by orjson, for large bodies (heatmaps, hot spots, feature pages).

FastAPI passes a returned dict through ``jsonable_encoder`` before encoding it, which costs
milliseconds on a thousand-cell heatmap; returning one of these skips that step. orjson writes
datetimes as RFC 3339 and NaN as null (valid JSON, unlike the standard library's ``NaN``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import orjson
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from geo_service.geo.crs import geojson_from_wgs84

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # numeric columns
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class FastJSONResponse(JSONResponse):
    """``application/json`` via orjson."""

    def render(self, content: Any) -> bytes:  # noqa: D102 - the point of the class
        return orjson.dumps(content, option=OPTIONS, default=_default)


class GeoJSONResponse(FastJSONResponse):
    """``application/geo+json`` via orjson."""

    media_type = "application/geo+json"


_ANY_DICT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


class DictJSONResponse(JSONResponse):
    """``application/json`` for a service's dict, byte for byte as FastAPI encodes a
    ``dict[str, Any]`` return value (pydantic's ``dump_json``: NaN as null, datetimes RFC 3339).

    Routes return one of these when they declare a typed ``response_model`` for the OpenAPI
    document: the body is sent as the service built it, not re-validated.
    """

    def render(self, content: Any) -> bytes:  # noqa: D102 - the point of the class
        return _ANY_DICT.dump_json(content)


GeoJSONBody = TypeVar("GeoJSONBody", dict[str, Any], bytes, str)


def geojson_in_crs(body: GeoJSONBody, crs: str) -> GeoJSONBody:
    """A GeoJSON answer with its positions in ``crs`` (wgs84, gcj02 or bd09): the one place
    every GeoJSON route converts its output (``geo.crs.geojson_from_wgs84``).

    ``body`` is the document as a dict, or as the text or bytes the database wrote (decoded,
    converted and encoded again by orjson); for ``wgs84`` it is returned as it is, at no cost.
    """
    if crs == "wgs84":
        return body
    if isinstance(body, bytes):
        return orjson.dumps(geojson_from_wgs84(orjson.loads(body), crs), option=OPTIONS)
    if isinstance(body, str):
        return orjson.dumps(geojson_from_wgs84(orjson.loads(body), crs), option=OPTIONS).decode()
    converted: dict[str, Any] = geojson_from_wgs84(body, crs)
    return converted
