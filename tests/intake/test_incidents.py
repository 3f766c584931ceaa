from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import h3
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.geo.crs import from_wgs84
from tests.conftest import grid_point, problem


def _count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_post_incident_assigns_grid_and_h3(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, code = grid_point(loaded_city)
    response = client.post(
        "/incidents",
        json={
            "category": "sanitation",
            "priority": 3,
            "description": "bins overflowing",
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "source": "hotline",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["grid"]["code"] == code
    assert body["h3"] == h3.latlng_to_cell(lat, lon, 11)
    assert body["status"] == "reported" and body["priority"] == 3
    assert response.headers["location"] == f"/incidents/{body['id']}"
    audit = _count(
        engine,
        "SELECT count(*) FROM audit_log WHERE entity='incident' "
        "AND entity_id=:i AND action='create'",
        i=body["id"],
    )
    assert audit == 1


def test_priority_defaults_to_the_category_default(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    body = client.post(
        "/incidents", json={"category": "safety_hazard", "location": {"lon": lon, "lat": lat}}
    ).json()
    assert body["priority"] == 1


def test_same_idempotency_key_returns_the_same_incident(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    key = f"test-{uuid.uuid4()}"
    payload = {"category": "traffic", "location": {"lon": lon, "lat": lat}}
    first = client.post("/incidents", json=payload, headers={"Idempotency-Key": key})
    again = client.post("/incidents", json=payload, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    assert _count(engine, "SELECT count(*) FROM incidents WHERE request_key=:k", k=key) == 1


def test_reused_key_with_different_body_is_409_and_writes_nothing(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    key = f"test-{uuid.uuid4()}"
    client.post(
        "/incidents",
        json={"category": "traffic", "location": {"lon": lon, "lat": lat}},
        headers={"Idempotency-Key": key},
    )
    before = _count(engine, "SELECT count(*) FROM incidents")
    other = client.post(
        "/incidents",
        json={"category": "disputes", "location": {"lon": lon, "lat": lat}},
        headers={"Idempotency-Key": key},
    )
    assert problem(other)["status"] == 409
    assert _count(engine, "SELECT count(*) FROM incidents") == before


def test_gcj02_location_is_stored_in_wgs84(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, code = grid_point(loaded_city)
    (glon,), (glat,) = from_wgs84([lon], [lat], "gcj02")
    body = client.post(
        "/incidents",
        json={"category": "facilities", "crs": "gcj02", "location": {"lon": glon, "lat": glat}},
    ).json()
    assert abs(body["lon"] - lon) < 1e-7 and abs(body["lat"] - lat) < 1e-7
    assert body["grid"]["code"] == code


def test_bad_incidents_are_refused_and_nothing_is_written(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    bad = [
        ({"category": "sanitation", "location": {"lon": 2.35, "lat": 48.85}}, "outside-city"),
        ({"category": "no_such", "location": {"lon": lon, "lat": lat}}, "invalid-input"),
        (
            {"category": "sanitation", "priority": 9, "location": {"lon": lon, "lat": lat}},
            "validation-error",
        ),
        ({"category": "sanitation", "location": {"lon": 500, "lat": lat}}, "validation-error"),
        (
            {
                "category": "sanitation",
                "location": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            },
            "validation-error",
        ),
        ({"category": "sanitation"}, "validation-error"),
        (
            {"category": "sanitation", "location": {"lon": lon, "lat": lat}, "crs": "utm"},
            "validation-error",
        ),
        (
            {"category": "sanitation", "location": {"lon": lon, "lat": lat}, "reported_at": future},
            "invalid-input",
        ),
        (
            {
                "category": "sanitation",
                "location": {"lon": lon, "lat": lat},
                "reported_at": "2026-W01-4",  # a naive time is local time (issue 19)
            },
            "validation-error",
        ),
        (
            {"category": "sanitation", "location": {"lon": lon, "lat": lat}, "extra": 1},
            "validation-error",
        ),
    ]
    before = _count(engine, "SELECT count(*) FROM incidents")
    audit_before = _count(engine, "SELECT count(*) FROM audit_log")
    for payload, code in bad:
        body = problem(client.post("/incidents", json=payload))
        assert body["status"] == 422, payload
        assert body["code"] == code, (payload, body)
    malformed = client.post(
        "/incidents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert problem(malformed)["status"] == 422
    assert _count(engine, "SELECT count(*) FROM incidents") == before
    assert _count(engine, "SELECT count(*) FROM audit_log") == audit_before


def test_incident_in_a_past_version_window_gets_no_grid_from_today(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    body = problem(
        client.post(
            "/incidents",
            json={
                "category": "sanitation",
                "location": {"lon": lon, "lat": lat},
                "reported_at": "2001-05-01T08:00:00+08:00",
            },
        )
    )
    assert body["code"] == "outside-city"


def test_list_incidents_filters_and_pages_without_gaps(
    client: TestClient, loaded_city: DemoCity
) -> None:
    since = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    expected = loaded_city.incidents[
        (loaded_city.incidents.reported_at >= since)
        & (loaded_city.incidents.category == "sanitation")
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"since": since, "category": "sanitation", "limit": 50}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/incidents", params=params).json()
        seen += [f["id"] for f in body["features"]]
        times = [f["properties"]["reported_at"] for f in body["features"]]
        assert times == sorted(times, reverse=True)
        assert all(f["properties"]["category"] == "sanitation" for f in body["features"])
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert body["links"][0]["rel"] == "next"
    assert len(seen) == len(set(seen)) == len(expected) > 50


def test_list_incidents_by_grid_bbox_and_status(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, code = grid_point(loaded_city)
    grid_id = client.get("/areas/lookup", params={"lon": lon, "lat": lat}).json()["grid"]["id"]
    body = client.get("/incidents", params={"grid_id": grid_id, "limit": 1000}).json()
    expected = loaded_city.incidents[loaded_city.incidents.grid_code == code]
    assert len(body["features"]) == len(expected) > 0
    bbox = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    in_box = client.get("/incidents", params={"bbox": bbox, "limit": 1000}).json()["features"]
    assert all(abs(f["geometry"]["coordinates"][0] - lon) <= 0.01 for f in in_box)
    closed = client.get("/incidents", params={"status": "closed", "limit": 20}).json()
    assert closed["features"] and all(
        f["properties"]["status"] == "closed" for f in closed["features"]
    )


def test_list_incidents_bad_input(client: TestClient) -> None:
    for params in (
        {"limit": 0},
        {"limit": 100000},
        {"cursor": "garbage!"},
        {"status": "lost"},
        {"bbox": "1,2"},
        {"since": "yesterday"},
        {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"grid_id": "abc"},
    ):
        assert problem(client.get("/incidents", params=params))["status"] == 422, params


def test_get_incident_by_id_and_unknown_ids(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    created = client.post(
        "/incidents", json={"category": "disputes", "location": {"lon": lon, "lat": lat}}
    ).json()
    fetched = client.get(f"/incidents/{created['id']}")
    assert fetched.status_code == 200 and fetched.json() == created
    assert problem(client.get(f"/incidents/{uuid.uuid4()}"))["status"] == 404
    assert problem(client.get("/incidents/not-a-uuid"))["status"] == 422
