"""The visits map of the grid worker's page (/app, the household visit coverage on a map) as
the demo serves it, every base map offered (what a fresh user found: the base-map menu's label
was cut): in zh-CN and en, on a phone (390 x 844) and a desktop, every base map one can choose
shows its whole name in the closed menu, and the menu lies inside its control and the control
inside the map. Screenshots: tests/artifacts/field-app-basemaps-{zh-CN,en}-{phone,desktop}.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import MapSettings, Settings
from geo_service.web.basemaps import PROVIDERS
from tests.browser import box_inside, box_of, chromium
from tests.conftest import ARTIFACTS, serving
from tests.dispatch.test_field_app import busiest_grid, make_worker

VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 800)}
# the closed menu's text against the room the select gives it (its padding and arrow aside)
LABEL_FITS = """(select) => {
  const probe = document.createElement('span');
  probe.style.cssText = 'position:absolute;visibility:hidden;white-space:nowrap';
  probe.style.font = getComputedStyle(select).font;
  probe.textContent = select.selectedOptions[0].textContent;
  document.body.append(probe);
  const style = getComputedStyle(select);
  const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)
    - 16;  // the arrow
  const width = probe.getBoundingClientRect().width;
  probe.remove();
  return {label: select.selectedOptions[0].textContent, width, room};
}"""


@pytest.fixture(scope="module")
def all_basemaps_server(settings: Settings, loaded_city: DemoCity) -> Iterator[str]:
    """The API offering every base map, as ``make demo`` does (no key: Tianditu's are shown
    disabled, with their reason). No tile is fetched (no network)."""
    offered = [p.id for p in PROVIDERS] + ["none"]  # what the default tiles (OSM) offer
    own = settings.model_copy(update={"maps": MapSettings(map_basemaps=offered, tianditu_key="")})
    with serving(create_app(own)) as base:
        yield base


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    """Whether ``inner`` lies wholly inside ``outer`` (``box_inside`` in outer's frame)."""
    moved = {**inner, "x": inner["x"] - outer["x"], "y": inner["y"] - outer["y"]}
    return box_inside(moved, (int(outer["width"]), int(outer["height"])))


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_visits_map_shows_every_base_map_name_whole(
    engine: Engine, loaded_city: DemoCity, all_basemaps_server: str, locale: str
) -> None:
    tag = "en" if locale == "en-US" else locale
    worker = make_worker(engine, busiest_grid(loaded_city), f"demo-basemaps-{tag}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            for name, (width, height) in VIEWPORTS.items():
                phone = name == "phone"
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    device_scale_factor=2,
                    is_mobile=phone,
                    has_touch=phone,
                    locale=locale,
                    timezone_id="Asia/Shanghai",
                )
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(f"{all_basemaps_server}/app")
                page.fill("input[name=api_key]", worker["headers"]["X-API-Key"])
                page.click("button[type=submit]")
                page.wait_for_url(f"{all_basemaps_server}/app")
                page.locator('#tabs button[data-tab="visits"]').click()
                page.locator("#v-map path.home").first.wait_for()
                select = page.locator("#v-map .basemap-switch select")
                choices = select.evaluate(
                    "(s) => [...s.options].filter((o) => !o.disabled).map((o) => o.value)"
                )
                assert len(choices) >= 4, choices  # OSM, AMap, Tencent, none at least
                widths = {}
                for choice in choices:
                    select.select_option(choice)
                    fit = select.evaluate(LABEL_FITS)
                    widths[choice] = fit["width"]
                    assert fit["width"] <= fit["room"], (name, tag, fit)
                    control = box_of(page, "#v-map .basemap-switch")
                    menu = box_of(page, "#v-map .basemap-switch select")
                    assert inside(menu, control), (name, tag, choice, menu, control)
                    assert inside(control, box_of(page, "#v-map")), (name, tag, choice)
                # the screenshot shows the longest name (the one that was cut)
                select.select_option(max(widths, key=widths.__getitem__))
                page.screenshot(path=str(ARTIFACTS / f"field-app-basemaps-{tag}-{name}.png"))
                assert errors == [], errors
                context.close()
        finally:
            browser.close()
