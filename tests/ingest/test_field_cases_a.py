"""Field cases F03, F07, F11, F12 of issue 15 (``../shared/cases/import``), each as a kind of
input: the shared file through the CLI and ``POST /imports/{kind}``, and files of the same
kind generated here."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point
from tests.ingest.helpers import CASES, cli_import, count_rows, post_import

IMPORT = CASES / "import"
runner = CliRunner()


def _case(prefix: str, name: str) -> Path:
    (folder,) = IMPORT.glob(f"{prefix}_*")
    return folder / name


# --- F07: a UTF-8 BOM in any text table ----------------------------------------------------


def test_f07_shared_txt_with_bom_finds_its_columns_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _case("F07", "incidents_bom_loncol.txt")
    response = post_import(client, role_keys, "incidents", path.name, path.read_bytes())
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1, response.text
    result = cli_import(app_database_url, monkeypatch, "incidents", str(path))
    assert result.exit_code == 0, result.output
    assert "no coordinate columns" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("name", "sep", "gz"),
    [
        ("bom.csv", ",", False),
        ("bom.tsv", "\t", False),
        ("bom.txt", ";", False),
        ("bom.csv.gz", ",", True),
        ("bom.txt.gz", "\t", True),
    ],
)
def test_f07_bom_is_handled_in_every_text_format(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    name: str,
    sep: str,
    gz: bool,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    body = sep.join(["Longitude", "Latitude", "household_size"]) + "\n"
    body += sep.join([f"{lon}", f"{lat}", "3"]) + "\n"
    content = "\ufeff".encode() + body.encode()
    if gz:
        content = gzip.compress(content)
    before = count_rows(engine, "households")
    response = post_import(client, role_keys, "households", name, content)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    assert count_rows(engine, "households") == before + 1


# --- F03: Z (and M) values in any geometry type --------------------------------------------


def test_f03_shared_polygon_z_imports_with_z_dropped_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _case("F03", "district_z.geojson")
    response = post_import(
        client, role_keys, "boundaries", path.name, path.read_bytes(), level="grid"
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    assert response.json()["dimensions_dropped"] == ["Z"]
    result = cli_import(app_database_url, monkeypatch, "boundaries", str(path), "--level", "grid")
    assert result.exit_code == 0, result.output
    assert "Z values" in result.output and "Traceback" not in result.output


def _with_dims(geom, dims: str):  # noqa: ANN001, ANN202
    """``geom`` with a Z (and M) value on every vertex, of any geometry type."""
    import shapely

    extra = " 12.5" if dims == "Z" else " 12.5 7"
    body = re.sub(r"(-?[\d.]+ -?[\d.]+)", lambda m: m.group(1) + extra, shapely.to_wkt(geom))
    kind, rest = body.split(" ", 1)
    return shapely.from_wkt(f"{kind} {dims} {rest}")


def _ring(lon: float, lat: float, d: float = 0.0005) -> list[list[float]]:
    return [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]


@pytest.mark.parametrize("dims", ["Z", "ZM"])
@pytest.mark.parametrize(
    ("kind", "gtype"),
    [
        ("households", "Point"),
        ("roads", "LineString"),
        ("roads", "MultiLineString"),
        ("boundaries", "Polygon"),
        ("boundaries", "MultiPolygon"),
    ],
)
def test_f03_z_and_m_are_dropped_from_every_geometry_type(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    tmp_path: Path,
    kind: str,
    gtype: str,
    dims: str,
) -> None:
    import geopandas as gpd
    import shapely

    lon, lat, _ = grid_point(loaded_city)
    ring = _ring(lon, lat)
    geom = {
        "Point": shapely.Point(lon, lat),
        "LineString": shapely.LineString(ring[:3]),
        "MultiLineString": shapely.MultiLineString([ring[:3]]),
        "Polygon": shapely.Polygon(ring),
        "MultiPolygon": shapely.MultiPolygon([shapely.Polygon(ring)]),
    }[gtype]
    geom = _with_dims(geom, dims)
    props = {
        "households": {"household_size": 2},
        "roads": {"name": "z road"},
        "boundaries": {"code": f"Z-{gtype}", "name": "z"},
    }[kind]
    frame = gpd.GeoDataFrame({k: [v] for k, v in props.items()}, geometry=[geom], crs=4326)
    if dims == "ZM":  # GeoJSON has no M: a GeoParquet carries it
        path = tmp_path / "zm.parquet"
        frame.to_parquet(path)
        name, content = path.name, path.read_bytes()
    else:
        name, content = "z.geojson", frame.to_json().encode()
    data = {"level": "grid"} if kind == "boundaries" else {}
    response = post_import(client, role_keys, kind, name, content, **data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rejected"] == 0, body
    assert body["dimensions_dropped"] == (["Z", "M"] if dims == "ZM" else ["Z"])


# --- F11: lon and lat columns swapped ------------------------------------------------------


def test_f11_shared_swapped_columns_are_named_and_swap_xy_imports_them(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _case("F11", "incidents_swapped.csv")
    before = count_rows(engine, "incidents")
    response = post_import(client, role_keys, "incidents", path.name, path.read_bytes())
    assert response.status_code == 422, response.text
    assert "look swapped" in response.text and "swap" in response.json()["detail"]
    result = cli_import(app_database_url, monkeypatch, "incidents", str(path))
    assert result.exit_code != 0 and "look swapped" in result.output, result.output
    assert "Traceback" not in result.output
    assert count_rows(engine, "incidents") == before
    response = post_import(
        client, role_keys, "incidents", path.name, path.read_bytes(), swap_xy="true"
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2, response.text
    result = cli_import(app_database_url, monkeypatch, "incidents", str(path), "--swap-xy")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("name", "fmt"), [("sw.tsv", "tsv"), ("sw.geojson", "geojson")])
def test_f11_swapped_points_in_other_formats(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    tmp_path: Path,
    name: str,
    fmt: str,
) -> None:
    import geopandas as gpd
    import shapely

    lon, lat, _ = grid_point(loaded_city)
    if fmt == "tsv":
        content = f"Latitude\tLongitude\thousehold_size\n{lon}\t{lat}\t2\n".encode()
    else:
        frame = gpd.GeoDataFrame({"household_size": [2]}, geometry=[shapely.Point(lat, lon)])
        content = frame.to_json().encode()
    response = post_import(client, role_keys, "households", name, content)
    assert response.status_code == 422 and "look swapped" in response.text, response.text
    response = post_import(client, role_keys, "households", name, content, swap_xy="true")
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1, response.text


# --- F12: Excel workbooks ------------------------------------------------------------------


def test_f12_shared_xlsx_reads_like_a_csv_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The shared workbook also has its lon/lat the other way round (F11's kind).
    path = _case("F12", "incidents.xlsx")
    before = count_rows(engine, "incidents")
    response = post_import(client, role_keys, "incidents", path.name, path.read_bytes())
    assert response.status_code == 422 and "look swapped" in response.text, response.text
    response = post_import(
        client, role_keys, "incidents", path.name, path.read_bytes(), swap_xy="true"
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2, response.text
    assert count_rows(engine, "incidents") == before + 2
    result = cli_import(app_database_url, monkeypatch, "incidents", str(path), "--swap-xy")
    assert result.exit_code == 0, result.output
    assert "NoneType" not in result.output and "Traceback" not in result.output


def test_f12_an_xlsx_of_typed_cells_imports_and_a_renamed_one_is_judged_by_content(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pandas as pd

    lon, lat, _ = grid_point(loaded_city)
    path = tmp_path / "households.xlsx"
    pd.DataFrame(
        [
            {"Longitude": lon, "Latitude": lat, "household_size": 3, "id": 7},
            {"Longitude": lon, "Latitude": lat, "household_size": 99, "id": 8},
        ]
    ).to_excel(path, index=False, sheet_name="data")
    response = post_import(client, role_keys, "households", "hh.xlsx", path.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"]) == (1, 1), body
    # the same bytes under another name: the content decides, the name must agree
    response = post_import(client, role_keys, "households", "hh.zip", path.read_bytes())
    assert response.status_code == 415, response.text
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code in (0, 1, 3) and "Traceback" not in result.output, result.output
    assert "inserted" in result.output


def _xls(path: Path, rows: list[list[object]], sheet: str = "Sheet1") -> Path:
    """A legacy Excel 97-2003 workbook (BIFF8, as xlwt writes it)."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    page = book.add_sheet(sheet)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            page.write(i, j, value)
    book.save(str(path))
    return path


