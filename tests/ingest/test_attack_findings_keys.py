"""Issue 15, the tester's findings on keys and codes: (2) households and rental units without
ids keyed by their content whatever the file is called, as incidents are (and the keys of
earlier imports, which held the file's name, still known); (17) ids ``7`` and ``7.0`` in one
file are one id, so the second is a duplicate; (16) a whole number in a column of numbers and
text (``420102001.0`` beside ``C02``) loses its ``.0`` in codes, parent codes and ids. Each
through the CLI and ``POST /imports/{kind}``, with files made here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.demo.city import DemoCity
from geo_service.ingest.parsing import as_key_text, as_text
from tests.conftest import grid_point
from tests.ingest.helpers import post_import, summary_counts

WHEN = "2024-03-01 10:00"  # a fixed past time: no wall clock in these tests


def _rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params).all()]


def _geojson(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def _feature(geometry: dict[str, Any], props: dict[str, Any], fid: object = None) -> dict:
    feature: dict[str, Any] = {"type": "Feature", "properties": props, "geometry": geometry}
    if fid is not None:
        feature["id"] = fid
    return feature


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def _square(x: float, y: float, size: float = 0.005) -> dict[str, Any]:
    return shapely.geometry.mapping(shapely.box(x, y, x + size, y + size))


# --- (2) id-less households and rental units: keys independent of the file's name -----------

TABLES = {"households": "households", "rental-units": "rental_units"}
ROWS = {"households": "household_size,lon,lat\n2,{x},{y}\n", "rental-units": "lon,lat\n{x},{y}\n"}


def _copies(kind: str, lon: float, lat: float, n: int) -> str:
    header, row = ROWS[kind].format(x=lon, y=lat).splitlines()
    return header + "\n" + (row + "\n") * n


def _content_refs(engine: Engine, kind: str) -> list[str]:
    return [
        r
        for (r,) in _rows(
            engine,
            f"SELECT external_ref FROM {TABLES[kind]} WHERE external_ref LIKE :p "
            "ORDER BY external_ref",
            p="%:sha1-%",
        )
    ]


@pytest.mark.parametrize("kind", list(TABLES))
def test_rows_without_ids_same_file_under_another_name_adds_nothing_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    kind: str,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    lon += 2.7e-5  # a place of this test's own
    first = tmp_path / "noid_a.csv"
    first.write_text(_copies(kind, lon, lat, 2))
    result = cli.invoke(app, ["import", kind, str(first)])
    assert result.exit_code == 0, result.output
    assert summary_counts(result.output)["inserted"] == 2, result.output
    # the same rows under another name, through the CLI and over HTTP: nothing new
    renamed = tmp_path / "noid_copy.csv"
    renamed.write_text(_copies(kind, lon, lat, 2))
    again = cli.invoke(app, ["import", kind, str(renamed)])
    assert again.exit_code == 0, again.output
    assert (
        summary_counts(again.output)["inserted"],
        summary_counts(again.output)["already present"],
    ) == (0, 2)
    body = post_import(
        client, role_keys, kind, "other.csv", _copies(kind, lon, lat, 2).encode()
    ).json()
    assert (body["inserted"], body["already_present"]) == (0, 2), body
    # one more identical copy under a new name adds exactly one
    grown = post_import(client, role_keys, kind, "plus1.csv", _copies(kind, lon, lat, 3).encode())
    assert (grown.json()["inserted"], grown.json()["already_present"]) == (1, 2), grown.text
    triplets = tmp_path / "triplets.csv"
    triplets.write_text(_copies(kind, lon, lat, 3))
    last = cli.invoke(app, ["import", kind, str(triplets)])
    assert last.exit_code == 0 and summary_counts(last.output)["inserted"] == 0, last.output
    refs = _content_refs(engine, kind)
    assert len(refs) == 3 and all(r.startswith("import:sha1-") for r in refs), refs
    assert sorted(r.rsplit("-", 1)[1] for r in refs) == ["1", "2", "3"]


@pytest.mark.parametrize("kind", list(TABLES))
def test_rows_without_ids_keys_of_earlier_imports_with_the_file_name_still_known(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    kind: str,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    lon += 3.1e-5
    path = tmp_path / "legacy.csv"
    path.write_text(_copies(kind, lon, lat, 2))
    result = cli.invoke(app, ["import", kind, str(path)])
    assert result.exit_code == 0 and summary_counts(result.output)["inserted"] == 2, result.output
    # Make them what an import before this change stored: the file's name, not "import".
    with engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE {TABLES[kind]} SET external_ref = "
                "'legacy' || substr(external_ref, length('import') + 1) "
                "WHERE external_ref LIKE :p"
            ),
            {"p": "import:sha1-%"},
        )
    assert all(r.startswith("legacy:sha1-") for r in _content_refs(engine, kind))
    again = cli.invoke(app, ["import", kind, str(path)])
    assert again.exit_code == 0, again.output
    assert (
        summary_counts(again.output)["inserted"],
        summary_counts(again.output)["already present"],
    ) == (0, 2)
    other = post_import(client, role_keys, kind, "renamed.csv", _copies(kind, lon, lat, 3).encode())
    assert (other.json()["inserted"], other.json()["already_present"]) == (1, 2), other.text
    refs = _content_refs(engine, kind)
    assert len(refs) == 3, refs
    assert [r.split(":")[0] for r in refs] == ["import", "legacy", "legacy"], refs
    # an id that merely looks like a content key is no content key
    ids = f"id,{ROWS[kind].splitlines()[0]}\nsha1-x-1,{ROWS[kind].splitlines()[1]}\n"
    body = post_import(
        client, role_keys, kind, "legacy.csv", ids.format(x=lon, y=lat).encode()
    ).json()
    assert body["inserted"] == 1, body


def test_incidents_without_ids_still_keyed_as_before(
    cli: CliRunner, loaded_city: DemoCity, engine: Engine, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    lon += 3.7e-5
    theft = _rows(engine, "SELECT code FROM categories ORDER BY code LIMIT 1")[0][0]
    row = f"{theft},{WHEN},{lon},{lat}\n"
    for name, n, inserted in (("inc_a", 2, 2), ("inc_b", 2, 0), ("inc_c", 3, 1)):
        path = tmp_path / f"{name}.csv"
        path.write_text("category,reported_at,lon,lat\n" + row * n)
        result = cli.invoke(app, ["import", "incidents", str(path)])
        assert result.exit_code == 0, result.output
        assert summary_counts(result.output)["inserted"] == inserted, result.output


# --- (17) ids 7 and 7.0 are one id ---------------------------------------------------------


def test_ids_7_and_7_0_in_one_geojson_are_a_duplicate_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    theft = _rows(engine, "SELECT code FROM categories ORDER BY code LIMIT 1")[0][0]
    props = {"category": theft, "reported_at": WHEN}
    # A string Feature id first, then 7 and 7.0: GDAL reads a text column "j1", "7", "7.0"
    incidents = _geojson(
        [
            _feature(_point(lon + 2e-5, lat), props, fid="j1"),
            _feature(_point(lon, lat), props, fid=7),
            _feature(_point(lon + 1e-5, lat), props, fid=7.0),
        ]
    )
    path = tmp_path / "seven.geojson"
    path.write_bytes(incidents)
    rejects = tmp_path / "seven.rejects.csv"
    result = cli.invoke(app, ["import", "incidents", str(path), "--rejects", str(rejects)])
    assert result.exit_code == 3, result.output
    assert summary_counts(result.output)["inserted"] == 2, result.output
    found = pd.read_csv(rejects, encoding="utf-8-sig")
    assert found.row.tolist() == [3]
    assert found.reason.tolist() == ["duplicate id: 'seven:7' first at row 2"]
    keys = _rows(
        engine, "SELECT idempotency_key FROM incidents WHERE idempotency_key LIKE :p", p="seven%"
    )
    assert sorted(k for (k,) in keys) == ["seven:7", "seven:j1"]
    again = cli.invoke(app, ["import", "incidents", str(path), "--rejects", str(rejects)])
    assert again.exit_code == 3 and summary_counts(again.output)["inserted"] == 0, again.output
    # households over HTTP: an id property 7 beside "7.0" (and a CSV's text ids)
    households = _geojson(
        [
            _feature(_point(lon, lat), {"id": 7, "household_size": 2}),
            _feature(_point(lon, lat), {"id": "7.0", "household_size": 3}),
        ]
    )
    body = post_import(client, role_keys, "households", "seven_hh.geojson", households).json()
    assert (body["inserted"], body["rejected"]) == (1, 1), body
    assert body["rejected_by_reason"] == {"duplicate id": 1}, body
    csv = f"id,unit_count,lon,lat\n7,1,{lon},{lat}\n7.0,2,{lon},{lat}\n007,1,{lon},{lat}\n"
    units = post_import(client, role_keys, "rental-units", "seven_ru.csv", csv.encode()).json()
    assert (units["inserted"], units["rejected"]) == (2, 1), units
    refs = _rows(
        engine, "SELECT external_ref FROM rental_units WHERE external_ref LIKE :p", p="seven_ru%"
    )
    assert sorted(r for (r,) in refs) == ["seven_ru:007", "seven_ru:7"]


# --- (16) whole numbers in a mixed code column lose ".0" -----------------------------------


def test_whole_numbers_in_mixed_columns_lose_their_fraction() -> None:
    mixed = pd.Series([420102001.0, "C02", 1.5, None, 7], dtype=object)
    assert as_text(mixed).tolist() == ["420102001", "C02", "1.5", "", "7"]
    text_ = pd.Series(["420102001.0", " 7.0 ", "007.00", "1.50", "G01", "v1.0", "-3.0"])
    assert as_key_text(text_).tolist() == ["420102001", "7", "007", "1.50", "G01", "v1.0", "-3"]


def _areas(engine: Engine, version: int, level: str) -> list[tuple[Any, ...]]:
    return _rows(
        engine,
        "SELECT a.code, p.code FROM areas a LEFT JOIN areas p ON p.id = a.parent_id "
        "WHERE a.version_id = :v AND a.level = :l ORDER BY a.code",
        v=version,
        l=level,
    )


def test_mixed_code_column_stored_without_fraction_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    engine: Engine,
    tmp_path: Path,
) -> None:
    communities = _geojson(
        [
            _feature(_square(114.300, 30.590, 0.01), {"code": 420102001.0, "name": "one"}),
            _feature(_square(114.310, 30.590, 0.01), {"code": "C02", "name": "two"}),
        ]
    )
    path = tmp_path / "mixed_comms.geojson"
    path.write_bytes(communities)
    result = cli.invoke(
        app,
        ["import", "boundaries", str(path), "--level", "community", "--version-name", "mixed"],
    )
    assert result.exit_code == 0, result.output
    ((version,),) = _rows(engine, "SELECT id FROM boundary_versions WHERE name = 'mixed'")
    assert _areas(engine, version, "community") == [("420102001", None), ("C02", None)]
    # grids whose parent_code column mixes the number and its text: one parent, and the two
    # parts of G01 (parent 420102001.0 and "420102001") merge under --dissolve
    grids = _geojson(
        [
            _feature(_square(114.300, 30.590), {"code": "G01", "parent_code": 420102001.0}),
            _feature(_square(114.300, 30.595), {"code": "G01", "parent_code": "420102001"}),
            _feature(_square(114.305, 30.590), {"code": "G02", "parent_code": "420102001"}),
            _feature(_square(114.310, 30.590), {"code": 3.0, "parent_code": "C02"}),
        ]
    )
    response = post_import(
        client,
        role_keys,
        "boundaries",
        "mixed_grids.geojson",
        grids,
        level="grid",
        parent_level="community",
        version=str(version),
        dissolve="true",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["merged_parts"], body["rejected"]) == (3, 1, 0), body
    assert _areas(engine, version, "grid") == [
        ("3", "C02"),
        ("G01", "420102001"),
        ("G02", "420102001"),
    ]
