"""Time-based decisions follow the service's clock (issue 17): a position goes stale and an
incident escalates when the clock says so, however long the suite has run or how busy the
machine is. The clock is held and moved by hand; nothing sleeps, nothing reads the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service import runtime
from geo_service.demo.city import DemoCity
from geo_service.services.dispatch.lifecycle import escalate_overdue
from tests.conftest import grid_point

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a fixed instant, long before any run of the suite
STALE_S = 300  # GEO_DISPATCH_STALE_POSITION_S of the test app (the default)


def _responder(engine: Engine, lon: float, lat: float) -> int:
    with engine.begin() as conn:  # a skill nobody else has: the queries see only this one
        return conn.execute(
            text(
                "INSERT INTO responders (callsign, kind, status, skills) "
                "VALUES ('clock-1', 'patrol', 'available', ARRAY['clock-test']) RETURNING id"
            )
        ).scalar_one()


def test_a_position_goes_stale_when_the_clock_passes_the_limit(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rid = _responder(engine, lon, lat)
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    clock.set(T0)
    fix = {"positions": [{"id": rid, "lon": lon, "lat": lat, "at": T0.isoformat()}]}
    assert client.post("/responders/positions", json=fix).json()["updated"] == 1
    params = {"lon": lon, "lat": lat, "skill": "clock-test"}

    def offered() -> tuple[list[int], dict]:
        body = client.get("/responders/nearest", params=params).json()
        return [c["id"] for c in body["candidates"]], body.get("not_offered", {})

    def listed() -> dict:
        features = client.get("/responders", params={"kind": "patrol"}).json()["features"]
        return next(f["properties"] for f in features if f["id"] == rid)

    clock.advance(STALE_S)  # exactly at the limit: still fresh
    assert offered()[0] == [rid]
    assert listed()["position_age_s"] == STALE_S and listed()["stale"] is False
    clock.advance(1)  # one second past it
    ids, why = offered()
    assert ids == [] and why["stale"] == 1, why
    assert listed()["stale"] is True and listed()["position_age_s"] == STALE_S + 1
    # a fix from the device brings it back; one from the future (by the clock) is refused
    later = T0 + timedelta(seconds=STALE_S + 1)
    fix["positions"][0]["at"] = later.isoformat()
    assert client.post("/responders/positions", json=fix).json()["updated"] == 1
    assert offered()[0] == [rid]
    fix["positions"][0]["at"] = (later + timedelta(hours=1)).isoformat()
    refused = client.post("/responders/positions", json=fix)
    assert refused.status_code == 422 and "future" in refused.text


def test_escalation_is_due_when_the_clock_passes_the_stage_target(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    made = client.post(
        "/incidents",
        json={
            "category": "public_order",
            "priority": 1,
            "location": {"lon": lon, "lat": lat},
            "reported_at": T0.isoformat(),
        },
    )
    assert made.status_code == 201, made.text
    incident = made.json()
    target = client.get(f"/incidents/{incident['id']}").json()
    with engine.connect() as conn:
        stage_s = conn.execute(
            text("SELECT dispatch_s FROM response_targets WHERE priority = 1")
        ).scalar_one()
    clock = runtime.current().clock  # the process runtime: escalate_overdue runs outside a request

    def level() -> int:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT escalation_level FROM incidents WHERE id = :i"),
                {"i": incident["id"]},
            ).scalar_one()

    with Session(engine) as session:
        clock.set(T0 + timedelta(seconds=stage_s))  # at the target: not yet late
        escalate_overdue(session, actor="test")
        session.commit()
        assert level() == target["escalation_level"] == 0
        clock.advance(1)
        escalate_overdue(session, actor="test")
        session.commit()
        assert level() == 1
        clock.advance(1)  # the next level is due a whole target after this escalation
        escalate_overdue(session, actor="test")
        session.commit()
        assert level() == 1
    clock.release()


@pytest.mark.parametrize("bad", [datetime(2026, 3, 2, 1, 0)])
def test_the_clock_takes_only_aware_instants(bad: datetime) -> None:
    clock = runtime.current().clock
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(bad)
    with pytest.raises(ValueError, match="set the clock"):
        clock.advance(1)
