"""The grid worker's phone (/app) in Chinese, as a fresh user found it: the out-of-grid warning
names the grid (not its code) and belongs to the report tab; a report kept offline stops saying
"kept, sent later" once the outbox has sent it; an escalation without a reason is refused in
the page's language, not in Chromium's English. Screenshot: tests/artifacts/."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import chromium, new_phone, sign_in_on_phone
from tests.conftest import ARTIFACTS, grid_point
from tests.dispatch.test_field_app import busiest_grid, make_worker, new_incident

pytestmark = pytest.mark.browser

QUEUED = "上报已保存，联网后发送。"


def test_the_phone_in_chinese_names_its_grid_and_clears_stale_words(
    client: TestClient, engine: Engine, loaded_city: DemoCity, live_server: str
) -> None:
    code = busiest_grid(loaded_city)
    worker = make_worker(engine, code, "field-review")
    with engine.connect() as conn:
        grid_name = conn.execute(
            text("SELECT coalesce(names ->> 'zh-CN', name) FROM areas WHERE id = :g"),
            {"g": worker["grid_id"]},
        ).scalar_one()
    assert grid_name != code
    task = new_incident(client, loaded_city, code, priority=3)
    other = next(c for c in loaded_city.areas[loaded_city.areas.level == "grid"].code if c != code)
    lon_out, lat_out, _ = grid_point(loaded_city, other)
    lon_in, lat_in, _ = grid_point(loaded_city, code)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            phone, page, errors = new_phone(
                browser, locale="zh-CN", geolocation={"longitude": lon_out, "latitude": lat_out}
            )
            sign_in_on_phone(page, live_server, worker["headers"]["X-API-Key"])
            # --- 上交 without a reason: the page's own words, and 取消 still closes ---------
            page.locator(f'li.task[data-id="{task}"] .act-escalate').tap()
            page.locator("#act-ok").tap()
            assert page.locator("#act").evaluate("(d) => d.open")  # refused: no reason
            message = page.locator("#act-note").evaluate("(f) => f.validationMessage")
            assert message == "请填写此项。"
            page.fill("#act-note", "物业")
            assert page.locator("#act-note").evaluate("(f) => f.validationMessage") == ""
            page.fill("#act-note", "")
            page.locator('#act button[value="cancel"]').tap()
            assert not page.locator("#act").evaluate("(d) => d.open")
            assert client.get(f"/incidents/{task}").json()["escalation_level"] == 0
            # --- outside the grid: the warning names the grid, on the report tab only ------
            page.locator('#tabs button[data-tab="report"]').tap()
            page.locator("#toast.on").wait_for()
            toast = page.locator("#toast").text_content() or ""
            assert f"“{grid_name}”" in toast and code not in toast, toast
            page.screenshot(path=str(ARTIFACTS / "field-app-zh-CN-outside-grid.png"))
            page.locator('#tabs button[data-tab="visits"]').tap()
            assert page.locator("#toast.on").count() == 0
            # --- a report kept offline, sent on reconnection: "kept" goes ------------------
            page.locator('#tabs button[data-tab="report"]').tap()
            phone.set_geolocation({"longitude": lon_in, "latitude": lat_in})
            page.locator("#r-gps").tap()
            page.wait_for_function(
                "(lat) => !document.querySelector('#r-where .outside')"
                " && document.getElementById('r-where').textContent.includes(lat)",
                arg=f"{lat_in:.5f}",
            )
            phone.set_offline(True)
            page.locator("#net.offline").wait_for()
            page.fill("#r-description", "井盖缺失")
            page.locator("#r-send").tap()
            page.locator("#toast.on").filter(has_text=QUEUED).wait_for()
            phone.set_offline(False)
            page.locator("#outbox").wait_for(state="hidden", timeout=30_000)
            page.wait_for_function(
                "(queued) => !document.getElementById('toast').classList.contains('on')"
                " || document.getElementById('toast').textContent !== queued",
                arg=QUEUED,
            )
            shown = page.locator("#toast.on")
            if shown.count():  # replaced (not merely faded): it says the report went
                assert shown.text_content() == "本机保存的内容已发送。"
            with engine.connect() as conn:
                assert (
                    conn.execute(
                        text("SELECT count(*) FROM incidents WHERE description = '井盖缺失'")
                    ).scalar_one()
                    == 1
                )
            page.screenshot(path=str(ARTIFACTS / "field-app-zh-CN-sent.png"))
            assert errors == [], errors
            phone.close()
        finally:
            browser.close()
        assert client.post(f"/incidents/{task}/cancel", json={}).is_success
