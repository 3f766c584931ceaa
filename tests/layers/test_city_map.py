from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
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


def test_map_renders_grid_polygons_in_chromium(
    live_server: str, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    n_grids = int((loaded_city.areas.level == "grid").sum())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map", role_keys["dispatcher"]) as (
        page,
        errors,
    ):
        page.wait_for_selector("path.leaflet-interactive")
        paths = page.locator("path.leaflet-interactive").count()
        filled = page.evaluate(
            "() => [...document.querySelectorAll('path.leaflet-interactive')]"
            ".filter(p => p.getAttribute('fill') && p.getAttribute('fill') !== 'none'"
            " && p.getAttribute('fill-opacity') !== '0').length"
        )
        page.screenshot(path=str(ARTIFACTS / "map.png"))
    assert not errors, errors
    assert paths >= n_grids
    assert filled >= n_grids
    assert (ARTIFACTS / "map.png").stat().st_size > 20_000


def _layers(with_district: bool) -> dict:
    """Map layers of a one-square city: a grid, and optionally its district; no other level."""
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}

    def collection(props: dict | None) -> dict:
        features = (
            []
            if props is None
            else [{"type": "Feature", "id": props["id"], "geometry": square, "properties": props}]
        )
        return {"type": "FeatureCollection", "features": features}

    district = {"id": 2, "code": "1", "name": "1ST", "level": "district"}
    return {
        "grid": collection({"id": 1, "code": "0111", "name": "0111", "incidents": 4}),
        "community": collection(None),
        "street": collection(None),
        "district": collection(district if with_district else None),
        "window_days": 30,
        "until": "2026-11-22",
        "version_id": 1,
    }


def test_map_renders_a_city_with_only_some_levels() -> None:
    from geo_service.web.city_map import render_city_map

    layers = _layers(with_district=True)
    html = render_city_map(layers, tiles=None)
    assert "District boundaries" in html and "Street boundaries" not in html


def test_map_window_can_be_chosen_and_bad_windows_are_422(
    client: TestClient, loaded_city: DemoCity
) -> None:
    from tests.conftest import problem

    inc = loaded_city.incidents
    until = inc.reported_at.min() + (inc.reported_at.max() - inc.reported_at.min()) / 2
    html = client.get("/map", params={"days": 90, "until": until.isoformat()}).text
    expected = int(
        (
            (inc.reported_at >= until - __import__("pandas").Timedelta(days=90))
            & (inc.reported_at < until)
        ).sum()
    )
    counts = [int(n) for n in re.findall(r'"incidents": (\d+)', html)]
    assert sum(counts) == expected > 0
    assert "90 days to" in html
    # a date alone is local midnight (GEO_TIMEZONE, issue 19): the window ends as that day begins
    day = until.tz_convert("Asia/Shanghai").normalize()
    html = client.get("/map", params={"days": 90, "until": day.date().isoformat()}).text
    counts = [int(n) for n in re.findall(r'"incidents": (\d+)', html)]
    in_days = (inc.reported_at >= day - __import__("pandas").Timedelta(days=90)) & (
        inc.reported_at < day
    )
    assert sum(counts) == int(in_days.sum()) > 0
    assert f"90 days to {day.date().isoformat()}" in html
    for params in (
        {"days": 0},
        {"days": "x"},
        {"until": "tomorrow"},
        {"until": "2026-W01-4"},
        {"until": "1999-01-01T00:00:00Z"},
    ):
        assert problem(client.get("/map", params=params))["status"] in (404, 422), params


@pytest.mark.browser
def test_heatmap_page_draws_hot_spots_and_heat_and_reacts_to_controls(
    live_server: str, role_keys: dict[str, str]
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/heatmap", role_keys["analyst"]) as (
        page,
        errors,
    ):
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('significant cells')"
        )
        hot_status = page.text_content("#status")
        page.select_option("#layer", "heat")
        page.select_option("#window", "365")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('incidents in')"
        )
        heat_status = page.text_content("#status")
        hexagons = page.locator("path.leaflet-interactive").count()
        page.screenshot(path=str(ARTIFACTS / "heatmap.png"))
        page.select_option("#category", "traffic")
        page.wait_for_function(
            "(before) => { const s = document.getElementById('status').textContent;"
            " return s.includes('incidents in') && s !== before; }",
            arg=heat_status,
        )
        traffic_status = page.text_content("#status")
    assert not errors, errors
    assert hexagons > 20
    total = int(heat_status.split()[0])
    assert 0 < int(traffic_status.split()[0]) < total
    assert hot_status and "significant" in hot_status


def test_base_tiles_follow_the_setting() -> None:
    from geo_service.api.routes.maps import _tiles_config
    from geo_service.web.pages import OSM_TILES, content_security_policy

    assert _tiles_config("none") == ""
    assert OSM_TILES in _tiles_config("OpenStreetMap")
    internal = "https://tiles.city.internal/{z}/{x}/{y}.png"
    assert internal in _tiles_config(internal) and "OpenStreetMap" not in _tiles_config(internal)
    # the page policy lets the browser load images from the configured tile server only
    assert "img-src 'self' data: https://tiles.city.internal;" in content_security_policy(internal)
    assert "https://tile.openstreetmap.org" in content_security_policy("OpenStreetMap")
    assert "img-src 'self' data:;" in content_security_policy("none")


def test_city_map_accepts_an_internal_tile_server() -> None:
    from geo_service.web.city_map import render_city_map

    layers = _layers(with_district=False)
    html = render_city_map(layers, tiles="https://tiles.city.internal/{z}/{x}/{y}.png")
    assert "tiles.city.internal" in html
