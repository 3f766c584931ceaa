"""The duty switch never shares a position against the worker's latest wish (issue 20, a
privacy bug a fresh user reproduced): on duty, the page reloaded online (so the phone keeps a
copy saying "on duty"); offline, the worker switches off duty (the change waits in the
outbox); the page reloaded offline is that old copy, yet it must show Off duty, from the
queued change; online again the change is sent and the page shows the server's state. No
position is posted from the off-duty tap on, however long the phone's clock runs (the clock is
the page's own, moved on by Playwright, not waited for). Screenshots:
tests/artifacts/field-app-duty-*.png."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import phone_page, sign_in_on_phone
from tests.conftest import ARTIFACTS, grid_point
from tests.dispatch.test_console import db_now
from tests.dispatch.test_field_app import busiest_grid, make_worker


def responder_status(engine: Engine, responder_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT status FROM responders WHERE id = :r"), {"r": responder_id}
        ).scalar_one()


@pytest.mark.browser
def test_a_queued_off_duty_wins_over_the_kept_page_and_no_position_is_sent(
    client: TestClient, engine: Engine, loaded_city: DemoCity, live_server: str
) -> None:
    code = busiest_grid(loaded_city)
    worker = make_worker(engine, code, "field-duty")
    lon, lat, _ = grid_point(loaded_city, code)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    where = {"longitude": lon, "latitude": lat}
    with phone_page(geolocation=where, clock_at=db_now(engine)) as (phone, page, errors):
        posted: list[str] = []
        phone.on(
            "request",
            lambda r: (
                posted.append(r.url)
                if r.method == "POST" and r.url.endswith("/responders/positions")
                else None
            ),
        )
        sign_in_on_phone(page, live_server, worker["headers"]["X-API-Key"])
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        # on duty: a fix at once; reloaded online, the phone keeps this page saying so
        page.wait_for_function("() => document.querySelector('#duty-input').checked")
        page.reload()
        page.locator("#duty.on").wait_for()
        assert page.locator("#duty-text").inner_text() == "On duty"
        page.wait_for_function("() => lastFix !== null")  # a fix sent, answered
        assert len(posted) >= 1

        # offline, the worker switches off duty: the change waits in the outbox
        phone.set_offline(True)
        page.locator("#net.offline").wait_for()
        page.locator("#duty").tap()
        page.locator("#outbox-toggle").filter(has_text="1 waiting to send").wait_for()
        assert page.locator("#duty-text").inner_text() == "Off duty"
        after_tap = len(posted)

        # reloaded offline: the kept page says on duty, the queued change says off
        page.reload()
        page.locator("#outbox-toggle").filter(has_text="1 waiting to send").wait_for()
        page.locator("#duty-detail").filter(has_text="Not sharing my position").wait_for()
        assert page.locator("#duty-text").inner_text() == "Off duty"
        assert not page.locator("#duty-input").is_checked()
        page.screenshot(path=str(ARTIFACTS / "field-app-duty-offline.png"))
        page.clock.run_for("02:00")
        assert len(posted) == after_tap
        assert responder_status(engine, worker["id"]) == "available"

        # online again: the change is sent and the page shows the server's state
        phone.set_offline(False)
        page.locator("#outbox").wait_for(state="hidden", timeout=30_000)
        assert responder_status(engine, worker["id"]) == "off_duty"
        page.clock.run_for("02:00")
        assert page.locator("#duty-text").inner_text() == "Off duty"
        assert page.locator("#duty-detail").inner_text() == "Not sharing my position"
        assert len(posted) == after_tap, posted
        # and so after another reload online (the page served fresh says off duty)
        page.reload()
        page.locator("#duty-detail").filter(has_text="Not sharing my position").wait_for()
        page.clock.run_for("01:00")
        assert len(posted) == after_tap, posted
        page.screenshot(path=str(ARTIFACTS / "field-app-duty-online.png"))
        assert errors == [], errors
