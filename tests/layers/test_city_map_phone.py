"""The city overview (/map, folium) on a phone (390 x 844, issue 19): the layer control had
covered the zoom buttons. Now it folds into its button on a narrow screen and opens on a tap;
no control covers another (bounding boxes). Screenshots in zh-CN and en:
tests/artifacts/city_map_phone_*.png."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import pytest

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import ApiSettings, MapSettings, Settings
from tests.browser import box_inside as _inside
from tests.browser import box_of as _box
from tests.browser import boxes_overlap as _overlap
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, serving

PHONE = (390, 844)
DESKTOP = (1200, 900)


@pytest.fixture(scope="module")
def with_base_maps(settings: Settings, loaded_city: DemoCity) -> Iterator[str]:
    """The API with every built-in base map offered (the switcher on the map), as deployed."""
    own = settings.model_copy(
        update={"api": ApiSettings(map_tiles="OpenStreetMap"), "maps": MapSettings()}
    )
    with serving(create_app(own)) as base:
        yield base


CONTROLS = [
    ".leaflet-control-zoom",
    ".leaflet-control-layers",
    ".basemap-switch",
    ".lang-switch",
    "#legend",
    ".leaflet-control-scale",
    ".leaflet-control-attribution",
]


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_city_map_controls_do_not_overlap_on_a_phone(
    with_base_maps: str, role_keys: dict[str, str], lang: str
) -> None:
    base = with_base_maps
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(base, "/map", role_keys["dispatcher"], PHONE) as (page, errors):
        page.route("https://**/*", lambda route: route.fulfill(status=204, body=b""))
        page.goto(f"{base}/map?lang={lang}")
        page.wait_for_selector("path.leaflet-interactive")
        page.wait_for_selector(".basemap-switch")
        page.screenshot(path=str(ARTIFACTS / f"city_map_phone_{lang}.png"))
        boxes = {s: _box(page, s) for s in CONTROLS}
        zoom_in = _box(page, ".leaflet-control-zoom-in")
        # the layer control, opened by a tap, lies clear of the zoom buttons too
        # a tap (a touch screen has no hover that would open it first)
        page.dispatch_event(".leaflet-control-layers-toggle", "click")
        page.wait_for_selector(".leaflet-control-layers-expanded")
        opened = _box(page, ".leaflet-control-layers")
        checkboxes = page.locator(".leaflet-control-layers-overlays input").count()
        page.screenshot(path=str(ARTIFACTS / f"city_map_phone_layers_{lang}.png"))
        page.click(".leaflet-control-zoom-in")  # still reachable with the layers open
        # a tap on the map folds the layer control again
        page.mouse.click(PHONE[0] / 2, PHONE[1] / 2)
        page.wait_for_selector(".leaflet-control-layers-expanded", state="detached")
    assert not errors, errors
    for name, box in boxes.items():
        assert _inside(box, PHONE), (name, box)
    for (a, box_a), (b, box_b) in combinations(boxes.items(), 2):
        assert not _overlap(box_a, box_b), (a, box_a, b, box_b)
    assert zoom_in["width"] >= 30 and zoom_in["height"] >= 30
    assert checkboxes >= 2  # the overlays (levels) are there to choose
    assert _inside(opened, PHONE)
    for control in (".leaflet-control-zoom", "#legend", ".lang-switch"):
        assert not _overlap(opened, boxes[control]), control


@pytest.mark.browser
def test_the_city_map_keeps_its_layer_control_open_on_a_desktop(
    with_base_maps: str, role_keys: dict[str, str]
) -> None:
    base = with_base_maps
    with signed_in_page(base, "/map", role_keys["dispatcher"], DESKTOP) as (page, errors):
        page.route("https://**/*", lambda route: route.fulfill(status=204, body=b""))
        page.wait_for_selector("path.leaflet-interactive")
        page.wait_for_selector(".basemap-switch")
        expanded = page.locator(".leaflet-control-layers-expanded").count()
        boxes = {s: _box(page, s) for s in CONTROLS}
    assert not errors, errors
    assert expanded == 1
    for (a, box_a), (b, box_b) in combinations(boxes.items(), 2):
        assert not _overlap(box_a, box_b), (a, box_a, b, box_b)
