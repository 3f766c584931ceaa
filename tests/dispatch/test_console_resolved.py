"""The console lists the resolved incidents waiting to be closed (``view=resolved``, with the
close and reopen a dispatcher may do), reads one incident in any state (what the page reads
again after a 409), and a 409 says why in the reader's language."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.services.dispatch import console
from tests.conftest import problem
from tests.dispatch.test_console import DISPATCHER, db_now, report


def _resolved(client: TestClient, engine: Engine, city: DemoCity) -> str:
    iid = report(client, city, 3, db_now(engine) - timedelta(minutes=5), category="sanitation")
    rid = client.get(f"/incidents/{iid}/candidates", params={"k": 1}).json()["candidates"][0]["id"]
    for action, body in (("dispatch", {"responder_id": rid}), ("accept", {}), ("resolve", {})):
        assert client.post(f"/incidents/{iid}/{action}", json=body).status_code == 200
    return iid


def test_resolved_incidents_are_listed_to_close_with_close_and_reopen(
    client: TestClient, engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    iid = _resolved(client, engine, loaded_city)
    page = client.get("/console/incidents", params={"view": "resolved", "limit": 1000}).json()
    item = next(i for i in page["items"] if i["id"] == iid)
    assert item["status"] == "resolved" and item["resolved_at"] is not None
    assert item["actions"] == ["close", "reopen"]
    assert item["late_s"] is None and item["overdue"] is False
    assert page["resolved"] == len(page["items"]) >= 1
    assert all(i["status"] == "resolved" for i in page["items"])
    stamps = [i["resolved_at"] for i in page["items"]]
    assert stamps == sorted(stamps)  # the longest waiting first
    opened = client.get("/console/incidents", params={"limit": 1000}).json()
    assert iid not in {i["id"] for i in opened["items"]} and opened["resolved"] == page["resolved"]
    # closed: gone from the list, still readable one by one, with what may follow (reopen)
    assert client.post(f"/incidents/{iid}/close", json={}).status_code == 200
    again = client.get("/console/incidents", params={"view": "resolved", "limit": 1000}).json()
    assert iid not in {i["id"] for i in again["items"]}
    one = client.get(f"/console/incidents/{iid}").json()
    assert one["status"] == "closed" and one["actions"] == ["reopen"]


def test_the_stream_moves_a_resolved_incident_to_the_list_to_close(
    client: TestClient, engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    feed = console.ConsoleFeed(scope=DISPATCHER, stale_s=300, since=db_now(engine))
    iid = _resolved(client, engine, loaded_city)
    with Session(engine) as session:
        events = feed.tick(session)
    incidents = [data for name, data in events if name == "incidents"]
    assert {"id": iid, "status": "resolved"} in [c for d in incidents for c in d["closed"]]
    moved = [i for d in incidents for i in d["resolved"] if i["id"] == iid]
    assert moved and moved[0]["actions"] == ["close", "reopen"]


def test_a_409_names_the_state_in_the_readers_language(
    client: TestClient, engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    iid = _resolved(client, engine, loaded_city)
    rid = client.get(f"/incidents/{iid}/candidates", params={"k": 1}).json()["candidates"][0]["id"]
    zh = client.post(
        f"/incidents/{iid}/dispatch",
        json={"responder_id": rid},
        headers={"Accept-Language": "zh-CN"},
    )
    assert zh.status_code == 409
    body = problem(zh)
    assert body["detail"] == "无法对状态为 已处置 的事件执行 派遣"
    assert body["status_now"] == "resolved"
    en = client.post(f"/incidents/{iid}/accept", json={}, headers={"Accept-Language": "en"})
    assert (
        en.status_code == 409
        and problem(en)["detail"] == "cannot accept an incident that is resolved"
    )
    client.post(f"/incidents/{iid}/close", json={})


def test_a_bad_view_or_an_unknown_incident_is_a_problem(client: TestClient) -> None:
    bad = client.get("/console/incidents", params={"view": "all"})
    assert bad.status_code == 422 and problem(bad)
    gone = client.get("/console/incidents/00000000-0000-4000-8000-000000000000")
    assert gone.status_code == 404 and problem(gone)
