"""Attack findings on CSV/TSV/TXT tables (issue 15, findings 8, 14 and part of 18), each
through ``POST /imports/{kind}`` and ``geo-service import``: GBK/Big5/UTF-16 text, a row with
the wrong number of fields, ';' or '|' as delimiter, a header naming a column twice. Every
file is generated here."""

from __future__ import annotations

import gzip
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point
from tests.ingest.helpers import cli_import, count_rows, post_import, zip_shapefile

ADDRESS = "武汉市洪山区雄楚大道"  # GBK, GB18030 and Big5 (traditional: see BIG5_ADDRESS)
BIG5_ADDRESS = "臺北市中正區重慶南路"


def _table(city: DemoCity, sep: str, address: str, *, bad_row: bool = True) -> str:
    """A households table: one good row with a Chinese address, and (``bad_row``) one row
    with an unreadable longitude, rejected with its address shown back."""
    lon, lat, _ = grid_point(city)
    lines = [
        sep.join(["lon", "lat", "household_size", "address"]),
        sep.join([f"{lon}", f"{lat}", "3", address]),
    ]
    if bad_row:
        lines.append(sep.join(["not-a-number", f"{lat}", "2", address + "2"]))
    return "\r\n".join(lines) + "\r\n"


def _reason_rows(rejects_csv: str) -> str:
    return rejects_csv.replace("\r\n", "\n")


# --- (8) GBK / GB18030 / Big5 / UTF-16 tables ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sep", "gz"),
    [
        ("gbk.csv", ",", False),
        ("gbk.tsv", "\t", False),
        ("gbk.txt", "\t", False),
        ("gbk.csv.gz", ",", True),
    ],
)
def test_gbk_table_is_detected_as_gb18030_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    sep: str,
    gz: bool,
) -> None:
    content = _table(loaded_city, sep, ADDRESS).encode("gbk")
    if gz:
        content = gzip.compress(content)
    response = post_import(client, role_keys, "households", name, content)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"]) == (1, 1), body
    assert body["encoding"] == "gb18030"
    assert body["assumptions"]["encoding"] == "gb18030"
    assert ADDRESS + "2" in body["rejects_csv"]  # decoded, shown back in the reject file
    path = tmp_path / name
    path.write_bytes(content)
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code == 3, result.output
    assert "gb18030" in result.output and "Traceback" not in result.output
    rejects = Path(f"{path}.rejects.csv").read_text(encoding="utf-8-sig")
    assert ADDRESS + "2" in rejects


def test_big5_table_is_read_with_the_encoding_option_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    content = _table(loaded_city, ",", BIG5_ADDRESS).encode("big5")
    response = post_import(client, role_keys, "households", "big5.csv", content, encoding="big5")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"], body["encoding"]) == (1, 1, "big5"), body
    assert BIG5_ADDRESS + "2" in body["rejects_csv"]
    path = tmp_path / "big5.csv"
    path.write_bytes(content)
    result = cli_import(
        app_database_url, monkeypatch, "households", str(path), "--encoding", "big5"
    )
    assert result.exit_code == 3, result.output
    assert "big5" in result.output and "Traceback" not in result.output
    assert BIG5_ADDRESS + "2" in Path(f"{path}.rejects.csv").read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("codec", ["big5", "cp950"])
def test_big5_table_without_the_option_is_detected_not_read_as_gbk(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    codec: str,
) -> None:
    # Most Big5 bytes are valid GB18030 too (and read as nonsense): the text decides.
    content = _table(loaded_city, ",", BIG5_ADDRESS).encode(codec)
    response = post_import(client, role_keys, "households", f"{codec}.csv", content)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"], body["encoding"]) == (1, 1, "cp950"), body
    assert BIG5_ADDRESS + "2" in body["rejects_csv"]
    path = tmp_path / f"{codec}.csv"
    path.write_bytes(content)
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code == 3, result.output
    assert "cp950" in result.output
    assert BIG5_ADDRESS + "2" in Path(f"{path}.rejects.csv").read_text(encoding="utf-8-sig")


