"""MapLibre GL JS on another origin renders geo-service's vector tiles and an OGC items page.

The page (tests/web/maplibre.html) is served by a second local HTTP server, so it is a
different origin from the API, which runs with ``GEO_CORS_ORIGINS`` set to that origin only.
MapLibre comes from the npm package pinned in tests/web/package-lock.json
(``scripts/install_web_deps.sh``, run by ``make install``), never a CDN. It sends the API key
as a header (``transformRequest``), which makes every request a CORS preflighted one.
Chromium is Debian's, headless, drawing WebGL with SwiftShader (ANGLE's CPU Vulkan).
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import ApiSettings, Settings
from tests.conftest import ARTIFACTS, grid_point

pytestmark = pytest.mark.browser

WEB = Path(__file__).resolve().parent.parent / "web"
MAPLIBRE = WEB / "node_modules" / "maplibre-gl" / "dist" / "maplibre-gl.js"
# tests/browser.py's quiet headless Chromium, plus WebGL without a GPU: ANGLE on SwiftShader,
# which Chromium only falls back to when told it may.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """tests/web served on its own port: an origin other than the API's."""
    assert MAPLIBRE.is_file(), (
        f"{MAPLIBRE} is missing: run `make install` (scripts/install_web_deps.sh runs npm ci "
        "in tests/web)"
    )
    handler = functools.partial(_QuietHandler, directory=str(WEB))
    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def cors_api(settings: Settings, loaded_city: DemoCity, page_origin: str) -> Iterator[str]:
    """geo-service under uvicorn with GEO_CORS_ORIGINS = the page's origin (and only that)."""
    with pytest.MonkeyPatch.context() as env:  # read from the environment, as deployed
        env.setenv("GEO_CORS_ORIGINS", f"{page_origin}/")
        api = ApiSettings(**settings.api.model_dump(exclude={"cors_origins"}))
    assert api.cors_origins == [page_origin]
    allowed = settings.model_copy(update={"api": api})
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(allowed), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_preflight_with_the_key_header_is_answered_for_the_page_origin_only(
    cors_api: str, page_origin: str
) -> None:
    asked = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-api-key",
    }
    ok = httpx.options(f"{cors_api}/tiles/grids.json", headers={"Origin": page_origin, **asked})
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == page_origin
    assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()
    other = httpx.options(
        f"{cors_api}/tiles/grids.json", headers={"Origin": "http://elsewhere.test", **asked}
    )
    assert "access-control-allow-origin" not in other.headers


def test_maplibre_on_another_origin_renders_tiles_and_ogc_items(
    cors_api: str, page_origin: str, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    from playwright.sync_api import sync_playwright

    busiest = loaded_city.incidents.grid_code.value_counts().index[0]
    lon, lat, _ = grid_point(loaded_city, busiest)
    query = urlencode(
        {
            "api": cors_api,
            "key": role_keys["analyst"],
            "collection": "hotspots-h3-res8",
            "lon": lon,
            "lat": lat,
            "zoom": 14.2,  # incident points (from z14), grids, heatmap hexagons, hot spot cells
        }
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "maplibre.png"
    shot.unlink(missing_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )
            api_responses: list[tuple[str, int, str | None]] = []
            page.on(
                "response",
                lambda r: (
                    api_responses.append(
                        (r.url, r.status, r.headers.get("access-control-allow-origin"))
                    )
                    if r.url.startswith(cors_api)
                    else None
                ),
            )
            page.goto(f"{page_origin}/maplibre.html?{query}")
            page.wait_for_function(
                "() => window.report && window.report.rendered !== null"
                " && window.report.preflight !== null",
                timeout=90_000,
            )
            report = page.evaluate("() => window.report")
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert not errors, errors
    assert not report["errors"], report["errors"]
    assert report["webgl"] and "WebGL" in report["webgl"], report["webgl"]
    # the key header went out with a preflight the API allowed, from the page's origin
    assert report["preflight"] == 200, report["preflight"]
    assert report["sourcesLoaded"] == {
        "heatmap": True,
        "grids": True,
        "incidents": True,
        "items": True,
    }
    assert report["tileRequests"] > 0
    rendered = report["rendered"]
    assert all(rendered[layer] > 0 for layer in rendered), rendered
    tiles = [r for r in api_responses if ".mvt" in r[0]]
    assert tiles and all(status == 200 for _, status, _ in tiles), tiles
    assert all(allow == page_origin for _, _, allow in api_responses), api_responses
    assert shot.stat().st_size > 20_000