def test_f12_a_legacy_xls_reads_like_a_csv_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        ["经度", "纬度", "household_size", "id"],  # Chinese headers: matched by --map
        [lon, lat, 3, 420102001001],  # a Double id: read without ".0"
        [lon, lat, 99, 420102001002],  # out of range: rejected with its reason
    ]
    path = _xls(tmp_path / "households.xls", rows, sheet="住户")
    before = count_rows(engine, "households")
    response = post_import(
        client, role_keys, "households", "hh.xls", path.read_bytes(), map=["经度=lon", "纬度=lat"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"]) == (1, 1), body
    assert "household_size" in body["rejects"][0]["reason"]
    assert count_rows(engine, "households") == before + 1
    again = cli_import(
        app_database_url,
        monkeypatch,
        "households",
        str(path),
        "--map",
        "经度=lon",
        "--map",
        "纬度=lat",
        "--source-name",
        "hh",
        "--layer",
        "住户",
    )
    assert again.exit_code == 3 and "Traceback" not in again.output, again.output
    assert count_rows(engine, "households") == before + 1  # the same row again: nothing new


def test_f12_an_ole2_file_that_is_no_workbook_and_a_damaged_xlsx_are_refused(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    before = count_rows(engine, "households")
    not_a_workbook = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600  # a .doc, say
    response = post_import(client, role_keys, "households", "old.xls", not_a_workbook)
    assert response.status_code == 422, response.text
    assert "not a readable Excel .xls file" in response.text
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not a workbook")
    response = post_import(client, role_keys, "households", "broken.xlsx", buffer.getvalue())
    assert response.status_code == 422, response.text
    assert "not a readable Excel .xlsx file" in response.text
    assert count_rows(engine, "households") == before