def test_big5_shapefile_without_a_cpg_is_detected(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    frame = gpd.GeoDataFrame(
        {"household_size": [2], "address": [BIG5_ADDRESS + "一段"]},
        geometry=[shapely.Point(lon, lat)],
        crs=4326,
    )
    shp = tmp_path / "big5_homes.shp"
    frame.to_file(shp, encoding="cp950")
    shp.with_suffix(".cpg").unlink(missing_ok=True)  # as many Taiwanese tools leave it
    response = post_import(client, role_keys, "households", "big5_homes.zip", zip_shapefile(shp))
    assert response.status_code == 200, response.text
    assert response.json()["encoding"] == "cp950", response.json()
    assert response.json()["inserted"] == 1


def test_a_wrong_encoding_option_refuses_the_table_and_writes_nothing(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    content = _table(loaded_city, ",", ADDRESS).encode("gbk")
    before = count_rows(engine, "households")
    response = post_import(client, role_keys, "households", "gbk.csv", content, encoding="utf-8")
    assert response.status_code == 422, response.text
    assert "not utf-8 text" in response.json()["detail"]
    assert "--encoding" in response.json()["detail"]
    path = tmp_path / "gbk.csv"
    path.write_bytes(content)
    result = cli_import(
        app_database_url, monkeypatch, "households", str(path), "--encoding", "utf-8"
    )
    assert result.exit_code == 2, result.output
    assert "not utf-8 text" in result.output and "Traceback" not in result.output
    assert count_rows(engine, "households") == before


@pytest.mark.parametrize(
    ("name", "sep", "codec"),
    [
        ("excel_unicode.txt", "\t", "utf-16"),  # Excel "Unicode Text": UTF-16LE with BOM
        ("utf16le.csv", ",", "utf-16-le"),
        ("utf16be.csv", ",", "utf-16-be"),
    ],
)
def test_utf16_tables_with_a_bom_are_read_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    sep: str,
    codec: str,
) -> None:
    text = _table(loaded_city, sep, ADDRESS)
    content = text.encode(codec) if codec == "utf-16" else ("\ufeff" + text).encode(codec)
    response = post_import(client, role_keys, "households", name, content)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"], body["encoding"]) == (1, 1, "utf-16"), body
    assert ADDRESS + "2" in body["rejects_csv"]
    path = tmp_path / name
    path.write_bytes(content)
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code == 3, result.output
    assert "utf-16" in result.output and "Traceback" not in result.output


def test_utf16_text_that_is_not_a_table_is_refused(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    content = '{"type": "FeatureCollection", "features": []}'.encode("utf-16")
    response = post_import(client, role_keys, "households", "x.geojson", content)
    assert response.status_code == 415, response.text
    assert "UTF-16" in response.json()["detail"]


# --- (14) a row with the wrong number of fields -------------------------------------------


@pytest.mark.parametrize("where", ["middle", "first", "short", "gz"])
def test_a_malformed_row_is_rejected_alone_with_its_line_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    good = [f"{lon},{lat},{n},street {n},note {n}" for n in range(1, 5)]
    bad = {
        "middle": f"{lon},{lat},7,street,with,two,commas",
        "first": f"{lon},{lat},7,street,with,two,commas",
        "short": f"{lon},{lat},7",
        "gz": f"{lon},{lat},7,street,with,two,commas",
    }[where]
    at = 0 if where == "first" else 2  # among the data rows
    rows = [*good[:at], bad, *good[at:]]
    text = "lon,lat,household_size,address,note\n" + "\n".join(rows) + "\n"
    content = gzip.compress(text.encode()) if where == "gz" else text.encode()
    name = "rows.csv.gz" if where == "gz" else "rows.csv"
    fields = 3 if where == "short" else 7
    reason = f"line {at + 2} has {fields} fields, the header has 5"
    response = post_import(client, role_keys, "households", name, content)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"]) == (4, 1), body
    assert body["rejects"][0]["row"] == at + 1
    assert reason in body["rejects"][0]["reason"]
    path = tmp_path / name
    path.write_bytes(content)
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert reason in Path(f"{path}.rejects.csv").read_text(encoding="utf-8-sig")


def test_a_table_whose_last_column_is_often_empty_is_read_whole(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [f"{lon},{lat},{n},street {n}," for n in range(1, 4)]
    text = "lon,lat,household_size,address,note\n" + "\n".join(rows) + "\n"
    response = post_import(client, role_keys, "households", "empty_notes.csv", text.encode())
    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["rejected"]) == (3, 0)


# --- (18, partial) the delimiter and a repeated header ------------------------------------


@pytest.mark.parametrize(("name", "sep"), [("semi.csv", ";"), ("pipe.csv", "|"), ("t.txt", ";")])
def test_the_delimiter_is_taken_from_the_header_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    sep: str,
) -> None:
    content = _table(loaded_city, sep, "street", bad_row=False).encode()
    response = post_import(client, role_keys, "households", name, content)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] + response.json()["already_present"] == 1
    path = tmp_path / name
    path.write_bytes(content)
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code == 0, result.output
    assert "no coordinate columns" not in result.output


