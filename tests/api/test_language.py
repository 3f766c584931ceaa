"""The API speaks the caller's language (issue 19): problem details, hot spot class labels,
category names on the console and in Open311, chosen by ``?lang=`` (remembered in a cookie),
``Accept-Language`` and ``GEO_LOCALE``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import Settings
from tests.conftest import grid_point, problem

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def test_a_404_problem_in_chinese_for_accept_language_zh_cn(client: TestClient) -> None:
    missing = uuid.uuid4()
    zh = client.get(f"/incidents/{missing}", headers=ZH)
    body = problem(zh)
    assert zh.status_code == 404
    assert body["title"] == "未找到"
    assert body["detail"] == f"事件 {missing} 不存在"
    assert body["code"] == "not-found"  # the stable code is no translation
    assert zh.headers["content-language"] == "zh-CN"
    assert "accept-language" in zh.headers["vary"].lower()
    en = problem(client.get(f"/incidents/{missing}", headers=EN))
    assert (en["title"], en["detail"]) == ("Not found", f"incident {missing} does not exist")


def test_validation_and_authentication_problems_in_chinese(client: TestClient) -> None:
    bad = client.get("/incidents?limit=-5", headers=ZH)
    assert bad.status_code == 422
    body = problem(bad)
    assert body["title"] == "请求无效"
    assert body["detail"] == "query.limit: 输入应大于或等于 1"
    assert body["errors"][0]["type"] == "greater_than_equal"  # the stable part stays
    english = problem(client.get("/incidents?limit=-5", headers=EN))
    assert english["detail"] == "query.limit: Input should be greater than or equal to 1"
    missing = problem(client.post("/categories", json={}, headers=ZH))
    assert "body.code: 缺少必填字段" in missing["detail"]
    nowhere = client.get("/no/such/page", headers=ZH)
    assert nowhere.status_code == 404
    assert (problem(nowhere)["title"], problem(nowhere)["detail"]) == ("未找到", "未找到")
    anonymous = client.get("/incidents", headers={**ZH, "X-API-Key": ""})
    body = problem(anonymous)
    assert anonymous.status_code == 401
    assert body["title"] == "需要身份验证"
    assert body["detail"] == "请在 X-API-Key 中发送 API 密钥，或在 Authorization 中发送 Bearer 令牌"


def _said(response) -> tuple[str, list[tuple[str, str, str]]]:  # noqa: ANN001
    body = problem(response)
    assert response.status_code == 422, response.text
    return body["detail"], [
        (".".join(map(str, e["loc"])), e["type"], e["msg"]) for e in body["errors"]
    ]


def test_pydantics_own_messages_in_chinese_and_english(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    # (request, its error in Chinese, the same in English: pydantic's own words)
    cases = [
        (
            lambda h: client.get("/incidents?limit=many", headers=h),
            ("query.limit", "int_parsing", "输入应为有效的整数"),
            (
                "query.limit",
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            ),
        ),
        (
            lambda h: client.get("/incidents?crs=mars", headers=h),
            ("query.crs", "literal_error", "输入应为 'wgs84', 'gcj02' 或 'bd09'"),
            ("query.crs", "literal_error", "Input should be 'wgs84', 'gcj02' or 'bd09'"),
        ),
        (
            lambda h: client.get("/incidents?since=2500-01-01T00:00:00Z", headers=h),
            ("query.since", "value_error", "值无效：必须在 1900 年到 2199 年之间"),
            ("query.since", "value_error", "Value error, must lie in the years 1900 to 2199"),
        ),
        (
            lambda h: client.post(
                "/incidents",
                json={"category": "traffic", "location": {"lon": lon, "lat": lat}, "colour": 1},
                headers=h,
            ),
            ("body.colour", "extra_forbidden", "不允许额外的字段"),
            ("body.colour", "extra_forbidden", "Extra inputs are not permitted"),
        ),
        (
            lambda h: client.post(
                "/incidents",
                json={
                    "category": "traffic",
                    "location": {"type": "Point", "coordinates": [500, lat]},
                },
                headers=h,
            ),
            ("body", "value_error", "值无效：位置的经度须在 [-180, 180]、纬度须在 [-90, 90] 之内"),
            (
                "body",
                "value_error",
                "Value error, location must be lon in [-180, 180], lat in [-90, 90]",
            ),
        ),
        (
            lambda h: client.post(
                "/incidents",
                content=b'{"category": ',
                headers={**h, "Content-Type": "application/json"},
            ),
            ("body.13", "json_invalid", "JSON 解析错误"),
            ("body.13", "json_invalid", "JSON decode error"),
        ),
        (
            lambda h: client.post(
                f"/incidents/{uuid.uuid4()}/escalate", json={"note": "x" * 2001}, headers=h
            ),
            ("body.note", "string_too_long", "字符串最多只能有 2000 个字符"),
            ("body.note", "string_too_long", "String should have at most 2000 characters"),
        ),
    ]
    for ask, chinese, english in cases:
        detail, errors = _said(ask(ZH))
        assert errors == [chinese], errors
        assert detail == f"{chinese[0]}: {chinese[2]}"
        assert _said(ask(EN))[1] == [english]
    with engine.connect() as conn:  # refused: nothing written
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar_one() == before


def test_a_forbidden_write_answers_in_chinese_and_writes_nothing(
    client: TestClient, role_keys: dict[str, str], engine: Engine
) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM categories")).scalar_one()
    refused = client.post(
        "/categories",
        json={"code": "noise", "names": {"en": "Noise"}, "handling_effort_min": 20},
        headers={**ZH, "X-API-Key": role_keys["analyst"]},
    )
    assert refused.status_code == 403
    assert problem(refused)["detail"] == "角色 'analyst' 没有 'categories:write' 权限"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM categories")).scalar_one() == before


def test_the_lang_switch_sets_a_cookie_that_later_requests_follow(client: TestClient) -> None:
    switched = client.get("/login?lang=zh-CN", headers=EN)
    assert switched.status_code == 200
    assert '<html lang="zh-CN">' in switched.text
    assert "geo_lang=zh-CN" in switched.headers["set-cookie"]
    try:
        # the cookie now beats the browser's Accept-Language
        again = client.get(f"/incidents/{uuid.uuid4()}", headers=EN)
        assert problem(again)["title"] == "未找到"
        back = client.get("/login?lang=en", headers=ZH)
        assert '<html lang="en">' in back.text and "Sign in" in back.text
    finally:
        client.cookies.delete("geo_lang")
    # an unserved ?lang= is no switch: no cookie, the header decides
    ignored = client.get("/login?lang=fr", headers=ZH)
    assert "set-cookie" not in ignored.headers or "geo_lang" not in ignored.headers["set-cookie"]
    assert '<html lang="zh-CN">' in ignored.text


def test_geo_locale_is_the_default_when_the_browser_names_no_served_language(
    settings: Settings, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    chinese = settings.model_copy(
        update={"api": settings.api.model_copy(update={"locale": "zh-CN"})}
    )
    with TestClient(create_app(chinese), headers={"X-API-Key": role_keys["admin"]}) as c:
        missing = uuid.uuid4()
        default = problem(c.get(f"/incidents/{missing}"))
        assert default["title"] == "未找到"
        german = problem(c.get(f"/incidents/{missing}", headers={"Accept-Language": "de"}))
        assert german["title"] == "未找到"
        english = problem(c.get(f"/incidents/{missing}", headers=EN))
        assert english["title"] == "Not found"


def test_hot_spot_classes_keep_arcgis_values_and_gain_a_chinese_label(client: TestClient) -> None:
    layer = client.get("/hotspots?res=8", headers=ZH)
    assert layer.status_code == 200, layer.text
    props = [f["properties"] for f in layer.json()["features"]]
    labels = {p["class"]: p["class_label"] for p in props}
    assert "Not Significant" in labels and labels["Not Significant"] == "不显著"
    hot = [c for c in labels if c.startswith("Hot Spot - ")]
    assert hot, labels  # the demo city plants hot spots
    for name in hot:
        assert labels[name] == "热点 - " + name.removeprefix("Hot Spot - ").replace(
            "Confidence", "置信度"
        )
    english = client.get("/hotspots?res=8", headers=EN).json()["features"][0]["properties"]
    assert english["class_label"] == english["class"]


def test_console_items_carry_the_category_name_in_the_callers_language(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    with engine.connect() as conn:
        now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    made = client.post(
        "/incidents",
        json={
            "category": "traffic",
            "priority": 2,
            "reported_at": (now - timedelta(minutes=2)).isoformat(),
            "location": {"lon": lon, "lat": lat},
        },
    )
    assert made.status_code == 201, made.text
    page = client.get("/console/incidents?limit=1000", headers=ZH).json()
    item = next(i for i in page["items"] if i["id"] == made.json()["id"])
    assert (item["category"], item["category_name"]) == ("traffic", "交通与停车")
    page = client.get("/console/incidents?limit=1000", headers=EN).json()
    item = next(i for i in page["items"] if i["id"] == made.json()["id"])
    assert item["category_name"] == "Traffic and parking"


def test_open311_services_are_named_in_the_callers_language(client: TestClient) -> None:
    zh = client.get("/open311/v2/services.json", headers=ZH).json()
    names = {s["service_code"]: s["service_name"] for s in zh}
    assert names["sanitation"] == "环境卫生与垃圾"
    en = client.get("/open311/v2/services.json", headers=EN).json()
    assert {s["service_code"]: s["service_name"] for s in en}["sanitation"] == (
        "Sanitation and waste"
    )
