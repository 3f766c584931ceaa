"""The grid worker's phone page (/app) on a GCJ-02 base map (issues 19, 20).

On the locally served GCJ-02 tile scheme of tests/layers/test_base_maps.py (white tiles, a red
cross at the GCJ-02 position of a known WGS84 point, as Amap's and Tencent's streets lie), in
Chromium on a 390 x 844 touch phone: a task at that WGS84 point is drawn on the cross (within
1 m), and a tap on the cross places a report whose incident the server then holds at the WGS84
point (within 1 m), not ~590 m off where plain Web Mercator would put it.
Screenshots: tests/artifacts/field-app-gcj02-*.png."""

from __future__ import annotations

import io
import math
import time
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import PHONE, chromium, sign_in_on_phone
from tests.conftest import ARTIFACTS
from tests.dispatch.test_field_app import make_worker
from tests.layers.test_base_maps import (  # noqa: F401 (fixtures)
    GEOD,
    POINT,
    TILES_LOADED,
    ZOOM,
    GcjTiles,
    _metres_per_pixel,
    gcj_scheme,
    gcj_server,
)

TASK_COLOUR = (0x2C, 0x7B, 0xB6)  # priority 4 (COLOURS of field_app.js)


def _centre(png: bytes, colour: tuple[int, int, int], tolerance: int) -> np.ndarray:
    """The centre (CSS px of the image, +0.5 for a pixel's middle) of the pixels of
    ``colour`` (each channel within ``tolerance``)."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    hits = np.argwhere(np.all(np.abs(rgb - np.array(colour)) <= tolerance, axis=-1))
    assert len(hits) > 20, len(hits)
    return hits.mean(axis=0)[::-1] + 0.5  # (row, col) -> (x, y)


def _grid_holding(city: DemoCity, lon: float, lat: float) -> str:
    grids = city.areas[city.areas.level == "grid"]
    inside = grids[grids.geometry.contains(shapely.Point(lon, lat))]
    assert len(inside) == 1
    return str(inside.iloc[0].code)


@pytest.mark.browser
def test_on_a_gcj02_base_map_tasks_lie_on_the_streets_and_a_tap_reports_the_wgs84_point(
    gcj_server: str,  # noqa: F811
    gcj_scheme: tuple[GcjTiles, str],  # noqa: F811
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
) -> None:
    code = _grid_holding(loaded_city, *POINT)
    worker = make_worker(engine, code, "field-gcj")
    made = client.post(
        "/incidents",
        json={
            "category": "sanitation",
            "priority": 4,
            "location": {"lon": POINT[0], "lat": POINT[1]},
        },
    )
    assert made.status_code == 201, made.text
    task = made.json()["id"]
    mpp = _metres_per_pixel(POINT[1], ZOOM)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            # no GPS permission: the place of the report comes from the tap alone
            phone = browser.new_context(
                viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN"
            )
            page = phone.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            sign_in_on_phone(page, gcj_server, worker["headers"]["X-API-Key"])
            page.locator(f'li.task[data-id="{task}"]').wait_for()
            page.locator('#tabs button[data-tab="report"]').tap()
            page.locator(f"#r-map path.task-{task}").wait_for()
            assert page.get_attribute("#r-map", "data-basemap-crs") == "gcj02"
            # the grid's outline is drawn (it fits the map to the grid once): then the view
            page.wait_for_function(
                "() => document.querySelectorAll('#r-map .leaflet-overlay-pane path').length >= 2"
            )
            # the fit to the grid may still be animating (its end would undo our view): set the
            # view until it holds
            page.wait_for_function(
                """([lon, lat, z]) => {
                     const c = reportMap.getCenter();
                     if (reportMap.getZoom() === z && Math.abs(c.lat - lat) < 1e-7
                         && Math.abs(c.lng - lon) < 1e-7) return true;
                     if (!reportMap._animatingZoom) {
                       reportMap.setView([lat, lon], z, {animate: false});
                     }
                     return false;
                   }""",
                arg=[POINT[0], POINT[1], ZOOM],
            )
            page.wait_for_function(TILES_LOADED)
            box = page.locator("#r-map").bounding_box()
            # the street corner alone, then the task on it: the same view, two pictures
            page.evaluate("() => reportMap.removeLayer(taskLayer)")
            bare = page.locator("#r-map").screenshot()
            page.evaluate("() => taskLayer.addTo(reportMap)")
            page.locator(f"#r-map path.task-{task}").wait_for()
            drawn = page.locator("#r-map").screenshot(
                path=str(ARTIFACTS / "field-app-gcj02-task.png")
            )
            cross = _centre(bare, (255, 0, 0), 15)
            marker = _centre(drawn, TASK_COLOUR, 12)
            assert math.dist(cross, marker) * mpp < 1.0, (cross, marker, mpp)
            # without the GCJ-02 shift the task would be drawn ~590 m (2000+ px) away
            plain = page.evaluate(
                """([lon, lat]) => { const z = reportMap.getZoom();
                     const shifted = reportMap.options.crs.latLngToPoint(L.latLng(lat, lon), z);
                     const plain = L.CRS.EPSG3857.latLngToPoint(L.latLng(lat, lon), z);
                     return shifted.distanceTo(plain); }""",
                list(POINT),
            )
            assert 400 < plain * mpp < 800

            # a tap on the cross places the report at the WGS84 point under the finger
            page.evaluate("() => reportMap.removeLayer(taskLayer)")  # the finger meets the map
            page.touchscreen.tap(box["x"] + float(cross[0]), box["y"] + float(cross[1]))
            page.wait_for_function("() => where !== null && where.how === 'map'")
            lon, lat = page.evaluate("() => [where.lon, where.lat]")
            assert GEOD.inv(lon, lat, *POINT)[2] < 1.0
            page.screenshot(path=str(ARTIFACTS / "field-app-gcj02-report.png"))
            page.select_option("#r-category", "facilities")
            page.fill("#r-description", "路灯不亮")
            page.locator("#r-send").tap()
            deadline = time.monotonic() + 30
            found: Any = None
            while found is None:
                assert time.monotonic() < deadline, "the report did not arrive"
                with engine.connect() as conn:
                    found = conn.execute(
                        text(
                            "SELECT ST_X(location) AS lon, ST_Y(location) AS lat FROM incidents "
                            "WHERE source = 'grid_worker' AND description = '路灯不亮'"
                        )
                    ).first()
                time.sleep(0.1)
            assert GEOD.inv(found.lon, found.lat, *POINT)[2] < 1.0
            assert errors == [], errors
        finally:
            browser.close()
