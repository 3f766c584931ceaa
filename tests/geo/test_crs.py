"""GCJ-02 / BD-09 conversion, checked on real published polygons (Wuhan, Yichang)."""

from __future__ import annotations

import copy
import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo_service.geo import crs
from tests.conftest import SHARED_DATA

GEOD = Geod(ellps="WGS84")
HUBEI = SHARED_DATA / "hubei"


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:  # noqa: ANN001
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize("city", ["wuhan", "yichang"])
def test_gcj02_polygons_convert_within_3_m_of_published_wgs84(city: str) -> None:
    gcj = gpd.read_file(HUBEI / f"{city}_districts_gcj02.geojson")
    wgs = gpd.read_file(HUBEI / f"{city}_districts_wgs84.geojson")
    converted = crs.geometry_to_wgs84(gcj.geometry.values, "gcj02")
    ours = shapely.get_coordinates(converted)
    theirs = shapely.get_coordinates(wgs.geometry.values)
    assert ours.shape == theirs.shape and len(ours) > 10_000
    errors = _metres(ours[:, 0], ours[:, 1], theirs[:, 0], theirs[:, 1])
    assert errors.max() < 3.0
    # ...and the offset being removed is real: GCJ-02 itself sits hundreds of metres off.
    raw = shapely.get_coordinates(gcj.geometry.values)
    assert np.median(_metres(raw[:, 0], raw[:, 1], theirs[:, 0], theirs[:, 1])) > 300


def test_round_trip_wgs84_gcj02_is_exact_to_a_centimetre() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(75, 134, 50_000)
    lat = rng.uniform(18, 53, 50_000)
    back = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert _metres(lon, lat, *back).max() < 0.01


def test_round_trip_through_bd09_is_exact_to_a_centimetre() -> None:
    rng = np.random.default_rng(2)
    lon = rng.uniform(100, 125, 20_000)
    lat = rng.uniform(20, 45, 20_000)
    back = crs.to_wgs84(*crs.from_wgs84(lon, lat, "bd09"), "bd09")
    assert _metres(lon, lat, *back).max() < 0.01


def test_forward_formulas_match_the_reference_implementation() -> None:
    # Reference values from wandergis/coordtransform's own test (the common JS implementation).
    lon, lat = crs.gcj02_to_bd09([116.404], [39.915])
    assert abs(lon[0] - 116.41036949371029) < 1e-9 and abs(lat[0] - 39.92133699351021) < 1e-9
    lon, lat = crs.wgs84_to_gcj02([116.404], [39.915])
    assert abs(lon[0] - 116.41024449916938) < 1e-9 and abs(lat[0] - 39.91640428150164) < 1e-9


def test_points_outside_china_pass_through_unchanged() -> None:
    lon = np.array([-87.63, 2.35, 139.9])
    lat = np.array([41.88, 48.85, 35.6])
    for name in ("gcj02", "bd09"):
        out_lon, out_lat = crs.to_wgs84(lon, lat, name)
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)
        out_lon, out_lat = crs.from_wgs84(lon, lat, name)
        np.testing.assert_array_equal(out_lon, lon)


def test_gcj02_offset_in_wuhan_is_hundreds_of_metres() -> None:
    glon, glat = crs.wgs84_to_gcj02([114.30], [30.59])
    assert 400 < _metres(114.30, 30.59, glon[0], glat[0]) < 800


def test_unknown_crs_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported crs"):
        crs.to_wgs84([114.3], [30.6], "epsg:3857")


# --- GeoJSON documents (issue 19: crs= on every GeoJSON endpoint) ------------------------------


def _every_geometry_type() -> dict:
    ring = [[114.30, 30.59], [114.31, 30.59], [114.31, 30.60], [114.30, 30.59]]
    geometries = [
        {"type": "Point", "coordinates": [114.30, 30.59, 12.5]},
        {"type": "MultiPoint", "coordinates": [[114.30, 30.59], [114.32, 30.61]]},
        {"type": "LineString", "coordinates": ring[:3]},
        {"type": "MultiLineString", "coordinates": [ring[:2], ring[1:3]]},
        {"type": "Polygon", "coordinates": [ring]},
        {"type": "MultiPolygon", "coordinates": [[ring], [ring]]},
    ]
    features = [
        {"type": "Feature", "id": i, "geometry": g, "properties": {"n": i}}
        for i, g in enumerate(geometries)
    ]
    features.append(
        {
            "type": "Feature",
            "id": "gc",
            "geometry": {"type": "GeometryCollection", "geometries": geometries[:2]},
            "properties": {"lon": 114.30, "lat": 30.59, "name": "a responder"},
            "bbox": [114.30, 30.59, 114.32, 30.61],
        }
    )
    features.append({"type": "Feature", "id": "none", "geometry": None, "properties": {}})
    return {"type": "FeatureCollection", "features": features, "next_cursor": None}


def _all_positions(node) -> list:  # noqa: ANN001
    """Every [lon, lat] pair of a document, walked independently of the code under test."""
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            if key == "coordinates":
                out += _flatten(value)
            elif key == "bbox":
                out += [value[:2], value[2:]]
            elif key == "properties" and isinstance(value, dict) and "lon" in value:
                out.append([value["lon"], value["lat"]])
            else:
                out += _all_positions(value)
        return out
    if isinstance(node, list):
        return [p for item in node for p in _all_positions(item)]
    return []


def _flatten(coords) -> list:  # noqa: ANN001
    if coords and isinstance(coords[0], int | float):
        return [list(coords[:2])]
    return [p for c in coords for p in _flatten(c)]


