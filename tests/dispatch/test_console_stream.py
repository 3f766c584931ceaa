"""The console's event stream (issue 17): deltas over server-sent events from a live server,
resumed with Last-Event-ID, scoped like the listing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point

WAIT_S = 30  # an upper bound on waiting for an event, never a measure of anything


@contextmanager
def stream(base: str, key: str, last_id: str | None = None) -> Iterator[Iterator[dict]]:
    """The console stream as parsed events ({id, event, data})."""
    headers = {"X-API-Key": key, "Accept": "text/event-stream"}
    if last_id:
        headers["Last-Event-ID"] = last_id
    with (
        httpx.Client(timeout=WAIT_S) as http,
        http.stream("GET", f"{base}/console/stream", headers=headers) as answer,
    ):
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")

        def events() -> Iterator[dict]:
            event: dict = {}
            for line in answer.iter_lines():
                if not line:
                    if "data" in event:
                        yield {**event, "data": json.loads(event["data"])}
                    event = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    event[name] = value

        yield events()


def until(events: Iterator[dict], found, what: str) -> dict:  # noqa: ANN001
    """The first event ``found`` accepts (bounded by WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    for event in events:
        if found(event):
            return event
        assert time.monotonic() < deadline, f"no event with {what}"
    raise AssertionError(f"the stream ended before {what}")


def report(client: TestClient, lon: float, lat: float, priority: int = 1) -> str:
    made = client.post(
        "/incidents",
        json={
            "category": "safety_hazard",
            "priority": priority,
            "reported_at": datetime.now(UTC).isoformat(),
            "location": {"lon": lon, "lat": lat},
        },
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def changed(iid: str):  # noqa: ANN201
    return lambda e: e["event"] == "incidents" and iid in {i["id"] for i in e["data"]["changed"]}


def closed(iid: str):  # noqa: ANN201
    return lambda e: e["event"] == "incidents" and iid in {i["id"] for i in e["data"]["closed"]}


def test_stream_sends_counts_responders_new_and_closed_and_resumes(
    live_server: str, client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    with stream(live_server, role_keys["dispatcher"]) as events:
        first = [next(events), next(events)]
        kinds = {e["event"] for e in first}
        assert kinds == {"responders", "summary"}, first
        summary = next(e for e in first if e["event"] == "summary")["data"]
        assert summary["open"] == client.get("/console/summary").json()["open"]
        assert len(next(e for e in first if e["event"] == "responders")["data"]["changed"]) > 10
        iid = report(client, lon, lat)
        # the delta and the new counts, in whichever tick each is seen
        seen: dict[str, dict] = {}

        def both(e: dict) -> bool:
            seen["delta" if changed(iid)(e) else e["event"]] = e
            counted = seen.get("summary", {}).get("data", {}).get("open")
            return "delta" in seen and counted == summary["open"] + 1

        until(events, both, "the new incident and the new counts")
        event = seen["delta"]
        item = next(i for i in event["data"]["changed"] if i["id"] == iid)
        assert item["new"] is True and item["priority"] == 1 and "dispatch" in item["actions"]
        resume = event["id"]
        assert resume.isdigit()
        # a responder moves: only it is sent, where it is now
        mover = client.get("/responders").json()["features"][0]["id"]
        fix = {"id": mover, "lon": lon + 0.0042, "lat": lat, "at": datetime.now(UTC).isoformat()}
        assert client.post("/responders/positions", json={"positions": [fix]}).status_code == 200
        moved = until(
            events,
            lambda e: (
                e["event"] == "responders" and any(r["id"] == mover for r in e["data"]["changed"])
            ),
            "the responder's move",
        )
        where = next(r for r in moved["data"]["changed"] if r["id"] == mover)
        assert (where["lon"], where["lat"]) == pytest.approx((fix["lon"], fix["lat"]))
        assert len(moved["data"]["changed"]) < 5 and where["stale"] is False
    # gone while nobody listened: the resumed stream says so
    client.post(f"/incidents/{iid}/cancel")
    with stream(live_server, role_keys["dispatcher"], last_id=resume) as events:
        gone = until(events, closed(iid), "the cancelled incident")
    assert {"id": iid, "status": "cancelled"} in gone["data"]["closed"]


def test_stream_is_scoped_like_the_listing(
    live_server: str, client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    busiest = loaded_city.households.grid_code.value_counts().index[0]
    community = grids.set_index("code").parent_code[busiest]
    outside_code = grids[grids.parent_code != community].code.iloc[0]
    inside = report(client, *grid_point(loaded_city, busiest)[:2])
    outside = report(client, *grid_point(loaded_city, outside_code)[:2])
    area = client.get(
        "/incidents",
        params={"status": "reported", "limit": 1000},
        headers={"X-API-Key": role_keys["dispatcher@community"]},
    ).json()
    listed = {f["id"] for f in area["features"]}
    assert inside in listed and outside not in listed
    # a stream resumed from before both: the area's dispatcher is sent only theirs
    with stream(live_server, role_keys["dispatcher@community"], last_id=_before(client)) as events:
        event = until(events, changed(inside), "the incident in the area")
        ids = {i["id"] for i in event["data"]["changed"]}
        assert outside not in ids and ids <= listed | {inside}
        responders = until(events, lambda e: e["event"] == "responders", "responders")
    everyone = client.get("/responders", headers={"X-API-Key": role_keys["dispatcher@community"]})
    assert {r["id"] for r in responders["data"]["changed"]} <= {
        f["id"] for f in everyone.json()["features"]
    }
    with stream(live_server, role_keys["dispatcher"], last_id=_before(client)) as events:
        until(events, changed(outside), "the incident elsewhere, for a city-wide dispatcher")


def _before(client: TestClient) -> str:
    """An event id a minute before now (the console's own page gives one)."""
    page = client.get("/console/incidents", params={"limit": 1}).json()
    return str(int(page["event_id"]) - 60_000_000)
