"""The dispatcher's console in headless Chromium (issue 17), after the simulator has moved
the city for ten simulated minutes: the server's counts, urgency first, a new priority 1
announced on top, selecting pans and highlights, dispatch / reassign / accept / escalate /
cancel with confirmation from the page. Screenshots: tests/artifacts/console-*.png."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.simulate.city import Simulation
from geo_service.simulate.gateway import Gateway
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, grid_point
from tests.dispatch.test_console import db_now, report

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)  # the simulated day: a busy hour
DESKTOP = (1600, 1000)
# Stand-ins for the browser's Notification and sound, recording what the page announced.
RECORD_ANNOUNCEMENTS = """() => {
  window.announced = [];
  window.Notification = class {
    static permission = "granted";
    static requestPermission() { return Promise.resolve("granted"); }
    constructor(title, options) { window.announced.push({title, body: options.body}); }
  };
  window.AudioContext = class {
    constructor() { this.currentTime = 0; this.destination = {}; }
    createOscillator() { window.announced.push({sound: true});
      return {frequency: {}, connect: (x) => x, start() {}, stop() {}}; }
    createGain() { return {gain: {setValueAtTime() {}, exponentialRampToValueAtTime() {}},
                           connect: (x) => x}; }
  };
}"""


def _state(engine: Engine, iid: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, responder_id, escalation_level FROM incidents WHERE id = :id"),
            {"id": iid},
        ).one()
    return row._asdict()


@pytest.mark.browser
def test_console_in_chromium_after_the_simulator_ran(
    live_server: str,
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    responders_restored: None,
) -> None:
    now = db_now(engine)
    lon, lat, _ = grid_point(loaded_city)
    # the city moves: ten simulated minutes of reports, trips, patrols and position fixes
    simulation = Simulation(Gateway(client), start=MONDAY_10, seed=17, grids=None)
    simulation.setup()
    simulation.advance(MONDAY_10 + timedelta(minutes=10))
    assert simulation.api.tally.server_errors == []
    # then a backlog over the whole city (more than a page of the list), reported after the
    # simulated dispatcher's minutes so that it has not taken them on
    codes = list(loaded_city.areas[loaded_city.areas.level == "grid"].code)
    categories = ("sanitation", "traffic", "disputes", "facilities", "public_order")
    for k in range(130):
        at = grid_point(loaded_city, codes[k % len(codes)])
        client.post(
            "/incidents",
            json={
                "category": categories[k % len(categories)],
                "priority": 1 + k % 4,
                "reported_at": (now - timedelta(minutes=1 + (k * 7) % 240)).isoformat(),
                "location": {"lon": at[0] + 0.0003 * (k // len(codes)), "lat": at[1]},
            },
        )
    old_p1 = report(client, loaded_city, 1, now - timedelta(hours=37), description="Gas smell")
    target = report(
        client, loaded_city, 2, now - timedelta(minutes=1), category="public_order", east=0.002
    )
    fixes = [
        {"id": c["id"], "lon": lon + 0.0005 * n, "lat": lat, "at": db_now(engine).isoformat()}
        for n, c in enumerate(
            client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 4}).json()[
                "candidates"
            ],
            1,
        )
    ]
    assert client.post("/responders/positions", json={"positions": fixes}).status_code == 200
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"], DESKTOP) as (
        page,
        errors,
    ):
        page.locator("#live.ok").wait_for()
        # the server's counts, all of them (not a page of 500)
        with engine.connect() as conn:
            open_now = conn.execute(
                text("SELECT count(*) FROM incidents WHERE status = ANY(:open)"),
                {"open": ["reported", "dispatched", "accepted", "on_scene"]},
            ).scalar_one()
        page.wait_for_function(
            "(n) => document.querySelector('#count-open').textContent.replace(/,/g, '') == n",
            arg=open_now,
        )
        served = client.get("/console/incidents", params={"limit": 1000}).json()
        assert served["open"] == open_now
        overdue_text = page.locator("#count-overdue").text_content() or ""
        assert abs(int(overdue_text.replace(",", "")) - served["overdue"]) <= 2  # a clock apart
        total = page.locator("#range").text_content() or ""
        assert total.endswith(f"of {open_now:,}"), total
        # urgency first: the page's order is the server's
        shown = page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.id)")
        assert shown[:10] == [i["id"] for i in served["items"][:10]]
        assert shown.index(old_p1) < shown.index(target) if target in shown else True
        assert "overdue" in (page.locator(f"path.incident-{old_p1}").get_attribute("class") or "")
        assert page.locator("path.responder").count() > 10
        assert page.locator("path.incident").count() == open_now  # the map shows them all
        page.screenshot(path=str(ARTIFACTS / "console-overview.png"))
        # the list pages: the second page follows the first
        page.locator("#next").click()
        assert (page.locator("#range").text_content() or "").startswith("51–100 of")
        second = page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.id)")
        assert second[:5] == [i["id"] for i in served["items"][50:55]]
        page.locator("#prev").click()
        # a write riding the cookie without the page's CSRF token is refused
        refused = page.evaluate(
            "(id) => fetch(`/incidents/${id}/escalate`, {method: 'POST', credentials: "
            "'same-origin', headers: {'Content-Type': 'application/json'}, body: '{}'})"
            ".then(r => r.status)",
            target,
        )
        assert refused == 403 and _state(engine, target)["escalation_level"] == 0

        # a new priority 1 goes to the top and is announced (opt-in, remembered)
        page.evaluate(RECORD_ANNOUNCEMENTS)
        page.locator("#announce").check()
        assert page.evaluate("localStorage.getItem('geo-service.dispatch.announce')") == "on"
        fresh = report(client, loaded_city, 1, db_now(engine), description="Child locked in car")
        page.locator("#banner").filter(has_text="New priority 1").wait_for()
        page.wait_for_function(
            "(id) => document.querySelector('tr.row').dataset.id === id", arg=fresh
        )
        assert page.locator("tr.row.new").count() == 1
        announced = page.evaluate("window.announced")
        assert {"sound": True} in announced
        assert any(a.get("title") == "New priority 1 incident" for a in announced), announced

        # select: pans to it and highlights it
        # (a click on its marker, which may lie under others: the list jumps to its page)
        page.locator(f"path.incident-{target}").dispatch_event("click")
        page.locator(f"tr.row.selected[data-id='{target}']").wait_for()
        page.wait_for_function(
            "(id) => document.querySelector(`path.incident-${id}`).classList.contains('selected')",
            arg=target,
        )
        centre = page.evaluate("(() => { const c = map.getCenter(); return [c.lng, c.lat]; })()")
        item = next(i for i in served["items"] if i["id"] == target)
        assert abs(centre[0] - item["lon"]) < 1e-4 and abs(centre[1] - item["lat"]) < 1e-4
        page.wait_for_selector("#detail button.dispatch")
        eta = page.locator("#detail .candidates tr .muted").nth(1).text_content() or ""
        assert eta.startswith("ETA ") and ":" in eta, eta  # m:ss where targets are minutes
        page.screenshot(path=str(ARTIFACTS / "console-detail.png"))

        # dispatch from the page: the candidate list clears
        page.locator("#detail button.dispatch").first.click()
        page.wait_for_function(
            "() => document.querySelector('#detail .status').textContent === 'dispatched'"
        )
        assert page.locator("#detail button.dispatch").count() == 0
        first = _state(engine, target)
        assert first["status"] == "dispatched" and first["responder_id"] is not None

        # reassign to another responder, accept on the responder's behalf
        page.locator("#detail button.act-reassign").wait_for()
        page.locator("#detail button.act-reassign").click()
        page.locator("#detail button.reassign").first.wait_for()
        page.locator("#detail button.reassign").first.click()
        page.locator("#result").filter(has_text="reassign: now dispatched").wait_for()
        second = _state(engine, target)
        assert second["status"] == "dispatched"
        assert second["responder_id"] not in (None, first["responder_id"])
        page.locator("#detail button.act-accept").click()
        page.locator("#result").filter(has_text="accept: now accepted").wait_for()
        assert _state(engine, target)["status"] == "accepted"

        # escalate
        page.locator("#detail button.act-escalate").click()
        page.locator("#result").filter(has_text="with the community").wait_for()
        assert _state(engine, target)["escalation_level"] == 1

        # cancel asks first; "keep it" keeps it
        page.locator("#detail #cancel").click()
        page.locator("#confirm").wait_for()
        page.screenshot(path=str(ARTIFACTS / "console-confirm.png"))
        page.locator("#keep").click()
        assert page.locator("#confirm").count() == 0
        assert _state(engine, target)["status"] == "accepted"
        page.locator("#detail #cancel").click()
        page.locator("#confirm-cancel").click()
        page.wait_for_function(
            "() => document.querySelector('#detail .status').textContent === 'cancelled'"
        )
        page.wait_for_function(
            "(id) => !document.querySelector(`tr.row[data-id='${id}']`)", arg=target
        )
        assert _state(engine, target)["status"] == "cancelled"
    assert not errors, errors
    for name in ("console-overview", "console-detail", "console-confirm"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 20_000


@pytest.mark.browser
def test_console_reconnects_when_the_stream_ends_and_misses_nothing(
    live_server: str,
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from geo_service.api.routes import console as console_routes

    monkeypatch.setattr(console_routes, "STREAM_MAX_S", 2.0)  # every stream ends quickly
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"], DESKTOP) as (
        page,
        errors,
    ):
        page.locator("#live.ok").wait_for()
        page.wait_for_function("() => streamOpens >= 2")  # ended, and the browser came back
        fresh = report(client, loaded_city, 3, db_now(engine), description="after a drop")
        page.locator(f"path.incident-{fresh}").wait_for()
        page.wait_for_function("() => streamOpens >= 3")
        client.post(f"/incidents/{fresh}/cancel")
        page.locator(f"path.incident-{fresh}").wait_for(state="detached")
    assert not errors, errors
