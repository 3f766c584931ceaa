"""Hot spot layers over HTTP."""

from __future__ import annotations

import h3
from fastapi.testclient import TestClient

from geo_service.analytics.hotspots import CLASSES
from geo_service.demo.city import DemoCity
from tests.conftest import as_role, problem


def test_every_city_cell_gets_a_feature_and_counts_add_up(
    client: TestClient, loaded_city: DemoCity
) -> None:
    body = client.get("/hotspots", params={"res": 8}).json()
    features = body["features"]
    assert body["parameters"]["cells"] == len(features) > 100
    props = [f["properties"] for f in features]
    assert sum(p["count"] for p in props) == len(loaded_city.incidents)
    assert any(p["count"] == 0 for p in props)  # empty cells are part of the study area
    assert {p["class"] for p in props} <= set(CLASSES)
    assert all(set(p) >= {"h3", "count", "z", "p", "p_fdr", "class"} for p in props)
    assert all(h3.is_valid_cell(p["h3"]) and h3.get_resolution(p["h3"]) == 8 for p in props)
    assert features[0]["geometry"]["type"] == "Polygon"


def test_planted_persistent_hotspot_is_found(client: TestClient, loaded_city: DemoCity) -> None:
    spot = next(h for h in loaded_city.hotspots if h.expected_pattern == "persistent")
    body = client.get("/hotspots", params={"res": 8, "category": spot.category}).json()
    by_cell = {f["properties"]["h3"]: f["properties"] for f in body["features"]}
    centre = h3.latlng_to_cell(spot.lat, spot.lon, 8)
    assert by_cell[centre]["class"] == "Hot Spot - 99% Confidence", by_cell[centre]
    hot = [p for p in by_cell.values() if p["class"].startswith("Hot Spot")]
    assert len(hot) < len(by_cell) / 10


def test_permutation_method_and_window_filters(client: TestClient, loaded_city: DemoCity) -> None:
    until = loaded_city.incidents.reported_at.max()
    since = until - __import__("pandas").Timedelta(days=90)
    params = {
        "res": 7,
        "method": "permutation",
        "permutations": 199,
        "since": since.isoformat(),
        "until": until.isoformat(),
    }
    body = client.get("/hotspots", params=params).json()
    inc = loaded_city.incidents
    expected = int(((inc.reported_at >= since) & (inc.reported_at < until)).sum())
    assert sum(f["properties"]["count"] for f in body["features"]) == expected
    assert body["parameters"]["method"] == "permutation"
    assert min(f["properties"]["p"] for f in body["features"]) >= 2 / 200


def test_grid_hotspots_use_grid_polygons(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    body = client.get("/hotspots/grids", headers=as_role(role_keys, "analyst")).json()
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    assert len(body["features"]) == len(grids)
    assert sum(f["properties"]["count"] for f in body["features"]) == len(loaded_city.incidents)
    assert body["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_bad_hotspot_queries_are_422(client: TestClient) -> None:
    for params in (
        {"res": 3},
        {"res": 12},
        {"k": 0},
        {"k": 4},
        {"method": "bayes"},
        {"permutations": 5},
        {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "2026-W01-4"},  # a naive time is local time (issue 19); this is none
    ):
        assert problem(client.get("/hotspots", params=params))["status"] == 422, params
    assert problem(client.get("/hotspots/grids", params={"method": "x"}))["status"] == 422
    assert problem(client.get("/hotspots", headers={"X-API-Key": ""}))["status"] == 401


def test_emerging_endpoint_answers_a_pattern_per_cell(client: TestClient) -> None:
    body = client.get("/hotspots/emerging", params={"res": 7, "bin": "month"}).json()
    # the last 12 whole months; the first goes when the data (a year to today) starts inside it
    parameters = body["parameters"]
    assert parameters["bins"] == 12 or (
        parameters["bins"] == 11
        and parameters["trimmed"]["start"]["why"] == "before the first incident"
    )
    props = [f["properties"] for f in body["features"]]
    assert props and all(set(p) >= {"h3", "pattern", "trend_z", "trend_p", "count"} for p in props)
    from geo_service.analytics.emerging import PATTERNS

    assert {p["pattern"] for p in props} <= set(PATTERNS)
    # a window into the future: the months that have not ended are left out and said
    future = client.get(
        "/hotspots/emerging", params={"res": 7, "since": "2020-01-01", "until": "2100-01-01"}
    ).json()["parameters"]
    assert future["trimmed"]["end"]["why"] == "not over yet"
    assert future["end"] <= future["trimmed"]["end"]["to"]
    assert future["trimmed"]["start"]["why"] == "before the first incident"
    for params in ({"bin": "fortnight"}, {"res": 11}, {"k": 9}):
        assert problem(client.get("/hotspots/emerging", params=params))["status"] == 422
