"""The console in Chinese at 1440x900 (a fresh user's review): the list names each grid (its
code on hover) as the detail does, and a row chosen far down the list brings the detail, which
sits above the list, into view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, grid_point
from tests.dispatch.test_console import db_now

pytestmark = pytest.mark.browser

DESKTOP = (1440, 900)


def test_console_list_names_grids_and_shows_the_chosen_detail(
    live_server: str,
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    responders_restored: None,
) -> None:
    now = db_now(engine)
    codes = list(loaded_city.areas[loaded_city.areas.level == "grid"].code)[:30]
    for k, code in enumerate(codes):
        lon, lat, _ = grid_point(loaded_city, code)
        answer = client.post(
            "/incidents",
            json={
                "category": "sanitation",
                "priority": 3,
                "reported_at": (now - timedelta(minutes=2 + k)).isoformat(),
                "location": {"lon": lon, "lat": lat},
            },
        )
        assert answer.status_code == 201, answer.text
    with engine.connect() as conn:
        names = dict(
            conn.execute(
                text(
                    "SELECT code, coalesce(names ->> 'zh-CN', name) FROM areas "
                    "WHERE level = 'grid' AND code = ANY(:codes)"
                ),
                {"codes": codes},
            ).all()
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(
        live_server, "/map/dispatch", role_keys["dispatcher"], DESKTOP, locale="zh-CN"
    ) as (page, errors):
        page.wait_for_selector("#list tr.row")
        cells = page.locator("#list tr.row td.grid").evaluate_all(
            "tds => tds.map(td => [td.textContent, td.title])"
        )
        ours = [(shown, code) for shown, code in cells if code in names]
        assert len(ours) >= 10
        for shown, code in ours:
            assert shown == names[code] != code  # the name, the code as its tooltip
        assert any("网格" in shown for shown, _ in ours)
        # a row far down: the side panel scrolls to it, then the detail comes into view
        last = page.locator("#list tr.row").last
        last.scroll_into_view_if_needed()
        assert page.evaluate("document.getElementById('side').scrollTop") > 0
        chosen = last.get_attribute("data-id")
        last.click()
        page.wait_for_selector(f"#detail[data-id='{chosen}'] .head")
        side = page.locator("#side").bounding_box()
        head = page.locator("#detail .head").bounding_box()
        assert side and head
        assert side["y"] <= head["y"] and head["y"] + head["height"] <= side["y"] + side["height"]
        shown_grid = page.locator("#detail .head .muted").first.text_content() or ""
        row_grid = page.locator(f"#list tr.row[data-id='{chosen}'] td.grid")
        assert (row_grid.text_content() or "") in shown_grid  # list and detail say the same
        page.screenshot(path=str(ARTIFACTS / "zh-CN_console-chosen-far-down.png"))
        assert errors == []
