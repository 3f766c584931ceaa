"""OGC API - Features - Part 1: Core (OGC 17-069r4) and Part 2 (OGC 18-058r1), requirement by
requirement, over every collection.

Each check names the requirement it proves (``/req/core/...``, ``/req/crs/...``) in its test
name or its assertion message. Counts are compared with independent counts from the
database.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely
from cachetools import TTLCache
from fastapi.testclient import TestClient
from shapely.geometry import box, shape
from sqlalchemy import Engine, text

from geo_service.api.app import create_app
from geo_service.api.schemas.layers import Collection, Collections, OgcItem, OgcItems
from geo_service.demo.city import DemoCity
from geo_service.runtime import OGC_LAYER_TTL_S, SharedCache
from geo_service.services.batch.execute import run_batch
from geo_service.services.batch.export import export_dataset
from geo_service.services.batch.request import BatchRequest
from geo_service.services.layers.ogc import computed
from geo_service.settings import ApiSettings, Settings
from tests.conftest import as_role, grid_point, problem

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
AREAS = ("districts", "streets", "communities", "grids")
LAYERS = ("heatmap-h3-res8", "hotspots-h3-res8", "emerging-hotspots-h3-res8")
EVERY = (*AREAS, *LAYERS, "incidents", "batch-hotspots")
TIMED = (*LAYERS, "incidents")
GEOJSON = "application/geo+json"


def _local(href: str) -> str:
    return href.replace("http://testserver", "")


def _link(body: dict[str, Any], rel: str) -> str | None:
    return next((link["href"] for link in body["links"] if link["rel"] == rel), None)


@pytest.fixture
def batch_hotspots(engine: Engine, loaded_city: DemoCity, tmp_path: Path) -> Iterator[int]:
    """A hot spot batch run over the loaded city (removed after the test by clean_writes)."""
    export_dataset(engine, "incidents", tmp_path)
    until = loaded_city.incidents.reported_at.max().to_pydatetime() + timedelta(days=1)
    request = BatchRequest(
        "hotspots", tmp_path, res=8, since=until - timedelta(days=400), until=until
    )
    yield run_batch(engine, request, engine_name="local", actor="test")["run_id"]


def _db_count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


# --- landing page, conformance, collections ------------------------------------------------


def test_landing_page_req_core_root_success(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200, "/req/core/root-op"
    body = response.json()
    rels = {link["rel"]: link for link in body["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels), "/req/core/root-success"
    assert client.get(_local(rels["service-desc"]["href"])).json()["openapi"].startswith("3.")
    assert client.get(_local(rels["data"]["href"])).status_code == 200


def test_conformance_req_core_conformance_success(client: TestClient) -> None:
    classes = set(client.get("/conformance").json()["conformsTo"])
    expected = {
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    }
    assert expected <= classes, "/req/core/conformance-success, /req/crs/crs-conformance"


def test_collections_req_core_fc_md_success_and_extents(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    body = client.get("/collections").json()
    Collections.model_validate(body)  # the declared response model, member for member
    assert _link(body, "self"), "/req/core/fc-md-links"
    by_id = {c["id"]: c for c in body["collections"]}
    assert set(EVERY) - {"batch-hotspots"} <= set(by_id), "/req/core/fc-md-items"
    first, last = (
        datetime.fromisoformat(v) for v in by_id["incidents"]["extent"]["temporal"]["interval"][0]
    )
    with engine.connect() as conn:
        lo, hi = conn.execute(
            text("SELECT min(reported_at), max(reported_at) FROM incidents")
        ).one()
    assert (first, last) == (lo, hi), "/req/core/fc-md-extent: temporal = the data's"
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    for cid, meta in by_id.items():
        items = next(link for link in meta["links"] if link["rel"] == "items")
        assert items["type"] == GEOJSON, f"/req/core/fc-md-items-links {cid}"
        bbox = meta["extent"]["spatial"]["bbox"][0]
        assert bbox == pytest.approx([minx, miny, maxx, maxy], abs=1e-6), (
            f"/req/core/fc-md-extent {cid}"
        )
        assert meta["extent"]["spatial"]["crs"] == CRS84
        assert set(meta["crs"]) == {CRS84, EPSG4326}, f"/req/crs/fc-md-crs-list {cid}"
        assert meta["storageCrs"] == CRS84, f"/req/crs/fc-md-storageCrs {cid}"
        timed = "temporal" in meta["extent"]
        assert timed == (cid in TIMED), f"/req/core/fc-md-extent temporal {cid}"
        if timed:
            assert meta["extent"]["temporal"]["trs"].endswith("/ISO-8601/0/Gregorian")
        one = client.get(f"/collections/{cid}")
        assert one.status_code == 200 and one.json() == meta, f"/req/core/sfc-md-success {cid}"
        Collection.model_validate(one.json())


def test_a_bound_caller_sees_its_own_extent_and_no_batch_layers(
    client: TestClient, role_keys: dict[str, str], engine: Engine, batch_hotspots: int
) -> None:
    district = client.get("/collections", headers=as_role(role_keys, "analyst@district")).json()
    ids = {c["id"] for c in district["collections"]}
    assert "incidents" in ids and "batch-hotspots" not in ids
    assert "batch-hotspots" in {c["id"] for c in client.get("/collections").json()["collections"]}
    whole = client.get("/collections/grids").json()["extent"]["spatial"]["bbox"][0]
    mine = next(c for c in district["collections"] if c["id"] == "grids")
    part = mine["extent"]["spatial"]["bbox"][0]
    assert box(*part).within(box(*whole)) and box(*part).area < box(*whole).area
    assert (
        problem(
            client.get(
                "/collections/batch-hotspots", headers=as_role(role_keys, "analyst@district")
            )
        )["status"]
        == 404
    )


# --- items, paging, single features: every collection ----------------------------------------


def _independent_count(engine: Engine, cid: str, run_id: int | None) -> int | None:
    """The number of features of a collection, counted from the tables."""
    if cid in AREAS:
        level = {"districts": "district", "streets": "street", "communities": "community"}.get(
            cid, "grid"
        )
        return _db_count(engine, "SELECT count(*) FROM areas WHERE level = :l", l=level)
    if cid == "incidents":
        return _db_count(engine, "SELECT count(*) FROM incidents")
    if cid == "heatmap-h3-res8":
        return _db_count(engine, "SELECT count(DISTINCT h3_8) FROM incidents")
    if cid == "batch-hotspots":
        return _db_count(engine, "SELECT count(*) FROM batch_cells WHERE run_id = :r", r=run_id)
    return None  # hot spot layers: every cell of the study area (checked on the sums below)


@pytest.mark.parametrize("cid", EVERY)
def test_every_collection_pages_and_serves_single_features(
    client: TestClient, engine: Engine, request: pytest.FixtureRequest, cid: str
) -> None:
    run_id = request.getfixturevalue("batch_hotspots") if cid.startswith("batch") else None
    first = client.get(f"/collections/{cid}/items", params={"limit": 1})
    assert first.status_code == 200, f"/req/core/fc-op {cid}: {first.text}"
    assert first.headers["content-type"].startswith(GEOJSON), "/req/geojson/content"
    head = first.json()
    matched = head["numberMatched"]
    assert head["type"] == "FeatureCollection" and "timeStamp" in head, "/req/core/fc-response"
    expected = _independent_count(engine, cid, run_id)
    if expected is not None:
        assert matched == expected, f"/req/core/fc-response numberMatched {cid}"
    assert matched >= 2, cid
    # walk the pages through next links, up to five of them
    limit = math.ceil(matched / 5)
    url: str | None = f"/collections/{cid}/items?limit={limit}"
    seen: list[Any] = []
    pages = 0
    while url:
        page = client.get(_local(url)).json()
        OgcItems.model_validate(page)
        assert page["numberReturned"] == len(page["features"]) <= limit, (
            f"/req/core/fc-limit-response-1 {cid}"
        )
        assert page["numberMatched"] == matched, "/req/core/fc-response: one result per walk"
        assert _link(page, "self") and _link(page, "collection"), f"/req/core/fc-links {cid}"
        assert (_link(page, "prev") is not None) == (pages > 0), f"/req/core/fc-links prev {cid}"
        seen += [f["id"] for f in page["features"]]
        url = _link(page, "next")
        pages += 1
        assert pages < 10, "the next links never end"
    assert len(seen) == len(set(seen)) == matched, f"/req/core/fc-rel-type paging {cid}"
    assert pages == math.ceil(matched / limit)
    # one feature, by id (/req/core/f-op, /req/core/f-success, /req/core/f-links)
    sample = head["features"][0]
    single = client.get(f"/collections/{cid}/items/{sample['id']}")
    assert single.status_code == 200, f"/req/core/f-success {cid}: {single.text}"
    assert single.headers["content-type"].startswith(GEOJSON)
    feature = single.json()
    OgcItem.model_validate(feature)
    assert {k: feature[k] for k in ("id", "geometry", "properties")} == {
        k: sample[k] for k in ("id", "geometry", "properties")
    }, f"/req/core/f-success: the feature equals its entry in the items {cid}"
    assert _local(_link(feature, "self") or "") == f"/collections/{cid}/items/{sample['id']}"
    assert _local(_link(feature, "collection") or "") == f"/collections/{cid}", "/req/core/f-links"
    absent = client.get(f"/collections/{cid}/items/not-a-feature-0")
    assert problem(absent)["status"] == 404, f"/req/core/f-op 404 {cid}"


@pytest.mark.parametrize("cid", EVERY)
def test_bbox_req_core_fc_bbox_response(
    client: TestClient, request: pytest.FixtureRequest, cid: str
) -> None:
    if cid.startswith("batch"):
        request.getfixturevalue("batch_hotspots")
    everything = client.get(f"/collections/{cid}/items", params={"limit": 10_000}).json()
    target = shape(everything["features"][len(everything["features"]) // 2]["geometry"])
    x, y = target.representative_point().coords[0]
    query = box(x - 0.002, y - 0.002, x + 0.002, y + 0.002)
    bbox = ",".join(f"{v:.6f}" for v in query.bounds)
    found = client.get(f"/collections/{cid}/items", params={"bbox": bbox, "limit": 10_000}).json()
    expected = {
        f["id"] for f in everything["features"] if shapely.intersects(shape(f["geometry"]), query)
    }
    got = {f["id"] for f in found["features"]}
    assert got == expected and found["numberMatched"] == len(expected), (
        f"/req/core/fc-bbox-response: intersects {cid}"
    )
    assert 0 < len(got) < len(everything["features"]), cid
    nxt = client.get(f"/collections/{cid}/items", params={"bbox": bbox, "limit": 1}).json()
    if len(got) > 1:
        assert f"bbox={bbox.replace(',', '%2C')}" in (_link(nxt, "next") or ""), (
            "/req/core/fc-links: next keeps bbox"
        )


def test_datetime_req_core_fc_time_response(client: TestClient, engine: Engine) -> None:
    extent = client.get("/collections/incidents").json()["extent"]["temporal"]["interval"][0]
    first, last = (datetime.fromisoformat(v) for v in extent)
    middle = first + (last - first) / 2
    interval = f"{middle.isoformat()}/.."
    expected = _db_count(engine, "SELECT count(*) FROM incidents WHERE reported_at >= :t", t=middle)
    assert 0 < expected < _db_count(engine, "SELECT count(*) FROM incidents")
    incidents = client.get(
        "/collections/incidents/items", params={"datetime": interval, "limit": 10_000}
    ).json()
    assert incidents["numberMatched"] == expected, "/req/core/fc-time-response incidents"
    assert all(
        datetime.fromisoformat(f["properties"]["reported_at"]) >= middle
        for f in incidents["features"]
    )
    for cid in ("heatmap-h3-res8", "hotspots-h3-res8"):
        layer = client.get(
            f"/collections/{cid}/items", params={"datetime": interval, "limit": 10_000}
        ).json()
        total = sum(f["properties"]["count"] for f in layer["features"])
        assert total == expected, f"/req/core/fc-time-response {cid}"
        assert (
            f"datetime={interval.replace(':', '%3A').replace('+', '%2B').replace('/', '%2F')}"
            in (_link(layer, "self") or "")
        ), "/req/core/fc-links: self keeps datetime"
    # the emerging layer: the window is the datetime interval
    window = f"{(last - timedelta(days=240)).isoformat()}/{last.isoformat()}"
    emerging = client.get(
        "/collections/emerging-hotspots-h3-res8/items", params={"datetime": window, "limit": 10_000}
    ).json()
    inside = _db_count(
        engine,
        "SELECT count(*) FROM incidents WHERE reported_at >= :a AND reported_at < :b",
        a=last - timedelta(days=240),
        b=last,
    )
    total = sum(f["properties"]["count"] for f in emerging["features"])
    assert 0 < total <= inside, "/req/core/fc-time-response emerging: counts inside the window"
    default = client.get("/collections/emerging-hotspots-h3-res8/items", params={"limit": 10_000})
    assert sum(f["properties"]["count"] for f in default.json()["features"]) > total


def test_errors_req_core_query_param_invalid_and_unknown(client: TestClient) -> None:
    assert problem(client.get("/collections/nope"))["status"] == 404, "/req/core/sfc-md-op"
    assert problem(client.get("/collections/nope/items"))["status"] == 404, "/req/core/fc-op"
    for params in (
        {"limit": 0},
        {"limit": "ten"},
        {"offset": -1},
        {"bbox": "1,2"},
        {"datetime": "last week"},
        {"datetime": "2024-02-01T00:00:00Z/2024-01-01T00:00:00Z"},
        {"crs": "EPSG:3857"},
    ):
        response = client.get("/collections/incidents/items", params=params)
        assert problem(response)["status"] == 400, f"/req/core/query-param-invalid {params}"
    for path in ("/collections/incidents/items", "/collections/grids/items/1"):
        unknown = client.get(path, params={"sortby": "id"})
        assert problem(unknown)["status"] == 400, f"/req/core/query-param-unknown {path}"
    instant = client.get(
        "/collections/hotspots-h3-res8/items", params={"datetime": "2024-01-01T00:00:00Z"}
    )
    assert problem(instant)["status"] == 400, "a layer over a window takes an interval"
    clamped = client.get("/collections/incidents/items", params={"limit": 1_000_000}).json()
    assert clamped["numberReturned"] == min(clamped["numberMatched"], 10_000), (
        "/req/core/fc-limit-response-1: a limit above the maximum is clamped"
    )
    assert "limit=1000000" in (_link(clamped, "self") or "")


def test_links_keep_every_parameter(client: TestClient) -> None:
    params = {
        "bbox": "30.0,110.0,31.5,116.0",
        "bbox-crs": EPSG4326,
        "datetime": "2000-01-01T00:00:00Z/..",
        "crs": EPSG4326,
        "limit": "7",
        "f": "json",
        "offset": "7",
    }
    page = client.get("/collections/incidents/items", params=params).json()
    from urllib.parse import parse_qs, urlsplit

    for rel, offset in (("next", "14"), ("prev", "0"), ("self", "7")):
        href = _link(page, rel)
        assert href and href.startswith("http://testserver/collections/incidents/items?"), rel
        got = {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}
        assert got == {**params, "offset": offset}, f"/req/core/fc-links {rel} keeps parameters"


# --- Part 2: crs ----------------------------------------------------------------------------


@pytest.mark.parametrize("cid", ["grids", "incidents", "hotspots-h3-res8"])
def test_crs_epsg_4326_is_latitude_first_req_crs_ogc_crs_header(
    client: TestClient, cid: str
) -> None:
    plain = client.get(f"/collections/{cid}/items", params={"limit": 3})
    assert plain.headers["content-crs"] == f"<{CRS84}>", "/req/crs/ogc-crs-header"
    flipped = client.get(f"/collections/{cid}/items", params={"limit": 3, "crs": EPSG4326})
    assert flipped.headers["content-crs"] == f"<{EPSG4326}>", "/req/crs/ogc-crs-header"

    def swapped(geometry: dict[str, Any]) -> Any:
        return shapely.transform(shape(geometry), lambda xy: xy[:, ::-1])

    for a, b in zip(plain.json()["features"], flipped.json()["features"], strict=True):
        assert swapped(a["geometry"]).equals(shape(b["geometry"])), "/req/crs/fc-crs-valid-value"
    fid = plain.json()["features"][0]["id"]
    one = client.get(f"/collections/{cid}/items/{fid}", params={"crs": EPSG4326})
    assert one.headers["content-crs"] == f"<{EPSG4326}>"
    assert shape(one.json()["geometry"]).equals(shape(flipped.json()["features"][0]["geometry"]))
    assert (
        problem(client.get(f"/collections/{cid}/items/{fid}", params={"crs": "4326"}))["status"]
        == 400
    )


# --- incidents: who sees what ---------------------------------------------------------------


def test_incidents_are_scoped_and_carry_no_descriptions(
    client: TestClient, role_keys: dict[str, str], engine: Engine, loaded_city: DemoCity
) -> None:
    bound = as_role(role_keys, "analyst@district")
    district = loaded_city.households.grid_code.value_counts().index[0].split("-")[0]
    mine = _db_count(
        engine,
        "SELECT count(*) FROM incidents i JOIN areas g ON g.id = i.grid_id WHERE g.code LIKE :d",
        d=f"{district}-%",
    )
    page = client.get("/collections/incidents/items", params={"limit": 10_000}, headers=bound)
    body = page.json()
    assert body["numberMatched"] == mine < _db_count(engine, "SELECT count(*) FROM incidents")
    props = set(body["features"][0]["properties"])
    assert props == {"category", "priority", "status", "source", "reported_at", "grid_id"}
    with engine.connect() as conn:
        elsewhere = conn.execute(
            text(
                "SELECT i.id FROM incidents i JOIN areas g ON g.id = i.grid_id "
                "WHERE g.code NOT LIKE :d LIMIT 1"
            ),
            {"d": f"{district}-%"},
        ).scalar_one()
    assert client.get(f"/collections/incidents/items/{elsewhere}").status_code == 200
    hidden = client.get(f"/collections/incidents/items/{elsewhere}", headers=bound)
    assert problem(hidden)["status"] == 404, "/req/core/f-op: not visible answers as absent"
    # the heatmap of a bound caller counts its own incidents only
    heat = client.get(
        "/collections/heatmap-h3-res8/items", params={"limit": 10_000}, headers=bound
    ).json()
    assert sum(f["properties"]["count"] for f in heat["features"]) == mine


# --- computed once per parameter set ---------------------------------------------------------


def test_a_layer_is_computed_once_per_parameter_set(
    client: TestClient,
    settings: Settings,
    role_keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = computed._compute

    def counting(*args: Any) -> Any:
        calls.append(args[1])
        return original(*args)

    monkeypatch.setattr(computed, "_compute", counting)
    url: str | None = "/collections/hotspots-h3-res8/items?limit=10"
    for _ in range(4):
        page = client.get(_local(url or "")).json()
        url = _link(page, "next")
    assert calls == ["hotspots-h3-res8"], "four pages, one Gi*"
    client.get(
        "/collections/hotspots-h3-res8/items", params={"datetime": "2001-01-01T00:00:00Z/.."}
    )
    client.get(
        "/collections/hotspots-h3-res8/items", headers=as_role(role_keys, "analyst@district")
    )
    assert len(calls) == 3, "another window or another caller's grids: computed anew"
    off = settings.model_copy(update={"api": ApiSettings(map_tiles="none", ogc_layer_cache=False)})
    with TestClient(create_app(off), headers={"X-API-Key": role_keys["admin"]}) as uncached:
        for offset in (0, 10, 20):
            uncached.get(
                "/collections/hotspots-h3-res8/items", params={"limit": 10, "offset": offset}
            )
    assert len(calls) == 6, "GEO_OGC_LAYER_CACHE=false: every page recomputes"


def test_a_page_walk_sees_one_result_and_new_incidents_show_after_the_ttl(
    client: TestClient, loaded_city: DemoCity, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    now = [0.0]  # the cache's clock, driven by the test
    fake = SharedCache(TTLCache(maxsize=32, ttl=OGC_LAYER_TTL_S, timer=lambda: now[0]))
    monkeypatch.setattr(runtime.caches, "ogc_layers", fake)

    def total() -> int:
        page = client.get("/collections/heatmap-h3-res8/items", params={"limit": 10_000}).json()
        return sum(f["properties"]["count"] for f in page["features"])

    before = total()
    lon, lat, _ = grid_point(loaded_city)
    made = client.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon, "lat": lat}}
    )
    assert made.status_code == 201, made.text
    now[0] = OGC_LAYER_TTL_S - 1
    assert total() == before, "within the TTL a walk sees the result it started with"
    now[0] = OGC_LAYER_TTL_S + 1
    assert total() == before + 1, "after the TTL the new incident shows"
