"""The dispatcher's console on a phone (390 x 844, issue 19): the list and the map are two
tabs at the bottom, where a thumb reaches them; a chosen incident opens its detail with its
actions on the screen; nothing needs scrolling sideways and no control covers another
(bounding boxes). Screenshots in zh-CN and en: tests/artifacts/console_phone_*.png."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import Any

import pytest
from fastapi.testclient import TestClient

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import ApiSettings, MapSettings, Settings
from tests.browser import box_inside, signed_in_page
from tests.browser import box_of as _box
from tests.browser import boxes_overlap as _overlap
from tests.conftest import ARTIFACTS, grid_point, serving

PHONE = (390, 844)
THUMB_PX = 44  # the smallest comfortable touch target (Apple HIG, WCAG 2.5.5's 44 CSS px)


@pytest.fixture(scope="module")
def with_base_maps(settings: Settings, loaded_city: DemoCity) -> Iterator[str]:
    """The API with every built-in base map offered (the switcher on the map), as deployed."""
    own = settings.model_copy(
        update={"api": ApiSettings(map_tiles="OpenStreetMap"), "maps": MapSettings()}
    )
    with serving(create_app(own)) as base:
        yield base


def _no_overlaps(page: Any, selectors: list[str]) -> None:
    boxes = {s: _box(page, s) for s in selectors}
    for s, box in boxes.items():
        assert box_inside(box, PHONE), (s, box)
    for (a, box_a), (b, box_b) in combinations(boxes.items(), 2):
        assert not _overlap(box_a, box_b), (a, box_a, b, box_b)


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_console_is_usable_with_one_thumb_on_a_phone(
    with_base_maps: str,
    role_keys: dict[str, str],
    lang: str,
    client: TestClient,
    loaded_city: DemoCity,
) -> None:
    base = with_base_maps
    # open incidents of its own (earlier tests may have closed the loaded city's backlog)
    for category in ("traffic", "sanitation"):
        lon, lat, _ = grid_point(loaded_city)
        made = client.post(
            "/incidents", json={"category": category, "location": {"lon": lon, "lat": lat}}
        )
        assert made.status_code == 201, made.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(base, "/map/dispatch", role_keys["dispatcher"], PHONE) as (page, errors):
        page.route("https://**/*", lambda route: route.fulfill(status=204, body=b""))
        page.goto(f"{base}/map/dispatch?lang={lang}")
        page.wait_for_selector("#list tr.row")
        # the list first, the two tabs at the bottom, in reach of a thumb
        tabs = _box(page, "#tabs")
        assert tabs["y"] + tabs["height"] == pytest.approx(PHONE[1], abs=0.5)
        for tab in ("#tab-list", "#tab-map"):
            box = _box(page, tab)
            assert box["height"] >= THUMB_PX and box["width"] >= PHONE[0] / 3
        assert page.get_attribute("#tab-list", "aria-selected") == "true"
        assert page.inner_text("#tab-count").strip() == page.inner_text("#count-open").strip()
        side = _box(page, "#side")
        assert side["x"] == 0 and side["width"] == PHONE[0]
        assert side["y"] + side["height"] <= tabs["y"] + 0.5  # the list ends above the tabs
        assert not page.locator("#legend").is_visible()
        # nothing to scroll sideways, in the page or in the list
        widths = page.evaluate(
            """() => [document.documentElement.scrollWidth, document.getElementById('side')
                        .scrollWidth, document.getElementById('side').clientWidth]"""
        )
        assert widths[0] <= PHONE[0] and widths[1] <= widths[2], widths
        _no_overlaps(page, ["#tabs", "#list tr.row"])
        cells = page.locator("#list tr.row").first.locator("td")
        for i in range(cells.count()):  # every column of a row whole on the screen
            cell = cells.nth(i).bounding_box()
            assert cell is not None and box_inside(cell, PHONE), (i, cell)
            inner = cells.nth(i).evaluate("(td) => [td.scrollWidth, td.clientWidth]")
            assert inner[0] <= inner[1], (i, inner)
        page.screenshot(path=str(ARTIFACTS / f"console_phone_list_{lang}.png"))

        # a tap on an incident: its detail on top, its actions big enough and on the screen
        page.locator("#list tr.row").first.click()
        page.wait_for_selector("#detail .actions button.act-map")
        assert page.evaluate("() => document.getElementById('side').scrollTop") == 0
        actions = page.locator("#detail .actions button")
        assert actions.count() >= 2  # at least one action on the incident, and "show on map"
        boxes = [actions.nth(i).bounding_box() for i in range(actions.count())]
        for box in boxes:
            assert box is not None and box_inside(box, PHONE) and box["height"] >= THUMB_PX, box
            assert box["y"] + box["height"] <= tabs["y"] + 0.5
            assert not _overlap(box, tabs)
        for a, b in combinations(boxes, 2):
            assert a is not None and b is not None and not _overlap(a, b)
        page.screenshot(path=str(ARTIFACTS / f"console_phone_detail_{lang}.png"))

        # "show on map": the map, its controls side by side, none covering another
        page.click("#detail .actions button.act-map")
        assert page.get_attribute("#tab-map", "aria-selected") == "true"
        assert not page.locator("#side").is_visible()
        mapped = _box(page, "#map")
        assert mapped["width"] == PHONE[0] and mapped["y"] + mapped["height"] <= tabs["y"] + 0.5
        page.wait_for_selector("path.selected")
        _no_overlaps(
            page,
            [
                ".leaflet-control-zoom",
                "#legend",
                ".basemap-switch",
                ".leaflet-control-attribution",
                "#tabs",
            ],
        )
        selected = _box(page, "path.selected")  # the chosen incident, in view
        assert box_inside(selected, PHONE) and selected["y"] + selected["height"] <= tabs["y"]
        page.screenshot(path=str(ARTIFACTS / f"console_phone_map_{lang}.png"))

        # a tap on an incident on the map brings its detail back
        page.locator("path.selected").click(force=True)
        page.wait_for_function("() => document.body.dataset.tab === 'list'")
        assert page.locator("#detail").is_visible()
        page.click("#tab-map")
        assert page.locator("#map .leaflet-control-zoom").is_visible()
        page.click("#tab-list")
        assert page.locator("#list tr.row").first.is_visible()
    assert not errors, errors
