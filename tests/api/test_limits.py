"""Hard edges: sizes, counts, rates and timeouts answer clear problems, and write nothing."""

from __future__ import annotations

import io
import json
import math

import geopandas as gpd
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import Settings
from tests.conftest import grid_point, problem


def _app(settings: Settings, role_keys: dict[str, str], **changes: object) -> TestClient:
    tuned = settings.model_copy(deep=True)
    for dotted, value in changes.items():
        section, field = dotted.split("__")
        setattr(getattr(tuned, section), field, value)
    return TestClient(create_app(tuned), headers={"X-API-Key": role_keys["admin"]})


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_oversized_bodies_are_413_before_any_work(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    before = _count(engine, "incidents")
    huge = {
        "category": "traffic",
        "location": {"lon": lon, "lat": lat},
        "description": "x" * 1_200_000,
    }
    response = client.post(
        "/incidents", content=json.dumps(huge), headers={"content-type": "application/json"}
    )
    assert problem(response)["status"] == 413
    assert problem(response)["title"] == "Body too large"
    chinese = client.post(
        "/incidents",
        content=json.dumps(huge),
        headers={"content-type": "application/json", "Accept-Language": "zh-CN"},
    )
    assert problem(chinese)["title"] == "请求体过大" and "字节" in problem(chinese)["detail"]
    # Without a Content-Length (chunked), the limit holds while streaming.
    chunks = (b'{"category": "traffic", "description": "' + b"y" * 400_000 for _ in range(4))
    streamed = client.post(
        "/incidents", content=chunks, headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert _count(engine, "incidents") == before


def test_uploads_have_their_own_larger_limit(
    settings: Settings, role_keys: dict[str, str], engine: Engine
) -> None:
    before = _count(engine, "households")
    with _app(settings, role_keys, limits__upload_bytes=10_000) as small:
        body = b"lon,lat,household_size\n" + b"114.3,30.59,2\n" * 2000
        response = small.post("/imports/households", files={"file": ("big.csv", body, "text/csv")})
        assert problem(response)["status"] == 413
    assert _count(engine, "households") == before


def test_features_per_upload_and_vertices_per_geometry(
    settings: Settings, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    with _app(
        settings, role_keys, limits__features_per_upload=3, limits__vertices_per_geometry=50
    ) as tight:
        rows = b"lon,lat,household_size\n" + f"{lon},{lat},2\n".encode() * 4
        many = tight.post("/imports/households", files={"file": ("m.csv", rows, "text/csv")})
        body = problem(many)
        assert body["status"] == 413 and "at most 3" in body["detail"]
        circle = shapely.Point(lon, lat).buffer(0.001, quad_segs=32)  # 129 vertices
        square = shapely.box(lon, lat, lon + 0.001, lat + 0.001)
        frame = gpd.GeoDataFrame({"code": ["ROUND", "SQUARE"]}, geometry=[circle, square], crs=4326)
        buffer = io.BytesIO(frame.to_json().encode())
        report = tight.post(
            "/imports/boundaries",
            data={"level": "grid"},
            files={"file": ("b.geojson", buffer.getvalue(), "application/geo+json")},
        ).json()
        assert report["inserted"] == 1
        assert report["rejects"] == [{"row": 1, "reason": "too many vertices (129 > 50)"}]


def test_bbox_and_page_size_limits(client: TestClient) -> None:
    country = "70,15,135,55"
    for path in ("/areas", "/incidents"):
        body = problem(client.get(path, params={"bbox": country}))
        assert body["status"] == 422 and "km²" in body["detail"]
    assert problem(client.get("/incidents", params={"limit": 5000}))["status"] == 422


def test_rate_limit_answers_429_with_retry_after(
    settings: Settings, role_keys: dict[str, str]
) -> None:
    with _app(settings, role_keys, limits__requests_per_minute=60, limits__burst=3) as limited:
        codes = [limited.get("/areas", params={"level": "district"}).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        last = limited.get("/areas", params={"level": "district"})
        assert problem(last)["status"] == 429 and int(last.headers["retry-after"]) >= 1
        assert limited.get("/health").status_code == 200  # health is never rate limited


def test_a_slow_query_answers_503_not_a_hung_worker(
    settings: Settings, role_keys: dict[str, str]
) -> None:
    with _app(settings, role_keys, database__statement_timeout_ms=1) as slow:
        response = slow.get("/map", params={"days": 3000})
        body = problem(response)
        assert body["status"] == 503 and body["code"] == "query-timeout"
        assert response.headers["retry-after"] == "5"


def test_the_rate_limit_detail_says_what_retry_after_says(
    settings: Settings, role_keys: dict[str, str]
) -> None:
    with _app(settings, role_keys, limits__requests_per_minute=60, limits__burst=1) as limited:
        limited.get("/areas", params={"level": "district"})
        refused = limited.get("/areas", params={"level": "district"})
        assert refused.status_code == 429
        seconds = int(refused.headers["retry-after"])
        assert f"retry in {seconds} s" in problem(refused)["detail"]


def test_computed_ogc_layers_and_hot_spot_tiles_take_an_expensive_work_slot(
    settings: Settings, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    # Every new window is a new computation: an analyst sending many at once must not get
    # past the per-user limit of expensive work that /hotspots itself keeps (review, issue 16).
    with _app(settings, role_keys, limits__heavy_per_user=1, limits__heavy_total=4) as tight:
        runtime = tight.app.state.runtime  # type: ignore[attr-defined]
        with engine.connect() as conn:
            user_id = conn.execute(
                text("SELECT id FROM users WHERE name = 'test-admin'")
            ).scalar_one()
        with runtime.heavy_work.slot(f"user:{user_id}"):  # the user's one slot, busy
            items = tight.get(
                "/collections/hotspots-h3-res8/items",
                params={"datetime": "2020-01-01T00:00:00Z/2030-01-01T00:00:00Z", "limit": 1},
            )
            tile = tight.get("/tiles/hotspots/12/3349/1688.mvt", params={"res": 9})
        assert items.status_code == 429, items.text
        assert tile.status_code == 429, tile.text
        # with the slot free the same requests are answered, and a cached page takes none
        again = tight.get(
            "/collections/hotspots-h3-res8/items",
            params={"datetime": "2020-01-01T00:00:00Z/2030-01-01T00:00:00Z", "limit": 1},
        )
        assert again.status_code == 200, again.text
        with runtime.heavy_work.slot(f"user:{user_id}"):
            cached = tight.get(
                "/collections/hotspots-h3-res8/items",
                params={
                    "datetime": "2020-01-01T00:00:00Z/2030-01-01T00:00:00Z",
                    "limit": 1,
                    "offset": 1,
                },
            )
        assert cached.status_code == 200, cached.text


def test_a_map_loading_a_new_hot_spot_layer_gets_every_tile(
    settings: Settings, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    # Many tiles of a layer not built yet arrive at once: one request builds it (one slot),
    # the others wait for it, none is refused (the benchmark's 16 clients got 429s before).
    from concurrent.futures import ThreadPoolExecutor

    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    z = 11

    def tile_of(lon: float, lat: float) -> tuple[int, int]:  # the slippy-map tile numbers
        n = 2**z
        rad = math.radians(lat)
        return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(rad)) / math.pi) / 2 * n)

    x0, y1 = tile_of(minx, miny)
    x1, y0 = tile_of(maxx, maxy)
    tiles = [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)][:12]
    with _app(settings, role_keys, limits__heavy_per_user=1, limits__heavy_total=2) as tight:
        params = {"res": 8, "since": "2020-01-01T00:00:00Z"}

        def fetch(tile: tuple[int, int]) -> int:
            x, y = tile
            return tight.get(f"/tiles/hotspots/{z}/{x}/{y}.mvt", params=params).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(fetch, tiles))
    assert set(codes) <= {200, 204} and codes, codes