@pytest.mark.parametrize("header", ["lon,lat,lat,household_size", "lon, lat,lat ,household_size"])
def test_a_header_naming_a_column_twice_is_refused_over_http_and_cli(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    header: str,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    content = f"{header}\n{lon},{lat},{lat + 0.01},3\n".encode()
    before = count_rows(engine, "households")
    response = post_import(client, role_keys, "households", "dup.csv", content)
    assert response.status_code == 422, response.text
    assert "'lat' more than once" in response.json()["detail"]
    path = tmp_path / "dup.csv"
    path.write_bytes(content)
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code == 2, result.output
    assert "more than once" in result.output and "Traceback" not in result.output
    assert count_rows(engine, "households") == before


# --- decimal commas (Excel's CSV where the comma is the decimal sign) ------------------------


def test_decimal_commas_are_read_in_a_semicolon_table_and_reported(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    lon_text, lat_text = f"{lon:.6f}".replace(".", ","), f"{lat:.6f}".replace(".", ",")
    content = f"id;x;y;household_size\r\ne1;{lon_text};{lat_text};3\r\n".encode()
    response = post_import(client, role_keys, "households", "european.csv", content)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["rejected"]) == (1, 0), body
    assert body["assumptions"]["decimal_comma"] == ["x", "y"]
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT ST_X(location), ST_Y(location) FROM households "
                "WHERE external_ref = 'european:e1'"
            )
        ).one()
    assert stored == pytest.approx((round(lon, 6), round(lat, 6)), abs=1e-7)
    path = tmp_path / "european.csv"
    path.write_bytes(content.replace(b"e1;", b"e2;"))
    result = cli_import(app_database_url, monkeypatch, "households", str(path))
    assert result.exit_code == 0, result.output
    assert "decimal comma read in" in result.output


def test_a_quoted_comma_number_in_a_comma_table_is_rejected_not_guessed(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    # "114,305" in a comma-delimited file may be a thousands separator: the row is refused.
    lon, lat, _ = grid_point(loaded_city)
    lon_text = f"{lon:.3f}".replace(".", ",")
    content = f'lon,lat,household_size\r\n"{lon_text}",{lat},3\r\n'.encode()
    before = count_rows(engine, "households")
    response = post_import(client, role_keys, "households", "quoted.csv", content)
    assert response.status_code == 200, response.text
    (reject,) = response.json()["rejects"]
    assert reject["reason"].startswith(f"unreadable coordinates '{lon_text}'"), reject
    assert count_rows(engine, "households") == before
