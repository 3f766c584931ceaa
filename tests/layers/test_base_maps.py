"""Base maps of the Leaflet pages (issue 19): the choices and their attributions, Tianditu
disabled without its key, and overlays landing on a GCJ-02 base map.

The pixel test serves a GCJ-02 tile scheme of its own (no internet): white tiles with a red
cross at the GCJ-02 position of a known WGS84 point, the way Amap's and Tencent's tiles draw
a street corner. The heatmap page is loaded on that scheme, a blue ring is put at the WGS84
point, and the screenshot must show the ring on the cross within 1 m; a click on the cross
must come back as the WGS84 point within 1 m. Screenshots in tests/artifacts."""

from __future__ import annotations

import io
import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Geod

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.geo.crs import from_wgs84, to_wgs84
from geo_service.settings import MapSettings, Settings
from geo_service.web.basemaps import base_maps, image_origins, offered_ids
from geo_service.web.pages import content_security_policy
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, serving

GEOD = Geod(ellps="WGS84")
POINT = (114.30, 30.59)  # WGS84, in the demo city (Wuhan): GCJ-02 is about 590 m off here
ZOOM = 19  # about 0.26 m a pixel at this latitude
TILE = 256
DESKTOP = (1200, 900)
PHONE = (390, 844)
TIANDITU_LOGO_URL = "https://api.tianditu.gov.cn/v4.0/image/logo.png"
MARKUP = '<img src=x onerror="window.pwned=1"><b>GS</b>'


def _global_pixel(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel of a position at ``zoom`` (the XYZ tile scheme's own formula)."""
    size = TILE * 2**zoom
    x = (lon + 180.0) / 360.0 * size
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * size
    return x, y


def _metres_per_pixel(lat: float, zoom: int) -> float:
    return 2 * math.pi * 6378137.0 * math.cos(math.radians(lat)) / (TILE * 2**zoom)


class GcjTiles:
    """A GCJ-02 tile scheme on a loopback port: every tile white, and a red cross (1 px wide
    lines, 21 px long) on the pixel holding the GCJ-02 position of ``POINT``."""

    def __init__(self) -> None:
        glon, glat = (float(v[0]) for v in from_wgs84([POINT[0]], [POINT[1]], "gcj02"))
        self.gcj02 = (glon, glat)
        self.requests: list[str] = []
        self._blank = self._png(None)

    def _png(self, mark: tuple[int, int] | None) -> bytes:
        from PIL import Image

        image = Image.new("RGB", (TILE, TILE), (255, 255, 255))
        if mark is not None:
            mx, my = mark
            for d in range(-10, 11):
                for x, y in ((mx + d, my), (mx, my + d)):
                    if 0 <= x < TILE and 0 <= y < TILE:
                        image.putpixel((x, y), (255, 0, 0))
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    def tile(self, z: int, x: int, y: int) -> bytes:
        """The tile (z, x, y): the cross where the marker's pixel falls in it."""
        px, py = _global_pixel(*self.gcj02, z)
        mx, my = math.floor(px) - x * TILE, math.floor(py) - y * TILE
        if -10 <= mx < TILE + 10 and -10 <= my < TILE + 10:
            return self._png((mx, my))
        return self._blank

    def serve(self) -> Iterator[str]:
        """The tile server's URL template while it runs."""
        scheme = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                scheme.requests.append(self.path)
                try:
                    z, x, y = (int(p) for p in self.path.strip("/").removesuffix(".png").split("/"))
                except ValueError:
                    self.send_error(404)
                    return
                body = scheme.tile(z, x, y)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png"
        finally:
            server.shutdown()
            thread.join(timeout=5)


@pytest.fixture(scope="module")
def gcj_scheme() -> Iterator[tuple[GcjTiles, str]]:
    tiles = GcjTiles()
    yield from ((tiles, url) for url in tiles.serve())


@pytest.fixture(scope="module")
def gcj_server(
    settings: Settings, loaded_city: DemoCity, gcj_scheme: tuple[GcjTiles, str]
) -> Iterator[str]:
    """The API with the GCJ-02 tile scheme as its configured tiles, beside every built-in
    base map (Tianditu without a key)."""
    _, url = gcj_scheme
    own = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"map_tiles": url}),
            "maps": MapSettings(
                map_tiles_crs="gcj02",
                map_basemaps=[
                    "configured",
                    "osm",
                    "tianditu-vec",
                    "tianditu-img",
                    "amap",
                    "tencent",
                    "none",
                ],
                tianditu_key="",
            ),
        }
    )
    with serving(create_app(own)) as base:
        yield base


