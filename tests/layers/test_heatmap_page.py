"""The heatmap page for an area-bound user (issue 19): a grid worker sees their own grid only,
and the page opened on "Bounds are not valid" (it fitted the map to the community outlines,
none of which such a user sees). Now it shows the outlines the user may see, at the finest
level there are any, fitted to them. Screenshots in tests/artifacts."""

from __future__ import annotations

import pytest
import shapely

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS

DESKTOP = (1200, 900)
PHONE = (390, 844)

MAP_VIEW = """() => { const b = map.getBounds();
  return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }"""
OUTLINES = """() => { let n = 0; outlines.eachLayer(() => { n += 1; }); return n; }"""


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_a_grid_worker_opens_the_heatmap_on_their_own_grid(
    live_server: str,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    lang: str,
    viewport: tuple[int, int],
    name: str,
) -> None:
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    busiest = loaded_city.households.grid_code.value_counts().index[0]  # the worker's grid
    own = grids[grids.code == busiest].geometry.iloc[0]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/heatmap", role_keys["grid_worker"], viewport) as (
        page,
        errors,
    ):
        page.route("https://**/*", lambda route: route.fulfill(status=204, body=b""))
        page.goto(f"{live_server}/map/heatmap?lang={lang}")
        page.wait_for_function("() => window.map && map._loaded")
        page.wait_for_function("() => !document.getElementById('status').textContent.includes('…')")
        view = page.evaluate(MAP_VIEW)
        drawn = page.evaluate(OUTLINES)
        status = page.inner_text("#status")
        page.screenshot(path=str(ARTIFACTS / f"heatmap_grid_worker_{lang}_{name}.png"))
    assert not errors, errors
    assert drawn == 1  # their grid's outline: the one area they see
    box = shapely.box(*view)
    # the map is fitted to their grid: all of it in view, and not the whole city
    assert box.contains(own), (view, own.bounds)
    assert not box.contains(shapely.box(*loaded_city.areas.total_bounds))
    assert status and "Bounds" not in status
