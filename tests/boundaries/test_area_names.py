"""Areas carry a name per language (issue 19, migration 0036): the demo city's areas have their
Chinese names beside the romanized ones, ``GET /areas`` returns ``names`` (``name`` as it
was), and a boundary import reads ``name_en`` / ``name_zh`` columns."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.demo.geography import chinese_name
from tests.conftest import ARTIFACTS, problem

HAN = r"[\u4e00-\u9fff]"
PATTERNS = {
    "district": re.compile(rf"{HAN}{{2}}区"),
    "street": re.compile(rf"{HAN}{{2}}街道"),
    "community": re.compile(rf"{HAN}{{2}}社区"),
    "grid": re.compile(rf"{HAN}{{2}}社区第\d+网格"),
}
WUHAN = Path("/work/shared/data/hubei/wuhan_districts_wgs84.geojson")


def test_every_demo_area_has_its_chinese_name_in_the_api(
    client: TestClient, loaded_city: DemoCity
) -> None:
    for level, pattern in PATTERNS.items():
        body = client.get("/areas", params={"level": level}).json()
        features = body["features"]
        assert len(features) == int((loaded_city.areas.level == level).sum())
        for feature in features:
            props = feature["properties"]
            assert props["names"]["en"] == props["name"], props
            assert pattern.fullmatch(props["names"]["zh-CN"]), props
            assert props["names"]["zh-CN"] == chinese_name(props["name"])
    # a grid is named after its community, in both languages
    grid = client.get("/areas", params={"level": "grid"}).json()["features"][0]["properties"]
    parent = next(
        f["properties"]
        for f in client.get("/areas", params={"level": "community"}).json()["features"]
        if f["properties"]["id"] == grid["parent_id"]
    )
    assert grid["names"]["zh-CN"].startswith(parent["names"]["zh-CN"] + "第")


def test_chinese_names_are_deterministic_and_distinct_from_romanized_ones() -> None:
    assert chinese_name("Hongqing District") == "洪青区"
    assert chinese_name("Taijin Street") == "泰金街道"
    assert chinese_name("Taijin Community") == "泰金社区"
    assert chinese_name("Taijin Grid 7") == "泰金社区第7网格"
    assert chinese_name("Taijin Grid") is None and chinese_name("Jiang'an District") is None


def test_a_boundary_import_reads_names_per_language(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    frame = gpd.read_file(WUHAN)
    frame = frame[frame.district.isin(["江岸区", "江汉区"])].copy()
    frame["name_en"] = frame.district.map({"江岸区": "Jiang'an District", "江汉区": None})
    frame = frame[["adcode", "district", "name_en", "geometry"]]
    buffer = io.BytesIO()
    frame.to_file(buffer, driver="GeoJSON")
    response = client.post(
        "/imports/boundaries",
        files={"file": ("wuhan.geojson", buffer.getvalue(), "application/geo+json")},
        data={
            "level": "district",
            "version_name": "wuhan names",
            "map": ["adcode=code", "district=name_zh"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["inserted"] == 2, body
    areas = client.get(
        "/areas", params={"version": body["version_id"], "level": "district"}
    ).json()["features"]
    by_code = {f["properties"]["code"]: f["properties"] for f in areas}
    assert by_code["420102"]["names"] == {"en": "Jiang'an District", "zh-CN": "江岸区"}
    assert by_code["420102"]["name"] == "Jiang'an District"
    # only the Chinese name: it is the name as given too
    assert by_code["420103"]["names"] == {"zh-CN": "江汉区"}
    assert by_code["420103"]["name"] == "江汉区"
    with engine.connect() as conn:
        stored = (
            conn.execute(
                text("SELECT names->>'zh-CN' FROM areas WHERE version_id = :v ORDER BY code"),
                {"v": body["version_id"]},
            )
            .scalars()
            .all()
        )
    assert stored == ["江岸区", "江汉区"]


def test_a_name_column_mapped_to_an_unknown_field_is_refused(client: TestClient) -> None:
    frame = gpd.read_file(WUHAN).head(2)[["adcode", "district", "geometry"]]
    buffer = io.BytesIO()
    frame.to_file(buffer, driver="GeoJSON")
    body = problem(
        client.post(
            "/imports/boundaries",
            files={"file": ("wuhan.geojson", buffer.getvalue(), "application/geo+json")},
            data={"level": "district", "map": ["adcode=code", "district=name_fr"]},
        )
    )
    assert body["status"] == 422 and "name_fr" in body["detail"], body


def _names_by_code(client: TestClient, level: str) -> dict[str, dict[str, str]]:
    features = client.get("/areas", params={"level": level}).json()["features"]
    return {f["properties"]["code"]: f["properties"]["names"] for f in features}


def test_reports_console_and_city_map_show_names_in_the_request_language(
    client: TestClient, loaded_city: DemoCity
) -> None:
    districts = _names_by_code(client, "district")
    chinese = {"Accept-Language": "zh-CN"}
    english = {"Accept-Language": "en"}
    report = client.get(
        "/reports/performance", params={"level": "district"}, headers=chinese
    ).json()
    assert report["areas"]
    for area in report["areas"]:
        assert area["name"] == districts[area["code"]]["zh-CN"], area
    report_en = client.get(
        "/reports/performance", params={"level": "district"}, headers=english
    ).json()
    for area in report_en["areas"]:
        assert area["name"] == districts[area["code"]]["en"], area
    grids = _names_by_code(client, "grid")
    items = client.get("/console/incidents", params={"limit": 20}, headers=chinese).json()
    assert items["items"]
    for item in items["items"]:
        if item["grid_code"] is not None:
            assert item["grid_name"] == grids[item["grid_code"]]["zh-CN"], item
    # the city map page embeds its layers as JSON (non-ASCII escaped)
    some_grid = next(iter(grids.values()))
    chinese_json = json.dumps(some_grid["zh-CN"])[1:-1]
    html = client.get("/map", headers=chinese).text
    assert chinese_json in html or some_grid["zh-CN"] in html
    english_html = client.get("/map", headers=english).text
    assert chinese_json not in english_html and some_grid["zh-CN"] not in english_html
    assert json.dumps(some_grid["en"])[1:-1] in english_html


@pytest.mark.browser
def test_the_reports_page_in_chinese_shows_chinese_area_names(
    live_server: str, role_keys: dict[str, str], client: TestClient
) -> None:
    from tests.api.test_pages_language import browser_page, shot, sign_in

    districts = {n["zh-CN"] for n in _names_by_code(client, "district").values()}
    with browser_page(live_server, "zh-CN") as (page, errors):
        sign_in(page, live_server, "/reports", role_keys["analyst"])
        page.wait_for_selector("#status[data-ready='1']", timeout=60_000)
        shown = set(page.locator("#areas td").all_text_contents())
        assert districts & shown, (districts, sorted(shown)[:20])
        assert not {n for n in shown if re.fullmatch(r"[A-Z][a-z]+ District", n)}
        page.screenshot(path=str(ARTIFACTS / "zh-CN_reports-area-names.png"), full_page=True)
        shot(page, "reports")
        assert errors == []
