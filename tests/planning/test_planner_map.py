"""The planner's page in headless Chromium: today's grids by workload, a proposal made from
the page, both side by side with the balance table (screenshot in tests/artifacts)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, as_role, problem


def test_planner_page_needs_a_planner(client: TestClient, role_keys: dict) -> None:
    page = client.get("/map/planner", headers=as_role(role_keys, "planner"))
    assert page.status_code == 200 and "{token}" not in page.text
    assert page.headers["cache-control"] == "no-store"
    denied = client.get("/map/planner", headers=as_role(role_keys, "dispatcher"))
    assert problem(denied)["status"] == 403


@pytest.mark.browser
def test_propose_from_the_page(
    live_server: str, client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    community = grids.parent_code.value_counts().index[0]
    n_today = int((grids.parent_code == community).sum())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/planner", role_keys["planner"], (1500, 850)) as (
        page,
        errors,
    ):
        page.wait_for_selector("#today path.leaflet-interactive")
        page.select_option("#community", community)
        page.wait_for_function(
            "() => document.querySelectorAll('#today path.leaflet-interactive').length"
            f" === {n_today}"
        )
        page.click("#propose")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.startsWith('draft version')",
            timeout=60_000,
        )
        proposal = page.locator("#proposal path.leaflet-interactive").count()
        table = page.inner_text("#balance")
        publish_enabled = page.is_enabled("#publish")
        page.screenshot(path=str(ARTIFACTS / "planner.png"))
    assert not errors, errors
    assert proposal == n_today
    after = float(table.split("max / mean")[1].split()[1])
    # The page shows figures from counts as disclosure control publishes them (each within 4
    # of the truth, base 5) while the plan balanced exact loads: allow that much, as
    # tests/planning/test_planning_api.py does.
    work = client.get(
        "/workload", params={"level": "grid"}, headers=as_role(role_keys, "planner")
    ).json()
    codes = set(grids[grids.parent_code == community].code)
    loads = [a["index"] or 0 for a in work["areas"] if a["code"] in codes]
    slack = 2 * 4 * (0.25 + 0.5) / (sum(loads) / len(loads))
    assert after <= 1.05 + slack
    assert publish_enabled
