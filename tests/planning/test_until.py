"""Any past window for planners (issue 18): ``until`` on ``/workload`` and on proposals, so a
plan can be balanced on last year's data. Counts are checked against the generated city, not
against the service's own SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, problem
from tests.planning.test_planning_api import _wait


def test_workload_counts_the_window_that_ends_at_until(
    client: TestClient, loaded_city: DemoCity
) -> None:
    until = loaded_city.end - timedelta(days=200)
    body = client.get(
        "/workload", params={"level": "grid", "window_days": 30, "until": until.isoformat()}
    ).json()
    got = {a["code"]: a["incidents"] for a in body["areas"]}
    inc = loaded_city.incidents
    window = inc[(inc.reported_at >= until - timedelta(days=30)) & (inc.reported_at < until)]
    expected = window.grid_code.value_counts()
    assert sum(got.values()) == int(expected.sum()) > 0
    assert all(got[code] == int(n) for code, n in expected.items())
    # before the history began: nothing to count, and the figures say so
    empty = client.get(
        "/workload",
        params={"window_days": 30, "until": (loaded_city.start - timedelta(days=60)).isoformat()},
    ).json()
    assert sum(a["incidents"] for a in empty["areas"]) == 0


def test_a_bad_until_is_refused(client: TestClient) -> None:
    # (a naive time is local time since issue 19: test_local_time.py)
    for until in ("2026-W09-7", "2026-13-01T00:00:00Z", "9999-12-31T23:59:59+14:00"):
        answer = client.get("/workload", params={"until": until})
        assert problem(answer)["status"] == 422, (until, answer.text)


def test_a_proposal_balances_on_a_past_window_and_a_bad_one_writes_nothing(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    community = grids.parent_code.value_counts().index[0]
    planner = as_role(role_keys, "planner")

    def jobs() -> int:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM jobs WHERE kind = 'proposal'")
            ).scalar_one()

    before = jobs()
    refused = client.post(
        "/boundaries/proposals",
        json={"scope": [community], "until": "2026-W09-7"},  # naive: local time, issue 19
        headers=planner,
    )
    assert problem(refused)["status"] == 422 and jobs() == before
    until = (loaded_city.end - timedelta(days=100)).isoformat()
    queued = client.post(
        "/boundaries/proposals",
        json={"scope": [community], "until": until, "window_days": 60},
        headers=planner,
    )
    assert queued.status_code == 202, queued.text
    with engine.connect() as conn:
        asked = conn.execute(
            text(
                "SELECT request FROM jobs WHERE kind = 'proposal' ORDER BY created_at DESC LIMIT 1"
            )
        ).scalar_one()
    assert datetime.fromisoformat(asked["until"]) == datetime.fromisoformat(until)
    assert asked["window_days"] == 60
    job = _wait(client, queued.json()["href"])  # ends before the next test cleans up
    assert job["status"] == "done", job
