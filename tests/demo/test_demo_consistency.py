"""The demo as a fresh user finds it: every incident's fields agree with its status, a
responder is busy only while it holds an incident, grid workers have done the work of their
grid, the demo grid worker is bound to the busiest grid, and the simulator acts under its own
account and budget without storming the server."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.demo.load import SIMULATOR_USER, issue_demo_keys, repair_history
from geo_service.settings import Settings
from geo_service.simulate.city import Simulation
from geo_service.simulate.gateway import MAX_RETRIES, MAX_WAIT_S, Gateway
from tests.conftest import as_role, problem

SHANGHAI = ZoneInfo("Asia/Shanghai")
IN_FLIGHT = "('dispatched', 'accepted', 'on_scene')"
# Each query counts the rows that break one rule; every count must be 0.
INVARIANTS = {
    "in flight without a responder": "SELECT count(*) FROM incidents "
    f"WHERE status IN {IN_FLIGHT} AND responder_id IS NULL",
    "sent without dispatched_at": "SELECT count(*) FROM incidents "
    f"WHERE status IN {IN_FLIGHT} AND dispatched_at IS NULL",
    "accepted without accepted_at": "SELECT count(*) FROM incidents "
    "WHERE status IN ('accepted', 'on_scene') AND accepted_at IS NULL",
    "on scene without arrived_at": "SELECT count(*) FROM incidents "
    "WHERE status = 'on_scene' AND arrived_at IS NULL",
    "resolved without resolved_at": "SELECT count(*) FROM incidents "
    "WHERE status = 'resolved' AND resolved_at IS NULL",
    "closed without closed_at": "SELECT count(*) FROM incidents "
    "WHERE status = 'closed' AND closed_at IS NULL",
    "cancelled without cancelled_at": "SELECT count(*) FROM incidents "
    "WHERE status = 'cancelled' AND cancelled_at IS NULL",
    "open with a later stage's stamp": "SELECT count(*) FROM incidents WHERE "
    "(status = 'reported' AND (dispatched_at IS NOT NULL OR accepted_at IS NOT NULL)) "
    "OR (status = 'dispatched' AND accepted_at IS NOT NULL) "
    "OR (status IN ('dispatched', 'accepted', 'on_scene') "
    "AND (resolved_at IS NOT NULL OR closed_at IS NOT NULL))",
    "stages out of order": "SELECT count(*) FROM incidents WHERE "
    "dispatched_at < reported_at OR accepted_at < dispatched_at OR arrived_at < accepted_at "
    "OR resolved_at < coalesce(arrived_at, accepted_at) OR closed_at < resolved_at",
    "escalated without escalated_at": "SELECT count(*) FROM incidents "
    "WHERE escalation_level > 0 AND escalated_at IS NULL",
    "busy without an incident in flight": "SELECT count(*) FROM responders r "
    "WHERE r.status = 'busy' AND NOT EXISTS (SELECT 1 FROM incidents i "
    f"WHERE i.responder_id = r.id AND i.status IN {IN_FLIGHT})",
    "holding an incident in flight, not busy": "SELECT count(*) FROM responders r "
    "WHERE r.status <> 'busy' AND EXISTS (SELECT 1 FROM incidents i "
    f"WHERE i.responder_id = r.id AND i.status IN {IN_FLIGHT})",
}


def broken_rules(conn: Connection) -> dict[str, int]:
    """The invariants the demo's rows break, with how many rows break each."""
    counts = {
        rule: int(conn.execute(text(query)).scalar_one()) for rule, query in INVARIANTS.items()
    }
    return {rule: n for rule, n in counts.items() if n}


def test_the_loaded_demo_keeps_every_incident_and_responder_consistent(
    engine: Engine, loaded_city: DemoCity
) -> None:
    with engine.connect() as conn:
        assert broken_rules(conn) == {}
        in_flight, busy = conn.execute(
            text(
                f"SELECT (SELECT count(*) FROM incidents WHERE status IN {IN_FLIGHT}), "
                "(SELECT count(*) FROM responders WHERE status = 'busy')"
            )
        ).one()
    # exactly the responders of the work under way are busy (one job each)
    assert busy == in_flight
    # as generated: the city's frames keep the same rules
    incidents, responders = loaded_city.incidents, loaded_city.responders
    flight = incidents[incidents.status.isin(["dispatched", "accepted", "on_scene"])]
    assert flight.responder_callsign.notna().all() and flight.responder_callsign.is_unique
    assert set(responders.callsign[responders.status == "busy"]) == set(flight.responder_callsign)


