"""OGC API - Features, read by GDAL's own client (ogrinfo OAPIF:) and checked by hand."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, problem


def _ogrinfo(live_server: str, key: str, *args: str) -> str:
    """Debian's ogrinfo (GDAL 3.6) with the README's recipe: the key in a header file."""
    import tempfile

    headers = Path(tempfile.mkdtemp()) / "headers.txt"
    headers.write_text(f"X-API-Key: {key}\n")
    env = {**os.environ, "GDAL_HTTP_HEADER_FILE": str(headers), "GDAL_HTTP_TIMEOUT": "60"}
    proc = subprocess.run(
        ["ogrinfo", "-ro", f"OAPIF:{live_server}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_gdal_lists_and_reads_the_collections(
    live_server: str, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    listing = _ogrinfo(live_server, role_keys["analyst"])
    for cid in (
        "grids",
        "communities",
        "streets",
        "districts",
        "heatmap-h3-res8",
        "hotspots-h3-res8",
    ):
        assert cid in listing, listing
    summary = _ogrinfo(live_server, role_keys["analyst"], "-so", "grids")
    n_grids = int((loaded_city.areas.level == "grid").sum())
    assert f"Feature Count: {n_grids}" in summary
    assert "code: String" in summary
    # All hot spot features, paged by GDAL through our next links.
    hot = _ogrinfo(live_server, role_keys["analyst"], "-al", "-q", "-geom=NO", "hotspots-h3-res8")
    assert hot.count("OGRFeature(") > 100 and "class (String) = " in hot


def test_ogc_documents_and_paging(client: TestClient, loaded_city: DemoCity) -> None:
    assert problem(client.get("/", headers={"X-API-Key": ""}))["status"] == 401
    landing = client.get("/").json()
    assert {link["rel"] for link in landing["links"]} >= {"service-desc", "conformance", "data"}
    conformance = client.get("/conformance").json()
    assert any(c.endswith("/conf/geojson") for c in conformance["conformsTo"])
    grid = client.get("/collections/grids").json()
    assert len(grid["extent"]["spatial"]["bbox"][0]) == 4
    first = client.get("/collections/grids/items", params={"limit": 25})
    assert first.headers["content-type"].startswith("application/geo+json")
    page = first.json()
    n_grids = int((loaded_city.areas.level == "grid").sum())
    assert page["numberMatched"] == n_grids and page["numberReturned"] == 25
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    second = client.get(nxt.replace("http://testserver", "")).json()
    assert {f["id"] for f in second["features"]}.isdisjoint({f["id"] for f in page["features"]})
    one = client.get(f"/collections/grids/items/{page['features'][0]['id']}").json()
    assert one["properties"]["code"] == page["features"][0]["properties"]["code"]
    heat = client.get(
        "/collections/heatmap-h3-res8/items",
        params={"datetime": "2000-01-01T00:00:00Z/..", "limit": 10000},
    ).json()
    assert sum(f["properties"]["count"] for f in heat["features"]) == len(loaded_city.incidents)


def test_ogc_bad_input_and_access(client: TestClient, role_keys: dict[str, str]) -> None:
    assert problem(client.get("/collections/nope"))["status"] == 404
    assert problem(client.get("/collections/nope/items"))["status"] == 404
    assert problem(client.get("/collections/grids/items/abc"))["status"] == 404
    # invalid parameters answer 400 on OGC routes (/req/core/query-param-invalid)
    for params in (
        {"limit": 0},
        {"limit": "many"},
        {"bbox": "1,2,3"},
        {"bbox": "1,2,3,4,5"},
        {"offset": -1},
        {"bbox": "114,30,115,31", "bbox-crs": "EPSG:3857"},
    ):
        assert problem(client.get("/collections/grids/items", params=params))["status"] == 400
    bad_time = client.get(
        "/collections/hotspots-h3-res8/items", params={"datetime": "yesterday/today"}
    )
    assert problem(bad_time)["status"] == 400
    # and unknown ones too (/req/core/query-param-unknown)
    for path in ("/", "/conformance", "/collections", "/collections/grids/items"):
        unknown = problem(client.get(path, params={"colour": "red"}))
        assert unknown["status"] == 400 and "colour" in unknown["detail"]
    assert problem(client.get("/collections", headers={"X-API-Key": ""}))["status"] == 401
    assert client.get("/collections", headers=as_role(role_keys, "analyst")).status_code == 200


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_hotspot_layer_downloads(client: TestClient, fmt: str, tmp_path) -> None:  # noqa: ANN001
    import geopandas as gpd

    response = client.get("/hotspots/download", params={"format": fmt, "res": 8})
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    path = tmp_path / f"hotspots.{fmt}"
    path.write_bytes(response.content)
    layer = gpd.read_file(path)
    assert {"h3", "count", "z", "p", "p_fdr", "class"} <= set(layer.columns)
    assert len(layer) > 100 and layer.crs.to_epsg() == 4326


def test_ogc_limits_bboxes_and_axis_order(client: TestClient, loaded_city) -> None:  # noqa: ANN001
    """What OWSLib and QGIS send: a limit above the maximum (clamped, per the standard), a
    6-number bbox, a bbox in EPSG:4326's lat/lon order, and a box larger than a city."""
    huge = client.get("/collections/grids/items", params={"limit": 50_000})
    assert huge.status_code == 200
    assert huge.json()["numberReturned"] == min(huge.json()["numberMatched"], 10_000)
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    box = (cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01)
    plain = client.get("/collections/grids/items", params={"bbox": ",".join(map(str, box))}).json()
    ids = {f["id"] for f in plain["features"]}
    assert ids
    six = client.get(
        "/collections/grids/items",
        params={"bbox": f"{box[0]},{box[1]},-10,{box[2]},{box[3]},500"},
    ).json()
    assert {f["id"] for f in six["features"]} == ids
    lat_lon = client.get(
        "/collections/grids/items",
        params={
            "bbox": f"{box[1]},{box[0]},{box[3]},{box[2]}",
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
        },
    ).json()
    assert {f["id"] for f in lat_lon["features"]} == ids
    # a zoomed-out desktop view (two provinces' worth) is a query like any other
    wide = client.get("/collections/districts/items", params={"bbox": "110,28,118,33"})
    assert wide.status_code == 200 and wide.json()["numberMatched"] > 0


