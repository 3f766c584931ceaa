"""Every page in Simplified Chinese (issue 19), in headless Chromium: chosen by the browser's
``Accept-Language`` (Playwright's ``locale``), switched with the page's language links and
remembered; a zh-CN screenshot of each page (desktop, and a 390x844 phone for the pages a
grid worker opens in the field: the sign-in, the city map, the heatmap) goes to tests/artifacts/
to be looked at: glyphs, not tofu boxes, and the layout whole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import VISIBLE_WORDS, chromium, english_left
from tests.conftest import ARTIFACTS, grid_point

pytestmark = pytest.mark.browser

DESKTOP = (1280, 860)
PHONE = (390, 844)
# pages opened on a phone in the street, and by whom (the heatmap as an analyst: for a user
# bound to a grid it finds no community outlines to fit the map to and stays empty)
FIELD_PAGES = {"map": "grid_worker", "heatmap": "analyst"}
# page -> (path, what shows it has loaded, a Chinese text it must show)
PAGES = {
    "map": ("/map", "path.leaflet-interactive", "各网格事件数"),
    "dispatch": ("/map/dispatch", "#count-open", "未结事件"),
    "heatmap": ("/map/heatmap", "#legend div", "图层"),
    "planner": ("/map/planner", "#today path.leaflet-interactive", "工作量均衡"),
    "reports": ("/reports", "#status[data-ready='1']", "绩效"),
}
# what may stay Latin on a Chinese page: names of standards, formats and products, units
LATIN_ALLOWED = ["geo-service", "OpenStreetMap", "GCJ-02", "WGS84", "H3", "API", "PDF", "CSV"]
LATIN_ALLOWED += ["XLSX", "Excel", "ECharts", "Leaflet", "km", "GeoJSON", "Gi*", "FDR"]
LATIN_ALLOWED += ["Asia/Shanghai", "Wilson", "Polsby-Popper", "GET /workload"]


@contextmanager
def browser_page(
    base: str, locale: str, viewport: tuple[int, int] = DESKTOP
) -> Iterator[tuple[Any, list[str]]]:
    """A fresh Chromium page whose browser asks for ``locale`` (Accept-Language), and the
    list that collects its JavaScript errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            context = browser.new_context(
                locale=locale, viewport={"width": viewport[0], "height": viewport[1]}
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # the icon every page links (and /favicon.ico) is served: no console error for it
            page.on(
                "response",
                lambda r: (
                    errors.append(f"{r.status} {r.url}")
                    if "icon" in r.url and r.status >= 400
                    else None
                ),
            )
            yield page, errors
        finally:
            browser.close()


def sign_in(page: Any, base: str, path: str, key: str) -> None:
    """Open ``path``, which sends to the sign-in form, and sign in with ``key``."""
    page.goto(f"{base}{path}")
    assert "/login" in page.url, page.url
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(base + path.split("?")[0])))


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"zh-CN_{name}.png"))