def _red_and_blue_centres(png: bytes, half: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Screen centres (CSS px, +0.5 for a pixel's middle) of the pure red and pure blue
    pixels within ``half`` px of the screen's centre (the legend's swatches lie outside)."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    cy, cx = rgb.shape[0] // 2, rgb.shape[1] // 2
    window = rgb[cy - half : cy + half, cx - half : cx + half]
    r, g, b = window[..., 0], window[..., 1], window[..., 2]
    red = np.argwhere((r > 200) & (g < 60) & (b < 60))
    blue = np.argwhere((b > 200) & (r < 60) & (g < 60))
    assert len(red) > 20 and len(blue) > 20, (len(red), len(blue))
    offset = np.array([cx - half, cy - half])
    # argwhere gives (row, col): screen (x, y) is (col, row)
    return red.mean(axis=0)[::-1] + offset + 0.5, blue.mean(axis=0)[::-1] + offset + 0.5


PUT_RING = """([lon, lat, zoom]) => {
  cells.clearLayers();
  outlines.remove();
  map.setView([lat, lon], zoom, {animate: false});
  window.__ring = L.circleMarker([lat, lon], {radius: 9, color: '#0000ff', weight: 2,
                                              opacity: 1, fill: false}).addTo(map);
}"""

# every tile loaded and faded in (Leaflet raises a new tile's opacity to 1 frame by frame)
TILES_LOADED = """() => {
  const tiles = [...document.querySelectorAll('.leaflet-tile-container img')];
  return tiles.length > 0 && tiles.every((img) => img.classList.contains('leaflet-tile-loaded')
    && (img.style.opacity === '' || Number(img.style.opacity) === 1));
}"""


@pytest.mark.browser
def test_an_overlay_lands_on_a_gcj02_tile_scheme_within_1_m_and_clicks_come_back_in_wgs84(
    gcj_server: str, gcj_scheme: tuple[GcjTiles, str], role_keys: dict[str, str]
) -> None:
    tiles, _ = gcj_scheme
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    mpp = _metres_per_pixel(POINT[1], ZOOM)
    with signed_in_page(gcj_server, "/map/heatmap", role_keys["analyst"], DESKTOP) as (
        page,
        errors,
    ):
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('significant cells')"
        )
        assert page.get_attribute("#map", "data-basemap") == "configured"
        assert page.get_attribute("#map", "data-basemap-crs") == "gcj02"
        page.screenshot(path=str(ARTIFACTS / "basemap_gcj02_city.png"))
        # by projecting: the page's CRS puts the WGS84 point on the marker's pixel; plain
        # Web Mercator (what a WGS84 base map uses) would put it ~590 m away
        marker = _global_pixel(*tiles.gcj02, ZOOM)
        ours, plain = page.evaluate(
            """([lon, lat, z]) => [map.options.crs.latLngToPoint(L.latLng(lat, lon), z),
                                   L.CRS.EPSG3857.latLngToPoint(L.latLng(lat, lon), z)]
                                  .map((p) => [p.x, p.y])""",
            [POINT[0], POINT[1], ZOOM],
        )
        assert math.dist(ours, marker) * mpp < 0.05
        assert 400 < math.dist(plain, marker) * mpp < 800
        # the page's conversion (gcoord) is ours: forward to 1e-9 degrees, inverse to 0.2 m
        rng = np.random.default_rng(19)
        lon, lat = rng.uniform(75, 134, 200), rng.uniform(18, 53, 200)
        fwd, back = page.evaluate(
            """(pts) => [pts.map((p) => gcoord.transform(p, gcoord.WGS84, gcoord.GCJ02)),
                         pts.map((p) => gcoord.transform(p, gcoord.GCJ02, gcoord.WGS84))]""",
            np.column_stack([lon, lat]).tolist(),
        )
        np.testing.assert_allclose(
            np.array(fwd), np.column_stack(from_wgs84(lon, lat, "gcj02")), rtol=0, atol=1e-9
        )
        exact = np.column_stack(to_wgs84(lon, lat, "gcj02"))
        assert np.asarray(GEOD.inv(*np.array(back).T, *exact.T)[2]).max() < 0.2
        # in the screenshot: the blue ring on the red cross
        page.evaluate(PUT_RING, [*POINT, ZOOM])
        page.wait_for_function(TILES_LOADED)
        shot = page.screenshot(path=str(ARTIFACTS / "basemap_gcj02_pixel.png"))
        cross, ring = _red_and_blue_centres(shot)
        assert math.dist(cross, ring) * mpp < 1.0, (cross, ring, mpp)
        # a click on the cross comes back as the WGS84 point
        page.evaluate(
            "() => map.once('click', (e) => { window.__clicked = [e.latlng.lng, e.latlng.lat]; })"
        )
        page.mouse.click(float(cross[0]), float(cross[1]))
        page.wait_for_function("() => window.__clicked !== undefined")
        lon, lat = page.evaluate("() => window.__clicked")
        assert GEOD.inv(lon, lat, *POINT)[2] < 1.0
        # ...and on the same screen pixel without the shift it would be ~590 m off
        wgs = page.evaluate(
            """([x, y]) => { const p = map.containerPointToLayerPoint([x, y])
                                        .add(map.getPixelOrigin());
                             const ll = L.CRS.EPSG3857.pointToLatLng(p, map.getZoom());
                             return [ll.lng, ll.lat]; }""",
            [float(cross[0]), float(cross[1])],
        )
        assert 400 < GEOD.inv(wgs[0], wgs[1], *POINT)[2] < 800
        # switching to a WGS84 choice keeps the view on the same WGS84 place
        page.select_option("select[name=basemap]", "none")
        assert page.get_attribute("#map", "data-basemap-crs") == "wgs84"
        centre = page.evaluate("() => [map.getCenter().lng, map.getCenter().lat]")
        assert GEOD.inv(centre[0], centre[1], *POINT)[2] < 1.0
    assert not errors, errors
    assert any(path.startswith(f"/{ZOOM}/") for path in tiles.requests)


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_switcher_offers_every_base_map_and_says_why_tianditu_is_off(
    gcj_server: str, role_keys: dict[str, str], lang: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        with signed_in_page(gcj_server, "/map/heatmap", role_keys["analyst"], viewport) as (
            page,
            errors,
        ):
            page.goto(f"{gcj_server}/map/heatmap?lang={lang}")  # the page's language switch
            assert page.get_attribute("html", "lang") == lang
            page.wait_for_selector("#map path.leaflet-interactive")
            options = page.eval_on_selector_all(
                "select[name=basemap] option",
                "(os) => os.map((o) => [o.value, o.textContent, o.disabled])",
            )
            aria = page.get_attribute("select[name=basemap]", "aria-label")
            page.wait_for_function(TILES_LOADED)
            page.screenshot(path=str(ARTIFACTS / f"basemap_switcher_{lang}_{name}.png"))
            # the menu opened out, to see every choice and the disabled ones
            page.evaluate(
                "() => { const s = document.querySelector('select[name=basemap]');"
                " s.size = s.options.length; s.style.maxWidth = 'none'; }"
            )
            page.locator(".basemap-switch").screenshot(
                path=str(ARTIFACTS / f"basemap_menu_{lang}_{name}.png")
            )
        assert not errors, errors
        values = [o[0] for o in options]
        assert values == [
            "configured",
            "osm",
            "tianditu-vec",
            "tianditu-img",
            "amap",
            "tencent",
            "none",
        ]
        disabled = {o[0]: o[2] for o in options}
        assert disabled["tianditu-vec"] and disabled["tianditu-img"]
        assert not any(disabled[v] for v in ("configured", "osm", "amap", "tencent", "none"))
        assert aria == ("base map" if lang == "en" else "底图")
        labels = {o[0]: o[1] for o in options}
        assert "GEO_TIANDITU_KEY" in labels["tianditu-vec"]
        if lang == "en":
            assert (
                labels["amap"] == "Amap (GCJ-02)"
                and "needs a Tianditu key" in labels["tianditu-img"]
            )
        else:
            assert (
                labels["amap"] == "高德地图 (GCJ-02)" and "需要天地图密钥" in labels["tianditu-img"]
            )


@pytest.mark.browser
def test_choosing_amap_shows_its_attribution_and_is_remembered(
    gcj_server: str, role_keys: dict[str, str]
) -> None:
    with signed_in_page(gcj_server, "/map/heatmap", role_keys["analyst"], DESKTOP) as (
        page,
        errors,
    ):
        # no tile leaves the machine in a test: the providers' hosts answer blank here
        page.route(
            "https://**/*",
            lambda route: route.fulfill(status=204, body=b""),
        )
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('cells')"
        )
        attributions = {}
        for choice in ("amap", "tencent", "osm"):
            page.select_option("select[name=basemap]", choice)
            attributions[choice] = page.inner_text(".leaflet-control-attribution")
            crs = page.get_attribute("#map", "data-basemap-crs")
            assert crs == ("gcj02" if choice in ("amap", "tencent") else "wgs84")
        page.select_option("select[name=basemap]", "tencent")
        page.reload()
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('cells')"
        )
        remembered = page.get_attribute("#map", "data-basemap")
        urls = page.evaluate(
            """() => { const out = []; map.eachLayer((l) => { if (l._url) out.push(l._url); });
                       return out; }"""
        )
    assert not errors, errors
    assert "高德地图" in attributions["amap"] and "腾讯地图" in attributions["tencent"]
    # each Chinese provider's map approval number (审图号), as the settings give it
    assert "审图号：GS(2025)5996号" in attributions["amap"]
    assert "审图号：GS(2026)1190号" in attributions["tencent"]
    assert "OpenStreetMap contributors" in attributions["osm"]
    assert "审图号" not in attributions["osm"]
    assert remembered == "tencent"
    assert urls == ["https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={-y}&styleid=1&scene=0"]


