"""The phone page (/app) at 390 x 844 in zh-CN and en (issue 20, what a fresh user found):
nothing in the header is cut (each text's scrollWidth <= clientWidth), every control is at
least 44 px tall, nothing overlaps (the offline banner gets a row of its own instead of
squeezing the language switch), the base-map menu sits whole at the maps' top right, off the
markers; both maps show the grid's outline; a place tapped outside the grid is refused on the
phone at once and nothing is kept; a task shows why it was escalated. Screenshots:
tests/artifacts/field-app-layout-{zh-CN,en}-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import MapSettings, Settings
from tests.browser import PHONE, phone_page, sign_in_on_phone
from tests.conftest import ARTIFACTS, grid_point, serving
from tests.dispatch.test_field_app import busiest_grid, make_worker, new_incident

HEADER_TEXTS = ["#grid-name", "#grid-code", "#duty-text", "#duty-detail", "#net",
                "#top .lang-switch a", "#sign-out"]  # fmt: skip
HEADER_CONTROLS = ["#duty", "#top .lang-switch a", "#sign-out"]
HEADER_PARTS = ["#who", "#duty", "#duty-detail", "#net", "#top .lang-switch", "#sign-out"]
BOXES = """(selectors) => selectors.flatMap((sel) => [...document.querySelectorAll(sel)]
  .filter((node) => node.checkVisibility())
  .map((node) => { const r = node.getBoundingClientRect();
    return {sel, text: node.textContent.trim(), x: r.x, y: r.y, w: r.width, h: r.height,
            scrollWidth: node.scrollWidth, clientWidth: node.clientWidth}; }))"""
# a point of the report map (container pixels) whose place lies outside the worker's grid,
# away from the map's controls
OUTSIDE_POINT = """() => {
  reportMap.setZoom(reportMap.getZoom() - 2, {animate: false});
  const size = reportMap.getSize();
  // below the zoom buttons and the menu, above the attribution
  for (let y = 120; y < size.y - 30; y += 8) for (let x = 70; x < size.x - 70; x += 8) {
    const at = reportMap.containerPointToLatLng([x, y]);
    if (inMyGrid(at.lng, at.lat) === false) return {x, y};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def menu_server(settings: Settings, loaded_city: DemoCity) -> Iterator[str]:
    """The API offering several base maps (so the pages show the menu), OpenStreetMap first:
    its name is the longest a closed menu shows. No tile is fetched (no network)."""
    own = settings.model_copy(
        update={
            "maps": MapSettings(
                map_basemaps=["osm", "amap", "tianditu-vec", "none"], tianditu_key=""
            )
        }
    )
    with serving(create_app(own)) as base:
        yield base


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two boxes share an area (touching edges do not count)."""
    return (
        min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]) > 0.5
        and min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]) > 0.5
    )


def check_header(page: Any, what: str, width: int = PHONE["width"]) -> None:
    texts = page.evaluate(BOXES, HEADER_TEXTS)
    assert {t["sel"] for t in texts} >= {"#grid-name", "#grid-code", "#sign-out"}, what
    for box in texts:
        assert box["scrollWidth"] <= box["clientWidth"], (what, box)  # nothing cut
        assert box["x"] >= 0 and box["x"] + box["w"] <= width + 0.5, (what, box)
    for box in page.evaluate(BOXES, HEADER_CONTROLS):
        assert box["h"] >= 44 and box["w"] >= 44, (what, box)
    parts = page.evaluate(BOXES, HEADER_PARTS)
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not overlaps(a, b), (what, a, b)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def check_map_controls(page: Any, map_id: str, what: str) -> None:
    """The base-map menu whole at the map's top right, off the zoom buttons and markers;
    the zoom buttons thumb-sized."""
    [frame] = page.evaluate(BOXES, [f"#{map_id}"])
    [menu] = page.evaluate(BOXES, [f"#{map_id} .basemap-switch"])
    assert menu["x"] > frame["x"] + frame["w"] / 2 and menu["y"] < frame["y"] + 60, (what, menu)
    assert menu["x"] + menu["w"] <= frame["x"] + frame["w"] + 0.5, (what, menu)
    # the chosen base map's name is whole in the closed menu
    assert page.evaluate(
        """(id) => { const select = document.querySelector(`#${id} .basemap-switch select`);
          const probe = document.createElement('span');
          probe.style.cssText = 'position:absolute;visibility:hidden;white-space:nowrap';
          probe.style.font = getComputedStyle(select).font;
          probe.textContent = select.selectedOptions[0].textContent;
          document.body.append(probe);
          const fits = probe.getBoundingClientRect().width + 16 <= select.clientWidth;
          probe.remove(); return fits; }""",
        map_id,
    ), what
    [selected] = page.evaluate(BOXES, [f"#{map_id} .basemap-switch select"])
    assert selected["h"] >= 44, (what, selected)
    zoom = page.evaluate(BOXES, [f"#{map_id} .leaflet-control-zoom a"])
    assert len(zoom) == 2 and all(z["h"] >= 44 and z["w"] >= 44 for z in zoom), (what, zoom)
    markers = page.evaluate(BOXES, [f"#{map_id} path.task-marker", f"#{map_id} path.home"])
    for other in zoom + markers:
        assert not overlaps(menu, other), (what, menu, other)


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_phone_page_fits_390_px_and_refuses_a_place_outside_the_grid_at_once(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    menu_server: str,
    locale: str,
) -> None:
    tag = "en" if locale == "en-US" else locale
    code = busiest_grid(loaded_city)
    worker = make_worker(engine, code, f"field-layout-{tag}")
    lon, lat, _ = grid_point(loaded_city, code)
    task = new_incident(client, loaded_city, code, priority=2)
    climbed = client.post(f"/incidents/{task}/escalate", json={"note": "物业须处理 <i>now</i>"})
    assert climbed.status_code == 200, climbed.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    where = {"longitude": lon, "latitude": lat}
    with phone_page(locale=locale, geolocation=where) as (phone, page, errors):
        reports: list[str] = []
        phone.on(
            "request",
            lambda r: (
                reports.append(r.url)
                if r.method == "POST" and r.url.endswith("/incidents")
                else None
            ),
        )
        sign_in_on_phone(page, menu_server, worker["headers"]["X-API-Key"])
        assert page.evaluate("() => BASEMAPS.choices.length") > 1  # the menu is offered

        # the task says why it climbed, as text
        row = page.locator(f'li.task[data-id="{task}"]')
        reason = row.locator("li.escalation")
        reason.wait_for()
        assert "物业须处理 <i>now</i>" in reason.inner_text()
        assert row.locator("li.escalation i").count() == 0
        check_header(page, "online")
        page.screenshot(path=str(ARTIFACTS / f"field-app-layout-{tag}-tasks.png"))
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        phone.set_offline(True)
        page.locator("#net.offline").wait_for()
        check_header(page, "offline")
        page.screenshot(path=str(ARTIFACTS / f"field-app-layout-{tag}-offline.png"))
        phone.set_offline(False)
        page.locator("#net.online").wait_for()
        page.wait_for_function("() => !fromCache")  # the tasks read anew, not as kept

        # the report map: the grid's outline, the menu at the top right
        page.locator('#tabs button[data-tab="report"]').tap()
        page.locator("#r-map path.leaflet-interactive, #r-map svg path").first.wait_for()
        page.wait_for_function("() => gridFeature !== null")
        page.locator("#r-where").filter(has_text=f"{lat:.5f}").wait_for()  # the GPS fix
        assert page.locator("#r-where .outside").count() == 0  # the GPS fix is inside
        check_map_controls(page, "r-map", "report map")
        page.screenshot(path=str(ARTIFACTS / f"field-app-layout-{tag}-report.png"))
        # a tap outside the grid: said at once, and the report is not kept
        point = page.evaluate(OUTSIDE_POINT)
        assert point is not None
        page.locator("#r-map").tap(position=point)
        page.locator("#r-where .outside").wait_for()
        page.locator("#toast.on").wait_for()
        page.screenshot(path=str(ARTIFACTS / f"field-app-layout-{tag}-outside.png"))
        page.locator("#r-send").tap()
        page.wait_for_timeout(300)  # the refusal is synchronous: a short look is enough
        assert page.locator("#tab-report").is_visible()  # still on the form
        assert page.evaluate("() => outboxAll().then((items) => items.length)") == 0
        assert reports == []
        # inside again: the mark goes
        inside = page.evaluate(
            "([lon, lat]) => { const p = reportMap.latLngToContainerPoint([lat, lon]);"
            " return {x: p.x, y: p.y}; }",
            [lon, lat],
        )
        page.locator("#r-map").tap(position=inside)
        page.wait_for_function(
            "(lon) => where && Math.abs(where.lon - lon) < 1e-3"
            " && !document.querySelector('#r-where .outside')",
            arg=lon,
        )

        # the visits map: the grid's outline under the homes, the menu at the top right
        page.locator('#tabs button[data-tab="visits"]').tap()
        page.locator("#v-map path.home").first.wait_for()
        page.locator("#v-map path.grid-outline").wait_for()
        check_map_controls(page, "v-map", "visits map")
        page.screenshot(path=str(ARTIFACTS / f"field-app-layout-{tag}-visits.png"))
        # on a desktop or tablet the header holds together too
        page.set_viewport_size({"width": 1280, "height": 800})
        page.locator('#tabs button[data-tab="tasks"]').tap()
        check_header(page, "desktop", width=1280)
        page.screenshot(path=str(ARTIFACTS / f"field-app-layout-{tag}-desktop.png"))
        assert errors == [], errors
