"""Chinese survives every download (issue 19): a hot spot layer asked for in zh-CN carries its
class labels in Chinese, and each file read back by the tool an analyst uses shows them:
CSV with a UTF-8 byte-order mark (Excel), a Shapefile with a ``.cpg`` saying UTF-8, a
GeoPackage, an XLSX."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity

ZH = {"Accept-Language": "zh-CN"}
CHINESE_CLASSES = {
    "不显著",
    "热点 - 99% 置信度",
    "热点 - 95% 置信度",
    "热点 - 90% 置信度",
    "冷点 - 90% 置信度",
    "冷点 - 95% 置信度",
    "冷点 - 99% 置信度",
}


def _download(client: TestClient, fmt: str) -> bytes:
    response = client.get(f"/hotspots/download?res=8&format={fmt}", headers=ZH)
    assert response.status_code == 200, response.text[:300]
    return response.content


def test_csv_has_a_bom_and_chinese_labels(client: TestClient, loaded_city: DemoCity) -> None:
    for fmt in ("csv", "csv-xy"):
        content = _download(client, fmt)
        assert content.startswith(b"\xef\xbb\xbf"), fmt  # Excel reads it as UTF-8
        frame = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", dtype=str)
        labels = set(frame["class_label"])
        assert "不显著" in labels and labels <= CHINESE_CLASSES, fmt
        # the values stay ArcGIS's names
        assert "Not Significant" in set(frame["class"])


def test_shapefile_says_utf8_in_its_cpg_and_reads_back_in_chinese(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    content = _download(client, "shp")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        cpg = [n for n in archive.namelist() if n.endswith(".cpg")]
        assert cpg, archive.namelist()
        assert archive.read(cpg[0]).decode().strip().upper() in ("UTF-8", "UTF8")
    path = tmp_path / "hotspots.shp.zip"
    path.write_bytes(content)
    frame = pyogrio.read_dataframe(path)
    label = next(c for c in frame.columns if c.startswith("class_lab"))  # 10 characters
    assert "不显著" in set(frame[label]) and set(frame[label]) <= CHINESE_CLASSES


@pytest.mark.parametrize("fmt", ["gpkg", "xlsx"])
def test_geopackage_and_xlsx_keep_chinese(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path, fmt: str
) -> None:
    content = _download(client, fmt)
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
        column = header.index("class_label")
        labels = {row[column] for row in sheet.iter_rows(min_row=2, values_only=True)}
    else:
        path = tmp_path / "hotspots.gpkg"
        path.write_bytes(content)
        labels = set(pyogrio.read_dataframe(path)["class_label"])
    assert "不显著" in labels and labels <= CHINESE_CLASSES
