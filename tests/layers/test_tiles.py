"""Vector tiles decode as MVT with the right layers, features and cache headers; TileJSON
states each layer's zooms, the incidents layer's window and point cap, and the tiles keep to
them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mapbox_vector_tile
import pytest
import shapely
import shapely.geometry
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.services.batch.execute import run_batch
from geo_service.services.batch.export import export_dataset
from geo_service.services.batch.request import BatchRequest
from geo_service.services.layers.tiles import LAYERS, POINT_ZOOM, TileQuery, render_tile
from geo_service.settings import Settings
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
        # a window ending before it starts (review, issue 16: answered 200)
        "/tiles/incidents/14/0/0.mvt?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
        "/tiles/incidents.json?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ):
        assert problem(client.get(path))["status"] == 422, path
    # a window given is not the sliding default
    given = client.get("/tiles/incidents.json", params={"since": "2026-01-01T00:00:00Z"}).json()
    assert given["window"]["sliding"] is False
    assert client.get("/tiles/incidents.json").json()["window"]["sliding"] is True
    assert problem(client.get("/tiles/grids/1/0/0.mvt", headers={"X-API-Key": ""}))["status"] == 401


# --- zooms, every layer, the incidents window and cap (issue 16) ----------------------------

TYPES = {"Number": (int, float), "String": (str,)}


def _busiest_point(city: DemoCity) -> tuple[float, float]:
    lon, lat, _ = grid_point(city, city.incidents.grid_code.value_counts().index[0])
    return lon, lat


def _decode(client: TestClient, layer: str, z: int, lon: float, lat: float, **params) -> dict:
    x, y = _tile_of(lon, lat, z)
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", params=params)
    assert response.status_code == 200, response.text[:300]
    return mapbox_vector_tile.decode(response.content)


def _width_units(feature: dict) -> float:
    # a grid drawn along streets is often cut in two by a tile's edge: a MultiPolygon
    xs = shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))[:, 0]
    return float(xs.max() - xs.min())


@pytest.mark.parametrize("layer", ["grids", "incidents", "heatmap", "hotspots"])
def test_tilejson_gives_each_layer_the_zooms_its_features_are_drawn_at(
    client: TestClient, loaded_city: DemoCity, layer: str
) -> None:
    tj = client.get(f"/tiles/{layer}.json").json()
    minzoom, maxzoom = tj["minzoom"], tj["maxzoom"]
    (vector_layer,) = tj["vector_layers"]
    assert (vector_layer["minzoom"], vector_layer["maxzoom"]) == (minzoom, maxzoom)
    assert 0 < minzoom < maxzoom <= 22 and minzoom <= tj["center"][2] <= maxzoom
    lon, lat = _busiest_point(loaded_city)
    # below minzoom nothing is drawn; at minzoom features are there, a pixel wide or more
    assert _decode(client, layer, minzoom - 1, lon, lat) == {}
    features = _decode(client, layer, minzoom, lon, lat)[layer]["features"]
    assert features
    if layer != "incidents":  # polygons: 16 units (a pixel of a 256-px tile) across, give or
        # take the spread of hexagon and grid sizes around the average / median
        assert statistics.median(_width_units(f) for f in features) >= 16 * 0.7
    expected = {
        "incidents": (5, 22),  # res-6 hexagons at the city's latitude, then points to z22
        "heatmap": (5, 15),  # res 10 from z15, its 76 m edges 64 units long at z13
        "hotspots": (8, 10),  # res 8: 920 m across spans 16 units at z8, 531 m edges 64 at z10
    }
    if layer in expected:
        assert (minzoom, maxzoom) == expected[layer]
    else:
        assert maxzoom == 22
    # a fixed resolution moves the hexagon layers' zooms
    if layer == "heatmap":
        fixed = client.get("/tiles/heatmap.json", params={"res": 10}).json()
        assert (fixed["minzoom"], fixed["maxzoom"]) == (11, 13)


@pytest.fixture
def batch_runs(engine: Engine, loaded_city: DemoCity, tmp_path: Path) -> Iterator[None]:
    """A stored run of each cell kind (the batch tile layers read the newest)."""
    export_dataset(engine, "incidents", tmp_path)
    with engine.connect() as conn:  # the demo city's last 200 days (7 monthly bins), no clock
        newest = conn.execute(text("SELECT max(reported_at) FROM incidents")).scalar_one()
    until = newest + timedelta(seconds=1)
    since = until - timedelta(days=200)
    for kind in ("heatmap", "hotspots", "emerging"):
        req = BatchRequest(kind, tmp_path, res=8, since=since, until=until)
        run_batch(engine, req, engine_name="local", actor="tests")
    yield


def test_every_layer_decodes_at_its_zooms_with_the_fields_tilejson_announces(
    client: TestClient, engine: Engine, loaded_city: DemoCity, batch_runs: None
) -> None:
    lon, lat = _busiest_point(loaded_city)
    with engine.connect() as conn:  # a point tile at z22 is 10 m wide: aim at an incident
        newest = conn.execute(
            text("SELECT ST_X(location), ST_Y(location) FROM incidents ORDER BY reported_at DESC")
        ).first()
    assert newest is not None
    for layer in LAYERS:
        tj = client.get(f"/tiles/{layer}.json").json()
        (vector_layer,) = tj["vector_layers"]
        fields = vector_layer["fields"]
        assert vector_layer["id"] == layer
        zooms = {tj["minzoom"], (tj["minzoom"] + tj["maxzoom"]) // 2, tj["maxzoom"]}
        if layer == "incidents":  # the aggregates and the points
            zooms |= {POINT_ZOOM - 1, POINT_ZOOM, 16}
        seen: set[str] = set()
        for z in sorted(zooms):
            at = newest if layer == "incidents" and z >= POINT_ZOOM else (lon, lat)
            decoded = _decode(client, layer, z, *at)
            assert list(decoded) == [layer], (layer, z, list(decoded))
            assert decoded[layer]["extent"] == 4096
            features = decoded[layer]["features"]
            assert features, (layer, z)
            for feature in features:
                for name, value in feature["properties"].items():
                    assert name in fields, (layer, z, name)
                    assert isinstance(value, TYPES[fields[name]]), (layer, z, name, value)
                seen |= set(feature["properties"])
        assert seen == set(fields), (layer, set(fields) - seen)


def _incidents_in_tile(
    engine: Engine, z: int, x: int, y: int, since: datetime, until: datetime
) -> list[tuple]:
    """(priority, reported_at, id) of the incidents in a tile and window, computed apart."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT priority, reported_at, id::text FROM incidents "
                "WHERE ST_Intersects(location, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)) "
                "AND reported_at >= :since AND reported_at < :until"
            ),
            {"z": z, "x": x, "y": y, "since": since, "until": until},
        ).all()
    return [tuple(r) for r in rows]


