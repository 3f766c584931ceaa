"""Hot spot class and emerging pattern labels on the OGC API Features collections and the
vector tiles (issue 19): ``class`` / ``pattern`` stay ArcGIS's English values (the contract),
``class_label`` / ``pattern_label`` come in the request's language (OGC: ``Accept-Language``
or ``lang``; tiles: ``?lang=``). Read with OWSLib and with GDAL (pyogrio) as a client would,
the tiles decoded with mapbox_vector_tile."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mapbox_vector_tile
from fastapi.testclient import TestClient
from owslib.ogcapi.features import Features

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point, problem

# ArcGIS's names and their Simplified Chinese (ArcGIS's own documentation of the tools)
CHINESE_CLASSES = {
    "Hot Spot - 99% Confidence": "热点 - 99% 置信度",
    "Hot Spot - 95% Confidence": "热点 - 95% 置信度",
    "Hot Spot - 90% Confidence": "热点 - 90% 置信度",
    "Not Significant": "不显著",
    "Cold Spot - 90% Confidence": "冷点 - 90% 置信度",
    "Cold Spot - 95% Confidence": "冷点 - 95% 置信度",
    "Cold Spot - 99% Confidence": "冷点 - 99% 置信度",
}
CHINESE_PATTERNS = {
    "New Hot Spot": "新增的热点",
    "Consecutive Hot Spot": "连续的热点",
    "Intensifying Hot Spot": "加强的热点",
    "Persistent Hot Spot": "持续的热点",
    "Diminishing Hot Spot": "逐渐减少的热点",
    "Sporadic Hot Spot": "分散的热点",
    "Oscillating Hot Spot": "振荡的热点",
    "Historical Hot Spot": "历史的热点",
    "New Cold Spot": "新增的冷点",
    "Consecutive Cold Spot": "连续的冷点",
    "Intensifying Cold Spot": "加强的冷点",
    "Persistent Cold Spot": "持续的冷点",
    "Diminishing Cold Spot": "逐渐减少的冷点",
    "Sporadic Cold Spot": "分散的冷点",
    "Oscillating Cold Spot": "振荡的冷点",
    "Historical Cold Spot": "历史的冷点",
    "No Pattern Detected": "未检测到模式",
}


def _all_items(api: Features, cid: str, **params: Any) -> list[dict[str, Any]]:
    first = api.collection_items(cid, limit=1, **params)
    return api.collection_items(cid, limit=first["numberMatched"], **params)["features"]


def test_owslib_reads_chinese_class_and_pattern_labels(
    live_server: str, role_keys: dict[str, str]
) -> None:
    key = {"X-API-Key": role_keys["analyst"]}
    chinese = Features(live_server, headers={**key, "Accept-Language": "zh-CN"})
    hot = _all_items(chinese, "hotspots-h3-res8")
    assert hot
    classes = {f["properties"]["class"] for f in hot}
    assert classes <= set(CHINESE_CLASSES) and len(classes) > 1, classes
    for feature in hot:
        props = feature["properties"]
        assert props["class_label"] == CHINESE_CLASSES[props["class"]], props
    emerging = _all_items(chinese, "emerging-hotspots-h3-res8")
    assert emerging
    for feature in emerging:
        props = feature["properties"]
        assert props["pattern_label"] == CHINESE_PATTERNS[props["pattern"]], props
    # one feature in Chinese; the page switch ``lang`` instead of the header
    fid = str(hot[0]["id"])
    one = chinese.collection_item("hotspots-h3-res8", fid)
    assert one["properties"]["class_label"] == CHINESE_CLASSES[one["properties"]["class"]]
    english = Features(live_server, headers={**key, "Accept-Language": "en"})
    switched = english.collection_items("hotspots-h3-res8", limit=5, lang="zh-CN")["features"]
    for feature in switched:
        props = feature["properties"]
        assert props["class_label"] == CHINESE_CLASSES[props["class"]], props
    plain = english.collection_item("hotspots-h3-res8", fid)
    assert plain["properties"]["class_label"] == plain["properties"]["class"]
    # every other collection is as it was: no labels where there is nothing to label
    grid = english.collection_items("grids", limit=1, lang="zh-CN")["features"][0]
    assert "class_label" not in grid["properties"]


# GDAL in a child process (as tests/layers/test_ogc_clients.py): in this process it would hold
# the interpreter while the server it reads runs in a thread of it
GDAL_READ = """
import json, sys
import pyogrio
frame = pyogrio.read_dataframe(sys.argv[1], layer=sys.argv[2])
print(json.dumps(frame[["class", "class_label"]].to_dict("records"), ensure_ascii=False))
"""


def test_gdal_reads_the_labels_as_a_field(
    live_server: str, role_keys: dict[str, str], tmp_path: Path
) -> None:
    # the README's recipe for the key (a header file), with the language beside it
    headers = tmp_path / "headers.txt"
    headers.write_text(f"X-API-Key: {role_keys['analyst']}\nAccept-Language: zh-CN\n")
    env = {**os.environ, "GDAL_HTTP_HEADER_FILE": str(headers), "GDAL_HTTP_TIMEOUT": "60"}
    env.pop("GDAL_HTTP_HEADERS", None)
    proc = subprocess.run(
        [sys.executable, "-c", GDAL_READ, f"OAPIF:{live_server}", "hotspots-h3-res8"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert rows
    for row in rows:
        assert row["class_label"] == CHINESE_CLASSES[row["class"]], row


def test_unknown_parameters_are_still_refused_beside_lang(
    client: TestClient, role_keys: dict[str, str]
) -> None:
    headers = {"X-API-Key": role_keys["analyst"]}
    ok = client.get("/collections/hotspots-h3-res8/items", params={"lang": "zh-CN", "limit": 1})
    assert ok.status_code == 200, ok.text
    body = problem(
        client.get(
            "/collections/hotspots-h3-res8/items",
            params={"lang": "zh-CN", "colour": "red"},
            headers=headers,
        )
    )
    assert body["status"] == 400
    assert body["detail"].startswith("未知的查询参数 colour；此资源接受"), body


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_hotspot_tiles_carry_labels_in_the_tile_language(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city, loaded_city.incidents.grid_code.value_counts().index[0])
    x, y = _tile_of(lon, lat, 11)
    url = f"/tiles/hotspots/11/{x}/{y}.mvt"
    tiles = {}
    for lang in ("zh-CN", "en"):
        response = client.get(url, params={"lang": lang})
        assert response.status_code == 200, response.text[:300]
        tiles[lang] = response
        features = mapbox_vector_tile.decode(response.content)["hotspots"]["features"]
        assert features
        for feature in features:
            props = feature["properties"]
            expected = CHINESE_CLASSES[props["class"]] if lang == "zh-CN" else props["class"]
            assert props["class_label"] == expected, props
    # the two languages are two bodies: their validators differ
    assert tiles["zh-CN"].headers["etag"] != tiles["en"].headers["etag"]
    tilejson = client.get("/tiles/hotspots.json").json()
    assert tilejson["vector_layers"][0]["fields"]["class_label"] == "String"
