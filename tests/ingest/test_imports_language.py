"""An import's refusals in the request's language (issue 19): the reasons a row was rejected
and why a file was refused, Chinese for ``Accept-Language: zh-CN``; the reasons' groups and
the stored rows are the same in either language."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_service.demo.city import DemoCity
from tests.conftest import csv_upload, grid_point, problem, scalar

CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9"}


def test_rejected_rows_of_an_import_carry_chinese_reasons(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {
            "id": "zh-1",
            "kind": "public_order",
            "when": "2026-11-01T22:00:00+08:00",
            "lon": lon,
            "lat": lat,
        },
        {"id": "zh-2", "kind": "NOPE", "when": "2026-11-01T22:00:00+08:00", "lon": lon, "lat": lat},
        {"id": "zh-3", "kind": "public_order", "when": "yesterday", "lon": lon, "lat": lat},
        {
            "id": "zh-4",
            "kind": "public_order",
            "when": "2026-11-01T22:00:00+08:00",
            "lon": "114,3",
            "lat": "30,6",
        },
        {
            "id": "zh-1",
            "kind": "public_order",
            "when": "2026-11-01T22:00:00+08:00",
            "lon": lon,
            "lat": lat,
        },
    ]
    form = {"map": ["kind=category", "when=reported_at"]}
    before = scalar(engine, "SELECT count(*) FROM incidents")
    response = client.post(
        "/imports/incidents", files=csv_upload(rows, "zh.csv"), data=form, headers=CHINESE
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["read"], body["inserted"], body["rejected"]) == (5, 1, 4), body
    assert body["rejects"] == [
        {"row": 2, "reason": "未知类别 'NOPE'"},
        {"row": 3, "reason": "无法解析的时间"},
        {
            "row": 4,
            "reason": "无法读取的坐标 '114,3', '30,6'（应为带小数点的十进制度数）",
        },
        {"row": 5, "reason": "重复的 id：'zh:zh-1' 首次出现在第 1 行"},
    ], body["rejects"]
    # grouped for the summary without the values, as in English
    assert body["rejected_by_reason"]["未知类别"] == 1
    assert body["rejected_by_reason"]["重复的 id"] == 1
    assert scalar(engine, "SELECT count(*) FROM incidents") == before + 1
    # the same file in English: the same rows, English reasons
    english = client.post(
        "/imports/incidents",
        files=csv_upload([{**r, "id": r["id"] + "-en"} for r in rows], "zh.csv"),
        data=form,
        headers={"Accept-Language": "en"},
    ).json()
    assert [r["reason"] for r in english["rejects"]][:2] == [
        "unknown category 'NOPE'",
        "unparseable timestamp",
    ]


def test_a_refused_file_says_why_in_chinese_and_writes_nothing(
    client: TestClient, engine: Engine
) -> None:
    before = scalar(engine, "SELECT count(*) FROM households")
    projected = [{"x": 236181.4, "y": 3388282.9, "household_size": 1}]
    body = problem(client.post("/imports/households", files=csv_upload(projected), headers=CHINESE))
    assert body["status"] == 422 and body["code"] == "import-file-error"
    assert "文件似乎是投影坐标：请用 --crs EPSG:xxxx 给出坐标系" in body["detail"], body
    bad_map = problem(
        client.post(
            "/imports/households",
            files=csv_upload([{"lon": 114.3, "lat": 30.6, "household_size": 1}]),
            data={"map": ["nope=household_size"]},
            headers=CHINESE,
        )
    )
    assert bad_map["status"] == 422
    assert "文件中没有列 'nope'" in bad_map["detail"], bad_map
    zone = problem(
        client.post(
            "/imports/households",
            files=csv_upload(projected),
            data={"tz": "Mars/Olympus"},
            headers=CHINESE,
        )
    )
    assert zone["detail"] == "未知的时区 'Mars/Olympus'", zone
    # a file refused by its first bytes (the sniffer's reasons) says why in Chinese too
    for content, why in (
        (b"", "文件为空"),
        (b"PK\x03\x04 not really a zip", "zip 文件已损坏"),
        (b"[1, 2, 3]", "JSON 数组不是 GeoJSON"),
    ):
        refused = problem(
            client.post(
                "/imports/households",
                files={"file": ("upload.bin", content, "application/octet-stream")},
                headers=CHINESE,
            )
        )
        assert refused["status"] in (413, 415, 422) and why in refused["detail"], refused
        assert not any(w in refused["detail"] for w in ("damaged", "empty", "array")), refused
    assert scalar(engine, "SELECT count(*) FROM households") == before
