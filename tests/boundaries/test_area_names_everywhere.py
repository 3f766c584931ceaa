"""Every answer and page that shows an area's name to a person shows it in the request's
language (issue 19): ``names`` of the area (migration 0037), else ``name`` as imported. Where
``name`` is a field machines join on (``/areas``, ``/areas/{id}``, OGC API items) it stays
as imported and ``display_name`` is added beside ``names``. OGC collection titles and
descriptions come from the catalogue. An unknown area id in a filter is a 404 problem, not an
empty answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, problem
from tests.dispatch.test_field_app import HTML, busiest_grid, make_worker, new_incident

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def _grids(client: TestClient) -> dict[int, dict[str, Any]]:
    features = client.get("/areas", params={"level": "grid"}).json()["features"]
    return {f["properties"]["id"]: f["properties"] for f in features}


def _area(engine: Engine, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT a.id, a.name, a.names FROM areas a JOIN boundary_versions v "
                "ON v.id = a.version_id WHERE a.code = :c AND v.status = 'published'"
            ),
            {"c": code},
        ).one()
    return {"id": row.id, "name": row.name, "names": row.names}


# --- /areas and /areas/{id} -------------------------------------------------------------------


def test_get_area_answers_its_names_and_display_name(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    grid = _area(engine, busiest_grid(loaded_city))
    assert grid["names"]["zh-CN"].endswith("网格"), grid  # the demo city names every area
    chinese = client.get(f"/areas/{grid['id']}", headers=ZH).json()["properties"]
    assert chinese["names"] == grid["names"]
    assert chinese["name"] == grid["name"]  # as imported, in every language
    assert chinese["display_name"] == grid["names"]["zh-CN"]
    english = client.get(f"/areas/{grid['id']}", headers=EN).json()["properties"]
    assert english["names"] == grid["names"] and english["display_name"] == grid["name"]


def test_area_list_adds_display_name_in_the_request_language(client: TestClient) -> None:
    chinese = client.get("/areas", params={"level": "district"}, headers=ZH).json()["features"]
    assert chinese
    for feature in chinese:
        props = feature["properties"]
        assert props["display_name"] == props["names"]["zh-CN"] != props["name"], props
    english = client.get("/areas", params={"level": "district"}, headers=EN).json()["features"]
    for feature in english:
        assert feature["properties"]["display_name"] == feature["properties"]["name"]


def test_an_area_without_a_name_in_the_language_shows_its_name(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    grid = _area(engine, busiest_grid(loaded_city))
    with engine.begin() as conn:
        conn.execute(text("UPDATE areas SET names = '{}' WHERE id = :i"), {"i": grid["id"]})
    try:
        shown = client.get(f"/areas/{grid['id']}", headers=ZH).json()["properties"]
        assert shown["names"] == {} and shown["display_name"] == grid["name"]
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE areas SET names = CAST(:n AS jsonb) WHERE id = :i"),
                {"n": json.dumps(grid["names"]), "i": grid["id"]},
            )


def test_an_unknown_parent_id_is_a_404_problem(client: TestClient, engine: Engine) -> None:
    with engine.connect() as conn:
        unknown = conn.execute(text("SELECT max(id) + 1000 FROM areas")).scalar_one()
    body = problem(client.get("/areas", params={"parent_id": unknown}, headers=ZH))
    assert body["status"] == 404 and body["detail"] == f"区域 {unknown} 不存在", body


# --- incidents, Open311 -----------------------------------------------------------------------


def test_incidents_name_their_grid_in_the_request_language(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    code = busiest_grid(loaded_city)
    grid = _area(engine, code)
    iid = new_incident(client, loaded_city, code)
    one_zh = client.get(f"/incidents/{iid}", headers=ZH).json()
    assert one_zh["grid"] == {
        "id": grid["id"],
        "code": code,
        "name": grid["names"]["zh-CN"],
    }
    one_en = client.get(f"/incidents/{iid}", headers=EN).json()
    assert one_en["grid"]["name"] == grid["name"]
    listed = client.get(
        "/incidents", params={"grid_id": grid["id"], "limit": 5}, headers=ZH
    ).json()["features"]
    assert listed and {f["properties"]["grid"]["name"] for f in listed} == {grid["names"]["zh-CN"]}


def test_open311_names_grid_and_community_in_the_request_language(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    code = busiest_grid(loaded_city)
    grid = _area(engine, code)
    iid = new_incident(client, loaded_city, code)
    request = client.get(f"/open311/v2/requests/{iid}.json", headers=ZH).json()[0]
    assert request["grid"] == {"code": code, "name": grid["names"]["zh-CN"]}
    assert request["community"]["name"].endswith("社区"), request["community"]
    english = client.get(f"/open311/v2/requests/{iid}.json", headers=EN).json()[0]
    assert english["grid"]["name"] == grid["name"]


def test_an_unknown_grid_id_filter_is_a_404_and_another_level_a_422(
    client: TestClient, engine: Engine, role_keys: dict[str, str]
) -> None:
    with engine.connect() as conn:
        unknown = conn.execute(text("SELECT max(id) + 1000 FROM areas")).scalar_one()
        district = conn.execute(
            text("SELECT min(id) FROM areas WHERE level = 'district'")
        ).scalar_one()
        outside = conn.execute(
            text(
                "SELECT a.id FROM areas a JOIN boundary_versions v ON v.id = a.version_id "
                "WHERE a.level = 'grid' AND v.status = 'published' AND a.code <> ("
                "SELECT area_code FROM users WHERE role = 'grid_worker' ORDER BY id LIMIT 1) "
                "ORDER BY a.id LIMIT 1"
            )
        ).scalar_one()
    body = problem(client.get("/incidents", params={"grid_id": unknown}))
    assert body["status"] == 404 and body["detail"] == f"area {unknown} does not exist", body
    chinese = problem(client.get("/incidents", params={"grid_id": unknown}, headers=ZH))
    assert chinese["detail"] == f"区域 {unknown} 不存在"
    body = problem(client.get("/incidents", params={"grid_id": district}, headers=ZH))
    assert body["status"] == 422 and body["detail"] == f"区域 {district} 不是网格", body
    # a grid outside a bound caller's area answers as a missing one (no probing)
    worker = as_role(role_keys, "grid_worker")
    body = problem(client.get("/incidents", params={"grid_id": outside}, headers=worker))
    assert body["status"] == 404 and body["detail"] == f"area {outside} does not exist", body


def test_household_and_visit_lists_refuse_an_unknown_grid(
    client: TestClient, engine: Engine
) -> None:
    with engine.connect() as conn:
        unknown = conn.execute(text("SELECT max(id) + 1000 FROM areas")).scalar_one()
        street = conn.execute(text("SELECT min(id) FROM areas WHERE level = 'street'")).scalar_one()
    for path in ("/households", "/households/visits"):
        body = problem(client.get(path, params={"grid_id": unknown}, headers=ZH))
        assert body["status"] == 404 and body["detail"] == f"区域 {unknown} 不存在", body
        body = problem(client.get(path, params={"grid_id": street}))
        assert body["status"] == 422 and body["detail"] == f"area {street} is not a grid", body


# --- the phone page, households and visits ----------------------------------------------------


def test_the_phone_page_header_names_the_grid_in_the_page_language(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    code = busiest_grid(loaded_city)
    grid = _area(engine, code)
    worker = make_worker(engine, code, "names-header")
    chinese = client.get("/app", headers={**worker["headers"], **HTML, **ZH})
    assert chinese.status_code == 200, chinese.text
    assert f'<strong id="grid-name">{grid["names"]["zh-CN"]}</strong>' in chinese.text
    english = client.get("/app", headers={**worker["headers"], **HTML, **EN})
    assert f'<strong id="grid-name">{grid["name"]}</strong>' in english.text


def test_visit_coverage_and_household_aggregates_name_areas_in_the_request_language(
    client: TestClient,
) -> None:
    grids = _grids(client)
    coverage = client.get("/households/visits/coverage", headers=ZH).json()["grids"]
    assert coverage
    for row in coverage:
        assert row["name"] == grids[row["grid_id"]]["names"]["zh-CN"], row
    english = client.get("/households/visits/coverage", headers=EN).json()["grids"]
    for row in english:
        assert row["name"] == grids[row["grid_id"]]["name"], row
    aggregate = client.get("/households/aggregate", params={"level": "grid"}, headers=ZH).json()[
        "features"
    ]
    assert aggregate
    for feature in aggregate:
        props = feature["properties"]
        assert props["name"] == grids[props["id"]]["names"]["zh-CN"], props


# --- choropleths per area ----------------------------------------------------------------------


def test_area_heatmap_and_grid_hot_spots_name_areas_in_the_request_language(
    client: TestClient,
) -> None:
    grids = _grids(client)
    heat = client.get("/heatmap/grids", params={"level": "grid"}, headers=ZH).json()
    assert heat["features"]
    for feature in heat["features"]:
        props = feature["properties"]
        assert props["name"] == grids[props["id"]]["names"]["zh-CN"], props
    english = client.get("/heatmap/grids", params={"level": "grid"}, headers=EN).json()
    for feature in english["features"]:
        assert feature["properties"]["name"] == grids[feature["properties"]["id"]]["name"]
    hot = client.get("/hotspots/grids", headers=ZH).json()["features"]
    assert hot
    for feature in hot:
        props = feature["properties"]
        assert props["name"] == grids[props["id"]]["names"]["zh-CN"], props


def test_grid_tiles_carry_display_name_in_the_request_language(
    client: TestClient, loaded_city: DemoCity
) -> None:
    import mapbox_vector_tile

    from tests.conftest import grid_point
    from tests.layers.test_tiles import _tile_of

    grids = _grids(client)
    lon, lat, _ = grid_point(loaded_city, busiest_grid(loaded_city))
    x, y = _tile_of(lon, lat, 13)
    for headers, key in ((ZH, "zh-CN"), (EN, None)):
        tile = client.get(f"/tiles/grids/13/{x}/{y}.mvt", headers=headers)
        assert tile.status_code == 200, tile.text[:300]
        features = mapbox_vector_tile.decode(tile.content)["grids"]["features"]
        assert features
        for feature in features:
            props = feature["properties"]
            area = grids[props["id"]]
            assert props["name"] == area["name"]
            assert props["display_name"] == (area["names"][key] if key else area["name"])


# --- OGC API - Features -----------------------------------------------------------------------


def test_ogc_grid_items_keep_name_and_add_names_and_display_name(
    client: TestClient,
) -> None:
    grids = _grids(client)
    items = client.get("/collections/grids/items", params={"limit": 5}, headers=ZH).json()
    assert items["features"]
    for feature in items["features"]:
        props = feature["properties"]
        area = grids[feature["id"]]
        assert props["name"] == area["name"]  # as imported: a contract
        assert props["names"] == area["names"]
        assert props["display_name"] == area["names"]["zh-CN"]
    fid = items["features"][0]["id"]
    english = client.get(f"/collections/grids/items/{fid}", headers=EN).json()["properties"]
    assert english["display_name"] == english["name"] == grids[fid]["name"]


def test_ogc_collection_titles_and_descriptions_in_the_request_language(
    client: TestClient,
) -> None:
    chinese = client.get("/collections", headers=ZH).json()["collections"]
    by_id = {c["id"]: c for c in chinese}
    assert by_id["grids"]["title"] == "网格边界（当前版本）"
    assert by_id["districts"]["title"] == "区边界（当前版本）"
    assert by_id["incidents"]["title"] == "事件（点；不含描述、地址和人员）"
    assert by_id["hotspots-h3-res8"]["description"].startswith("事件聚集（热点）")
    for collection in chinese:
        assert collection["description"], collection
    one = client.get("/collections/streets", headers=ZH).json()
    assert one["title"] == "街道边界（当前版本）" and "生效边界版本" in one["description"]
    english = {c["id"]: c for c in client.get("/collections", headers=EN).json()["collections"]}
    assert english["grids"]["title"] == "Grid boundaries (current version)"
    landing = client.get("/", headers={**ZH, "Accept": "application/json"}).json()
    assert landing["description"] == "城市网格、事件、热力图和热点图层（OGC API - Features）"


def test_owslib_reads_chinese_collection_titles(
    live_server: str, role_keys: dict[str, str]
) -> None:
    from owslib.ogcapi.features import Features

    key = {"X-API-Key": role_keys["analyst"]}
    chinese = Features(live_server, headers={**key, "Accept-Language": "zh-CN"})
    titles = {c["id"]: c["title"] for c in chinese.collections()["collections"]}
    assert titles["communities"] == "社区边界（当前版本）"
    assert chinese.collection("grids")["description"].startswith("生效边界版本")
    assert chinese.conformance()["conformsTo"]
    grid = chinese.collection_items("grids", limit=1)["features"][0]["properties"]
    assert grid["display_name"] == grid["names"]["zh-CN"]


# --- pages in Chromium --------------------------------------------------------------------------


@pytest.mark.browser
def test_the_reports_picker_and_phone_header_in_chinese_show_chinese_names(
    live_server: str,
    role_keys: dict[str, str],
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
) -> None:
    from tests.api.test_pages_language import browser_page, shot, sign_in

    districts = client.get("/areas", params={"level": "district"}).json()["features"]
    expected = {f"{d['properties']['code']} {d['properties']['names']['zh-CN']}" for d in districts}
    with browser_page(live_server, "zh-CN") as (page, errors):
        sign_in(page, live_server, "/reports", role_keys["analyst"])
        page.wait_for_selector("#status[data-ready='1']", timeout=60_000)
        page.select_option("#level", "street")  # the picker offers the districts
        page.wait_for_function("() => document.querySelectorAll('#parent option').length > 1")
        shown = set(page.locator("#parent option").all_text_contents()[1:])
        assert shown == expected, (sorted(shown), sorted(expected))
        shot(page, "reports-parent-picker")
        assert errors == []
    code = busiest_grid(loaded_city)
    grid = _area(engine, code)
    worker = make_worker(engine, code, "names-phone")
    with browser_page(live_server, "zh-CN", (390, 844)) as (page, errors):
        sign_in(page, live_server, "/app", worker["headers"]["X-API-Key"])
        header = page.locator("#grid-name")
        assert header.text_content() == grid["names"]["zh-CN"]
        shot(page, "field-app-grid-name")
        assert errors == []
