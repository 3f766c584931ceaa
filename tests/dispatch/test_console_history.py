"""The console's detail says why an incident climbed (issue 20): the escalation history of
``GET /incidents/{id}`` under the incident's head, each reason as text (markup shown, never
run). Screenshot: tests/artifacts/console-escalation-reason.png."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS
from tests.dispatch.test_field_app import busiest_grid, new_incident

REASON = 'the property company <img src=x onerror="window.hacked=1"> must act'


@pytest.mark.browser
def test_the_console_detail_shows_the_escalation_reason_as_text(
    client: TestClient, loaded_city: DemoCity, live_server: str, role_keys: dict
) -> None:
    task = new_incident(client, loaded_city, busiest_grid(loaded_city), priority=1)
    climbed = client.post(f"/incidents/{task}/escalate", json={"note": REASON})
    assert climbed.status_code == 200, climbed.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"]) as (page, errors):
        page.wait_for_function("(id) => incidents.has(id)", arg=task)
        page.evaluate("(id) => select(id)", task)
        step = page.locator("#detail ul.history li.escalation")
        step.wait_for()
        assert REASON in step.inner_text()
        assert "community" in step.inner_text()
        assert page.locator("#detail ul.history img").count() == 0
        assert page.evaluate("() => window.hacked") is None
        page.screenshot(path=str(ARTIFACTS / "console-escalation-reason.png"))
        assert errors == [], errors


@pytest.mark.browser
def test_the_console_shows_the_services_own_reason_in_the_readers_language(
    client: TestClient, loaded_city: DemoCity, live_server: str, role_keys: dict
) -> None:
    # a climb without a reason: the service writes one ("by hand"), read in the page's language
    task = new_incident(client, loaded_city, busiest_grid(loaded_city), priority=1)
    climbed = client.post(f"/incidents/{task}/escalate", json={})
    assert climbed.status_code == 200, climbed.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"]) as (page, errors):
        for lang, said in (
            ("zh-CN", "已上交社区：人工操作，未填写原因"),
            ("en", "Escalated to the community: by hand, no reason given"),
        ):
            page.goto(f"{live_server}/map/dispatch?lang={lang}")
            page.wait_for_function("(id) => incidents.has(id)", arg=task)
            page.evaluate("(id) => select(id)", task)
            step = page.locator("#detail ul.history li.escalation")
            step.wait_for()
            assert said in step.inner_text(), step.inner_text()
            page.screenshot(path=str(ARTIFACTS / f"console-escalation-reason-{lang}.png"))
        assert errors == [], errors
