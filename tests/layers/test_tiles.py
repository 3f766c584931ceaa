"""Vector tiles decode as MVT with the right layers, features and cache headers."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point, problem


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.mark.parametrize(
    ("layer", "z"),
    [("grids", 13), ("incidents", 15), ("incidents", 11), ("heatmap", 11), ("hotspots", 11)],
)
def test_tiles_decode_with_features(
    client: TestClient, loaded_city: DemoCity, layer: str, z: int
) -> None:
    inc = loaded_city.incidents
    busiest = inc.grid_code.value_counts().index[0]
    lon, lat, _ = grid_point(loaded_city, busiest)
    x, y = _tile_of(lon, lat, z)
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert response.headers["cache-control"] == "private, max-age=60"
    decoded = mapbox_vector_tile.decode(response.content)
    assert list(decoded) == [layer]
    features = decoded[layer]["features"]
    assert features, f"empty {layer} tile"
    props = features[0]["properties"]
    expected = {
        "grids": {"code", "name"},
        "incidents": {"category", "priority"} if z >= 14 else {"h3", "count"},
        "heatmap": {"h3", "count"},
        "hotspots": {"h3", "count", "z", "p_fdr", "class"},
    }[layer]
    assert expected <= set(props), props
    again = client.get(
        f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


def test_a_new_incident_shows_in_its_point_tile(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    x, y = _tile_of(lon, lat, 16)
    before = client.get(f"/tiles/incidents/16/{x}/{y}.mvt")
    made = client.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon, "lat": lat}}
    ).json()
    after = client.get(
        f"/tiles/incidents/16/{x}/{y}.mvt", headers={"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    ids = {
        f["properties"]["id"]
        for f in mapbox_vector_tile.decode(after.content)["incidents"]["features"]
    }
    assert made["id"] in ids


def test_tilejson_and_bad_tiles(client: TestClient) -> None:
    tj = client.get("/tiles/heatmap.json", params={"category": "traffic"}).json()
    assert tj["tilejson"] == "3.0.0" and tj["vector_layers"][0]["id"] == "heatmap"
    assert tj["tiles"][0].endswith("/tiles/heatmap/{z}/{x}/{y}.mvt?category=traffic")
    assert problem(client.get("/tiles/roads.json"))["status"] == 404
    assert problem(client.get("/tiles/roads/1/0/0.mvt"))["status"] == 404
    for path in (
        "/tiles/grids/30/0/0.mvt",
        "/tiles/grids/3/8/0.mvt",
        "/tiles/grids/3/0/-1.mvt",
        "/tiles/heatmap/5/0/0.mvt?res=2",
    ):
        assert problem(client.get(path))["status"] == 422, path
    assert problem(client.get("/tiles/grids/1/0/0.mvt", headers={"X-API-Key": ""}))["status"] == 401