def test_most_grid_workers_have_closed_work_of_their_grid_in_the_managers_report(
    client: TestClient, loaded_city: DemoCity
) -> None:
    until = pd.Timestamp(loaded_city.end).tz_convert(SHANGHAI) + pd.Timedelta(days=1)
    since = until - pd.Timedelta(days=366)
    response = client.get(
        "/reports/performance",
        params={"since": since.date().isoformat(), "until": until.date().isoformat()},
    )
    assert response.status_code == 200, response.text
    workers = response.json()["workers"]
    grids = int((loaded_city.areas.level == "grid").sum())
    assert len(workers) == grids
    closed = [w["closed"] for w in workers]
    assert sum(c > 0 for c in closed) >= 0.9 * grids, closed
    # a realistic share, not all: the community's patrol takes the rest
    received = response.json()["total"]["received"]
    assert 0.4 * received < sum(w["received"] for w in workers) < 0.9 * received


def test_the_demo_grid_worker_is_bound_to_the_busiest_grid_of_the_last_30_days(
    engine: Engine, loaded_city: DemoCity
) -> None:
    from sqlalchemy.orm import Session

    from geo_service.services.access.auth import create_user

    quiet = loaded_city.areas[loaded_city.areas.level == "grid"].code.sort_values().iloc[-1]
    with Session(engine) as session:  # bound at an earlier start, when another was busiest
        create_user(
            session, name="demo-grid-worker", role="grid_worker", area_code=quiet, actor="tests"
        )
        session.commit()
    rows = {row["user"]: row for row in issue_demo_keys(engine)}
    incidents = loaded_city.incidents
    recent = incidents[incidents.reported_at > incidents.reported_at.max() - timedelta(days=30)]
    counts = recent.grid_code.value_counts()
    top = sorted(counts[counts == counts.max()].index)[0]  # ties by code
    assert rows["demo-grid-worker"]["area"] == top
    # not merely the grid with most households (what it was bound to before)
    assert counts[top] >= counts.get(loaded_city.households.grid_code.value_counts().index[0], 0)
    assert rows[SIMULATOR_USER]["role"] == "dispatcher" and rows[SIMULATOR_USER]["area"] is None
    from geo_service.cli import demo as command  # its own copy of the name, kept the same

    assert command.SIMULATOR_USER == SIMULATOR_USER
    with engine.connect() as conn:
        callsign = conn.execute(
            text(
                "SELECT r.callsign FROM users u JOIN responders r ON r.id = u.responder_id "
                "WHERE u.name = 'demo-grid-worker'"
            )
        ).scalar_one()
    assert callsign == f"GW-{top}"
    if quiet != top:
        with engine.connect() as conn:
            rebound = conn.execute(
                text("SELECT diff FROM audit_log WHERE action = 'rebind_demo_grid_worker'")
            ).scalar_one()
        assert rebound["before"]["area_code"] == quiet and rebound["after"]["area_code"] == top


def _copy_incident(
    conn: Connection, grid: int | None = None, hours_ago: float = 3, **values: object
) -> str:
    """A new incident like the first stored one (of ``grid``, if given), reported
    ``hours_ago`` hours ago, with ``values`` set and no stamps."""
    columns = ", ".join(values)
    placeholders = ", ".join(f":{k}" for k in values)
    return str(
        conn.execute(
            text(
                "INSERT INTO incidents (category, priority, reported_at, location, h3, h3_6, "
                f"h3_7, h3_8, h3_9, h3_10, grid_id, {columns}) "
                "SELECT category, priority, now() - make_interval(secs => :ago), location, h3, "
                f"h3_6, h3_7, h3_8, h3_9, h3_10, grid_id, {placeholders} FROM incidents "
                "WHERE CAST(:grid AS integer) IS NULL OR grid_id = :grid "
                "ORDER BY id LIMIT 1 RETURNING id"
            ),
            {"ago": hours_ago * 3600, "grid": grid, **values},
        ).scalar_one()
    )


