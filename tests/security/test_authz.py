"""Authorization of every object an action touches (issue 13, findings 4, 5 and 9 in part).

Each test first reproduces the attack of the report, then shows it refused: dispatch checks
the responder as well as the incident, an assigned responder cannot be laundered back to
``available``, the database itself keeps one open incident per responder, out-of-area and
missing ids answer alike, candidates hide what ``/responders/nearest`` hides, versions and
jobs are scoped, and idempotency keys belong to one user.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.batch import jobs
from tests.conftest import as_role, grid_point, problem

OPEN = ("reported", "dispatched", "accepted", "on_scene")


# --- helpers ---------------------------------------------------------------------------------


def _places(city: DemoCity) -> dict[str, Any]:
    """The busiest grid (the test grid worker's), its community and district, and a grid of
    another district."""
    grids = city.areas[city.areas.level == "grid"]
    busiest = city.households.grid_code.value_counts().index[0]
    community = grids.set_index("code").parent_code[busiest]
    district = busiest.split("-")[0]
    foreign = next(c for c in grids.code if not c.startswith(district + "-"))
    inside = next(c for c in grids.code if c.startswith(community + "-"))
    return {
        "busiest": busiest,
        "community": community,
        "district": district,
        "inside": inside,
        "foreign": foreign,
    }


def _report(client: TestClient, city: DemoCity, code: str, headers: dict | None = None) -> dict:
    lon, lat, _ = grid_point(city, code)
    made = client.post(
        "/incidents",
        json={"category": "traffic", "location": {"lon": lon, "lat": lat}},
        headers=headers or {},
    )
    assert made.status_code == 201, made.text
    return made.json()


def _responders(client: TestClient, **params: Any) -> list[dict]:
    """Responders as admin sees them (properties only)."""
    body = client.get("/responders", params=params).json()
    return [f["properties"] for f in body["features"]]


def _available(client: TestClient, rid: int) -> None:
    """Make a responder available (as admin): a job of the demo's history it is on (the
    history ends with some responders busy on one) is cancelled first."""
    for item in client.get("/console/incidents", params={"limit": 500}).json()["items"]:
        if item["responder_id"] == rid:
            assert client.post(f"/incidents/{item['id']}/cancel").status_code == 200
    done = client.patch(f"/responders/{rid}", json={"status": "available"})
    assert done.status_code == 200, done.text


def _grid_worker_of(client: TestClient, code: str) -> int:
    return next(
        r["id"] for r in _responders(client, kind="grid_worker") if r["home_grid_code"] == code
    )


def _unit(client: TestClient, kind: str) -> int:
    """A city-wide unit (no home grid) of ``kind``, made available."""
    rid = next(r["id"] for r in _responders(client, kind=kind) if r["home_grid_id"] is None)
    _available(client, rid)
    return rid


def _key(
    engine: Engine, name: str, role: str, area: str | None, callsign: str | None = None
) -> dict:
    with Session(engine) as session:
        user = create_user(
            session,
            name=name,
            role=role,
            area_code=area,
            actor="tests",
            responder_callsign=callsign,
        )
        key = create_key(session, user, actor="tests")[1]
        session.commit()
    return {"X-API-Key": key}


def _open_incidents_of(engine: Engine, rid: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM incidents WHERE responder_id = :r AND status = ANY(:o)"),
            {"r": rid, "o": list(OPEN)},
        ).scalar_one()


def _status(client: TestClient, rid: int) -> str:
    return next(r["status"] for r in _responders(client) if r["id"] == rid)


def _alike(a: dict, b: dict, a_id: str, b_id: str) -> None:
    """Two problem bodies say the same, up to the id they name."""
    assert a["status"] == b["status"] == 404
    assert set(a) == set(b), (a, b)
    for key in ("type", "title", "code"):
        assert a.get(key) == b.get(key)
    assert a["detail"].replace(a_id, "<id>") == b["detail"].replace(b_id, "<id>"), (a, b)


# --- finding 4: dispatch authorizes the responder ----------------------------------------------


def test_grid_worker_cannot_dispatch_the_citys_units(
    client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    places = _places(loaded_city)
    worker = as_role(role_keys, "grid_worker")
    incident = _report(client, loaded_city, places["busiest"], headers=worker)
    for kind in ("fire", "medical", "patrol"):
        rid = _unit(client, kind)
        refused = client.post(
            f"/incidents/{incident['id']}/dispatch", json={"responder_id": rid}, headers=worker
        )
        assert problem(refused)["status"] == 403, (kind, refused.text)
        assert _status(client, rid) == "available"  # nothing taken
    # nor another grid worker, not even their own grid's: they are not linked to it
    own = _grid_worker_of(client, places["busiest"])
    _available(client, own)
    refused = client.post(
        f"/incidents/{incident['id']}/dispatch", json={"responder_id": own}, headers=worker
    )
    assert problem(refused)["status"] == 403
    assert client.get(f"/incidents/{incident['id']}").json()["status"] == "reported"


def test_grid_worker_cannot_stand_down_a_unit_a_dispatcher_sent(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    """Cancelling frees the incident's responder, so it is authorized like sending it."""
    places = _places(loaded_city)
    worker = as_role(role_keys, "grid_worker")
    incident = _report(client, loaded_city, places["busiest"], headers=worker)
    fire = _unit(client, "fire")
    sent = client.post(f"/incidents/{incident['id']}/dispatch", json={"responder_id": fire})
    assert sent.status_code == 200, sent.text
    refused = client.post(f"/incidents/{incident['id']}/cancel", json={}, headers=worker)
    assert problem(refused)["status"] == 403
    assert client.get(f"/incidents/{incident['id']}").json()["status"] == "dispatched"
    assert _status(client, fire) == "busy" and _open_incidents_of(engine, fire) == 1
    # an area dispatcher may not free a city-wide unit either; the city's dispatcher may
    area = as_role(role_keys, "dispatcher@community")
    assert client.post(
        f"/incidents/{incident['id']}/cancel", json={}, headers=area
    ).status_code in (
        403,
        404,
    )
    done = client.post(f"/incidents/{incident['id']}/cancel", json={})
    assert done.status_code == 200, done.text
    assert _status(client, fire) == "available"
    # with nobody assigned, the grid's own worker may still cancel what they reported
    mine = _report(client, loaded_city, places["busiest"], headers=worker)
    assert (
        client.post(f"/incidents/{mine['id']}/cancel", json={}, headers=worker).status_code == 200
    )


