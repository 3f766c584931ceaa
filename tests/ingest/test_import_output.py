"""Issue 15, what an import gives back, through the CLI and ``POST /imports/{kind}``: the reject
file (UTF-8 with a BOM for Excel, the source row number, the file's own column names), exit
codes a script can use, the counts by reason and the rejects as CSV over HTTP, the refusal past
``--max-rejected-share`` (nothing written), and points on the city's edge (``--edge-tolerance``)
on the ``common/`` tiny hierarchy of the shared cases."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from geo_service.api.app import create_app
from geo_service.api.schemas.ingest import ImportReportPublic, RejectedShareProblem
from geo_service.cli.main import app
from geo_service.db.engine import make_engine
from geo_service.demo.city import DemoCity
from geo_service.settings import (
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    LimitSettings,
    Settings,
)
from tests.conftest import grid_point, make_database, problem, role_url
from tests.ingest.helpers import CASES

TINY_DISTRICT = CASES / "common" / "tiny_district.geojson"
TINY_GRIDS = CASES / "common" / "tiny_grids.geojson"
BOM = b"\xef\xbb\xbf"
WHEN = "2026-01-01 10:00"  # a fixed time, before "now" on any run of the suite
UTM_50N = 32650  # the demo city (Wuhan) in projected metres, as a city office may export it
THEFT = "盗窃"  # a category the city does not have: the row is rejected


def _post(client: TestClient, key: str, kind: str, name: str, content: bytes, **data):  # noqa: ANN003, ANN202
    return client.post(
        f"/imports/{kind}",
        files={"file": (name, content, "application/octet-stream")},
        data=data,
        headers={"X-API-Key": key},
    )


def _incidents(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()


# --- the reject file -----------------------------------------------------------------------


def _chinese_rows(city: DemoCity) -> list[dict[str, object]]:
    """One good row, one of an unknown (Chinese) category, one at X=Y=0, in UTM metres."""
    lon, lat, _ = grid_point(city)
    x, y = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(UTM_50N).iloc[0].coords[0]
    return [
        {"X": x, "Y": y, "类型": "sanitation", "时间": WHEN, "描述": "清运垃圾"},
        {"X": x, "Y": y, "类型": THEFT, "时间": WHEN, "描述": "偷了自行车"},
        {"X": 0, "Y": 0, "类型": "sanitation", "时间": WHEN, "描述": "坐标为零"},
    ]


def _as_file(rows: list[dict[str, object]], fmt: str, tmp_path: Path) -> Path:
    frame = pd.DataFrame(rows)
    path = tmp_path / f"事件.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "xlsx":
        frame.to_excel(path, index=False)
    else:  # GeoJSON (WGS84): the coordinates are the geometry, not columns
        points = gpd.GeoSeries(gpd.points_from_xy(frame.pop("X"), frame.pop("Y")), crs=UTM_50N)
        geoms = points.to_crs(4326).where(points.x != 0, shapely.Point(0, 0))
        gpd.GeoDataFrame(frame, geometry=geoms).to_file(path, driver="GeoJSON")
    return path


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "geojson"])
def test_rejects_file_is_utf8_with_bom_row_numbers_reasons_and_the_files_own_columns(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    tmp_path: Path,
    fmt: str,
) -> None:
    path = _as_file(_chinese_rows(loaded_city), fmt, tmp_path)
    crs = ["--crs", f"EPSG:{UTM_50N}"] if fmt != "geojson" else []
    maps = ["--map", "类型=category", "--map", "时间=reported_at", "--map", "描述=description"]
    result = cli.invoke(app, ["import", "incidents", str(path), *crs, *maps])
    assert result.exit_code == 3, result.output  # some rows rejected, the rest imported
    target = tmp_path / f"{path.name}.rejects.csv"
    raw = target.read_bytes()
    assert raw[:3] == BOM  # Excel on a Chinese (GBK) Windows reads the file as UTF-8
    table = pd.read_csv(target, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    coordinates = ["source_X", "source_Y"] if fmt != "geojson" else []
    assert list(table.columns[:2]) == ["row", "reason"]
    assert set(table.columns[2:]) == {*coordinates, "source_类型", "source_时间", "source_描述"}
    assert "source_lon" not in table.columns and "source_category" not in table.columns
    # row: the feature number, 1-based; a table's header is not counted
    assert table.row.tolist() == ["2", "3"]
    assert table.reason.tolist() == [f"unknown category {THEFT!r}", "zero coordinates"]
    assert table.source_描述.tolist() == ["偷了自行车", "坐标为零"]
    assert table["source_类型"][0] == THEFT
    if fmt == "csv":
        lines = path.read_text(encoding="utf-8").splitlines()
        assert "偷了自行车" in lines[2]  # row 2 is line 3 (the header is line 1)
        # the values as the file has them (text, not re-formatted numbers)
        assert [table.source_X[1], table.source_Y[1]] == lines[3].split(",")[:2]

    data = {"map": ["类型=category", "时间=reported_at", "描述=description"]}
    if fmt != "geojson":
        data["crs"] = f"EPSG:{UTM_50N}"
    response = _post(client, role_keys["admin"], "incidents", path.name, path.read_bytes(), **data)
    assert response.status_code == 200, response.text
    body = response.json()
    ImportReportPublic.model_validate(body)  # the declared response model holds the body
    assert body["rejected_by_reason"] == {"unknown category": 1, "zero coordinates": 1}
    assert body["rejects_csv"] == raw[3:].decode("utf-8")  # the same text, without the BOM
    assert body["reject_file"] is None
    assert [r["row"] for r in body["rejects"]] == [2, 3]


def test_rejects_of_a_gbk_shapefile_name_its_cut_columns_as_the_dbf_has_them(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    # household_size cut by the DBF to "household_"; a GBK DBF with its .cpg
    homes = gpd.GeoDataFrame(
        {"id": ["h1", "h2"], "household_": [2, 99], "dizhi": ["汉口路1号", "武昌路2号"]},
        geometry=[shapely.Point(lon, lat)] * 2,
        crs=4326,
    )
    path = tmp_path / "shape" / "homes.shp"
    path.parent.mkdir()
    homes.to_file(path, encoding="gbk")
    result = cli.invoke(app, ["import", "households", str(path)])
    assert result.exit_code == 3, result.output
    target = tmp_path / "shape" / "homes.shp.rejects.csv"
    assert target.read_bytes()[:3] == BOM
    table = pd.read_csv(target, encoding="utf-8-sig", dtype=str)
    assert table.row.tolist() == ["2"] and table.reason[0].startswith("household_size")
    assert table.source_household_[0] == "99" and table.source_dizhi[0] == "武昌路2号"
    assert "source_household_size" not in table.columns

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in sorted(path.parent.glob("homes.*")):
            if not part.name.endswith(".csv"):
                zipped.write(part, part.name)
    response = _post(
        client, role_keys["admin"], "households", "homes.zip", archive.getvalue(), source_name="o"
    )
    assert response.status_code == 200, response.text
    rejects = pd.read_csv(io.StringIO(response.json()["rejects_csv"]), dtype=str)
    assert rejects.to_dict("records") == table.to_dict("records")


def test_nothing_rejected_means_no_rejects_csv_and_exit_0(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    path = _as_file(_chinese_rows(loaded_city)[:1], "csv", tmp_path)
    maps = ["--map", "类型=category", "--map", "时间=reported_at"]
    result = cli.invoke(app, ["import", "incidents", str(path), "--crs", "EPSG:32650", *maps])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / f"{path.name}.rejects.csv").exists()
    response = _post(
        client,
        role_keys["admin"],
        "incidents",
        path.name,
        path.read_bytes(),
        crs="EPSG:32650",
        map=["类型=category", "时间=reported_at"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rejected"] == 0 and body["rejects_csv"] is None
    assert body["rejected_by_reason"] == {}
    # the time zone naive times were read in: the deployment's (GEO_TIMEZONE), issue 19
    assert body["assumptions"]["tz"] == "Asia/Shanghai"


# --- exit codes and --max-rejected-share -----------------------------------------------------


def _half_bad_csv(city: DemoCity, tmp_path: Path) -> Path:
    lon, lat, _ = grid_point(city)
    path = tmp_path / "half.csv"
    pd.DataFrame(
        [
            {"lon": lon, "lat": lat, "category": "sanitation", "reported_at": WHEN},
            {"lon": lon, "lat": lat, "category": THEFT, "reported_at": WHEN},
        ]
    ).to_csv(path, index=False)
    return path


def test_max_rejected_share_refuses_the_whole_file_with_exit_4_and_writes_nothing(
    cli: CliRunner, engine: Engine, loaded_city: DemoCity, tmp_path: Path
) -> None:
    path = _half_bad_csv(loaded_city, tmp_path)
    before = _incidents(engine)
    refused = cli.invoke(app, ["import", "incidents", str(path), "--max-rejected-share", "0.2"])
    assert refused.exit_code == 4, refused.output
    assert "1 of 2 rows rejected (50.0%)" in refused.output
    assert "--max-rejected-share 0.2 (20.0%)" in refused.output
    assert "nothing was written" in refused.output and "unknown category: 1" in refused.output
    assert _incidents(engine) == before
    # the reject file still says why, so the file can be fixed
    rejects = pd.read_csv(tmp_path / "half.csv.rejects.csv", encoding="utf-8-sig", dtype=str)
    assert rejects.row.tolist() == ["2"]
    # a share not above the limit imports the rest: exit 3
    partial = cli.invoke(app, ["import", "incidents", str(path), "--max-rejected-share", "0.5"])
    assert partial.exit_code == 3, partial.output
    assert _incidents(engine) == before + 1


def test_max_rejected_share_over_http_is_a_422_problem_and_nothing_is_written(
    client: TestClient,
    role_keys: dict[str, str],
    engine: Engine,
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    path = _half_bad_csv(loaded_city, tmp_path)
    before = _incidents(engine)
    key = role_keys["admin"]
    refused = _post(client, key, "incidents", "half.csv", path.read_bytes(), max_rejected_share=0.2)
    assert refused.status_code == 422, refused.text
    body = problem(refused)
    RejectedShareProblem.model_validate(body)
    assert body["code"] == "rejected-share-exceeded"
    assert body["rejected_by_reason"] == {"unknown category": 1}
    assert body["rejected_share"] == 0.5 and body["max_rejected_share"] == 0.2
    assert body["read"] == 2 and body["rejected"] == 1
    assert "50.0%" in body["detail"] and "20.0%" in body["detail"]
    assert pd.read_csv(io.StringIO(body["rejects_csv"])).row.tolist() == [2]
    assert "reject_file" not in body  # a server-side path means nothing to the client
    assert _incidents(engine) == before
    taken = _post(client, key, "incidents", "half.csv", path.read_bytes(), max_rejected_share=0.5)
    assert taken.status_code == 200, taken.text
    assert taken.json()["inserted"] == 1 and _incidents(engine) == before + 1


def test_exit_codes_of_files_that_cannot_be_read_and_bad_options_are_2(
    cli: CliRunner, loaded_city: DemoCity, tmp_path: Path
) -> None:
    good = _half_bad_csv(loaded_city, tmp_path)
    picture = tmp_path / "photo.csv"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    for args, message in (
        (["incidents", str(tmp_path / "nope.csv")], "does not exist"),
        (["incidents", str(picture)], "photo.csv"),
        (["people", str(good)], "kind must be"),
        (["incidents", str(good), "--tz", "Mars/Olympus"], "unknown time zone"),
        (["incidents", str(good), "--map", "nope=category"], "no column 'nope'"),
        (["incidents", str(good), "--edge-tolerance", "-1"], "edge-tolerance"),
    ):
        result = cli.invoke(app, ["import", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, result.output


def test_import_help_documents_the_exit_codes(cli: CliRunner) -> None:
    result = cli.invoke(app, ["import", "--help"], terminal_width=200)
    assert result.exit_code == 0
    flat = " ".join(result.output.split())
    for phrase in ("Exit codes: 0 every row imported", "3 some rows rejected", "4 refused by"):
        assert phrase in flat, result.output
    assert "header is not counted" in flat


# --- the city's edge --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_city(database_url: str) -> Iterator[tuple[str, Engine, str]]:
    """A database of its own holding the ``common/`` tiny hierarchy (district D1, grids G1 and
    G2), published from 2020-01-01: the owner's URL, its engine and an admin key."""
    from sqlalchemy.orm import Session

    from geo_service.services.access.auth import create_key, create_user

    if not TINY_GRIDS.is_file():
        pytest.skip("shared field cases not present")
    url = make_database("geo_test_edge")
    engine = make_engine(url)
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GEO_DATABASE_URL", url)
        made = runner.invoke(
            app, ["import", "boundaries", str(TINY_DISTRICT), "--level", "district"]
        )
        assert made.exit_code == 0, made.output
        with engine.connect() as conn:
            draft = conn.execute(text("SELECT max(id) FROM boundary_versions")).scalar_one()
        grids = runner.invoke(
            app,
            [
                "import",
                "boundaries",
                str(TINY_GRIDS),
                "--level",
                "grid",
                "--parent-level",
                "district",
                "--version",
                str(draft),
            ],
        )
        assert grids.exit_code == 0, grids.output
        published = runner.invoke(
            app, ["boundaries", "publish", str(draft), "--effective-from", "2020-01-01"]
        )
        assert published.exit_code == 0, published.output
    with Session(engine) as session:
        user = create_user(session, name="edge-admin", role="admin", area_code=None, actor="t")
        key = create_key(session, user, actor="tests")[1]
        session.commit()
    yield url, engine, key
    engine.dispose()


