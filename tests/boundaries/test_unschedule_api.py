"""``POST /boundaries/versions/{id}/unschedule`` (issue 18): only a scheduled version, only by
a city-wide writer; the refusals write nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, problem


def test_only_a_scheduled_version_can_be_unscheduled(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    with engine.connect() as conn:
        published = conn.execute(
            text("SELECT id FROM boundary_versions WHERE status = 'published' LIMIT 1")
        ).scalar_one()
    refused = client.post(f"/boundaries/versions/{published}/unschedule")
    assert problem(refused)["status"] == 409 and "not scheduled" in refused.json()["detail"]
    assert problem(client.post("/boundaries/versions/2000000000/unschedule"))["status"] == 404
    analyst = client.post(
        f"/boundaries/versions/{published}/unschedule", headers=as_role(role_keys, "analyst")
    )
    assert problem(analyst)["status"] == 403
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT status FROM boundary_versions WHERE id = :v"), {"v": published}
            ).scalar_one()
            == "published"
        )
