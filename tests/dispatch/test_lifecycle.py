"""The incident lifecycle: legal transitions only, exactly one winner in a race, escalation
on a controllable clock, the duplicate hint."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import h3.api.basic_int as h3i
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from geo_service.api.app import create_app
from geo_service.cli.main import app as cli
from geo_service.demo.city import DemoCity
from geo_service.demo.load import load_city
from geo_service.services.dispatch.lifecycle import escalate_overdue
from geo_service.settings import (
    AuthSettings,
    DatabaseSettings,
    DispatchSettings,
    LimitSettings,
    Settings,
)
from tests.conftest import TEST_DATABASE, grid_point, make_database, problem


def _report(client: TestClient, city: DemoCity, **extra) -> dict:  # noqa: ANN003
    lon, lat, _ = grid_point(city)
    body = {"category": "traffic", "location": {"lon": lon, "lat": lat}, **extra}
    made = client.post("/incidents", json=body)
    assert made.status_code == 201, made.text
    return made.json()


def _free_responder(client: TestClient, city: DemoCity) -> int:
    lon, lat, _ = grid_point(city)
    fresh = datetime.now(UTC).isoformat()
    got = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 20}).json()
    rid = got["candidates"][-1]["id"]
    client.post(
        "/responders/positions",
        json={"positions": [{"id": rid, "lon": lon, "lat": lat, "at": fresh}]},
    )
    return rid


def test_full_lifecycle_and_illegal_moves(client: TestClient, loaded_city: DemoCity) -> None:
    incident = _report(client, loaded_city)
    iid = incident["id"]
    assert incident["status"] == "reported" and incident["escalation_level"] == 0
    late = problem(client.post(f"/incidents/{iid}/close"))
    assert late["status"] == 409 and late["allowed_actions"] == ["dispatch", "cancel", "escalate"]
    cands = client.get(f"/incidents/{iid}/candidates", params={"k": 3}).json()
    targets = {1: 60, 2: 180, 3: 300, 4: 3600}  # the default rapid-response tiers
    assert cands["target_s"] == targets[incident["priority"]]
    assert 1 <= len(cands["candidates"]) <= 3
    assert cands["policy"].startswith("only the kinds the category needs")
    zh = client.get(
        f"/incidents/{iid}/candidates", params={"k": 3}, headers={"Accept-Language": "zh-CN"}
    ).json()
    assert zh["policy"].startswith("只派该类别需要的处置力量类型")
    rid = _free_responder(client, loaded_city)
    assert problem(client.post(f"/incidents/{iid}/dispatch", json={}))["status"] == 422
    nobody = client.post(f"/incidents/{iid}/dispatch", json={"responder_id": 99_999_999})
    assert problem(nobody)["status"] == 404
    assert client.get(f"/incidents/{iid}").json()["status"] == "reported"  # nothing written
    steps = [
        ("dispatch", "dispatched"),
        ("accept", "accepted"),
        ("arrive", "on_scene"),
        ("resolve", "resolved"),
        ("close", "closed"),
    ]
    for action, status in steps:
        body = {"responder_id": rid} if action == "dispatch" else {"note": f"{action} ok"}
        done = client.post(f"/incidents/{iid}/{action}", json=body)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == status
        if action == "dispatch":
            assert done.json()["responder_id"] == rid
            busy = client.get("/responders", params={"status": "busy"}).json()["features"]
            assert rid in {f["id"] for f in busy}
    final = client.get(f"/incidents/{iid}").json()
    for stamp in ("dispatched_at", "accepted_at", "arrived_at", "resolved_at", "closed_at"):
        assert final[stamp] is not None, stamp
    assert final["cancelled_at"] is None
    free = client.get("/responders", params={"status": "available"}).json()["features"]
    assert rid in {f["id"] for f in free}  # resolving freed the responder
    trail = client.get("/audit", params={"entity": "incident", "limit": 1000}).json()
    actions = [e["action"] for e in trail["data"] if e["entity_id"] == iid]
    assert problem(client.post(f"/incidents/{iid}/cancel"))["status"] == 409
    assert problem(client.post(f"/incidents/{uuid.uuid4()}/accept"))["status"] == 404
    assert problem(client.post(f"/incidents/{iid}/fly"))["status"] in (404, 422)
    assert sorted(actions) == sorted(["create", "dispatch", "accept", "arrive", "resolve", "close"])


def test_two_dispatchers_one_responder_exactly_one_wins(
    live_server: str, client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    first, second = _report(client, loaded_city), _report(client, loaded_city)
    rid = _free_responder(client, loaded_city)
    barrier = threading.Barrier(2)
    codes: dict[str, int] = {}

    def send(iid: str) -> None:
        with httpx.Client(
            base_url=live_server, headers={"X-API-Key": role_keys["dispatcher"]}
        ) as h:
            barrier.wait()
            codes[iid] = h.post(
                f"/incidents/{iid}/dispatch", json={"responder_id": rid}
            ).status_code

    threads = [threading.Thread(target=send, args=(i["id"],)) for i in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [200, 409], codes
    statuses = {client.get(f"/incidents/{i['id']}").json()["status"] for i in (first, second)}
    assert statuses == {"dispatched", "reported"}
    for i in (first, second):
        client.post(f"/incidents/{i['id']}/cancel")


def test_duplicate_hint(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    a = _report(client, loaded_city)
    near = client.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon + 0.0002, "lat": lat}}
    ).json()  # about 20 m east
    assert near["possible_duplicate_of"] == a["id"]
    other = client.post(
        "/incidents", json={"category": "public_order", "location": {"lon": lon, "lat": lat}}
    ).json()
    assert other["possible_duplicate_of"] is None
    far = client.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon + 0.003, "lat": lat}}
    ).json()  # about 290 m
    assert far["possible_duplicate_of"] is None


@pytest.fixture(scope="module")
def own_city(demo_city: DemoCity) -> str:
    """A database of its own: escalation climbs every overdue incident it finds."""
    url = make_database(f"{TEST_DATABASE}_dispatch")  # parallel runs: one each
    load_city(create_engine(url), demo_city)
    with create_engine(url).begin() as conn:  # start from nothing open
        conn.execute(text("UPDATE incidents SET status = 'closed' WHERE status <> 'closed'"))
    return url


def _insert(url: str, city: DemoCity, reported_at: datetime, priority: int = 1) -> str:
    lon, lat, _ = grid_point(city)
    with create_engine(url).begin() as conn:
        return str(
            conn.execute(
                text(
                    "INSERT INTO incidents "
                    "(category, priority, reported_at, location, h3, grid_id, "
                    "h3_6, h3_7, h3_8, h3_9, h3_10) "
                    "SELECT 'traffic', :p, :t, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :h3, "
                    "grid_at(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :t), "
                    ":h3_6, :h3_7, :h3_8, :h3_9, :h3_10 RETURNING id"
                ),
                {
                    "p": priority,
                    "t": reported_at,
                    "x": lon,
                    "y": lat,
                    "h3": h3i.latlng_to_cell(lat, lon, 11),
                    **{f"h3_{r}": h3i.latlng_to_cell(lat, lon, r) for r in range(6, 11)},
                },
            ).scalar_one()
        )


def test_escalation_climbs_one_level_per_target(own_city: str, demo_city: DemoCity) -> None:
    t0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    iid = _insert(own_city, demo_city, t0, priority=1)  # target: dispatched within 60 s
    engine = create_engine(own_city)
    levels = []
    for seconds in (59, 61, 62, 122, 200, 300, 400):
        with Session(engine) as session:
            escalate_overdue(session, now=t0 + timedelta(seconds=seconds), actor="test")
            levels.append(
                session.execute(
                    text("SELECT escalation_level FROM incidents WHERE id = :i"), {"i": iid}
                ).scalar_one()
            )
    assert levels == [0, 1, 1, 2, 3, 3, 3]  # one level per missed target, district at most
    with engine.connect() as conn:
        reasons = (
            conn.execute(
                text("SELECT diff FROM audit_log WHERE entity_id = :i AND action = 'escalate'"),
                {"i": iid},
            )
            .scalars()
            .all()
        )
    assert len(reasons) == 3 and "60 s" in reasons[0]["reason"]


def test_cli_and_scheduler_escalate(own_city: str, demo_city: DemoCity, monkeypatch) -> None:  # noqa: ANN001
    now = datetime.now(UTC)
    iid = _insert(own_city, demo_city, now - timedelta(minutes=5), priority=2)
    monkeypatch.setenv("GEO_DATABASE_URL", own_city)
    result = CliRunner().invoke(cli, ["escalate", "--once", "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    assert iid in result.output and "escalated" in result.output
    # a time without an offset is local time (issue 19); an ISO week date is not a time
    bad = CliRunner().invoke(cli, ["escalate", "--once", "--now", "2026-W47-7"])
    assert bad.exit_code != 0 and "is not a date or time" in bad.output
    # the in-process scheduler of a running API does the same by itself
    other = _insert(own_city, demo_city, now - timedelta(minutes=5), priority=1)
    settings = Settings(
        database=DatabaseSettings(database_url=own_city),
        auth=AuthSettings(jwt_secret="t"),
        limits=LimitSettings(),
        dispatch=DispatchSettings(escalation_interval_s=0.2),
    )
    import time

    with TestClient(create_app(settings)):
        deadline = time.time() + 10
        level = 0
        while time.time() < deadline and level == 0:
            time.sleep(0.2)
            with create_engine(own_city).connect() as conn:
                level = conn.execute(
                    text("SELECT escalation_level FROM incidents WHERE id = :i"), {"i": other}
                ).scalar_one()
    assert level >= 1


def test_overdue_filter(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    old = (datetime.now(UTC) - timedelta(minutes=4)).isoformat()
    made = client.post(
        "/incidents",
        json={
            "category": "traffic",
            "priority": 1,
            "reported_at": old,
            "location": {"lon": lon, "lat": lat},
        },
    ).json()
    fresh = _report(client, loaded_city, priority=4)
    overdue = client.get("/incidents", params={"overdue": "true", "limit": 500}).json()
    ids = {f["id"] for f in overdue["features"]}
    assert made["id"] in ids and fresh["id"] not in ids
    assert all(
        f["properties"]["status"] in ("reported", "dispatched", "accepted", "on_scene")
        for f in overdue["features"]
    )
    on_time = client.get("/incidents", params={"overdue": "false", "limit": 500}).json()
    assert fresh["id"] in {f["id"] for f in on_time["features"]}
    assert made["id"] not in {f["id"] for f in on_time["features"]}
    assert problem(client.get("/incidents", params={"overdue": "maybe"}))["status"] == 422


def test_targets_command_shows_changes_and_refuses(own_city: str, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("GEO_DATABASE_URL", own_city)
    runner = CliRunner()
    shown = runner.invoke(cli, ["targets"])
    assert shown.exit_code == 0 and "priority 1: dispatched within 60 s" in shown.output
    changed = runner.invoke(cli, ["targets", "--set", "1=90", "--set", "4=7200"])
    assert changed.exit_code == 0 and "priority 1: dispatched within 90 s" in changed.output
    for bad in (["--set", "5=60"], ["--set", "1=0"], ["--set", "one=60"]):
        refused = runner.invoke(cli, ["targets", *bad])
        assert refused.exit_code != 0, bad
    assert "within 90 s" in runner.invoke(cli, ["targets"]).output  # nothing else changed
    runner.invoke(cli, ["targets", "--set", "1=60", "--set", "4=3600"])