def test_grid_worker_linked_to_a_responder_dispatches_only_themselves(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    places = _places(loaded_city)
    own = _grid_worker_of(client, places["busiest"])
    _available(client, own)
    callsign = next(r["callsign"] for r in _responders(client) if r["id"] == own)
    me = _key(engine, "authz-linked-worker", "grid_worker", places["busiest"], callsign)
    first = _report(client, loaded_city, places["busiest"], headers=me)
    second = _report(client, loaded_city, places["busiest"], headers=me)
    fire = _unit(client, "fire")
    refused = client.post(
        f"/incidents/{second['id']}/dispatch", json={"responder_id": fire}, headers=me
    )
    assert problem(refused)["status"] == 403
    done = client.post(f"/incidents/{first['id']}/dispatch", json={"responder_id": own}, headers=me)
    assert done.status_code == 200, done.text
    assert done.json()["responder_id"] == own and done.json()["status"] == "dispatched"
    assert client.post(f"/incidents/{first['id']}/accept", headers=me).status_code == 200
    client.post(f"/incidents/{first['id']}/cancel")


def test_area_dispatcher_dispatches_only_responders_of_their_area(
    client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    places = _places(loaded_city)
    bound = as_role(role_keys, "dispatcher@community")
    incident = _report(client, loaded_city, places["inside"], headers=bound)
    iid = incident["id"]
    foreign = _grid_worker_of(client, places["foreign"])
    _available(client, foreign)
    # the report's attack: PATCH on that responder was refused, dispatch was not
    patch = client.patch(f"/responders/{foreign}", json={"status": "off_duty"}, headers=bound)
    assert problem(patch)["status"] == 404
    missing = problem(
        client.post(f"/incidents/{iid}/dispatch", json={"responder_id": 99_999_999}, headers=bound)
    )
    outside = problem(
        client.post(f"/incidents/{iid}/dispatch", json={"responder_id": foreign}, headers=bound)
    )
    _alike(outside, missing, str(foreign), "99999999")
    fire = _unit(client, "fire")  # city-wide: for city-wide dispatchers only
    assert (
        problem(
            client.post(f"/incidents/{iid}/dispatch", json={"responder_id": fire}, headers=bound)
        )["status"]
        == 404
    )
    assert _status(client, foreign) == "available" and _status(client, fire) == "available"
    mine = _grid_worker_of(client, places["inside"])
    _available(client, mine)
    done = client.post(f"/incidents/{iid}/dispatch", json={"responder_id": mine}, headers=bound)
    assert done.status_code == 200, done.text
    assert done.json()["responder_id"] == mine
    client.post(f"/incidents/{iid}/cancel")


def test_actions_other_than_dispatch_name_no_responder(
    client: TestClient, loaded_city: DemoCity
) -> None:
    incident = _report(client, loaded_city, _places(loaded_city)["inside"])
    fire = _unit(client, "fire")
    named = client.post(f"/incidents/{incident['id']}/cancel", json={"responder_id": fire})
    assert problem(named)["status"] == 422
    assert client.get(f"/incidents/{incident['id']}").json()["status"] == "reported"


# --- finding 5: one open incident per responder ------------------------------------------------


def test_status_laundering_cannot_free_an_assigned_responder(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    code = _places(loaded_city)["inside"]
    first, second = _report(client, loaded_city, code), _report(client, loaded_city, code)
    rid = _unit(client, "medical")
    assert (
        client.post(f"/incidents/{first['id']}/dispatch", json={"responder_id": rid}).status_code
        == 200
    )
    # the report's path: busy -> off_duty -> available, then a second dispatch
    assert client.patch(f"/responders/{rid}", json={"status": "off_duty"}).status_code == 200
    laundered = problem(client.patch(f"/responders/{rid}", json={"status": "available"}))
    assert laundered["status"] == 409 and "assigned to an open incident" in laundered["detail"]
    assert _status(client, rid) == "off_duty"
    again = problem(client.post(f"/incidents/{second['id']}/dispatch", json={"responder_id": rid}))
    assert again["status"] == 409 and again["assigned"] is True
    assert _open_incidents_of(engine, rid) == 1
    # once the incident is settled, the responder may come back
    assert client.post(f"/incidents/{first['id']}/cancel").status_code == 200
    assert client.patch(f"/responders/{rid}", json={"status": "available"}).status_code == 200
    assert (
        client.post(f"/incidents/{second['id']}/dispatch", json={"responder_id": rid}).status_code
        == 200
    )
    client.post(f"/incidents/{second['id']}/cancel")


def test_database_refuses_a_second_open_incident_and_the_api_answers_409(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    code = _places(loaded_city)["inside"]
    first, second = _report(client, loaded_city, code), _report(client, loaded_city, code)
    rid = _unit(client, "patrol")
    assert (
        client.post(f"/incidents/{first['id']}/dispatch", json={"responder_id": rid}).status_code
        == 200
    )
    with pytest.raises(IntegrityError, match="ux_incidents_open_responder"):
        with engine.begin() as conn:  # whatever a writer does, not two open incidents
            conn.execute(
                text("UPDATE incidents SET status = 'dispatched', responder_id = :r WHERE id = :i"),
                {"r": rid, "i": second["id"]},
            )
    # A responder marked available behind the service's back: the index still holds, as a 409.
    with engine.begin() as conn:
        conn.execute(text("UPDATE responders SET status = 'available' WHERE id = :r"), {"r": rid})
    clash = client.post(f"/incidents/{second['id']}/dispatch", json={"responder_id": rid})
    body = problem(clash)
    assert body["status"] == 409 and "already assigned" in body["detail"]
    assert client.get(f"/incidents/{second['id']}").json()["status"] == "reported"
    assert _open_incidents_of(engine, rid) == 1
    client.post(f"/incidents/{first['id']}/cancel")


def test_two_dispatches_of_one_responder_at_once_end_with_one_success(
    live_server: str, client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    code = _places(loaded_city)["inside"]
    for _ in range(5):
        pair = [_report(client, loaded_city, code), _report(client, loaded_city, code)]
        rid = _unit(client, "fire")
        barrier = threading.Barrier(2)
        codes: dict[str, int] = {}

        def send(
            iid: str,
            rid: int = rid,
            barrier: threading.Barrier = barrier,
            codes: dict[str, int] = codes,
        ) -> None:
            with httpx.Client(
                base_url=live_server, headers=as_role(role_keys, "dispatcher"), timeout=30
            ) as h:
                barrier.wait()
                codes[iid] = h.post(
                    f"/incidents/{iid}/dispatch", json={"responder_id": rid}
                ).status_code

        threads = [threading.Thread(target=send, args=(i["id"],)) for i in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes.values()) == [200, 409], codes
        assert _open_incidents_of(engine, rid) == 1
        for i in pair:
            client.post(f"/incidents/{i['id']}/cancel")
        assert _status(client, rid) == "available"


# --- finding 9 (parts): ids, candidates, versions, jobs, idempotency keys ------------------------


def test_out_of_area_ids_answer_as_missing_ones(
    client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    places = _places(loaded_city)
    bound = as_role(role_keys, "dispatcher@community")
    foreign = _report(client, loaded_city, places["foreign"])["id"]
    nothing = str(uuid.uuid4())
    assert client.get(f"/incidents/{foreign}").status_code == 200  # it exists
    for method, suffix, body in (
        ("get", "", None),
        ("get", "/candidates", None),
        ("post", "/cancel", {}),
        ("post", "/escalate", {}),
        ("post", "/accept", {}),
    ):

        def call(iid: str, method: str = method, suffix: str = suffix, body: Any = body) -> dict:
            url = f"/incidents/{iid}{suffix}"
            if method == "get":
                return problem(client.get(url, headers=bound))
            return problem(client.post(url, json=body, headers=bound))

        _alike(call(foreign), call(nothing), foreign, nothing)
    # dispatch with a responder of the caller's own area to an incident outside it
    mine = _grid_worker_of(client, places["inside"])
    _available(client, mine)
    out = problem(
        client.post(f"/incidents/{foreign}/dispatch", json={"responder_id": mine}, headers=bound)
    )
    gone = problem(
        client.post(f"/incidents/{nothing}/dispatch", json={"responder_id": mine}, headers=bound)
    )
    _alike(out, gone, foreign, nothing)
    assert _status(client, mine) == "available"  # the responder was not kept busy
    assert client.get(f"/incidents/{foreign}").json()["status"] == "reported"
    # areas: a grid of another district as a missing area
    grids = {
        f["properties"]["code"]: f["id"] for f in client.get("/areas?level=grid").json()["features"]
    }
    far = problem(client.get(f"/areas/{grids[places['foreign']]}", headers=bound))
    none = problem(client.get("/areas/1999999999", headers=bound))
    _alike(far, none, str(grids[places["foreign"]]), "1999999999")


def test_candidates_hide_out_of_area_responders_as_nearest_does(
    client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    places = _places(loaded_city)
    bound = as_role(role_keys, "dispatcher@community")
    incident = _report(client, loaded_city, places["inside"], headers=bound)
    _unit(client, "fire")
    for r in _responders(client, kind="grid_worker"):
        if r["home_grid_code"].startswith(places["community"] + "-"):
            _available(client, r["id"])
    # everyone fresh and around the incident, so distance alone would offer them all
    now = datetime.now(UTC).isoformat()
    everyone = [r for r in _responders(client) if r["status"] != "off_duty"]  # they share none
    fixes = [
        {"id": r["id"], "lon": incident["lon"] + 1e-4 * (i % 7), "lat": incident["lat"], "at": now}
        for i, r in enumerate(everyone)
    ]
    assert client.post("/responders/positions", json={"positions": fixes}).status_code == 200
    params = {"k": 50}
    seen = client.get(f"/incidents/{incident['id']}/candidates", params=params).json()
    assert any(c["home_grid_id"] is None for c in seen["candidates"]), "admin sees city units"
    theirs = client.get(f"/incidents/{incident['id']}/candidates", params=params, headers=bound)
    assert theirs.status_code == 200, theirs.text
    offered = theirs.json()["candidates"]
    assert offered, "the community's own workers are offered"
    visible = {f["id"] for f in client.get("/responders", headers=bound).json()["features"]}
    assert {c["id"] for c in offered} <= visible
    assert all(c["home_grid_code"].startswith(places["community"] + "-") for c in offered)
    nearest = client.get(
        "/responders/nearest",
        params={"lon": incident["lon"], "lat": incident["lat"], "k": 50},
        headers=bound,
    ).json()["candidates"]
    assert {c["id"] for c in offered} == {c["id"] for c in nearest}


def _foreign_draft(engine: Engine, district: str) -> tuple[int, int]:
    """A draft version holding only grids of ``district`` (and the current version's id)."""
    with engine.begin() as conn:
        current = conn.execute(
            text("SELECT id FROM boundary_versions WHERE status = 'published' ORDER BY id DESC")
        ).scalar_one()
        draft = conn.execute(
            text(
                "INSERT INTO boundary_versions (name, status) VALUES ('authz draft', 'draft') "
                "RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO areas (version_id, level, code, name, geom, area_m2) "
                "SELECT :d, level, code, name, geom, area_m2 FROM areas "
                "WHERE version_id = :v AND level = 'grid' AND code LIKE :p"
            ),
            {"d": draft, "v": current, "p": f"{district}-%"},
        )
    return current, draft


def test_boundary_versions_are_scoped_for_area_bound_users(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    places = _places(loaded_city)
    bound = as_role(role_keys, "analyst@district")
    other = places["foreign"].split("-")[0]
    current, draft = _foreign_draft(engine, other)
    everything = {v["id"]: v for v in client.get("/boundaries/versions").json()["data"]}
    assert draft in everything and current in everything
    mine = {v["id"]: v for v in client.get("/boundaries/versions", headers=bound).json()["data"]}
    assert draft not in mine and current in mine
    codes = loaded_city.areas.code
    in_district = loaded_city.areas[
        (codes == places["district"]) | codes.str.startswith(places["district"] + "-")
    ]
    expected = in_district.level.value_counts().to_dict()
    assert mine[current]["areas"] == expected
    assert mine[current]["restricted_to"] == places["district"]
    assert sum(everything[current]["areas"].values()) > sum(expected.values())
    report = client.get(f"/boundaries/versions/{current}/validation", headers=bound).json()
    assert report["areas"] == expected and report["restricted_to"] == places["district"]
    full = client.get(f"/boundaries/versions/{current}/validation").json()
    assert "restricted_to" not in full and sum(full["areas"].values()) > sum(expected.values())
    # a version with nothing in their area does not exist for them
    assert client.get(f"/boundaries/versions/{draft}/validation").status_code == 200
    hidden = problem(client.get(f"/boundaries/versions/{draft}/validation", headers=bound))
    missing = problem(client.get("/boundaries/versions/1999999/validation", headers=bound))
    _alike(hidden, missing, str(draft), "1999999")
    diff = problem(client.get(f"/boundaries/versions/{current}/diff/{draft}", headers=bound))
    assert diff["status"] == 404 and str(draft) in diff["detail"]
    assert client.get(f"/boundaries/versions/{current}/diff/{draft}").status_code == 200


def test_jobs_are_seen_by_their_starter_and_admins_only(
    client: TestClient, role_keys: dict, engine: Engine
) -> None:
    with engine.connect() as conn:
        planner = conn.execute(
            text("SELECT id FROM users WHERE name = 'test-planner'")
        ).scalar_one()
    job_id = jobs.submit(
        engine,
        "test",
        {},
        "test-planner (planner)",
        lambda progress: {"answer": 42},
        owner_id=planner,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        mine = client.get(f"/jobs/{job_id}", headers=as_role(role_keys, "planner")).json()
        if mine["status"] == "done":
            break
        time.sleep(0.1)
    assert mine["result"] == {"answer": 42}
    assert client.get(f"/jobs/{job_id}").json()["result"] == {"answer": 42}  # admin
    other = _key(engine, "authz-other-planner", "planner", None)
    theirs = problem(client.get(f"/jobs/{job_id}", headers=other))
    nothing = str(uuid.uuid4())
    _alike(theirs, problem(client.get(f"/jobs/{nothing}", headers=other)), job_id, nothing)


def test_idempotency_keys_belong_to_one_user(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city, _places(loaded_city)["inside"])
    key = {"Idempotency-Key": f"authz-{uuid.uuid4()}"}
    payload = {"category": "traffic", "location": {"lon": lon, "lat": lat}}
    mine = client.post("/incidents", json=payload, headers=key)
    assert mine.status_code == 201
    # another user replaying the key gets a new incident of their own, not the first one
    dispatcher = {**as_role(role_keys, "dispatcher"), **key}
    theirs = client.post("/incidents", json=payload, headers=dispatcher)
    assert theirs.status_code == 201 and theirs.json()["id"] != mine.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    # a different body under the same key is no conflict across users either
    community = {**as_role(role_keys, "dispatcher@community"), **key}
    other = client.post("/incidents", json={**payload, "category": "disputes"}, headers=community)
    assert other.status_code == 201 and other.json()["category"] == "disputes"
    # each user replaying their own key gets their own incident back
    again = client.post("/incidents", json=payload, headers=dispatcher)
    assert again.status_code == 200 and again.json()["id"] == theirs.json()["id"]
    first = client.post("/incidents", json=payload, headers=key)
    assert first.status_code == 200 and first.json()["id"] == mine.json()["id"]
    with engine.connect() as conn:
        owners = conn.execute(
            text("SELECT count(DISTINCT request_user_id) FROM incidents WHERE request_key = :k"),
            {"k": key["Idempotency-Key"]},
        ).scalar_one()
    assert owners == 3
