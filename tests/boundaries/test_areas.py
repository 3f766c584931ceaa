from __future__ import annotations

import shapely
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from geo_service.geo.crs import from_wgs84, to_wgs84
from tests.conftest import grid_point, problem


def _areas(city: DemoCity, level: str):  # noqa: ANN202
    return city.areas[city.areas.level == level]


def test_list_grids_returns_every_grid_as_geojson(
    client: TestClient, loaded_city: DemoCity
) -> None:
    response = client.get("/areas", params={"level": "grid"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    features = response.json()["features"]
    assert len(features) == len(_areas(loaded_city, "grid"))
    props = features[0]["properties"]
    assert set(props) >= {"id", "code", "name", "level", "parent_id"}
    assert {f["properties"]["level"] for f in features} == {"grid"}
    assert features[0]["geometry"]["type"] == "MultiPolygon"


def test_list_children_of_a_parent(client: TestClient, loaded_city: DemoCity) -> None:
    districts = client.get("/areas", params={"level": "district"}).json()["features"]
    first = districts[0]["properties"]
    streets = client.get("/areas", params={"parent_id": first["id"]}).json()["features"]
    expected = _areas(loaded_city, "street")
    expected = expected[expected.parent_code == first["code"]]
    assert sorted(f["properties"]["code"] for f in streets) == sorted(expected.code)


def test_bbox_filter_keeps_only_intersecting_areas(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    bbox = f"{lon - 0.002},{lat - 0.002},{lon + 0.002},{lat + 0.002}"
    features = client.get("/areas", params={"level": "grid", "bbox": bbox}).json()["features"]
    box = shapely.box(lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)
    grids = _areas(loaded_city, "grid")
    expected = set(grids[grids.intersects(box)].code)
    assert {f["properties"]["code"] for f in features} == expected
    assert 1 <= len(expected) < len(grids)


def test_bad_bbox_and_level_are_422_problems(client: TestClient) -> None:
    for params in (
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "10,10,5,5"},
        {"bbox": "0,0,200,10"},
        {"level": "province"},
        {"parent_id": "x"},
    ):
        body = problem(client.get("/areas", params=params))
        assert body["status"] == 422, params


def test_unknown_version_is_404(client: TestClient) -> None:
    assert problem(client.get("/areas", params={"version": 99999}))["status"] == 404


def test_lookup_returns_the_whole_hierarchy(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, code = grid_point(loaded_city)
    response = client.get("/areas/lookup", params={"lon": lon, "lat": lat})
    assert response.status_code == 200
    body = response.json()
    assert body["grid"]["code"] == code
    parts = code.split("-")
    assert body["community"]["code"] == "-".join(parts[:3])
    assert body["street"]["code"] == "-".join(parts[:2])
    assert body["district"]["code"] == parts[0]


def test_lookup_accepts_gcj02_and_bd09(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, code = grid_point(loaded_city)
    for name in ("gcj02", "bd09"):
        (clon,), (clat,) = from_wgs84([lon], [lat], name)
        body = client.get("/areas/lookup", params={"lon": clon, "lat": clat, "crs": name}).json()
        assert body["grid"]["code"] == code, name
    # Declaring WGS84 numbers as GCJ-02 moves them ~600 m: the answer is the grid of the
    # de-offset point, computed independently here.
    (wlon,), (wlat,) = to_wgs84([lon], [lat], "gcj02")
    assert abs(wlon - lon) > 0.004
    moved = client.get("/areas/lookup", params={"lon": lon, "lat": lat, "crs": "gcj02"})
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    holder = grids[grids.intersects(shapely.Point(wlon, wlat))]
    if holder.empty:
        assert moved.status_code == 404
    else:
        assert moved.json()["grid"]["code"] == holder.code.iloc[0]


def test_lookup_outside_city_is_404_problem(client: TestClient) -> None:
    body = problem(client.get("/areas/lookup", params={"lon": 2.35, "lat": 48.85}))
    assert body["status"] == 404 and body["code"] == "outside-city"


def test_lookup_bad_input_is_422(client: TestClient) -> None:
    for params in (
        {"lon": 200, "lat": 30},
        {"lon": 114.3},
        {"lon": 114.3, "lat": 30.6, "crs": "mars"},
        {"lon": "east", "lat": 30},
    ):
        assert problem(client.get("/areas/lookup", params=params))["status"] == 422


def test_lookup_before_any_version_was_in_force_is_404(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    body = problem(
        client.get("/areas/lookup", params={"lon": lon, "lat": lat, "at": "2001-01-01T00:00:00Z"})
    )
    assert body["status"] == 404


def test_area_detail_counts_match_the_loaded_rows(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, code = grid_point(loaded_city)
    grid_id = client.get("/areas/lookup", params={"lon": lon, "lat": lat}).json()["grid"]["id"]
    body = client.get(f"/areas/{grid_id}").json()
    stats = body["properties"]["stats"]
    hh = loaded_city.households[loaded_city.households.grid_code == code]
    ru = loaded_city.rental_units[loaded_city.rental_units.grid_code == code]
    inc = loaded_city.incidents[loaded_city.incidents.grid_code == code]
    assert stats["households"] == len(hh)
    assert stats["residents"] == int(hh.household_size.sum())
    assert stats["rental_units"] == len(ru)
    open_states = {"reported", "dispatched", "accepted", "on_scene"}
    assert stats["open_incidents"] == int(inc.status.isin(open_states).sum())


def test_district_detail_sums_its_grids(client: TestClient, loaded_city: DemoCity) -> None:
    district = client.get("/areas", params={"level": "district"}).json()["features"][0]
    body = client.get(f"/areas/{district['id']}").json()
    code = district["properties"]["code"]
    hh = loaded_city.households[loaded_city.households.grid_code.str.startswith(code + "-")]
    assert body["properties"]["stats"]["households"] == len(hh) > 0


def test_area_detail_unknown_is_404(client: TestClient) -> None:
    assert problem(client.get("/areas/987654"))["status"] == 404
