"""Findings of the new-user attack on the importers (issue 15 review), each shown closed through
the CLI and over HTTP: out-of-calendar years per row, formula cells made inert in the rejects,
a reject file that cannot be written refused before anything is written, CGCS2000 whatever
the container, category maps saved from Excel, lifecycle stages that need a responder,
unreadable coordinates named as such, and ``--set`` over a file's own column reported."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point
from tests.ingest.helpers import cli_import, count_rows, post_import

WHEN = "2024-06-01T09:00:00Z"


def _csv(path: Path, rows: list[dict[str, object]], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path


def test_years_outside_the_calendar_are_rejected_row_by_row(
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
        {"lon": lon, "lat": lat, "category": "traffic", "reported_at": when}
        for when in ("9999-12-31 10:00:00", "0219-05-01 08:00", "2024-06-01 09:00:00")
    ]
    path = _csv(tmp_path / "sentinels.csv", rows)
    before = count_rows(engine, "incidents")
    result = cli_import(
        app_database_url, monkeypatch, "incidents", str(path), "--tz", "Asia/Shanghai"
    )
    assert result.exit_code == 3, result.output  # the good row in, two rejected
    assert "Traceback" not in result.output and "nanosecond" not in result.output
    assert count_rows(engine, "incidents") == before + 1
    rejects = pd.read_csv(f"{path}.rejects.csv", encoding="utf-8-sig")
    assert list(rejects.row) == [1, 2]
    assert all("1900 to 2199" in r for r in rejects.reason)
    response = post_import(
        client, role_keys, "incidents", "s.csv", path.read_bytes(), tz="Asia/Shanghai"
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 2


def test_formula_cells_are_inert_in_the_rejects(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    tmp_path: Path,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {"lon": lon, "lat": lat, "category": "=cmd|' /C calc'!A0", "note": "@SUM(1+1)"},
        {"lon": lon, "lat": lat, "category": "nope", "note": '=HYPERLINK("http://x","y")'},
        {"lon": lon, "lat": lat, "category": "nope", "note": "-12.5"},
    ]
    path = _csv(tmp_path / "formula.csv", rows)
    result = cli_import(app_database_url, monkeypatch, "incidents", str(path))
    assert result.exit_code == 3, result.output
    for text in (
        Path(f"{path}.rejects.csv").read_text(encoding="utf-8-sig"),
        post_import(client, role_keys, "incidents", "f.csv", path.read_bytes()).json()[
            "rejects_csv"
        ],
    ):
        table = pd.read_csv(io.StringIO(text), dtype=str)
        cells = [str(v) for v in table.drop(columns=["row"]).to_numpy().ravel() if v == v]
        assert not any(c.startswith(("=", "@", "+")) for c in cells), cells
        assert '\'=HYPERLINK("http://x","y")' in cells and "-12.5" in cells


def test_a_reject_file_that_cannot_be_written_is_refused_before_anything_is_written(
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {"lon": lon, "lat": lat, "category": c, "reported_at": WHEN} for c in ("traffic", "nope")
    ]
    path = _csv(tmp_path / "in.csv", rows)
    original = path.read_bytes()
    before = count_rows(engine, "incidents")
    for target, why in (
        (tmp_path / "no" / "such" / "dir.csv", "no such writable directory"),
        (tmp_path, "is a directory"),
        (path, "is the file being imported"),
    ):
        result = cli_import(
            app_database_url, monkeypatch, "incidents", str(path), "--rejects", str(target)
        )
        assert result.exit_code == 2, result.output
        assert why in result.output and "Traceback" not in result.output
    assert count_rows(engine, "incidents") == before  # nothing was written
    assert path.read_bytes() == original  # the input was not overwritten


def test_cgcs2000_is_accepted_in_geoparquet_as_in_every_other_container(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    frame = gpd.GeoDataFrame(
        {"category": ["traffic"], "reported_at": [WHEN]},
        geometry=[shapely.Point(lon, lat)],
        crs="EPSG:4490",
    )
    for name, write in (
        ("cg.parquet", lambda p: frame.to_parquet(p)),
        ("cg.gpkg", lambda p: frame.to_file(p, driver="GPKG")),
    ):
        path = tmp_path / name
        write(path)
        response = post_import(client, role_keys, "incidents", name, path.read_bytes())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["inserted"] + body["already_present"] == 1, body
        assert body["assumptions"]["transformation_accuracy_m"] == 1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_category_maps_saved_from_excel_are_read(
    loaded_city: DemoCity,
    tmp_path: Path,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    encoding: str,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = _csv(
        tmp_path / "cn.csv", [{"lon": lon, "lat": lat, "类别": "交通事故", "reported_at": WHEN}]
    )
    mapping = tmp_path / "map.csv"
    mapping.write_bytes("source,ours\n交通事故,traffic\n".encode(encoding))
    result = cli_import(
        app_database_url,
        monkeypatch,
        "incidents",
        str(path),
        "--map",
        "类别=category",
        "--category-map",
        str(mapping),
        "--source-name",
        f"catmap-{encoding}",
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_stages_that_need_a_responder_are_rejected_with_the_reason(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {"lon": lon, "lat": lat, "category": "traffic", "status": status, "reported_at": WHEN}
        for status in ("dispatched", "accepted", "on_scene", "reported", "closed")
    ]
    path = _csv(tmp_path / "stages.csv", rows)
    body = post_import(client, role_keys, "incidents", "stages.csv", path.read_bytes()).json()
    assert (body["inserted"], body["rejected"]) == (2, 3), body
    assert all("needs a responder" in r["reason"] for r in body["rejects"])


def test_unreadable_coordinates_are_named_and_set_over_a_column_is_reported(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {"lon": str(lon).replace(".", ","), "lat": str(lat).replace(".", ","), "category": "x"},
        {"lon": "114°24'37\"E", "lat": lat, "category": "x"},
        {"lon": "", "lat": "", "category": "x"},
        {"lon": lon, "lat": lat, "category": "traffic"},
    ]
    rows = [{**r, "reported_at": WHEN} for r in rows]
    path = _csv(tmp_path / "odd.csv", rows)
    response = post_import(
        client, role_keys, "incidents", "odd.csv", path.read_bytes(), set=["category=sanitation"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    reasons = {r["row"]: r["reason"] for r in body["rejects"]}
    assert reasons[1].startswith("unreadable coordinates") and reasons[2].startswith(
        "unreadable coordinates"
    )
    assert reasons[3] == "missing coordinates"
    assert body["assumptions"]["set_over_file_columns"] == [
        "category=sanitation (the file's own 'category' column not used)"
    ]


def test_a_version_that_takes_no_areas_is_a_wrong_option_exit_2(
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    app_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import text

    with engine.connect() as conn:
        published = conn.execute(
            text("SELECT id FROM boundary_versions WHERE status = 'published' LIMIT 1")
        ).scalar_one()
    lon, lat, _ = grid_point(loaded_city)
    square = shapely.box(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    path = tmp_path / "g.geojson"
    gpd.GeoDataFrame({"code": ["X1"]}, geometry=[square], crs=4326).to_file(path)
    for version, why in ((published, "only drafts take new areas"), (999_999, "does not exist")):
        result = cli_import(
            app_database_url,
            monkeypatch,
            "boundaries",
            str(path),
            "--level",
            "grid",
            "--version",
            str(version),
        )
        assert result.exit_code == 2, result.output
        assert why in result.output and "Traceback" not in result.output