@pytest.mark.browser
def test_the_city_overview_gets_the_switcher_and_lands_its_grids_on_gcj02(
    gcj_server: str, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    """/map is drawn by folium: its grids go through the same CRS as the other pages."""
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    corner = shapely.get_coordinates(grids.geometry.iloc[0])[0]
    with signed_in_page(gcj_server, "/map", role_keys["dispatcher"], DESKTOP) as (page, errors):
        page.wait_for_selector("path.leaflet-interactive")
        page.wait_for_selector("select[name=basemap]")
        crs = page.get_attribute(".folium-map", "data-basemap-crs")
        shifted, plain = page.evaluate(
            """([lon, lat]) => {
                 const map = Object.values(window).find((v) => v instanceof L.Map);
                 const z = 17, ll = L.latLng(lat, lon);
                 return [map.options.crs, L.CRS.EPSG3857].map((c) => {
                   const p = c.latLngToPoint(ll, z); return [p.x, p.y]; });
               }""",
            [float(corner[0]), float(corner[1])],
        )
        page.screenshot(path=str(ARTIFACTS / "basemap_city_overview.png"))
    assert not errors, errors
    assert crs == "gcj02"
    glon, glat = (float(v[0]) for v in from_wgs84([corner[0]], [corner[1]], "gcj02"))
    mpp = _metres_per_pixel(corner[1], 17)
    assert math.dist(shifted, _global_pixel(glon, glat, 17)) * mpp < 0.05
    assert 400 < math.dist(plain, _global_pixel(glon, glat, 17)) * mpp < 800


@pytest.mark.browser
def test_the_planners_two_maps_switch_together(gcj_server: str, role_keys: dict[str, str]) -> None:
    with signed_in_page(gcj_server, "/map/planner", role_keys["planner"], (1500, 850)) as (
        page,
        errors,
    ):
        page.wait_for_selector("#today path.leaflet-interactive")
        selects = page.locator("select[name=basemap]")
        assert selects.count() == 2
        both = "() => [...document.querySelectorAll('.map')].map((m) => m.dataset.basemap)"
        assert page.evaluate(both) == ["configured", "configured"]
        selects.nth(0).select_option("none")
        assert page.evaluate(both) == ["none", "none"]
        assert selects.nth(1).input_value() == "none"
        selects.nth(1).select_option("configured")
        assert page.evaluate(both) == ["configured", "configured"]
        page.wait_for_function(TILES_LOADED)
        page.screenshot(path=str(ARTIFACTS / "basemap_planner.png"))
    assert not errors, errors


@pytest.mark.browser
@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_dispatch_console_draws_on_the_gcj02_scheme(
    gcj_server: str, role_keys: dict[str, str], viewport: tuple[int, int], name: str
) -> None:
    with signed_in_page(gcj_server, "/map/dispatch", role_keys["dispatcher"], viewport) as (
        page,
        errors,
    ):
        page.wait_for_selector("#map path.leaflet-interactive")
        assert page.get_attribute("#map", "data-basemap-crs") == "gcj02"
        if name == "phone":  # the console opens on its list there: the map is the other tab
            page.click("#tab-map")
        page.wait_for_function(TILES_LOADED)
        page.screenshot(path=str(ARTIFACTS / f"basemap_dispatch_{name}.png"))
    assert not errors, errors


def test_base_maps_follow_the_settings() -> None:
    osm = "OpenStreetMap"
    internal = "https://tiles.city.internal/{z}/{x}/{y}.png"
    # by default: every built-in base map with OpenStreetMap; only its own with a tile server
    assert offered_ids(MapSettings(), osm) == [
        "osm",
        "tianditu-vec",
        "tianditu-img",
        "amap",
        "tencent",
        "none",
    ]
    assert offered_ids(MapSettings(), internal) == ["configured", "none"]
    assert offered_ids(MapSettings(), "none") == ["none"]
    assert image_origins(MapSettings(), "none") == ()
    # Tianditu: disabled with the reason without a key; with one, its key is in the URLs
    closed = {c["id"]: c for c in base_maps(MapSettings(), osm)["choices"]}
    assert closed["tianditu-vec"]["disabled"]["en"].endswith("GEO_TIANDITU_KEY")
    assert closed["tianditu-vec"]["layers"] == []
    opened = {c["id"]: c for c in base_maps(MapSettings(tianditu_key="k&1"), osm)["choices"]}
    layers = [layer["url"] for layer in opened["tianditu-img"]["layers"]]
    assert opened["tianditu-img"]["disabled"] is None and len(layers) == 2
    assert "LAYER=img" in layers[0] and "LAYER=cia" in layers[1]
    assert all(url.endswith("tk=k%261") and "{tk}" not in url for url in layers)
    assert base_maps(MapSettings(map_basemap="amap"), osm)["default"] == "amap"
    # a disabled default falls back to the first usable choice
    assert base_maps(MapSettings(map_basemap="tianditu-vec"), osm)["default"] == "osm"
    custom = base_maps(MapSettings(map_tiles_crs="gcj02"), internal)
    assert custom["default"] == "configured" and custom["choices"][0]["crs"] == "gcj02"
    # the page policy allows images from the offered base maps only
    policy = content_security_policy(osm, None, image_origins(MapSettings(), osm))
    for host in (
        "https://*.tianditu.gov.cn",
        "https://*.is.autonavi.com",
        "https://*.map.gtimg.com",
    ):
        assert host in policy
    narrow = MapSettings(map_basemaps=["configured"])
    assert "autonavi" not in content_security_policy(
        internal, None, image_origins(narrow, internal)
    )
    with pytest.raises(ValueError, match="unknown baidu"):
        MapSettings(map_basemaps=["osm", "baidu"])
    # the map approval numbers (审图号): the providers' current ones by default, settable
    defaults = base_maps(MapSettings(), osm)["choices"]
    approvals = {c["id"]: (c["approval"], c["logo"]) for c in defaults}
    assert approvals["tianditu-vec"][0] == approvals["tianditu-img"][0] == "GS(2024)0568号"
    assert approvals["amap"] == ("GS(2025)5996号", None)
    assert approvals["tencent"] == ("GS(2026)1190号", None)
    assert approvals["osm"] == approvals["none"] == ("", None)
    logo = approvals["tianditu-vec"][1]
    assert logo["url"].startswith("https://api.tianditu.gov.cn/") and logo["alt"] == "天地图"
    assert "https://*.tianditu.gov.cn" in content_security_policy(
        osm, None, image_origins(MapSettings(), osm)
    )  # the logo's host is allowed wherever Tianditu is offered
    later = MapSettings(tianditu_approval="GS(2027)0001号", amap_approval="GS(2027)0002号")
    moved = {c["id"]: c["approval"] for c in base_maps(later, osm)["choices"]}
    assert moved["tianditu-img"] == "GS(2027)0001号" and moved["amap"] == "GS(2027)0002号"


def test_pages_carry_the_base_maps_escaped(gcj_server: str, role_keys: dict[str, str]) -> None:
    import httpx

    with httpx.Client(base_url=gcj_server, headers={"X-API-Key": role_keys["analyst"]}) as client:
        page = client.get("/map/heatmap")
        assert page.status_code == 200
        assert 'data-basemaps="{&#34;default&#34;: &#34;configured&#34;' in page.text
        assert "/static/vendor/gcoord/gcoord.global.prod.js" in page.text
        policy = page.headers["content-security-policy"]
        assert "https://*.map.gtimg.com" in policy and "http://127.0.0.1:" in policy


# A stand-in for Tianditu's logo (no image leaves or enters the machine in a test).
def _logo_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (53, 22), (30, 90, 200))
    ImageDraw.Draw(image).text((6, 5), "TDT", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_tianditu_shows_its_logo_and_approval_number_and_amap_its_own(
    settings: Settings, loaded_city: DemoCity, role_keys: dict[str, str], lang: str
) -> None:
    own = settings.model_copy(
        update={
            "maps": MapSettings(
                map_basemaps=["tianditu-vec", "amap", "tencent", "osm"],
                tianditu_key="test-key",
                tianditu_approval="GS(2024)0568号",
                # a setting is text, never markup, wherever it is shown
                tencent_approval=MARKUP,
            )
        }
    )
    logo = _logo_png()
    seen: dict[str, str] = {}
    marked_images: dict[str, int] = {}
    with serving(create_app(own)) as base:
        for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
            with signed_in_page(base, "/map/heatmap", role_keys["analyst"], viewport) as (
                page,
                errors,
            ):
                page.route(
                    "https://**/*",
                    lambda route: (
                        route.fulfill(status=200, body=logo, content_type="image/png")
                        if route.request.url.endswith("/logo.png")
                        else route.fulfill(status=204, body=b"")
                    ),
                )
                page.goto(f"{base}/map/heatmap?lang={lang}")
                # the map has its view (layers added before it wait for it, attribution too)
                page.wait_for_function("() => window.map && map._loaded")
                for choice in ("tianditu-vec", "amap", "tencent"):
                    page.select_option("select[name=basemap]", choice)
                    seen[f"{choice}-{name}"] = page.inner_text(".leaflet-control-attribution")
                    if choice == "tencent":
                        marked_images[name] = page.locator(
                            ".leaflet-control-attribution img, .leaflet-control-attribution b"
                        ).count()
                        assert page.evaluate("() => window.pwned") is None
                    if choice == "tianditu-vec":
                        img = page.locator(".leaflet-control-attribution img.basemap-logo")
                        assert img.count() == 1
                        assert img.get_attribute("src") == TIANDITU_LOGO_URL
                        page.wait_for_function(
                            "() => document.querySelector('img.basemap-logo').naturalWidth > 0"
                        )
                        box = img.bounding_box()
                        assert box is not None and box["width"] == 53 and box["height"] == 22
                        # the attribution is on the screen, whole (not cut at the edge)
                        bar = page.locator(".leaflet-control-attribution").bounding_box()
                        assert bar is not None and bar["x"] >= 0
                        assert bar["x"] + bar["width"] <= viewport[0] + 0.5
                        # one line, under every other control of the page, covering none
                        assert bar["height"] <= 24
                        for other in (".basemap-switch", ".lang-switch", "#legend"):
                            near = page.locator(other).bounding_box()
                            assert near is not None
                            assert near["y"] + near["height"] <= bar["y"] + 0.5, other
                        page.screenshot(
                            path=str(ARTIFACTS / f"basemap_tianditu_marks_{lang}_{name}.png")
                        )
            assert not errors, errors
    for name in ("desktop", "phone"):
        assert "审图号：GS(2024)0568号" in seen[f"tianditu-vec-{name}"]
        assert "甲测资字1100471" in seen[f"tianditu-vec-{name}"]
        assert "审图号：GS(2025)5996号" in seen[f"amap-{name}"]
        assert f"审图号：{MARKUP}" in seen[f"tencent-{name}"]
        assert marked_images[name] == 0
        assert "0568" not in seen[f"amap-{name}"]  # one provider's marks at a time
