"""OGC API - Features, read by GDAL's own client (ogrinfo OAPIF:) and checked by hand."""

from __future__ import annotations

import os
import subprocess

import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, problem


def _ogrinfo(live_server: str, key: str, *args: str) -> str:
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"X-API-Key: {key}", "GDAL_HTTP_TIMEOUT": "60"}
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
    for params in ({"limit": 0}, {"bbox": "1,2,3"}, {"offset": -1}):
        assert problem(client.get("/collections/grids/items", params=params))["status"] == 422
    bad_time = client.get(
        "/collections/hotspots-h3-res8/items", params={"datetime": "yesterday/today"}
    )
    assert problem(bad_time)["status"] == 422
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