@pytest.fixture
def edge_client(tiny_city: tuple[str, Engine, str]) -> Iterator[TestClient]:
    url = tiny_city[0]
    settings = Settings(
        database=DatabaseSettings(
            database_url=role_url(make_url(url).database or "", "app"), database_owner_url=url
        ),
        api=ApiSettings(map_tiles="none"),
        limits=LimitSettings(requests_per_minute=100_000, burst=10_000, auth_failures_per_minute=0),
        dispatch=DispatchSettings(escalation_interval_s=0),
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _edge_file(tmp_path: Path) -> Path:
    """Two incidents west of grid G1 (whose west side is lon -87.70): 3 m and 50 m out."""
    geod = Geod(ellps="WGS84")
    rows = []
    for metres in (3.0, 50.0):
        lon, lat, _ = geod.fwd(-87.70, 41.80, 270, metres)
        rows.append({"lon": lon, "lat": lat, "category": "traffic", "reported_at": WHEN})
    path = tmp_path / "edge.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _grids_of_incidents(engine: Engine) -> list[str]:
    with engine.begin() as conn:
        codes = conn.execute(
            text("SELECT a.code FROM incidents i JOIN areas a ON a.id = i.grid_id ORDER BY 1")
        ).scalars()
        found = list(codes)
        conn.execute(text("DELETE FROM incidents"))
    return found


def test_points_just_outside_the_city_go_to_the_nearest_grid_within_the_tolerance(
    tiny_city: tuple[str, Engine, str],
    edge_client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    url, engine, key = tiny_city
    monkeypatch.setenv("GEO_DATABASE_URL", url)
    path = _edge_file(tmp_path)
    _grids_of_incidents(engine)  # start empty

    # the documented default, 10 m: the point 3 m out goes to G1, the one 50 m out is refused
    default = CliRunner().invoke(app, ["import", "incidents", str(path)], terminal_width=200)
    assert default.exit_code == 3, default.output
    assert "snapped to the nearest grid" in default.output
    assert "1 (edge tolerance 10 m)" in default.output
    rejects = pd.read_csv(tmp_path / "edge.csv.rejects.csv", encoding="utf-8-sig", dtype=str)
    assert rejects.row.tolist() == ["2"] and rejects.reason[0] == "outside the city (in no grid)"
    assert _grids_of_incidents(engine) == ["G1"]
    response = _post(edge_client, key, "incidents", "edge.csv", path.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["assumptions"]["edge_snapped"] == 1
    assert body["assumptions"]["edge_tolerance_m"] == 10
    assert body["rejected_by_reason"] == {"outside the city (in no grid)": 1}
    assert _grids_of_incidents(engine) == ["G1"]

    # a tolerance of 0: both are outside the city
    zero = CliRunner().invoke(app, ["import", "incidents", str(path), "--edge-tolerance", "0"])
    assert zero.exit_code == 3, zero.output
    assert "snapped" not in zero.output
    assert _grids_of_incidents(engine) == []
    response = _post(edge_client, key, "incidents", "edge.csv", path.read_bytes(), edge_tolerance=0)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rejected_by_reason"] == {"outside the city (in no grid)": 2}
    assert "edge_snapped" not in body["assumptions"]
    assert _grids_of_incidents(engine) == []

    # 60 m takes both, the nearest grid of each
    wide = _post(edge_client, key, "incidents", "edge.csv", path.read_bytes(), edge_tolerance=60)
    assert wide.status_code == 200 and wide.json()["assumptions"]["edge_snapped"] == 2
    assert _grids_of_incidents(engine) == ["G1", "G1"]
