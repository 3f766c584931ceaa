from __future__ import annotations

from fastapi.testclient import TestClient

from geo_service.api.app import create_app
from geo_service.settings import DatabaseSettings, Settings


def test_health_reports_database_and_postgis_version(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["postgis"].split(".")[0] == "3"


def test_health_answers_503_when_database_is_unreachable() -> None:
    settings = Settings(
        database=DatabaseSettings(database_url="postgresql+psycopg://geo:x@127.0.0.1:9/none")
    )
    with TestClient(create_app(settings)) as offline:
        response = offline.get("/health")
        assert response.status_code == 503
        assert response.json()["database"] == "unavailable"
        lookup = offline.get(
            "/areas/lookup",
            params={"lon": 114.3, "lat": 30.59},
            headers={"X-API-Key": "gs_0123456789ab_secret"},
        )
        assert lookup.status_code == 503
        assert lookup.json()["code"] == "database-unavailable"


def test_unknown_route_is_a_problem_document(client: TestClient) -> None:
    from tests.conftest import problem

    body = problem(client.get("/no/such/route"))
    assert body["status"] == 404


def test_openapi_lists_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/health",
        "/areas",
        "/areas/lookup",
        "/areas/{area_id}",
        "/incidents",
        "/incidents/{incident_id}",
        "/map",
    ):
        assert path in paths


def test_docs_need_no_cdn(client: TestClient) -> None:
    import re

    html = client.get("/docs", headers={"X-API-Key": ""}).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200
