"""The response models of the intake, dispatch, access, boundaries and residents rooms: every
operation declares its 2xx body, the bodies routes send without FastAPI's validation (GeoJSON
built in the database, orjson responses) match their models, optional members appear only
when they apply, and request limits live in the request models.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from geo_service.api.schemas import Health, IncidentPublic
from geo_service.api.schemas.boundaries import AreasPublic, VersionsPublic
from geo_service.api.schemas.dispatch import NearestPublic, RespondersPublic
from geo_service.demo.city import DemoCity
from tests.conftest import as_role, grid_point, problem

ROOM_TAGS = {
    "incidents",
    "responders",
    "open311",
    "auth",
    "audit",
    "areas",
    "households",
    "boundaries",
    "health",
}


def test_every_operation_of_these_rooms_declares_its_2xx_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    undeclared = []
    operations = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not ROOM_TAGS & set(operation.get("tags", ())):
                continue
            operations += 1
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                content = response.get("content") or {}
                if not content or not all(c.get("schema") for c in content.values()):
                    undeclared.append(f"{method.upper()} {path} {status}")
                assert response.get("description"), f"{method.upper()} {path} {status}"
    assert operations >= 26
    assert not undeclared


def test_geojson_sent_as_built_matches_its_model(client: TestClient, role_keys: dict) -> None:
    for role in ("admin", "dispatcher@community"):
        areas = client.get("/areas", headers=as_role(role_keys, role))
        assert areas.status_code == 200
        assert areas.headers["content-type"].startswith("application/geo+json")
        AreasPublic.model_validate(areas.json())
        responders = client.get("/responders", headers=as_role(role_keys, role))
        assert responders.status_code == 200
        RespondersPublic.model_validate(responders.json())
    health = client.get("/health")
    Health.model_validate(health.json())


def test_new_and_replayed_incidents_match_their_model(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    body = {"category": "traffic", "location": {"lon": lon, "lat": lat}}
    key = {"Idempotency-Key": f"models-{datetime.now(UTC).timestamp()}"}
    first = client.post("/incidents", json=body, headers=key)
    again = client.post("/incidents", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert IncidentPublic.model_validate(first.json()) == IncidentPublic.model_validate(
        again.json()
    )


def test_restricted_to_is_present_only_for_users_bound_to_an_area(
    client: TestClient, role_keys: dict
) -> None:
    everyone = client.get("/boundaries/versions", headers=as_role(role_keys, "admin")).json()
    bound = client.get(
        "/boundaries/versions", headers=as_role(role_keys, "dispatcher@community")
    ).json()
    VersionsPublic.model_validate(everyone)
    assert all("restricted_to" not in v for v in everyone["data"])
    assert bound["data"] and all(v["restricted_to"] for v in bound["data"])
    report = client.get("/boundaries/versions/1/validation").json()
    assert "restricted_to" not in report


def test_road_members_appear_only_when_ranked_by_road(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    by_distance = client.get("/responders/nearest", params={"lon": lon, "lat": lat}).json()
    NearestPublic.model_validate(by_distance)
    assert by_distance["candidates"]
    for candidate in by_distance["candidates"]:
        assert candidate["eta_basis"] == "straight_line"
        assert "walk_m" not in candidate and "drive_s" not in candidate
    by_road = client.get(
        "/responders/nearest", params={"lon": lon, "lat": lat, "by": "travel_time"}
    )
    if by_road.status_code == 200:  # the demo city may load without a road network
        for candidate in by_road.json()["candidates"]:
            assert candidate["eta_basis"] == "road_network"
            assert {"walk_m", "drive_s"} <= set(candidate)


def test_skill_limits_are_the_request_models(client: TestClient) -> None:
    responder = client.get("/responders").json()["features"][0]["id"]
    for skills in ([""], ["x" * 65], ["a"] * 51):
        refused = client.patch(f"/responders/{responder}", json={"skills": skills})
        assert refused.status_code == 422, skills
        problem(refused)
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ResponderPatch"]
    skills = schema["properties"]["skills"]["anyOf"][0]
    assert skills["maxItems"] == 50
    assert (skills["items"]["minLength"], skills["items"]["maxLength"]) == (1, 64)


def test_position_batches_are_limited_by_the_request_model(client: TestClient) -> None:
    now = datetime.now(UTC).isoformat()
    empty = client.post("/responders/positions", json={"positions": []})
    assert empty.status_code == 422
    problem(empty)
    too_many = [{"id": 1, "lon": 114.3, "lat": 30.6, "at": now}] * 5001
    assert client.post("/responders/positions", json={"positions": too_many}).status_code == 422


def test_open311_lists_match_their_models(client: TestClient) -> None:
    from geo_service.api.schemas.intake import Open311Request, Open311Service

    services = client.get("/open311/v2/services.json").json()
    TypeAdapter(list[Open311Service]).validate_python(services)
    requests = client.get("/open311/v2/requests.json").json()
    TypeAdapter(list[Open311Request]).validate_python(requests)


def test_response_literals_are_the_vocabulary() -> None:
    from typing import get_args

    from geo_service import vocabulary
    from geo_service.api.schemas.boundaries import VersionStatus
    from geo_service.api.schemas.dispatch import ResponderKind, ResponderStatus
    from geo_service.api.schemas.intake import AreaLevel, IncidentSource, IncidentStatus
    from geo_service.services.intake.incidents import ESCALATION_LEVELS

    assert get_args(IncidentStatus) == vocabulary.INCIDENT_STATUSES
    assert get_args(IncidentSource) == vocabulary.INCIDENT_SOURCES
    assert get_args(AreaLevel) == vocabulary.AREA_LEVELS
    assert set(ESCALATION_LEVELS) == set(vocabulary.AREA_LEVELS)
    assert get_args(VersionStatus) == vocabulary.VERSION_STATUSES
    assert get_args(ResponderKind) == vocabulary.RESPONDER_KINDS
    assert get_args(ResponderStatus) == vocabulary.RESPONDER_STATUSES
