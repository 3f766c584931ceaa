"""The dispatcher's map, driven in headless Chromium: load, click an incident, dispatch, see
the status change (and the screenshot kept in tests/artifacts/dispatch.png)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, as_role, grid_point, problem


def test_dispatch_page_needs_a_dispatcher(client: TestClient, role_keys: dict) -> None:
    page = client.get("/map/dispatch", headers=as_role(role_keys, "dispatcher"))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "/static/vendor/leaflet/leaflet.js" in page.text and "{token}" not in page.text
    assert (
        problem(client.get("/map/dispatch", headers=as_role(role_keys, "analyst")))["status"] == 403
    )


@pytest.mark.browser
def test_dispatch_from_the_map(
    live_server: str, client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    made = client.post(
        "/incidents",
        json={
            "category": "safety_hazard",
            "priority": 1,
            "reported_at": old,
            "description": "Smell of gas in stairwell",
            "location": {"lon": lon, "lat": lat},
        },
    ).json()
    iid = made["id"]
    near = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 1}).json()
    rid = near["candidates"][0]["id"]
    client.post(
        "/responders/positions",
        json={
            "positions": [
                {"id": rid, "lon": lon + 0.001, "lat": lat, "at": datetime.now(UTC).isoformat()}
            ]
        },
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"], (1400, 900)) as (
        page,
        errors,
    ):
        marker = page.locator(f"path.incident-{iid}")
        marker.wait_for()
        assert "overdue" in (marker.get_attribute("class") or "")  # 10 min against 1 min
        assert page.locator("path.responder").count() > 10
        marker.click()
        page.wait_for_selector("button.dispatch")
        page.screenshot(path=str(ARTIFACTS / "dispatch.png"))
        page.locator("button.dispatch").first.click()
        page.wait_for_function(
            "() => document.querySelector('#detail .status').textContent === 'dispatched'"
        )
        # the list catches up when the refresh after the action lands
        page.wait_for_function(
            "(id) => { const r = document.querySelector(`tr.row[data-id='${id}']`);"
            " return r && r.cells[4].textContent.startsWith('dispatched'); }",
            arg=iid,
        )
        state = page.locator(f"tr.row[data-id='{iid}']").locator("td").nth(4).text_content()
    assert not errors, errors
    assert state.startswith("dispatched")
    after = client.get(f"/incidents/{iid}").json()
    assert after["status"] == "dispatched" and after["responder_id"] is not None
    assert (ARTIFACTS / "dispatch.png").stat().st_size > 20_000
    client.post(f"/incidents/{iid}/cancel")
