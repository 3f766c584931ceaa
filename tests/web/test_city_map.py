from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.conftest import ARTIFACTS


def test_map_page_embeds_grids_with_counts_and_local_leaflet(
    client: TestClient, loaded_city: DemoCity
) -> None:
    response = client.get("/map")
    assert response.status_code == 200
    html = response.text
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert not re.search(r'(?:src|href)="https?://', html), "page must not need a CDN"
    n_grids = int((loaded_city.areas.level == "grid").sum())
    assert html.count('"incidents":') >= n_grids
    assert "Incidents per grid" in html
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200


@pytest.mark.browser
def test_map_renders_grid_polygons_in_chromium(live_server: str, loaded_city: DemoCity) -> None:
    from playwright.sync_api import sync_playwright

    n_grids = int((loaded_city.areas.level == "grid").sum())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server}/map")
        page.wait_for_selector("path.leaflet-interactive")
        paths = page.locator("path.leaflet-interactive").count()
        filled = page.evaluate(
            "() => [...document.querySelectorAll('path.leaflet-interactive')]"
            ".filter(p => p.getAttribute('fill') && p.getAttribute('fill') !== 'none'"
            " && p.getAttribute('fill-opacity') !== '0').length"
        )
        page.screenshot(path=str(ARTIFACTS / "map.png"))
        browser.close()
    assert not errors, errors
    assert paths >= n_grids
    assert filled >= n_grids
    assert (ARTIFACTS / "map.png").stat().st_size > 20_000
