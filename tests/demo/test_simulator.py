"""The living city (issue 17): the simulator drives the demo city through the public API on
its own clock. Simulated time is passed in (no wall clock decides a result); position fixes
carry the device's clock, which the server compares with its own."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.demo.city import DemoCity
from geo_service.simulate.city import Simulation
from geo_service.simulate.gateway import Gateway
from geo_service.simulate.rates import HOURLY, WEEKLY, rate_per_second

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)


def test_the_day_has_its_shape() -> None:
    assert HOURLY.mean() == pytest.approx(1.0) and WEEKLY.mean() == pytest.approx(1.0)
    assert HOURLY[3] < 0.5 < 1.0 < HOURLY[10]  # night quiet, late morning busy
    # Wuhan: 17,000 a day over 16,000 grids, whatever the shape
    day = [rate_per_second(MONDAY_9.replace(hour=h), 16_000) * 3600 for h in range(24)]
    assert sum(day) == pytest.approx(17_000 * WEEKLY[0], rel=1e-9)


class _Recorder(Gateway):
    """The public API with every write recorded (what the simulator asked for)."""

    def __init__(self, client: TestClient) -> None:
        super().__init__(client)
        self.reports: list[tuple[str, float, float]] = []

    def report(self, category: str, lon: float, lat: float, key: str, source: str = "citizen"):  # noqa: ANN201
        self.reports.append((category, round(lon, 7), round(lat, 7)))
        return super().report(category, lon, lat, key, source)


def _simulation(client: TestClient, seed: int, start: datetime = MONDAY_9) -> Simulation:
    simulation = Simulation(
        _Recorder(client),
        start=start,
        seed=seed,
        grids=None,
        device_clock=lambda: datetime.now(SHANGHAI),  # a device's clock: the server checks it
    )
    simulation.setup()
    return simulation


def test_a_monday_working_day_through_the_public_api(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    responders_restored: None,
) -> None:
    simulation = _simulation(client, seed=11)
    grids = len(simulation.grid_shapes)
    assert grids == int((loaded_city.areas.level == "grid").sum())
    assert any(u.kind == "grid_worker" for u in simulation.units.values())
    simulation.advance(MONDAY_9.replace(hour=17))
    counts = simulation.totals.counts
    gateway = simulation.api
    assert gateway.tally.server_errors == []
    # ~1.06 a grid a day, at the weights of 09:00-17:00
    expected = sum(rate_per_second(MONDAY_9.replace(hour=h), grids) * 3600 for h in range(9, 17))
    assert 0.5 * expected < counts["reported"] < 1.6 * expected, (counts, expected)
    assert counts["reported"] == len(gateway.reports)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM incidents WHERE request_key LIKE :k"),
            {"k": "simulate-11-%"},
        ).scalar_one()
        states = dict(
            conn.execute(
                text(
                    "SELECT status, count(*) FROM incidents WHERE request_key LIKE :k "
                    "GROUP BY status"
                ),
                {"k": "simulate-11-%"},
            ).all()
        )
    assert stored == counts["reported"]  # nothing lost, nothing twice
    # responders were sent, arrived, worked and closed; the rest are on their way or waiting
    assert counts["dispatched"] >= 0.5 * counts["reported"], counts
    assert counts["closed"] >= 1 and states.get("closed", 0) == counts["closed"], (counts, states)
    assert counts["fixes"] >= len(simulation.units) // 2
    # the fixes went through the device path: the responders' positions are fresh
    fresh = client.get("/responders").json()["features"]
    moved = [f for f in fresh if f["id"] in simulation.units and f["properties"]["stale"] is False]
    assert len(moved) >= len(simulation.units) // 2


def test_same_seed_same_reports_and_grid_workers_go_off_duty_at_night(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    responders_restored: None,
) -> None:
    evening = datetime(2026, 3, 2, 19, 0, tzinfo=SHANGHAI)
    first = _simulation(client, seed=5, start=evening)
    first.advance(evening.replace(hour=21))
    workers = [u for u in first.units.values() if u.kind == "grid_worker"]
    off = [u for u in workers if u.status == "off_duty"]
    # every worker the simulator had free at 20:00 went off duty (busy ones finish first)
    idle = [u for u in workers if u.phase == "idle" and u.status != "busy"]
    assert off and len(off) == len(idle), (len(off), len(idle))
    with engine.connect() as conn:
        status = dict(
            conn.execute(
                text("SELECT id, status FROM responders WHERE id = ANY(:ids)"),
                {"ids": [u.id for u in off]},
            ).all()
        )
    assert set(status.values()) == {"off_duty"}
    # the same seed and clock: the same reports, in the same places (the second run's
    # reports replay the first's by their idempotency keys, so nothing is added)
    second = _simulation(client, seed=5, start=evening)
    second.advance(evening.replace(hour=21))
    assert first.api.reports == second.api.reports  # type: ignore[attr-defined]
    assert first.api.reports  # type: ignore[attr-defined]


def test_simulate_command_refuses_without_a_key_and_with_an_unreachable_server() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "--key" in result.output
    result = runner.invoke(app, ["simulate", "--url", "http://127.0.0.1:9", "--key", "x"])
    assert result.exit_code == 2 and "cannot read the city" in result.output, result.output


def test_simulate_command_runs_against_a_live_server(
    live_server: str,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    responders_restored: None,
) -> None:
    # Ends by its wall-time limit; what it did depends on the machine's speed, so only that it
    # read the city and met no server error is checked.
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--url",
            live_server,
            "--key",
            role_keys["admin"],
            "--grids",
            "20",
            "--minutes",
            "0.05",
            "--speed",
            "60",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "simulating 20 grids" in result.output


def test_a_restarted_demo_closes_only_its_stale_backlog_and_frees_the_responders(
    client: TestClient, engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    from geo_service.demo.load import close_stale_backlog

    with engine.begin() as conn:
        rid = conn.execute(
            text(
                "INSERT INTO responders (callsign, kind, status, skills) "
                "VALUES ('stale-1', 'patrol', 'busy', ARRAY['stale-test']) RETURNING id"
            )
        ).scalar_one()
        ids = [
            conn.execute(
                text(
                    "INSERT INTO incidents (category, priority, status, reported_at, location, "
                    "h3, h3_6, h3_7, h3_8, h3_9, h3_10, grid_id, responder_id) "
                    "SELECT category, priority, :s, now() - make_interval(hours => :h), "
                    "location, h3, h3_6, h3_7, h3_8, h3_9, h3_10, grid_id, :r "
                    "FROM incidents ORDER BY id LIMIT 1 RETURNING id"
                ),
                {"s": status, "h": hours, "r": rid if status == "on_scene" else None},
            ).scalar_one()
            for status, hours in (("on_scene", 1000), ("reported", 1000), ("reported", 2))
        ]
    assert close_stale_backlog(engine, older_than_h=900) == 2
    with engine.connect() as conn:
        states = [
            conn.execute(text("SELECT status FROM incidents WHERE id = :i"), {"i": i}).scalar_one()
            for i in ids
        ]
        freed = conn.execute(
            text("SELECT status FROM responders WHERE id = :r"), {"r": rid}
        ).scalar_one()
        audited = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'close_stale_demo_backlog'")
        ).scalar_one()
    assert states == ["closed", "closed", "reported"]  # the recent one stays open
    assert freed == "available" and audited >= 1
    assert close_stale_backlog(engine, older_than_h=900) == 0  # nothing left: nothing audited


def test_the_living_city_moves_every_figure_of_the_managers_reports(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    responders_restored: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every source, escalations to each level (kept in the history), disputes with how their
    mediation ended, reopenings and arrivals on time or late: the simulator makes the reports'
    numbers move. Its shares are raised so that a short day shows each (the mechanics are
    the same at the demo's shares)."""
    import geo_service.simulate.city as city

    monkeypatch.setattr(city, "ESCALATION_SHARES", (0.6, 0.4, 0.2))
    monkeypatch.setattr(city, "REOPEN_SHARE", 0.5)
    before = client.get("/reports/performance", params={"level": "district"}).json()["total"]
    simulation = _simulation(client, seed=13)
    simulation.advance(MONDAY_9.replace(hour=15))
    counts = simulation.totals.counts
    assert simulation.api.tally.server_errors == []
    with engine.connect() as conn:
        mine = "i.request_key LIKE 'simulate-13-%'"
        sources = dict(
            conn.execute(
                text(f"SELECT source, count(*) FROM incidents i WHERE {mine} GROUP BY source")
            ).all()
        )
        climbs = dict(
            conn.execute(
                text(
                    "SELECT e.to_level, count(*) FROM incident_escalations e "
                    f"JOIN incidents i ON i.id = e.incident_id WHERE {mine} GROUP BY e.to_level"
                )
            ).all()
        )
        reopened, reopenings, arrived, outcomes = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE reopened_count > 0), sum(reopened_count), "
                "count(*) FILTER (WHERE arrived_at IS NOT NULL), "
                f"count(*) FILTER (WHERE outcome IS NOT NULL) FROM incidents i WHERE {mine}"
            )
        ).one()
    assert set(sources) == {"citizen", "grid_worker", "hotline", "sensor"}, sources
    assert sum(sources.values()) == counts["reported"]
    assert climbs.keys() == {1, 2, 3} and sum(climbs.values()) == counts["escalated"], climbs
    assert reopenings == counts["reopened"] and reopened > 0, counts  # some twice
    assert arrived > 0 and outcomes > 0, counts
    after = client.get("/reports/performance", params={"level": "district"}).json()["total"]
    for name, level in (("community", 1), ("street", 2), ("district", 3)):
        grew = after["escalations"]["by_level"][name] - before["escalations"]["by_level"][name]
        assert grew == climbs[level], name
    for source, n in sources.items():
        assert after["by_source"][source] - before["by_source"][source] == n, source
    assert after["reopened"] - before["reopened"] == reopened
    assert (
        after["on_time"]["arrival"]["all"]["denominator"]
        > (before["on_time"]["arrival"]["all"]["denominator"])
    )
