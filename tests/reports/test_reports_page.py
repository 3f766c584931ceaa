"""The managers' page ``/reports`` in headless Chromium: charts drawn by the vendored ECharts,
the tables filled, values from the database shown as text (never markup), on a desktop and a
390x844 phone (screenshots in tests/artifacts)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, as_role, problem

DESKTOP = (1400, 900)
PHONE = (390, 844)
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


def test_the_page_needs_reports_read(client: TestClient, role_keys: dict) -> None:
    page = client.get("/reports", headers=as_role(role_keys, "analyst"))
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/vendor/echarts/echarts.min.js">' in page.text
    refused = client.get("/reports", headers=as_role(role_keys, "grid_worker"))
    assert refused.status_code == 403
    problem(refused)


@pytest.fixture
def hostile_district(engine: Engine, loaded_city: DemoCity) -> Iterator[str]:
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT id, code, name FROM areas WHERE level = 'district' ORDER BY code LIMIT 1")
        ).one()
        conn.execute(text("UPDATE areas SET name = :n WHERE id = :i"), {"n": HOSTILE, "i": row.id})
    try:
        yield row.code
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE areas SET name = :n WHERE id = :i"), {"n": row.name, "i": row.id}
            )


@pytest.mark.browser
@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_page_draws_the_report(
    live_server: str,
    role_keys: dict,
    city_with_lifecycles: DemoCity,
    hostile_district: str,
    viewport: tuple,
    name: str,
) -> None:
    with signed_in_page(live_server, "/reports", role_keys["analyst"], viewport) as (page, errors):
        page.wait_for_selector("#status[data-ready='1']", timeout=30_000)
        # six charts drawn on canvases
        assert page.locator(".chart canvas").count() == 6
        rows = page.locator("#areas tr")
        assert rows.count() > 1
        # the hostile name is shown as text, and nothing ran
        assert page.locator("#areas td", has_text=HOSTILE).count() == 1
        assert page.locator("#areas img").count() == 0
        assert page.title() != "pwned"
        assert page.locator("#cards .card").count() == 8
        assert page.get_attribute("#pdf", "href").startswith("/reports/performance?")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"reports-{name}.png"), full_page=True)
        # a community's grids under their community
        page.select_option("#level", "grid")
        page.wait_for_selector("#parent option:nth-child(2)", state="attached")
        page.select_option("#parent", index=1)
        page.evaluate("document.querySelector('#status').dataset.ready = ''")
        page.click("#controls button[type=submit]")
        page.wait_for_selector("#status[data-ready='1']", timeout=30_000)
        assert page.locator("#workers tr").count() > 1
        page.screenshot(path=str(ARTIFACTS / f"reports-{name}-grids.png"), full_page=True)
    assert errors == []


@pytest.mark.browser
@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_page_in_chinese(
    live_server: str,
    role_keys: dict,
    city_with_lifecycles: DemoCity,
    viewport: tuple,
    name: str,
) -> None:
    """A browser asking for Chinese gets the page's words, the charts' and the escalation
    levels' in Chinese (the messages catalogue), with the language switch."""
    from tests.api.test_pages_language import browser_page, sign_in

    with browser_page(live_server, "zh-CN", viewport) as (page, errors):
        sign_in(page, live_server, "/reports", role_keys["analyst"])
        page.wait_for_selector("#status[data-ready='1']", timeout=30_000)
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.text_content("h1") == "绩效报告"
        assert page.locator("#level option").all_text_contents() == ["区", "街道", "社区", "网格"]
        cards = page.locator("#cards .card").all_text_contents()
        assert any("结案率" in c for c in cards) and any("网格内解决" in c for c in cards)
        assert "统计期" in (page.text_content("#status") or "")
        assert "English" in (page.text_content(".lang-switch") or "")
        # the escalations chart names the levels in Chinese
        levels = page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('chart-escalations'))"
            ".getOption().xAxis[0].data"
        )
        assert levels == ["社区", "街道", "区"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"zh-CN_reports-{name}.png"), full_page=True)
    assert errors == []