@pytest.mark.parametrize(
    ("action", "status", "stamps"),
    [
        ("accept", "dispatched", ("dispatched_at",)),
        ("arrive", "accepted", ("dispatched_at", "accepted_at")),
    ],
)
def test_accept_or_arrive_on_an_incident_nobody_is_assigned_to_is_a_409_and_writes_nothing(
    client: TestClient,
    engine: Engine,
    role_keys: dict[str, str],
    action: str,
    status: str,
    stamps: tuple[str, ...],
) -> None:
    """The 409 says why in fields a client reads without parsing the words (as the other
    409s of the lifecycle carry ``status_now``): ``assigned: false`` and the status now."""
    then = datetime.now(SHANGHAI) - timedelta(hours=1)
    with engine.begin() as conn:
        incident = _copy_incident(conn, status=status, **dict.fromkeys(stamps, then))
    with engine.connect() as conn:
        audits = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    for lang in ("en", "zh-CN"):
        response = client.post(
            f"/incidents/{incident}/{action}",
            headers={**as_role(role_keys, "dispatcher"), "Accept-Language": lang},
        )
        assert response.status_code == 409, response.text
        body = problem(response)
        assert body["assigned"] is False and body["status_now"] == status, body
        assert body["code"] == "conflict", body
        assert body["type"] == "https://geo-service.dev/problems/conflict"
        if lang == "en":
            assert "nobody is assigned" in body["detail"], body
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, accepted_at, arrived_at FROM incidents WHERE id = :i"),
            {"i": incident},
        ).one()
        audits_after = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    accepted = then if "accepted_at" in stamps else None
    assert (row.status, row.accepted_at, row.arrived_at) == (status, accepted, None)
    assert audits_after == audits


def test_accept_after_a_dispatch_still_works(
    client: TestClient, engine: Engine, role_keys: dict[str, str], responders_restored: None
) -> None:
    with engine.begin() as conn:
        incident = _copy_incident(conn, status="reported")
        free = conn.execute(
            text(
                "SELECT id FROM responders WHERE status = 'available' AND kind = 'patrol' "
                "ORDER BY id LIMIT 1"
            )
        ).scalar_one()
    headers = as_role(role_keys, "dispatcher")
    sent = client.post(
        f"/incidents/{incident}/dispatch", json={"responder_id": free}, headers=headers
    )
    assert sent.status_code == 200, sent.text
    accepted = client.post(f"/incidents/{incident}/accept", headers=headers)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text


def test_a_served_demo_repairs_a_history_that_disagrees_with_its_statuses(
    engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    """What ``geo-service demo`` does to a database generated before the generator kept its
    rows consistent (``backfill_history`` runs ``repair_history``)."""
    with engine.begin() as conn:
        # a grid whose worker holds nothing
        worker, grid = conn.execute(
            text(
                "SELECT r.id, r.home_grid_id FROM responders r WHERE r.kind = 'grid_worker' "
                "AND NOT EXISTS (SELECT 1 FROM incidents o WHERE o.responder_id = r.id "
                "AND o.status IN ('reported', 'dispatched', 'accepted', 'on_scene')) "
                "AND EXISTS (SELECT 1 FROM incidents i WHERE i.grid_id = r.home_grid_id) "
                "ORDER BY r.id LIMIT 1"
            )
        ).one()
        conn.execute(
            text("UPDATE responders SET status = 'available' WHERE id = :r"), {"r": worker}
        )
        # in flight with no responder and no stamps; the earlier one gets the grid's worker
        on_scene = _copy_incident(conn, grid, 3, status="on_scene")
        second = _copy_incident(conn, grid, 2, status="accepted")
        closed = _copy_incident(conn, status="closed", escalation_level=1)
        idle_busy = conn.execute(
            text(
                "UPDATE responders r SET status = 'busy' WHERE r.id = (SELECT id FROM "
                "responders x WHERE x.status = 'available' AND x.kind = 'fire' ORDER BY id "
                "LIMIT 1) RETURNING r.id"
            )
        ).scalar_one()
        assert broken_rules(conn)  # the test starts from a broken history
        changed = repair_history(conn)
        assert broken_rules(conn) == {}
        rows = {
            str(r.id): r
            for r in conn.execute(
                text(
                    "SELECT id, status, responder_id, grid_id, dispatched_at, accepted_at, "
                    "arrived_at, closed_at, escalated_at, reported_at FROM incidents "
                    "WHERE id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": [on_scene, second, closed]},
            )
        }
        statuses = dict(
            conn.execute(
                text("SELECT id, status FROM responders WHERE id = ANY(:ids)"),
                {"ids": [worker, idle_busy]},
            ).all()
        )
        audited = conn.execute(
            text("SELECT diff FROM audit_log WHERE action = 'repair_demo_history' ORDER BY id DESC")
        ).first()
    assert rows[on_scene].grid_id == grid and rows[on_scene].responder_id == worker
    assert rows[on_scene].status == "on_scene" and rows[on_scene].arrived_at is not None
    assert rows[second].status == "reported" and rows[second].responder_id is None
    assert rows[second].accepted_at is None
    assert rows[closed].closed_at is not None and rows[closed].escalated_at is not None
    assert statuses == {worker: "busy", idle_busy: "available"}
    assert audited is not None and audited.diff["assigned"] >= 1 and changed["freed"] >= 1


def test_the_simulator_waits_as_retry_after_asks_and_never_storms() -> None:
    asked: list[str] = []
    answers = iter([429, 429, 200])

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        status = next(answers, 429)
        return httpx.Response(status, headers={"Retry-After": "7"}, json={"features": []})

    waits: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://x") as client:
        gateway = Gateway(client, sleep=waits.append)
        assert gateway.responders() == []
        assert waits == [7.0, 7.0] and len(asked) == 3 and gateway.tally.too_many == 2
        # a server that keeps saying 429: a bounded number of tries, each after the wait
        # asked for (capped), then the 429 is the answer
        answers = iter([])
        waits.clear()
        assert gateway.set_status(1, "available") is False
        assert waits == [7.0] * MAX_RETRIES and len(asked) == 3 + MAX_RETRIES + 1

    def slow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "86400"})

    waits.clear()
    with httpx.Client(transport=httpx.MockTransport(slow), base_url="http://x") as client:
        Gateway(client, sleep=waits.append).set_status(1, "available")
    assert waits == [MAX_WAIT_S] * MAX_RETRIES


