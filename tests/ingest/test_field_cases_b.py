"""Issue 15, field cases F01, F06, F09 and R6, read from the shared cases directory, through
the CLI and ``POST /imports/{kind}``; each with a file of the same kind made here."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.demo.city import DemoCity
from tests.conftest import grid_point
from tests.ingest.helpers import CASES, post_import, zip_shapefile

F01 = CASES / "import" / "F01_shapefile_gbk_no_cpg" / "districts_gbk.shp"
F06 = CASES / "import" / "F06_gpkg_multiple_layers" / "city_layers.gpkg"
F09 = CASES / "import" / "F09_real_typed_codes" / "grids_realcode.shp"
R6 = CASES / "hidden_data" / "R6_zero_xy_utm.csv"
R6_MAP = CASES / "hidden_data" / "R6_catmap.csv"
SQUARE = shapely.box(114.300, 30.590, 114.304, 30.594)

pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason="shared field cases not present")


def _area(engine: Engine, code: str) -> list[str]:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT name FROM areas WHERE code = :c ORDER BY id"), {"c": code})
            .scalars()
            .all()
        )


def _shapefile(tmp_path: Path, frame: gpd.GeoDataFrame, encoding: str, cpg: bool) -> Path:
    path = tmp_path / "shape" / "areas.shp"
    path.parent.mkdir(parents=True)
    frame.to_file(path, encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


# --- F01: a Shapefile whose DBF is GBK (or UTF-8) without a .cpg ----------------------------


def test_f01_gbk_shapefile_names_read_and_encoding_reported_cli(
    cli: CliRunner, engine: Engine
) -> None:
    result = cli.invoke(app, ["import", "boundaries", str(F01), "--level", "district"])
    assert result.exit_code == 0, result.output
    assert "encoding" in result.output and "gb18030" in result.output
    assert _area(engine, "GBK01")[-1] == "江汉区"


def test_f01_encoding_can_be_forced_and_unknown_is_refused_cli(
    cli: CliRunner, engine: Engine
) -> None:
    forced = cli.invoke(
        app, ["import", "boundaries", str(F01), "--level", "district", "--encoding", "latin-1"]
    )
    assert forced.exit_code == 0, forced.output
    assert "iso8859-1" in forced.output
    assert _area(engine, "GBK01")[-1] != "江汉区"
    bad = cli.invoke(
        app, ["import", "boundaries", str(F01), "--level", "district", "--encoding", "nope"]
    )
    assert bad.exit_code != 0 and "unknown encoding" in bad.output
    assert "Traceback" not in bad.output


@pytest.mark.parametrize(
    ("encoding", "name", "expected"),
    [("gbk", "武昌区", "gb18030"), ("utf-8", "洪山区", "utf-8"), ("big5", "中正區", None)],
)
def test_f01_kind_own_shapefiles_without_cpg(
    cli: CliRunner,
    engine: Engine,
    client: TestClient,
    role_keys: dict[str, str],
    tmp_path: Path,
    encoding: str,
    name: str,
    expected: str | None,
) -> None:
    frame = gpd.GeoDataFrame({"code": ["OWN01"], "name": [name]}, geometry=[SQUARE], crs=4326)
    path = _shapefile(tmp_path, frame, encoding, cpg=False)
    forced = [] if expected else ["--encoding", encoding]
    result = cli.invoke(app, ["import", "boundaries", str(path), "--level", "district", *forced])
    assert result.exit_code == 0, result.output
    assert _area(engine, "OWN01")[-1] == name
    response = post_import(
        client,
        role_keys,
        "boundaries",
        "areas.zip",
        zip_shapefile(path),
        level="district",
        **({} if expected else {"encoding": encoding}),
    )
    assert response.status_code == 200, response.text
    assert response.json()["encoding"] == (expected or encoding)
    assert _area(engine, "OWN01")[-1] == name


def test_f01_gbk_shapefile_over_http(
    client: TestClient, role_keys: dict[str, str], engine: Engine
) -> None:
    response = post_import(
        client, role_keys, "boundaries", "districts.zip", zip_shapefile(F01), level="district"
    )
    assert response.status_code == 200, response.text
    assert response.json()["encoding"] == "gb18030" and response.json()["inserted"] == 1
    assert _area(engine, "GBK01")[-1] == "江汉区"


# --- F06: a GeoPackage with several layers --------------------------------------------------


def test_f06_several_layers_refused_with_their_names_then_chosen_cli(
    cli: CliRunner, engine: Engine
) -> None:
    refused = cli.invoke(app, ["import", "boundaries", str(F06), "--level", "district"])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "2 layers" in refused.output and "'communities'" in refused.output
    assert "'grids'" in refused.output and "--layer" in refused.output
    assert _area(engine, "ML-C01") == [] and _area(engine, "ML-G01") == []
    unknown = cli.invoke(
        app, ["import", "boundaries", str(F06), "--level", "district", "--layer", "roads"]
    )
    assert unknown.exit_code != 0 and "no layer 'roads'" in unknown.output
    chosen = cli.invoke(
        app, ["import", "boundaries", str(F06), "--level", "district", "--layer", "grids"]
    )
    assert chosen.exit_code == 0, chosen.output
    assert _area(engine, "ML-G01") == ["grid 1"] and _area(engine, "ML-C01") == []


def test_f06_several_layers_over_http_and_own_file(
    client: TestClient, role_keys: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    refused = post_import(
        client, role_keys, "boundaries", "city.gpkg", F06.read_bytes(), level="district"
    )
    assert refused.status_code == 422, refused.text
    assert "'communities', 'grids'" in refused.json()["detail"]
    chosen = post_import(
        client,
        role_keys,
        "boundaries",
        "city.gpkg",
        F06.read_bytes(),
        level="district",
        layer="communities",
    )
    assert chosen.status_code == 200, chosen.text
    assert _area(engine, "ML-C01") == ["a community"]
    # The same kind: three layers, points this time, incidents.
    path = tmp_path / "three.gpkg"
    for layer in ("a", "b", "c"):
        gpd.GeoDataFrame({"x": [1]}, geometry=[SQUARE.centroid], crs=4326).to_file(
            path, layer=layer, driver="GPKG"
        )
    response = post_import(client, role_keys, "incidents", "three.gpkg", path.read_bytes())
    assert response.status_code == 422
    assert "3 layers ('a', 'b', 'c')" in response.json()["detail"]


# --- F09: codes stored as Double ------------------------------------------------------------


def test_f09_double_codes_without_point_zero_cli_and_http(
    cli: CliRunner, client: TestClient, role_keys: dict[str, str], engine: Engine
) -> None:
    result = cli.invoke(app, ["import", "boundaries", str(F09), "--level", "grid"])
    assert result.exit_code == 0, result.output
    assert _area(engine, "420102001001") == ["grid 1"]
    assert _area(engine, "420102001001.0") == []
    response = post_import(
        client, role_keys, "boundaries", "grids.zip", zip_shapefile(F09), level="grid"
    )
    assert response.status_code == 200, response.text
    assert _area(engine, "420102001001") == ["grid 1", "grid 1"]


def test_f09_kind_double_codes_and_parent_codes(
    cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    parents = gpd.GeoDataFrame(
        {"code": [4201.0], "name": ["parent"]}, geometry=[SQUARE.buffer(0.01)], crs=4326
    )
    ppath = _shapefile(tmp_path / "p", parents, "utf-8", cpg=True)
    result = cli.invoke(app, ["import", "boundaries", str(ppath), "--level", "district"])
    assert result.exit_code == 0, result.output
    assert _area(engine, "4201") == ["parent"]
    with engine.connect() as conn:
        version = conn.execute(text("SELECT max(version_id) FROM areas WHERE code = '4201'"))
        version_id = str(version.scalar_one())
    grids = gpd.GeoDataFrame(
        {"code": [420102001002.0], "parent": [4201.0], "name": ["child"]},
        geometry=[SQUARE],
        crs=4326,
    )
    gpath = _shapefile(tmp_path / "g", grids, "utf-8", cpg=True)
    draft = cli.invoke(
        app,
        [
            "import",
            "boundaries",
            str(gpath),
            "--level",
            "grid",
            "--parent-level",
            "district",
            "--map",
            "parent=parent_code",
            "--version",
            version_id,
        ],
    )
    assert draft.exit_code == 0, draft.output
    assert "420102001002.0" not in draft.output and "4201.0" not in draft.output, draft.output
    assert _area(engine, "420102001002") == ["child"]
    with engine.connect() as conn:
        parent = conn.execute(
            text(
                "SELECT p.code FROM areas c JOIN areas p ON p.id = c.parent_id "
                "WHERE c.code = '420102001002'"
            )
        ).scalar_one()
    assert parent == "4201"


# --- R6: X=Y=0 in a projected file ----------------------------------------------------------


def test_r6_zero_xy_in_utm_rejected_as_zero_coordinates_cli(cli: CliRunner, tmp_path: Path) -> None:
    rejects = tmp_path / "r6.rejects.csv"
    result = cli.invoke(
        app,
        [
            "import",
            "incidents",
            str(R6),
            "--crs",
            "EPSG:26910",
            "--category-map",
            str(R6_MAP),
            "--map",
            "TYPE=category",
            "--rejects",
            str(rejects),
        ],
    )
    assert "Traceback" not in result.output, result.output
    assert "zero coordinates" in result.output
    table = pd.read_csv(rejects)
    assert table.set_index("row").reason[2] == "zero coordinates"


def test_r6_kind_zero_xy_in_any_crs_over_http(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    x, y = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(32650).iloc[0].coords[0]
    own = "X,Y,kind,when\n{},{},Mischief,2026-01-01 10:00\n0,0,Mischief,2026-01-01 11:00\n"
    cases = (  # crs, file, its mapping, the X=Y=0 row
        ("EPSG:26910", R6.read_bytes(), ["TYPE=category"], 2),
        ("EPSG:32650", own.format(x, y).encode(), ["kind=category", "when=reported_at"], 2),
        ("EPSG:3857", own.format(0, 0).encode(), ["kind=category", "when=reported_at"], 1),
    )
    for crs, body, mapping, zero_row in cases:
        response = post_import(
            client,
            role_keys,
            "incidents",
            "zero.csv",
            body,
            crs=crs,
            category_map="Mischief=facilities",
            map=mapping,
        )
        assert response.status_code == 200, response.text
        reasons = {r["row"]: r["reason"] for r in response.json()["rejects"]}
        assert reasons[zero_row] == "zero coordinates", (crs, reasons)
        if crs == "EPSG:32650":
            assert 1 not in reasons and response.json()["inserted"] == 1