@pytest.fixture
def open_incidents(client: TestClient, engine: Engine, loaded_city: DemoCity) -> list[str]:
    """A few open incidents of named categories, for the console."""
    with engine.connect() as conn:
        now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    made = []
    for k, category in enumerate(("traffic", "sanitation", "safety_hazard", "disputes")):
        lon, lat, _ = grid_point(loaded_city)
        answer = client.post(
            "/incidents",
            json={
                "category": category,
                "priority": 1 + k % 4,
                "reported_at": (now - timedelta(minutes=3 + 5 * k)).isoformat(),
                "description": "页面语言测试",
                "location": {"lon": lon + 0.0005 * k, "lat": lat},
            },
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    return made


def test_sign_in_page_in_chinese_on_desktop_and_phone(
    live_server: str, role_keys: dict[str, str]
) -> None:
    for name, viewport in (("login", DESKTOP), ("login-phone", PHONE)):
        with browser_page(live_server, "zh-CN", viewport) as (page, errors):
            page.goto(f"{live_server}/login")
            assert page.get_attribute("html", "lang") == "zh-CN"
            assert page.text_content("button[type=submit]") == "登录"
            assert "请粘贴您的 API 密钥" in page.text_content("body")
            page.fill("input[name=api_key]", "gs_wrong_key")
            page.click("button[type=submit]")
            page.wait_for_selector("p.err")
            assert page.text_content("p.err") == "该密钥无效。"
            shot(page, name)
            assert errors == []


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_page_in_chinese_by_accept_language(
    live_server: str,
    role_keys: dict[str, str],
    open_incidents: list[str],
    responders_restored: None,
    name: str,
) -> None:
    path, ready, chinese = PAGES[name]
    with browser_page(live_server, "zh-CN") as (page, errors):
        sign_in(page, live_server, path, role_keys["admin"])
        page.wait_for_selector(ready, state="attached")
        assert page.get_attribute("html", "lang") == "zh-CN"
        body = page.text_content("body") or ""
        assert chinese in body
        assert "English" in body and "中文" in body  # the switch
        if name == "dispatch":
            page.wait_for_selector("#list tr")
            categories = page.locator("#list tr td:nth-child(2)").all_text_contents()
            # names, never codes
            assert categories and not set(categories) & {
                "traffic",
                "sanitation",
                "safety_hazard",
                "disputes",
                "public_order",
                "facilities",
                "social_assistance",
            }
            assert "交通与停车" in categories or "环境卫生与垃圾" in categories
            page.locator("#list tr").first.click()
            page.wait_for_selector("#detail .head")
        if name == "heatmap":
            page.wait_for_function(
                "document.getElementById('status').textContent.includes('显著单元')"
            )
            assert "热点" in (page.text_content("#legend") or "")
        if name == "reports":  # the charts' entry animation over, for the eye (pass or fail alike)
            page.wait_for_timeout(1500)
        shot(page, name)
        assert errors == []
        codes = page.evaluate(
            "() => [...document.body.innerText.matchAll("
            "/[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+-?|\\b[A-Z]{1,4}[0-9][0-9A-Z]*\\b/g)]"
            ".map((m) => m[0])"
        )  # area and incident codes are data
        left = english_left(page.evaluate(VISIBLE_WORDS), LATIN_ALLOWED + codes)
        assert left == [], f"English left on the Chinese {name} page: {left}"
    if name in FIELD_PAGES:  # what a grid worker opens on a phone in the street
        with browser_page(live_server, "zh-CN", PHONE) as (phone, phone_errors):
            sign_in(phone, live_server, path, role_keys[FIELD_PAGES[name]])
            phone.wait_for_selector(ready, state="attached")
            assert chinese in (phone.text_content("body") or "")
            shot(phone, f"{name}-phone")
            assert phone_errors == []


def test_the_language_switch_changes_the_page_and_is_remembered(
    live_server: str, role_keys: dict[str, str]
) -> None:
    with browser_page(live_server, "zh-CN") as (page, errors):
        sign_in(page, live_server, "/map/dispatch", role_keys["admin"])
        page.wait_for_selector("#count-open")
        assert page.text_content("#side h2") == "未结事件"
        page.click(".lang-switch a[hreflang=en]")
        page.wait_for_url(re.compile(r"lang=en"))
        page.wait_for_selector("#count-open")
        assert page.get_attribute("html", "lang") == "en"
        assert page.text_content("#side h2") == "Open incidents"
        # remembered (cookie): another page, still asked for in Chinese by the browser
        page.goto(f"{live_server}/map/heatmap")
        page.wait_for_selector("#legend div", state="attached")
        assert page.get_attribute("html", "lang") == "en"
        assert "Layer" in (page.text_content("#controls") or "")
        page.click(".lang-switch a[hreflang=zh-CN]")
        page.wait_for_url(re.compile(r"lang=zh-CN"))
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert "图层" in (page.text_content("#controls") or "")
        assert errors == []


def test_english_browsers_get_english_pages(live_server: str, role_keys: dict[str, str]) -> None:
    with browser_page(live_server, "en-US") as (page, errors):
        sign_in(page, live_server, "/map/dispatch", role_keys["admin"])
        page.wait_for_selector("#count-open")
        assert page.get_attribute("html", "lang") == "en"
        assert page.text_content("#side h2") == "Open incidents"
        assert errors == []


def test_favicon_is_the_pages_icon(client: TestClient) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"
