"""HTTP as web maps, GIS clients and proxies expect it (issue 16): CORS, br/gzip compression,
conditional GETs with weak entity tags, and links behind a reverse proxy."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator

import brotli
import pytest
from fastapi.testclient import TestClient

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import ApiSettings, Settings
from tests.conftest import grid_point

SITE = "https://maps.example.org"


def _app_client(
    settings: Settings, key: str, client: tuple[str, int] = ("testclient", 50000), **api: object
) -> TestClient:
    changed = settings.model_copy(update={"api": ApiSettings(map_tiles="none", **api)})
    return TestClient(create_app(changed), headers={"X-API-Key": key}, client=client)


@pytest.fixture
def cors_client(settings: Settings, role_keys: dict[str, str]) -> Iterator[TestClient]:
    with _app_client(settings, role_keys["admin"], cors_origins=[SITE]) as c:
        yield c


def test_preflight_from_an_allowed_origin_allows_the_auth_headers(cors_client: TestClient) -> None:
    response = cors_client.options(
        "/heatmap/h3",
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-api-key, if-none-match",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SITE
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "x-api-key", "if-none-match"):
        assert header in allowed
    # no cookies cross-site: the browser must not send the sign-in session
    assert "access-control-allow-credentials" not in response.headers


def test_a_real_request_from_an_allowed_origin_exposes_the_etag(cors_client: TestClient) -> None:
    response = cors_client.get("/collections", headers={"Origin": SITE})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SITE
    assert "etag" in response.headers["access-control-expose-headers"].lower()


def test_other_origins_get_no_cors_headers(cors_client: TestClient, client: TestClient) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    refused = cors_client.options("/heatmap/h3", headers=preflight)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # none configured (the default): no CORS headers at all
    plain = client.get("/collections", headers={"Origin": SITE})
    assert "access-control-allow-origin" not in plain.headers


def test_cors_origins_read_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEO_CORS_ORIGINS", f"{SITE}/, https://b.example.org")
    assert ApiSettings().cors_origins == [SITE, "https://b.example.org"]
    monkeypatch.setenv("GEO_CORS_ORIGINS", f'["{SITE}"]')
    assert ApiSettings().cors_origins == [SITE]


@pytest.mark.parametrize(("encoding", "decode"), [("br", brotli.decompress), ("gzip", None)])
def test_geojson_is_compressed_for_clients_that_accept_it(
    client: TestClient, loaded_city: DemoCity, encoding: str, decode: object
) -> None:
    plain = client.get("/heatmap/h3?res=9", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    # httpx decodes what it understands; read the raw bytes to see what went over the wire
    with client.stream(
        "GET", "/heatmap/h3?res=9", headers={"Accept-Encoding": encoding}
    ) as response:
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == encoding
        assert "accept-encoding" in response.headers["vary"].lower()
    body = gzip.decompress(raw) if encoding == "gzip" else brotli.decompress(raw)
    assert body == plain.content
    assert len(raw) < len(plain.content) / 3


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("br;q=0, gzip", "gzip"), ("gzip;q=0", None), ("br;q=0, gzip;q=0", None), ("br", "br")],
)
def test_a_coding_weighted_zero_is_never_sent(
    client: TestClient, loaded_city: DemoCity, accept: str, expected: str | None
) -> None:
    # RFC 9110 12.5.3: "q=0" means "not acceptable" (review, issue 16: br;q=0 got br)
    with client.stream("GET", "/heatmap/h3?res=9", headers={"Accept-Encoding": accept}) as r:
        assert r.status_code == 200
        assert r.headers.get("content-encoding") == expected


def test_vector_tiles_are_compressed(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    n = 2**13
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    with client.stream(
        "GET", f"/tiles/grids/13/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"


def test_compression_can_be_switched_off(settings: Settings, role_keys: dict[str, str]) -> None:
    with _app_client(settings, role_keys["admin"], compress=False) as c:
        response = c.get("/heatmap/h3?res=9", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers


@pytest.mark.parametrize(
    "path", ["/heatmap/h3?res=8", "/heatmap/h3?res=8&format=json", "/collections"]
)
def test_geojson_and_json_answers_carry_a_weak_etag_and_answer_304(
    client: TestClient, loaded_city: DemoCity, path: str
) -> None:
    first = client.get(path)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    assert first.headers["cache-control"] == "private, no-cache"
    opaque = tag[2:]
    # what browsers send back: the tag itself, its strong form after a proxy, a list, or *
    for sent in (tag, opaque, f'"nope", {tag}', "*"):
        again = client.get(path, headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["etag"] == tag
    changed = client.get(path, headers={"If-None-Match": 'W/"something-else"'})
    assert changed.status_code == 200
    assert changed.content == first.content


def test_the_etag_changes_when_the_data_does(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = f"/heatmap/h3?res=9&bbox={lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    before = client.get(path)
    made = client.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon, "lat": lat}}
    )
    assert made.status_code == 201, made.text
    after = client.get(path, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]


def test_tiles_take_weak_and_listed_tags(client: TestClient, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    n = 2**13
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    path = f"/tiles/grids/13/{x}/{y}.mvt"
    tag = client.get(path).headers["etag"]
    assert tag.startswith('W/"')
    assert client.get(path, headers={"If-None-Match": tag[2:]}).status_code == 304
    assert client.get(path, headers={"If-None-Match": f'"x", {tag}'}).status_code == 304


def test_errors_and_writes_get_no_etag(client: TestClient) -> None:
    bad = client.get("/heatmap/h3?res=99")
    assert bad.status_code in (400, 422)
    assert "etag" not in bad.headers
    assert client.get("/heatmap/h3?res=99", headers={"If-None-Match": "*"}).status_code in (
        400,
        422,
    )


def test_links_follow_a_trusted_proxy(settings: Settings, role_keys: dict[str, str]) -> None:
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "gis.city.example",
        "X-Forwarded-Prefix": "/geo/",
    }
    with _app_client(settings, role_keys["admin"], client=("127.0.0.1", 40000)) as proxied:
        landing = proxied.get("/", headers=forwarded)
        assert landing.status_code == 200
        hrefs = [link["href"] for link in landing.json()["links"]]
        assert hrefs, landing.json()
        assert all(h.startswith("https://gis.city.example/geo/") for h in hrefs), hrefs
        items = proxied.get("/collections/grids/items?limit=1", headers=forwarded).json()
        nexts = [link["href"] for link in items["links"] if link["rel"] == "next"]
        assert nexts and nexts[0].startswith("https://gis.city.example/geo/collections/grids/")
        # a prefix that is not a plain path is ignored, not written into links
        odd = proxied.get("/", headers={**forwarded, "X-Forwarded-Prefix": "/../x?y"})
        assert all(
            link["href"].startswith("https://gis.city.example/") and "/../" not in link["href"]
            for link in odd.json()["links"]
        )


def test_forwarding_headers_from_other_peers_are_ignored(client: TestClient) -> None:
    landing = client.get(
        "/",
        headers={
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Prefix": "/evil",
        },
    )
    hrefs = [link["href"] for link in landing.json()["links"]]
    assert not any("evil" in h for h in hrefs), hrefs
