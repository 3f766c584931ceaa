"""The living city gives people a head start (the console's fresh user: the simulator sent
every new report before a person could): a report is left alone for ``human_grace_s``
simulated seconds, and one someone else dispatched or escalated is theirs; the simulator
only moves it when its own responder was sent. Time is the simulation's own clock
(``advance``): no result depends on the wall clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.settings import SimulateSettings
from geo_service.simulate.city import Simulation
from geo_service.simulate.gateway import Gateway

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
GRACE_S = 60.0


def _state(engine: Engine, iid: str) -> tuple[str, int | None]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, responder_id FROM incidents WHERE id = :id"), {"id": iid}
        ).one()
    return row.status, row.responder_id


def _simulation(client: TestClient) -> Simulation:
    simulation = Simulation(
        Gateway(client),
        start=MONDAY_10,
        seed=23,
        grids=None,
        device_clock=lambda: datetime.now(SHANGHAI),  # a device's clock: the server checks it
        human_grace_s=GRACE_S,
    )
    simulation.setup()
    # its own reports only: the loaded backlog (which clean_writes does not undo) stays as it is
    simulation.api.open_incidents = lambda pages=4: []  # type: ignore[method-assign]
    return simulation


def _own_report(simulation: Simulation) -> str:
    """The simulator reports one incident now (as its arrivals do); its id."""
    before = {w.incident for w in simulation.waiting}
    simulation._report()
    made = [w.incident for w in simulation.waiting if w.incident not in before]
    assert len(made) == 1
    return made[0]


def _at(simulation: Simulation, seconds: float) -> None:
    simulation.advance(MONDAY_10 + timedelta(seconds=seconds))


def test_the_demo_gives_people_a_minute_by_default(monkeypatch) -> None:  # noqa: ANN001
    assert SimulateSettings().human_grace_s == 60.0
    monkeypatch.setenv("GEO_SIMULATE_HUMAN_GRACE_S", "90")
    assert SimulateSettings().human_grace_s == 90.0


def test_a_new_report_waits_out_the_grace_then_the_simulator_dispatches_it(
    client: TestClient, engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    simulation = _simulation(client)
    _at(simulation, 5)
    iid = _own_report(simulation)
    _at(simulation, 5 + GRACE_S - 5)  # within the grace: nobody sent, whatever is free
    assert _state(engine, iid) == ("reported", None)
    _at(simulation, 5 + GRACE_S + 5)  # the grace is over, nobody took it: the simulator does
    status, responder = _state(engine, iid)
    assert status == "accepted" and responder in simulation.units
    assert simulation.api.tally.server_errors == []


def test_what_a_person_dispatched_or_escalated_is_left_to_them(
    client: TestClient, engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> None:
    simulation = _simulation(client)
    _at(simulation, 5)
    escalated = _own_report(simulation)
    dispatched = _own_report(simulation)
    # a person at the console, within the grace: one escalated, one sent to a responder
    assert (
        client.post(
            f"/incidents/{escalated}/escalate", json={"note": "the community takes it"}
        ).status_code
        == 200
    )
    idle = [
        c["id"]
        for c in client.get(f"/incidents/{dispatched}/candidates", params={"k": 10}).json()[
            "candidates"
        ]
        if simulation.units[int(c["id"])].phase == "idle"
    ]
    sent = int(idle[0])
    assert (
        client.post(f"/incidents/{dispatched}/dispatch", json={"responder_id": sent}).status_code
        == 200
    )
    left = simulation.totals["left to people"]
    _at(simulation, 5 + GRACE_S + 30)
    # the escalated one: still reported, nobody sent by the simulator, no longer its to send
    assert _state(engine, escalated) == ("reported", None)
    assert escalated not in {w.incident for w in simulation.waiting}
    assert simulation.totals["left to people"] == left + 1
    # the dispatched one went to the simulator's own responder: its job to move (accept, go)
    assert _state(engine, dispatched) == ("accepted", sent)
    assert simulation.units[sent].incident == dispatched
    assert simulation.totals["taken by people"] == 1
    assert simulation.api.tally.server_errors == []
    for iid in (escalated, dispatched):  # leave the demo's figures as they were
        client.post(f"/incidents/{iid}/cancel")
