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
from tests.conftest import (
    as_role,
    bound_user,
    csv_upload,
    grid_point,
    problem,
    scalar,
    version_in_force_id,
)

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


# --- the refusals a fresh zh-CN user found in English (dispatch, scope, batches, times, imports)


def _grids(city: DemoCity):  # noqa: ANN202
    return city.areas[city.areas.level == "grid"]


def _worker_grid(city: DemoCity) -> str:
    """The grid of the tests' grid worker (``role_keys``: the grid with most households)."""
    return str(city.households.grid_code.value_counts().index[0])


def _row(engine: Engine, sql: str, **params: object) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text(sql), params).one())


def _reported_incident(client: TestClient, lon: float, lat: float) -> str:
    made = client.post(
        "/incidents",
        json={"category": "traffic", "location": {"lon": lon, "lat": lat}},
        headers=EN,
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def _said_in(response, status: int) -> str:  # noqa: ANN001
    body = problem(response)
    assert response.status_code == status, response.text
    return body["detail"]


def test_dispatch_refusals_name_the_incident_and_responder_in_the_callers_language(
    client: TestClient,
    loaded_city: DemoCity,
    role_keys: dict[str, str],
    engine: Engine,
    responders_restored: None,
) -> None:
    missing = uuid.uuid4()
    available = scalar(engine, "SELECT min(id) FROM responders WHERE status = 'available'")
    for headers, want in (
        (ZH, f"事件 {missing} 不存在"),
        (EN, f"incident {missing} does not exist"),
    ):
        sent = client.post(
            f"/incidents/{missing}/dispatch", json={"responder_id": available}, headers=headers
        )
        assert _said_in(sent, 404) == want
    lon, lat, _ = grid_point(loaded_city)
    incident = _reported_incident(client, lon, lat)
    for headers, want in (
        (ZH, "处置力量 99999999 不存在"),
        (EN, "responder 99999999 does not exist"),
    ):
        sent = client.post(
            f"/incidents/{incident}/dispatch", json={"responder_id": 99999999}, headers=headers
        )
        assert _said_in(sent, 404) == want
    # a grid worker escalating an incident of another grid: as a missing one, in their words
    worker_grid = _worker_grid(loaded_city)
    other = next(c for c in _grids(loaded_city).code if c != worker_grid)
    olon, olat, _ = grid_point(loaded_city, other)
    theirs = _reported_incident(client, olon, olat)
    worker = as_role(role_keys, "grid_worker")
    for headers, want in ((ZH, f"事件 {theirs} 不存在"), (EN, f"incident {theirs} does not exist")):
        climbed = client.post(
            f"/incidents/{theirs}/escalate", json={}, headers={**headers, **worker}
        )
        assert _said_in(climbed, 404) == want
    assert scalar(engine, "SELECT escalation_level FROM incidents WHERE id = :id", id=theirs) == 0


def test_dispatch_checks_the_incident_before_the_responder(
    client: TestClient,
    loaded_city: DemoCity,
    role_keys: dict[str, str],
    engine: Engine,
    responders_restored: None,
) -> None:
    off = scalar(engine, "SELECT min(id) FROM responders WHERE status = 'available'")
    with engine.begin() as conn:
        conn.execute(text("UPDATE responders SET status = 'off_duty' WHERE id = :r"), {"r": off})
    missing = uuid.uuid4()
    sent = client.post(f"/incidents/{missing}/dispatch", json={"responder_id": off}, headers=ZH)
    assert _said_in(sent, 404) == f"事件 {missing} 不存在"  # not the responder's 409
    # an incident outside the caller's area answers as a missing one, whatever the responder
    grids = _grids(loaded_city)
    first = grids.iloc[0]
    community = bound_user(engine, "dispatcher", first.parent_code)
    lon, lat, _ = grid_point(
        loaded_city, grids[grids.parent_code != first.parent_code].code.iloc[0]
    )
    outside = _reported_incident(client, lon, lat)
    sent = client.post(
        f"/incidents/{outside}/dispatch", json={"responder_id": off}, headers={**EN, **community}
    )
    assert _said_in(sent, 404) == f"incident {outside} does not exist"
    # an existing incident in the area: the responder's state still refuses (409, as before)
    inside = _reported_incident(client, *grid_point(loaded_city)[:2])
    refused = client.post(f"/incidents/{inside}/dispatch", json={"responder_id": off}, headers=ZH)
    assert refused.status_code == 409, refused.text
    assert problem(refused)["responder_status"] == "off_duty"
    assert scalar(engine, "SELECT status FROM incidents WHERE id = :id", id=inside) == "reported"


def test_a_grid_worker_filing_outside_their_grid_is_told_the_grid_by_name(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str], engine: Engine
) -> None:
    grid = _worker_grid(loaded_city)
    name, chinese = _row(
        engine,
        "SELECT name, names ->> 'zh-CN' FROM areas WHERE code = :c AND version_id = :v",
        c=grid,
        v=version_in_force_id(engine),
    )
    assert chinese and chinese != name  # the demo names its grids in both languages
    other = next(c for c in _grids(loaded_city).code if c != grid)
    lon, lat, _ = grid_point(loaded_city, other)
    before = scalar(engine, "SELECT count(*) FROM incidents")
    worker = as_role(role_keys, "grid_worker")
    filed = {"category": "traffic", "location": {"lon": lon, "lat": lat}}
    zh = client.post("/incidents", json=filed, headers={**ZH, **worker})
    assert _said_in(zh, 403) == f"事件位置在你的区域{chinese}（{grid}）之外"
    en = client.post("/incidents", json=filed, headers={**EN, **worker})
    assert _said_in(en, 403) == f"the incident location lies outside your area {name} ({grid})"
    assert scalar(engine, "SELECT count(*) FROM incidents") == before