def test_point_tiles_keep_the_highest_priority_then_newest_under_the_cap_and_say_so(
    settings: Settings, role_keys: dict[str, str], engine: Engine, loaded_city: DemoCity
) -> None:
    lon, lat = _busiest_point(loaded_city)
    z = POINT_ZOOM
    x, y = _tile_of(lon, lat, z)
    since = datetime(2000, 1, 1, tzinfo=UTC)  # fixed: every incident of the demo city
    until = datetime(2100, 1, 1, tzinfo=UTC)
    rows = _incidents_in_tile(engine, z, x, y, since, until)
    assert len(rows) > 25, len(rows)
    expected = {r[2] for r in sorted(rows, key=lambda r: (r[0], -r[1].timestamp(), r[2]))[:25]}
    capped = settings.model_copy(
        update={"api": settings.api.model_copy(update={"tile_max_points": 25})}
    )
    params = {"since": since.isoformat(), "until": until.isoformat()}
    with TestClient(create_app(capped), headers={"X-API-Key": role_keys["admin"]}) as small:
        response = small.get(f"/tiles/incidents/{z}/{x}/{y}.mvt", params=params)
        tj = small.get("/tiles/incidents.json").json()
    assert response.status_code == 200
    assert response.headers["x-tile-truncated"] == f"25/{len(rows)}"
    features = mapbox_vector_tile.decode(response.content)["incidents"]["features"]
    assert {f["properties"]["id"] for f in features} == expected
    assert tj["max_points_per_tile"] == 25
    # under the default cap (5,000) the same tile is whole and carries no such header
    with TestClient(create_app(settings), headers={"X-API-Key": role_keys["admin"]}) as full:
        whole = full.get(f"/tiles/incidents/{z}/{x}/{y}.mvt", params=params)
    assert "x-tile-truncated" not in whole.headers
    ids = {
        f["properties"]["id"]
        for f in mapbox_vector_tile.decode(whole.content)["incidents"]["features"]
    }
    assert ids == {r[2] for r in rows}


def test_incidents_layer_draws_the_map_window_when_no_since_is_given(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    lon, lat = _busiest_point(loaded_city)
    z = POINT_ZOOM
    x, y = _tile_of(lon, lat, z)
    with engine.connect() as conn:  # a fixed "now": the demo city's newest report, not a clock
        newest = conn.execute(text("SELECT max(reported_at) FROM incidents")).scalar_one()
    now = newest.replace(second=0, microsecond=0) + timedelta(seconds=30)
    until = now.replace(second=0) + timedelta(minutes=1)  # the window ends at the next minute
    since = until - timedelta(days=30)  # GEO_MAP_WINDOW_DAYS, the map pages' window
    in_window = {r[2] for r in _incidents_in_tile(engine, z, x, y, since, until)}
    everything = _incidents_in_tile(engine, z, x, y, datetime(2000, 1, 1, tzinfo=UTC), until)
    assert in_window and len(everything) > len(in_window)
    with Session(engine) as session:  # now, injected
        tile = render_tile(session, "incidents", z, x, y, TileQuery(now=now))
    drawn = {
        f["properties"]["id"] for f in mapbox_vector_tile.decode(tile.data)["incidents"]["features"]
    }
    assert drawn == in_window and tile.truncated is None
    # through the API with only until: the window is the 30 days before it
    decoded = _decode(client, "incidents", z, lon, lat, until=until.isoformat())
    assert {f["properties"]["id"] for f in decoded["incidents"]["features"]} == in_window
    tj = client.get("/tiles/incidents.json", params={"until": until.isoformat()}).json()
    assert tj["window"] == {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "default_days": 30,
        "sliding": False,
    }
    assert tj["max_points_per_tile"] == 5000
    assert client.get("/tiles/incidents.json").json()["window"]["sliding"] is True
    assert "window" not in client.get("/tiles/heatmap.json").json()