@pytest.mark.parametrize("name", ["gcj02", "bd09"])
def test_geojson_every_geometry_type_is_converted_and_the_input_kept(name: str) -> None:
    doc = _every_geometry_type()
    before = copy.deepcopy(doc)
    out = crs.geojson_from_wgs84(doc, name)
    assert doc == before  # the input (a cached layer) is not touched
    wgs = np.array(_all_positions(before))
    got = np.array(_all_positions(out))
    assert got.shape == wgs.shape == (28, 2)
    expected = np.column_stack(crs.from_wgs84(wgs[:, 0], wgs[:, 1], name))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert out["features"][0]["geometry"]["coordinates"][2] == 12.5  # heights kept
    assert out["next_cursor"] is None and out["features"][-1]["geometry"] is None
    assert out["features"][-2]["properties"]["name"] == "a responder"
    assert crs.geojson_from_wgs84(doc, "WGS-84") is doc


def test_geojson_accepts_tuples_as_shapely_writes_them() -> None:
    feature = {
        "type": "Feature",
        "id": 1,
        "properties": {},
        "geometry": shapely.geometry.mapping(shapely.box(114.3, 30.5, 114.4, 30.6)),
    }
    out = crs.geojson_from_wgs84(feature, "gcj02")
    ours = shapely.get_coordinates(shapely.geometry.shape(out["geometry"]))
    wgs = shapely.get_coordinates(shapely.box(114.3, 30.5, 114.4, 30.6))
    np.testing.assert_allclose(ours, np.column_stack(crs.from_wgs84(wgs[:, 0], wgs[:, 1], "gcj02")))


@pytest.mark.parametrize("city", ["wuhan", "yichang"])
def test_geojson_of_published_wgs84_polygons_lands_on_their_gcj02_versions(city: str) -> None:
    wgs = json.loads((HUBEI / f"{city}_districts_wgs84.geojson").read_text())
    gcj = json.loads((HUBEI / f"{city}_districts_gcj02.geojson").read_text())
    out = crs.geojson_from_wgs84(wgs, "gcj02")
    ours = np.array(_all_positions(out))
    theirs = np.array(_all_positions(gcj))
    assert ours.shape == theirs.shape and len(ours) > 10_000
    # the WGS84 file was made from the GCJ-02 one by cnmaps' approximate inverse
    assert _metres(ours[:, 0], ours[:, 1], theirs[:, 0], theirs[:, 1]).max() < 3.0
    raw = np.array(_all_positions(wgs))
    assert np.median(_metres(raw[:, 0], raw[:, 1], theirs[:, 0], theirs[:, 1])) > 300


def test_geojson_with_an_unknown_crs_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported crs"):
        crs.geojson_from_wgs84(_every_geometry_type(), "epsg:3857")


# --- one converter for every shape: the vectorised paths agree with the point converters ------

# around and across the rectangle of out_of_china (72.004..137.8347 E, 0.8293..55.8271 N)
_LON = st.floats(60.0, 150.0, allow_nan=False)
_LAT = st.floats(-5.0, 65.0, allow_nan=False)
_POSITION = st.tuples(_LON, _LAT)


_POINT = st.builds(shapely.Point, _POSITION)
_LINE = st.builds(shapely.LineString, st.lists(_POSITION, min_size=2, max_size=12))
_POLYGON = st.builds(
    lambda centre, radius, n: shapely.Point(centre).buffer(radius, quad_segs=n),
    _POSITION,
    st.floats(1e-4, 0.5),
    st.integers(1, 6),
)
_SIMPLE = st.one_of(_POINT, _LINE, _POLYGON)
_GEOMETRY = st.one_of(
    _SIMPLE,
    st.builds(shapely.MultiPoint, st.lists(_POINT, min_size=1, max_size=5)),
    st.builds(shapely.MultiLineString, st.lists(_LINE, min_size=1, max_size=4)),
    st.builds(shapely.MultiPolygon, st.lists(_POLYGON, min_size=1, max_size=3)),
    st.builds(shapely.GeometryCollection, st.lists(_SIMPLE, min_size=1, max_size=4)),
)


def _converted_point_by_point(coords: np.ndarray, convert, name: str) -> np.ndarray:  # noqa: ANN001
    """Each vertex through the point converter on its own (a list of one point)."""
    return np.array([[v[0] for v in convert([x], [y], name)] for x, y in coords]).reshape(-1, 2)


@pytest.mark.parametrize("name", ["gcj02", "bd09"])
@given(geoms=st.lists(_GEOMETRY, min_size=1, max_size=6))
@settings(max_examples=60, deadline=None, derandomize=True)
def test_random_geometries_convert_as_their_vertices_do_one_by_one(
    name: str, geoms: list[shapely.Geometry]
) -> None:
    coords = shapely.get_coordinates(geoms)
    # shapely geometries (file imports): types and vertex counts kept, each vertex as alone
    converted = crs.geometry_to_wgs84(geoms, name)
    assert list(shapely.get_type_id(converted)) == list(shapely.get_type_id(geoms))
    assert list(shapely.get_num_coordinates(converted)) == list(shapely.get_num_coordinates(geoms))
    alone = _converted_point_by_point(coords, crs.to_wgs84, name)
    # the iterated inverse stops when a whole batch is within 1e-12 degrees: a batch and a
    # single point may take different rounds, never more than that apart
    np.testing.assert_allclose(shapely.get_coordinates(converted), alone, rtol=0, atol=1e-11)
    # GeoJSON answers: every position of the document as the point converter makes it
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": i, "properties": {}, "geometry": shapely.geometry.mapping(g)}
            for i, g in enumerate(geoms)
        ],
    }
    out = crs.geojson_from_wgs84(document, name)
    got = np.array(_all_positions(out)).reshape(-1, 2)
    wgs = np.array(_all_positions(document)).reshape(-1, 2)
    expected = _converted_point_by_point(wgs, crs.from_wgs84, name)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