def test_a_simulated_run_uses_its_own_account_and_budget_and_meets_no_429(
    settings: Settings, engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    """A person's budget is small here; the simulator's account has a fleet's."""
    tight = settings.model_copy(
        update={
            "limits": settings.limits.model_copy(
                update={
                    "requests_per_minute": 30,
                    "burst": 10,
                    "user_requests_per_minute": {SIMULATOR_USER: 1_000_000},
                }
            )
        }
    )
    keys = {row["user"]: str(row["key"]) for row in issue_demo_keys(engine)}
    start = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
    with engine.begin() as conn:  # a job under way when the simulation begins
        worker, grid = conn.execute(
            text(
                "SELECT r.id, r.home_grid_id FROM responders r WHERE r.kind = 'grid_worker' "
                "AND r.status = 'available' AND EXISTS (SELECT 1 FROM incidents i "
                "WHERE i.grid_id = r.home_grid_id) ORDER BY r.id LIMIT 1"
            )
        ).one()
        job = _copy_incident(conn, grid, 0.1, status="reported")
    with TestClient(create_app(tight)) as client:
        sent = client.post(
            f"/incidents/{job}/dispatch",
            json={"responder_id": worker},
            headers={"X-API-Key": keys["demo-dispatcher"]},
        )
        assert sent.status_code == 200, sent.text
        # the human dispatcher's budget is spent after its burst
        human = [
            client.get("/responders", headers={"X-API-Key": keys["demo-dispatcher"]}).status_code
            for _ in range(12)
        ]
        assert 429 in human, human
        client.headers["X-API-Key"] = keys[SIMULATOR_USER]
        waits: list[float] = []
        simulation = Simulation(
            Gateway(client, sleep=waits.append),
            start=start,
            seed=21,
            device_clock=lambda: datetime.now(SHANGHAI),
        )
        simulation.setup()
        assert simulation.units[worker].status == "busy"
        for minutes in range(10, 121, 10):  # busy exactly while it holds a job, throughout
            simulation.advance(start + timedelta(minutes=minutes))
            with engine.connect() as conn:
                assert broken_rules(conn) == {}, minutes
    tally = simulation.api.tally
    assert tally.server_errors == [] and tally.too_many == 0 and waits == []
    # the job under way is seen through by its responder, never stood down by a status change
    # the server refuses (409: it holds an open incident) and the simulator would repeat
    assert tally.calls["status 4xx"] == 0, tally.calls
    assert simulation.totals["dispatched"] > 0 and simulation.totals["closed"] > 0
    with engine.connect() as conn:
        who = dict(
            conn.execute(
                text(
                    "SELECT who, count(*) FROM audit_log WHERE entity = 'incident' "
                    "AND entity_id IN (SELECT id::text FROM incidents WHERE request_key LIKE "
                    "'simulate-21-%') GROUP BY who"
                )
            ).all()
        )
        job_status = conn.execute(
            text("SELECT status FROM incidents WHERE id = :i"), {"i": job}
        ).scalar_one()
    assert job_status == "closed"  # the job under way was seen through by its responder
    assert who and set(who) == {f"{SIMULATOR_USER} (dispatcher)"}, who


@pytest.mark.parametrize("left_over", [True, False])
def test_the_demo_keys_file_is_readable_by_its_owner_only(tmp_path, left_over: bool) -> None:  # noqa: ANN001
    from geo_service.cli.demo import KEYS_FILE, write_keys_file

    if left_over:  # a file left by an earlier start, readable by all
        (tmp_path / KEYS_FILE).write_text("old\n")
        (tmp_path / KEYS_FILE).chmod(0o644)
    path = write_keys_file(tmp_path, ["  admin  demo-admin  gs_x_y"])
    assert path == tmp_path / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "  admin  demo-admin  gs_x_y\n"


def test_the_demo_serves_without_an_access_log_line_per_request(monkeypatch) -> None:  # noqa: ANN001
    import uvicorn

    from geo_service.cli.serve import run_server

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr("geo_service.api.app.create_app", lambda settings: object())
    run_server(Settings(), "127.0.0.1", 9, access_log=False)
    assert seen["access_log"] is False
    run_server(Settings(), "127.0.0.1", 9)
    assert seen["access_log"] is True


def test_a_busy_history_holds_one_job_per_responder_and_stamps_every_stage() -> None:
    """More work in flight at the end than a small city has responders: each holds one job,
    the rest wait as reports; every stage a status implies is stamped, none after the end."""
    from geo_service.demo.city import generate_city

    end = datetime(2026, 3, 2, 3, 0, tzinfo=SHANGHAI).astimezone(ZoneInfo("UTC"))
    city = generate_city(seed=3, grids=12, incidents=150_000, households_per_grid=20, end=end)
    inc = city.incidents
    flight = inc[inc.status.isin(["dispatched", "accepted", "on_scene"])]
    assert len(flight) > 0 and flight.responder_callsign.notna().all()
    assert flight.responder_callsign.is_unique
    assert set(flight.responder_callsign) <= set(city.responders.callsign)
    busy = set(city.responders.callsign[city.responders.status == "busy"])
    assert busy == set(flight.responder_callsign)
    recent = inc[inc.reported_at > pd.Timestamp(end) - pd.Timedelta(hours=1)]
    assert (recent.status == "reported").sum() > 0  # some wait: nobody was free
    waiting = inc[inc.status == "reported"]
    assert waiting[["dispatched_at", "accepted_at", "arrived_at"]].isna().all().all()
    assert waiting.responder_callsign.isna().all()
    reached = {"dispatched": 1, "accepted": 2, "on_scene": 3, "resolved": 4, "closed": 5}
    for status, stages in reached.items():
        rows = inc[inc.status == status]
        for stamp in ("dispatched_at", "accepted_at", "arrived_at", "resolved_at", "closed_at")[
            :stages
        ]:
            if stamp == "arrived_at" and stages >= 4:
                continue  # settled without a visit now and then
            assert rows[stamp].notna().all(), (status, stamp)
            assert (rows[stamp] <= pd.Timestamp(end)).all(), (status, stamp)
    escalated = inc[inc.escalation_level > 0]
    assert escalated.escalated_at.notna().all() and len(escalated) > 0
    # most of a grid's dispatched work is its grid worker's
    sent = inc[inc.responder_callsign.notna()]
    assert 0.5 < sent.responder_callsign.str.startswith("GW-").mean() < 0.9


def test_a_fleet_budget_is_named_in_the_environment_and_must_be_positive(monkeypatch) -> None:  # noqa: ANN001
    from pydantic import ValidationError

    monkeypatch.setenv("GEO_LIMIT_USER_REQUESTS_PER_MINUTE", '{"demo-simulator": 6000}')
    assert Settings().limits.user_requests_per_minute == {"demo-simulator": 6000}
    monkeypatch.setenv("GEO_LIMIT_USER_REQUESTS_PER_MINUTE", '{"demo-simulator": 0}')
    with pytest.raises(ValidationError):
        Settings()