PYOGRIO_READ = """
import sys, pyogrio
frame = pyogrio.read_dataframe(sys.argv[1], layer=sys.argv[2])
print(pyogrio.__gdal_version_string__, len(frame), ",".join(frame.columns))
"""


@pytest.mark.parametrize("auth", ["header_file", "bearer"])
def test_the_gdal_of_the_project_dependencies_reads_the_layers(
    live_server: str, role_keys: dict[str, str], loaded_city: DemoCity, auth: str, tmp_path
) -> None:  # noqa: ANN001
    """The README's recipe with the GDAL the pyogrio wheel brings (3.12 ignores
    GDAL_HTTP_HEADERS here): a header file, or GDAL_HTTP_AUTH=BEARER with the key."""
    import sys

    key = role_keys["analyst"]
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "60"}
    env.pop("GDAL_HTTP_HEADERS", None)
    if auth == "header_file":
        headers = tmp_path / "headers.txt"
        headers.write_text(f"X-API-Key: {key}\n")
        env["GDAL_HTTP_HEADER_FILE"] = str(headers)
    else:
        env.update(GDAL_HTTP_AUTH="BEARER", GDAL_HTTP_BEARER=key)
    proc = subprocess.run(
        [sys.executable, "-c", PYOGRIO_READ, f"OAPIF:{live_server}", "grids"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    version, count, columns = proc.stdout.split()
    assert version.startswith("3.") and int(version.split(".")[1]) >= 9, version
    assert int(count) == int((loaded_city.areas.level == "grid").sum())
    assert "code" in columns.split(",")


def test_a_feature_id_in_other_digits_is_not_found(
    client: TestClient, loaded_city: DemoCity
) -> None:
    # str.isdigit() takes "２５１" (full-width) and int() reads it as 251: one feature, two ids
    first = client.get("/collections/grids/items", params={"limit": 1}).json()["features"][0]
    fid = str(first["id"])
    assert client.get(f"/collections/grids/items/{fid}").status_code == 200
    wide = "".join(chr(ord(c) + 0xFEE0) for c in fid)
    assert client.get(f"/collections/grids/items/{wide}").status_code == 404


def test_datetime_is_rfc_3339_and_a_date_is_its_whole_local_day(
    client: TestClient, loaded_city: DemoCity, engine
) -> None:  # noqa: ANN001
    from sqlalchemy import text

    with engine.connect() as conn:
        day, expected = conn.execute(
            text(
                "SELECT d, count(*) FROM (SELECT (reported_at AT TIME ZONE 'Asia/Shanghai')::date"
                " AS d FROM incidents) x GROUP BY d ORDER BY count(*) DESC, d LIMIT 1"
            )
        ).one()
    # review, issue 16: "2026-06-01" matched only the instant 00:00 UTC and gave 0
    body = client.get(
        "/collections/incidents/items", params={"datetime": day.isoformat(), "limit": 1}
    ).json()
    assert body["numberMatched"] == expected > 0
    # the same day as a closed interval of dates
    both = client.get(
        "/collections/incidents/items",
        params={"datetime": f"{day.isoformat()}/{day.isoformat()}", "limit": 1},
    ).json()
    assert both["numberMatched"] == expected
    for bad in ("2026-W22-1/2026-W23-1", "20260601/20260602", "2026-06-01T08", "June 1st"):
        refused = client.get("/collections/incidents/items", params={"datetime": bad})
        assert refused.status_code == 400, (bad, refused.text)


def test_a_page_of_a_computed_layer_answers_304_while_it_is_cached(
    client: TestClient, loaded_city: DemoCity
) -> None:
    url = "/collections/hotspots-h3-res8/items"
    first = client.get(url, params={"limit": 5})
    assert first.status_code == 200 and first.headers.get("etag")
    again = client.get(url, params={"limit": 5}, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
