"""The dispatcher's console (issue 17): the server's counts, urgency first, overdue from the
report against the stage target (judged at a ``now`` handed in: no test depends on the
suite's speed), reassigning, and bad input answered with a problem and nothing written."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.services.access.auth import Principal
from geo_service.services.access.scope import Scope
from geo_service.services.dispatch import console
from geo_service.vocabulary import OPEN_INCIDENT_STATUSES
from tests.conftest import as_role, grid_point, problem

OPEN = ("reported", "dispatched", "accepted", "on_scene")
DISPATCHER = Scope(Principal(user_id=0, name="console-test", role="dispatcher"))


def db_now(engine: Engine) -> datetime:
    """The database's clock: every time a test writes is relative to it."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT now()")).scalar_one()


def report(client: TestClient, city: DemoCity, priority: int, reported_at: datetime, **kw) -> str:  # noqa: ANN003
    """A new incident in the first grid, reported at ``reported_at``; its id."""
    lon, lat, _ = grid_point(city)
    lon += kw.get("east", 0.0)
    made = client.post(
        "/incidents",
        json={
            "category": kw.get("category", "safety_hazard"),
            "priority": priority,
            "reported_at": reported_at.isoformat(),
            "description": kw.get("description", "console test"),
            "location": {"lon": lon, "lat": lat},
        },
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def backlog(client: TestClient, engine: Engine, city: DemoCity, n: int) -> list[str]:
    """``n`` open incidents over the city's grids, of every priority, reported up to 4 h ago."""
    now = db_now(engine)
    codes = list(city.areas[city.areas.level == "grid"].code)
    made = []
    for k in range(n):
        lon, lat, _ = grid_point(city, codes[k % len(codes)])
        answer = client.post(
            "/incidents",
            json={
                "category": "sanitation",
                "priority": 1 + k % 4,
                "reported_at": (now - timedelta(minutes=1 + (k * 7) % 240)).isoformat(),
                "location": {"lon": lon, "lat": lat},
            },
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    return made


def test_counts_come_from_the_server_and_the_list_pages(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    backlog(client, engine, loaded_city, 70)
    with engine.connect() as conn:
        open_now = conn.execute(
            text("SELECT count(*) FROM incidents WHERE status = ANY(:open)"), {"open": list(OPEN)}
        ).scalar_one()
    assert open_now > 10
    summary = client.get("/console/summary").json()
    assert summary["open"] == open_now
    assert sum(p["open"] for p in summary["by_priority"]) == open_now
    first = client.get("/console/incidents", params={"limit": 7}).json()
    assert first["open"] == open_now and len(first["items"]) == 7
    assert first["next_offset"] == 7 and first["event_id"].isdigit()
    seen = [i["id"] for i in first["items"]]
    offset = first["next_offset"]
    while offset is not None:
        page = client.get("/console/incidents", params={"limit": 500, "offset": offset}).json()
        seen += [i["id"] for i in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == open_now  # every one, once


def test_sorted_by_priority_then_most_late_and_overdue_from_the_report(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    now = db_now(engine)
    # P1's dispatch target is 60 s, P2's 180 s
    p1_old = report(client, loaded_city, 1, now - timedelta(hours=37))
    p1_new = report(client, loaded_city, 1, now - timedelta(seconds=20))
    p2_late = report(client, loaded_city, 2, now - timedelta(hours=2))
    p2_fresh = report(client, loaded_city, 2, now - timedelta(seconds=30))
    with engine.begin() as conn:  # escalated a moment ago: overdue still counts from the report
        conn.execute(
            text("UPDATE incidents SET escalation_level = 3, escalated_at = :at WHERE id = :id"),
            {"at": now - timedelta(seconds=5), "id": p1_old},
        )
    mine = {p1_old, p1_new, p2_late, p2_fresh}
    # the listing's overdue filter means the same: escalated a moment ago, still 37 h late
    listed = client.get("/incidents", params={"overdue": "true", "limit": 1000}).json()
    assert p1_old in {f["id"] for f in listed["features"]}
    with Session(engine) as session:
        page = console.console_incidents(session, scope=DISPATCHER, limit=1000, now=now)
    items = [i for i in page["items"] if i["id"] in mine]
    assert [i["id"] for i in items] == [p1_old, p1_new, p2_late, p2_fresh]
    by_id = {i["id"]: i for i in items}
    assert by_id[p1_old]["overdue"] and by_id[p1_old]["escalated_to"] == "district"
    assert by_id[p1_old]["late_s"] == 37 * 3600 - 60 and by_id[p1_old]["stage"] == "dispatch"
    assert by_id[p1_new]["overdue"] is False and by_id[p1_new]["late_s"] == -40
    assert by_id[p2_late]["overdue"] and by_id[p2_late]["target_s"] == 180
    assert not by_id[p2_fresh]["overdue"]
    ranks = [(i["priority"], -(i["late_s"] or 0)) for i in page["items"]]
    assert ranks == sorted(ranks)  # the whole list: priority, then most late first
    # the counts agree with the rows, at the same clock; a target later, the new P1 is late too
    with Session(engine) as session:
        counts = console.console_summary(session, scope=DISPATCHER, now=now)
        later = console.console_summary(session, scope=DISPATCHER, now=now + timedelta(seconds=41))
    assert counts["overdue"] == sum(i["overdue"] for i in page["items"])
    p1 = {p["priority"]: p for p in later["by_priority"]}[1]
    assert p1["overdue"] == {p["priority"]: p for p in counts["by_priority"]}[1]["overdue"] + 1
    # the resolve stage once accepted: the category's resolution target, still from the report
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE incidents SET status = 'accepted', accepted_at = :at WHERE id = :id"),
            {"at": now, "id": p2_fresh},
        )
        minutes = conn.execute(
            text("SELECT resolution_target_min FROM categories WHERE code = 'safety_hazard'")
        ).scalar_one()
    with Session(engine) as session:
        page = console.console_incidents(session, scope=DISPATCHER, limit=1000, now=now)
    accepted = next(i for i in page["items"] if i["id"] == p2_fresh)
    assert accepted["stage"] == "resolve" and accepted["target_s"] == minutes * 60
    assert accepted["late_s"] == 30 - minutes * 60


def test_area_dispatcher_sees_only_their_area(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    backlog(client, engine, loaded_city, 130)  # a few in every grid
    area = client.get("/console/summary", headers=as_role(role_keys, "dispatcher@community"))
    listing = client.get(
        "/incidents",
        params={"status": ",".join(OPEN), "limit": 1000},
        headers=as_role(role_keys, "dispatcher@community"),
    ).json()
    everyone = client.get("/console/summary").json()["open"]
    assert 0 < area.json()["open"] == len(listing["features"]) < everyone
    page = client.get(
        "/console/incidents",
        params={"limit": 1000},
        headers=as_role(role_keys, "dispatcher@community"),
    ).json()
    assert {i["id"] for i in page["items"]} == {f["id"] for f in listing["features"]}
    analyst = client.get("/console/summary", headers=as_role(role_keys, "analyst"))
    assert analyst.status_code in (200, 403)  # whatever /incidents answers the analyst
    assert (
        analyst.status_code
        == client.get("/incidents", headers=as_role(role_keys, "analyst")).status_code
    )


def test_actions_offered_follow_the_role(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    iid = report(client, loaded_city, 2, db_now(engine) - timedelta(minutes=1))
    item = next(
        i
        for i in client.get("/console/incidents", params={"limit": 1000}).json()["items"]
        if i["id"] == iid
    )
    assert item["actions"] == ["dispatch", "cancel", "escalate"]
    worker = client.get(
        "/console/incidents", params={"limit": 1000}, headers=as_role(role_keys, "grid_worker")
    )
    for i in worker.json()["items"]:
        assert "reassign" not in i["actions"] and "accept" not in i["actions"]


def _dispatchable(client: TestClient, iid: str, skip: set[int]) -> int:
    found = client.get(f"/incidents/{iid}/candidates", params={"k": 10}).json()["candidates"]
    return next(c["id"] for c in found if c["id"] not in skip)


def test_reassign_sends_another_and_stands_the_first_down(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    now = db_now(engine)
    iid = report(client, loaded_city, 1, now - timedelta(minutes=3))
    # fresh positions beside it for three free responders (the loaded city's positions are
    # as old as the suite: chosen from the table, not by a nearest query that skips stale ones)
    lon, lat, _ = grid_point(loaded_city)
    with engine.connect() as conn:
        free = (
            conn.execute(
                text(
                    "SELECT id FROM responders r WHERE status = 'available' AND NOT fixed "
                    "AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.responder_id = r.id "
                    "AND i.status = ANY(:open)) ORDER BY id LIMIT 3"
                ),
                {"open": list(OPEN_INCIDENT_STATUSES)},
            )
            .scalars()
            .all()
        )
    assert len(free) == 3
    fixes = [
        {"id": rid, "lon": lon + 0.001 * n, "lat": lat, "at": now.isoformat()}
        for n, rid in enumerate(free, 1)
    ]
    assert client.post("/responders/positions", json={"positions": fixes}).status_code == 200
    first = _dispatchable(client, iid, set())
    sent = client.post(f"/incidents/{iid}/dispatch", json={"responder_id": first})
    assert sent.status_code == 200
    client.post(f"/incidents/{iid}/accept")
    second = _dispatchable(client, iid, {first})
    with engine.connect() as conn:
        audits = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    # bad input: a problem, nothing written
    bodies = ({}, {"responder_id": "x"}, {"responder_id": second, "extra": 1}, {"responder_id": 0})
    for body in bodies:
        bad = client.post(f"/console/incidents/{iid}/reassign", json=body)
        assert 400 <= bad.status_code < 500 and problem(bad)
    assert (
        problem(client.post(f"/console/incidents/{iid}/reassign", json={"responder_id": first}))[
            "status"
        ]
        == 422
    )
    not_an_id = client.post("/console/incidents/not-a-uuid/reassign", json={"responder_id": second})
    assert problem(not_an_id)["status"] == 422
    denied = client.post(
        f"/console/incidents/{iid}/reassign",
        json={"responder_id": second},
        headers=as_role(role_keys, "grid_worker"),
    )
    assert problem(denied)["status"] in (403, 404)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == audits
        assert (
            conn.execute(
                text("SELECT responder_id FROM incidents WHERE id = :id"), {"id": iid}
            ).scalar_one()
            == first
        )
    done = client.post(
        f"/console/incidents/{iid}/reassign", json={"responder_id": second, "note": "closer"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "dispatched" and done.json()["responder_id"] == second
    assert done.json()["accepted_at"] is None
    with engine.connect() as conn:
        states = dict(
            conn.execute(
                text("SELECT id, status FROM responders WHERE id = ANY(:ids)"),
                {"ids": [first, second]},
            ).all()
        )
        audit = conn.execute(
            text("SELECT who, diff FROM audit_log WHERE action = 'reassign' AND entity_id = :id"),
            {"id": iid},
        ).one()
    assert states == {first: "available", second: "busy"}
    assert audit.diff["before"]["responder_id"] == first and audit.diff["note"] == "closer"
    again = client.post(f"/console/incidents/{iid}/reassign", json={"responder_id": first})
    assert again.status_code == 200  # and back
    client.post(f"/incidents/{iid}/cancel")
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT status FROM responders WHERE id = :r"), {"r": first}
            ).scalar_one()
            == "available"
        )
    closed = client.post(f"/console/incidents/{iid}/reassign", json={"responder_id": second})
    assert problem(closed)["status"] == 409


def test_bad_paging_and_event_ids_are_problems(client: TestClient) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        assert 400 <= problem(client.get("/console/incidents", params=params))["status"] < 500
    for bad in ("abc", "1", "-5", "99999999999999999999"):
        answer = client.get("/console/stream", headers={"Last-Event-ID": bad})
        assert problem(answer)["status"] in (400, 422)
        answer = client.get("/console/stream", params={"since": bad})
        assert problem(answer)["status"] in (400, 422)
    assert problem(client.get("/console/stream", headers={"X-API-Key": "gs_nope"}))["status"] == 401
    assert (
        problem(client.get("/console/summary", headers={"X-API-Key": "gs_nope"}))["status"] == 401
    )


def test_the_console_follows_the_service_clock(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    now = db_now(engine)
    iid = report(client, loaded_city, 2, now - timedelta(seconds=30))  # target 180 s
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    try:
        clock.set(now)
        before = client.get("/console/incidents", params={"limit": 1000}).json()
        clock.advance(151)  # 181 s after the report: one second late
        after = client.get("/console/incidents", params={"limit": 1000}).json()
    finally:
        clock.release()
    first = next(i for i in before["items"] if i["id"] == iid)
    then = next(i for i in after["items"] if i["id"] == iid)
    assert before["now"] == now.isoformat() and first["late_s"] == -150 and not first["overdue"]
    assert then["late_s"] == 1 and then["overdue"]
    assert after["overdue"] >= before["overdue"] + 1
    # the stream's cursor stays the database's, whatever the clock says
    assert int(after["event_id"]) >= int(before["event_id"]) >= int(console.event_id(now))
