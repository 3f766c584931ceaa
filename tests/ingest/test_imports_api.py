"""The importers and boundary versions over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_service.demo.city import DemoCity
from tests.conftest import csv_upload, grid_point, problem, scalar


def test_upload_households_reports_accepted_and_rejected_rows(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {"ref": "a", "size": 3, "lon": lon, "lat": lat},
        {"ref": "b", "size": 0, "lon": lon, "lat": lat},
        {"ref": "c", "size": 2, "lon": "", "lat": ""},
    ]
    before = scalar(engine, "SELECT count(*) FROM households")
    response = client.post(
        "/imports/households",
        files=csv_upload(rows, "hh.csv"),
        data={"map": ["ref=id", "size=household_size"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["read"], body["inserted"], body["rejected"]) == (3, 1, 2)
    assert body["rejects"] == [
        {"row": 2, "reason": "household_size below 1"},
        {"row": 3, "reason": "missing coordinates"},
    ]
    assert scalar(engine, "SELECT count(*) FROM households") == before + 1
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM audit_log WHERE action = 'import' AND entity = 'households'",
        )
        >= 1
    )
    again = client.post(
        "/imports/households",
        files=csv_upload(rows, "hh.csv"),
        data={"map": ["ref=id", "size=household_size"]},
    ).json()
    assert again["inserted"] == 0 and again["already_present"] == 1


def test_upload_incidents_with_a_category_map(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {"id": "1", "kind": "NOISE", "when": "2026-11-01T22:00:00+08:00", "lon": lon, "lat": lat}
    ]
    body = client.post(
        "/imports/incidents",
        files=csv_upload(rows),
        data={"map": ["kind=category", "when=reported_at"], "category_map": ["NOISE=public_order"]},
    ).json()
    assert body["inserted"] == 1, body


def test_bad_uploads_are_problems_and_write_nothing(client: TestClient, engine: Engine) -> None:
    before = scalar(engine, "SELECT count(*) FROM households")
    rows = [{"lon": 114.3, "lat": 30.6, "household_size": 1}]
    cases = [
        ("/imports/people", {}, 422),
        ("/imports/households", {"crs": "EPSG:999999"}, 422),
        ("/imports/households", {"map": ["nope=household_size"]}, 422),
        ("/imports/households", {"map": ["no-equals-sign"]}, 422),
        ("/imports/households", {"tz": "Mars/Olympus"}, 422),
        ("/imports/boundaries", {}, 422),
    ]
    for path, data, status in cases:
        body = problem(client.post(path, files=csv_upload(rows), data=data))
        assert body["status"] == status, (path, data, body)
    projected = [{"x": 236181.4, "y": 3388282.9, "household_size": 1}]
    body = problem(client.post("/imports/households", files=csv_upload(projected)))
    assert body["code"] == "import-file-error" and "projected" in body["detail"]
    no_file = problem(client.post("/imports/households", data={"crs": "4326"}))
    assert no_file["status"] == 422
    assert scalar(engine, "SELECT count(*) FROM households") == before


def test_versions_list_validation_and_refusals(client: TestClient, loaded_city: DemoCity) -> None:
    versions = client.get("/boundaries/versions").json()
    assert versions["count"] >= 1
    current = next(v for v in versions["data"] if v["status"] == "published")
    assert current["areas"]["grid"] == int((loaded_city.areas.level == "grid").sum())
    report = client.get(f"/boundaries/versions/{current['id']}/validation").json()
    assert report["valid"] is True, report["summary"]
    assert client.post(f"/boundaries/versions/{current['id']}/validate").json()["valid"]
    assert problem(client.get("/boundaries/versions/999999/validation"))["status"] == 404
    again = client.post(
        f"/boundaries/versions/{current['id']}/publish",
        json={"effective_from": "2026-01-01T00:00:00Z"},
    )
    assert problem(again)["status"] == 409
    for payload in (
        {},
        {"effective_from": "soon"},
        {"effective_from": "2026-01-01T00:00:00Z", "extra": True},
    ):
        assert (
            problem(client.post(f"/boundaries/versions/{current['id']}/publish", json=payload))[
                "status"
            ]
            == 422
        )
    assert problem(client.get(f"/boundaries/versions/{current['id']}/diff/999999"))["status"] == 404


def test_upload_boundaries_creates_a_draft_that_diffs_against_the_current(
    client: TestClient, loaded_city: DemoCity, tmp_path
) -> None:  # noqa: ANN001
    grids = loaded_city.areas[loaded_city.areas.level == "grid"].iloc[:3]
    path = tmp_path / "g.geojson"
    grids[["code", "name", "geometry"]].to_file(path, driver="GeoJSON")
    body = client.post(
        "/imports/boundaries",
        files={"file": ("g.geojson", path.read_bytes(), "application/geo+json")},
        data={"level": "grid", "version_name": "api draft"},
    ).json()
    assert body["inserted"] == 3 and body["version_id"]
    current = next(
        v for v in client.get("/boundaries/versions").json()["data"] if v["status"] == "published"
    )
    diff = client.get(f"/boundaries/versions/{current['id']}/diff/{body['version_id']}").json()
    assert diff["unchanged"] == 3 and diff["added"] == []
    assert len(diff["removed"]) == len(loaded_city.areas) - 3
