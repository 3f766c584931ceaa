"""Layers download in the formats analysts open, and read back with GDAL, pandas and openpyxl
to the same cells and numbers the JSON endpoints serve (issue 16, "Files analysts open")."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity
from tests.conftest import problem

VECTOR = ["gpkg", "shp", "csv", "kml", "fgb", "parquet", "geojson"]


def _read(content: bytes, fmt: str, tmp_path: Path) -> pd.DataFrame:
    """Read a downloaded file back with the tool an analyst would use."""
    if fmt == "parquet":
        import geopandas as gpd

        return gpd.read_parquet(io.BytesIO(content))
    if fmt in ("csv-xy",):
        return pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", dtype={"h3": str})
    if fmt == "xlsx":
        return pd.read_excel(io.BytesIO(content), dtype={"h3": str})
    suffix = {"shp": "zip", "csv": "csv"}.get(fmt, fmt)
    path = tmp_path / f"layer.{suffix}"
    path.write_bytes(content)
    if fmt == "csv":  # GDAL's CSV driver turns the WKT column back into geometries
        return pyogrio.read_dataframe(path, GEOM_POSSIBLE_NAMES="WKT", KEEP_GEOM_COLUMNS="NO")
    return pyogrio.read_dataframe(path)


@pytest.fixture(scope="module")
def hotspot_json(client: TestClient, loaded_city: DemoCity) -> dict:
    response = client.get("/hotspots?res=8")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("fmt", VECTOR)
def test_hotspot_layer_downloads_read_back_with_gdal(
    client: TestClient, hotspot_json: dict, fmt: str, tmp_path: Path
) -> None:
    response = client.get(f"/hotspots/download?res=8&format={fmt}")
    assert response.status_code == 200, response.text[:300]
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "hotspots_res8" in disposition
    frame = _read(response.content, fmt, tmp_path)
    expected = {f["properties"]["h3"]: f["properties"] for f in hotspot_json["features"]}
    assert len(frame) == len(expected)
    got = dict(zip(frame["h3"].astype(str), frame["count"].astype(int), strict=True))
    assert got == {cell: props["count"] for cell, props in expected.items()}
    # the class is ArcGIS's text, whatever the format
    assert set(frame["class"]) <= {p["class"] for p in expected.values()}
    # the geometry is the cell's hexagon (GDAL read it back as a polygon around the centre)
    import h3

    first = frame.iloc[0]
    lat, lon = h3.cell_to_latlng(str(first["h3"]))
    assert first.geometry.contains(shapely.Point(lon, lat))


@pytest.mark.parametrize("fmt", ["csv-xy", "xlsx"])
def test_tables_carry_the_centre_of_each_cell(
    client: TestClient, hotspot_json: dict, fmt: str, tmp_path: Path
) -> None:
    response = client.get(f"/hotspots/download?res=8&format={fmt}")
    assert response.status_code == 200
    if fmt == "csv-xy":
        assert response.content.startswith(b"\xef\xbb\xbf")  # Excel on a Chinese Windows
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        assert sheet.title == "hotspots_res8"
    frame = _read(response.content, fmt, tmp_path)
    assert len(frame) == len(hotspot_json["features"])
    import h3

    for row in frame.head(20).itertuples():
        # the centre lies in its own cell
        assert h3.latlng_to_cell(row.lat, row.lon, 8) == row.h3


def test_heatmap_downloads_match_the_heatmap(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    served = client.get("/heatmap/h3?res=8&format=json").json()
    expected = {c["h3"]: c["count"] for c in served["cells"]}
    for fmt in ("gpkg", "fgb", "csv-xy"):
        response = client.get(f"/heatmap/download?res=8&format={fmt}")
        assert response.status_code == 200, response.text[:300]
        frame = _read(response.content, fmt, tmp_path)
        assert dict(zip(frame["h3"].astype(str), frame["count"].astype(int), strict=True)) == (
            expected
        )


def test_emerging_layer_downloads(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    served = client.get("/hotspots/emerging?res=7&bin=week")
    assert served.status_code == 200, served.text[:300]
    response = client.get("/hotspots/emerging/download?res=7&bin=week&format=gpkg")
    assert response.status_code == 200
    frame = _read(response.content, "gpkg", tmp_path)
    assert len(frame) == len(served.json()["features"])


def test_an_unknown_format_is_refused(client: TestClient, loaded_city: DemoCity) -> None:
    for path in ("/hotspots/download", "/heatmap/download", "/hotspots/emerging/download"):
        response = client.get(f"{path}?format=dwg")
        assert response.status_code == 422
        assert "format" in str(problem(response))