def test_per_position_errors_of_a_batch_in_the_callers_language(
    client: TestClient, engine: Engine
) -> None:
    at = "2026-11-01T08:00:00+08:00"
    batch = {"positions": [{"id": 999999, "lon": 114.3, "lat": 30.6, "at": at}]}
    for headers, want in ((ZH, "处置力量 999999 不存在"), (EN, "no responder 999999")):
        sent = client.post("/responders/positions", json=batch, headers=headers)
        body = problem(sent)
        assert sent.status_code == 422, sent.text
        assert body["errors"] == [{"index": 0, "error": want}], body
    future = {"positions": [{"id": 999999, "lon": 114.3, "lat": 30.6, "at": "2199-01-01"}]}
    sent = problem(client.post("/responders/positions", json=future, headers=ZH))
    assert {"index": 0, "error": "at 在未来"} in sent["errors"], sent


def test_a_bad_datetime_is_named_by_its_field_or_in_the_callers_words(
    client: TestClient, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    filed = {"category": "traffic", "location": {"lon": lon, "lat": lat}}
    for headers, since, old in (
        (
            ZH,
            "query.since: 值无效：该值 '2026-02-30' 不是有效的日期或时间",
            "body.reported_at: 值无效：reported_at 必须在 1900 年到 2199 年之间",
        ),
        (
            EN,
            "query.since: Value error, the value '2026-02-30' is not a valid date or time",
            "body.reported_at: Value error, reported_at must lie in the years 1900 to 2199",
        ),
    ):
        said = _said_in(client.get("/incidents?since=2026-02-30", headers=headers), 422)
        assert said == since
        filed_then = {**filed, "reported_at": "1800-01-01"}
        assert _said_in(client.post("/incidents", json=filed_then, headers=headers), 422) == old


def test_import_refusals_have_titles_and_details_in_the_callers_language(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    before = scalar(engine, "SELECT count(*) FROM incidents")
    text_file = {"file": ("notes.txt", b"just some words, no table here\n", "text/plain")}
    zh = problem(client.post("/imports/incidents", files=text_file, headers=ZH))
    assert zh["title"] in ("文件无法导入", "不支持的文件"), zh
    en = problem(client.post("/imports/incidents", files=text_file, headers=EN))
    assert en["title"] in ("File cannot be imported", "Unsupported file"), en
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {"id": "ok", "category": "traffic", "reported_at": "2026-11-01", "lon": lon, "lat": lat},
        {"id": "b1", "category": "NOPE", "reported_at": "2026-11-01", "lon": lon, "lat": lat},
        {"id": "b2", "category": "NOPE", "reported_at": "2026-11-01", "lon": lon, "lat": lat},
    ]
    share = {"max_rejected_share": "0.1"}
    zh = problem(
        client.post(
            "/imports/incidents", files=csv_upload(rows, "bad2.csv"), data=share, headers=ZH
        )
    )
    assert zh["title"] == "被拒绝的行过多"
    assert zh["detail"] == (
        "bad2.csv：3 行中有 2 行被拒绝（66.7%），超过上限 表单字段 max_rejected_share 0.1"
        "（10.0%）；未写入任何数据"
    ), zh
    en = problem(
        client.post(
            "/imports/incidents", files=csv_upload(rows, "bad2.csv"), data=share, headers=EN
        )
    )
    assert en["title"] == "Too many rows rejected"
    assert en["detail"] == (
        "bad2.csv: 2 of 3 rows rejected (66.7%), above the limit form field max_rejected_share "
        "0.1 (10.0%); nothing was written"
    ), en
    assert scalar(engine, "SELECT count(*) FROM incidents") == before
    # boundaries without a level: the HTTP caller is told of the form field, not --level
    shape = {"file": ("b.geojson", b'{"type": "FeatureCollection", "features": []}', "")}
    zh = problem(client.post("/imports/boundaries", files=shape, headers=ZH))
    assert zh["detail"].startswith("边界需要 表单字段 level，取值为 "), zh
    en = problem(client.post("/imports/boundaries", files=shape, headers=EN))
    assert en["detail"].startswith("boundaries need form field level, one of "), en
    assert "--level" not in zh["detail"] + en["detail"]


def test_the_cli_is_still_told_of_its_options() -> None:
    from geo_service.services.ingest.options import ImportOptions

    assert ImportOptions().option_name("max_rejected_share") == "--max-rejected-share"
