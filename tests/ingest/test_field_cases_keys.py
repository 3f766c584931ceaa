"""Issue 15, codes and keys: F10 (grid codes unique only within their parent), F13 (DBF names
cut to 10 characters; a flag the file does not give is unknown), F14 (re-running any file adds
nothing) and identical rows in id-less files. The shared files (``../shared/cases/import``)
and files of the same kinds made here, each through the CLI and ``POST /imports/{kind}``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.demo.city import DemoCity
from geo_service.instants import parse_instant
from tests.conftest import grid_point
from tests.ingest.helpers import CASES, post_import, summary_counts, zip_shapefile

F10 = CASES / "import" / "F10_local_grid_codes_dissolve"
F13 = CASES / "import" / "F13_dbf_truncated_flags_default_false" / "households.shp"
F14 = CASES / "import" / "F14_rerun_duplicates_without_id" / "households_feature_id.geojson"
WHEN = "2024-03-01 10:00"  # a fixed past time: no wall clock in these tests

pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason="shared field cases not present")


def _rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params).all()]


def _households(engine: Engine, prefix: str) -> dict[str, tuple[Any, ...]]:
    rows = _rows(
        engine,
        "SELECT external_ref, household_size, elderly_living_alone, needs_assistance "
        "FROM households WHERE external_ref LIKE :p ORDER BY external_ref",
        p=prefix + "%",
    )
    return {r[0]: r[1:] for r in rows}


def _rejects(tmp_path: Path) -> list[str]:
    """A reject file of the test's own (the shared cases directory is read-only)."""
    return ["--rejects", str(tmp_path / "rejects.csv")]


def _category(engine: Engine) -> str:
    return _rows(engine, "SELECT code FROM categories ORDER BY code LIMIT 1")[0][0]


def _geojson(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def _point_feature(lon: float, lat: float, props: dict[str, Any], fid: object = None) -> dict:
    feature: dict[str, Any] = {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }
    if fid is not None:
        feature["id"] = fid
    return feature


# --- F13: DBF names cut to 10 characters; a flag not given is unknown ----------------------


def test_f13_shared_truncated_names_matched_and_said_cli(
    cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    result = cli.invoke(app, ["import", "households", str(F13), *_rejects(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "columns matched by truncated names" in result.output, result.output
    assert "elderly_li -> elderly_living_alone" in result.output, result.output
    assert "ignored columns" not in result.output, result.output
    assert _households(engine, "households:") == {
        "households:h1": (3, False, False),
        "households:h2": (1, True, True),
    }


def test_f13_shared_truncated_names_over_http(
    client: TestClient, role_keys: dict[str, str], engine: Engine
) -> None:
    response = post_import(client, role_keys, "households", "f13_http.zip", zip_shapefile(F13))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["inserted"] == 2, body
    assert body["assumptions"]["truncated_columns"] == [
        "elderly_li -> elderly_living_alone",
        "household_ -> household_size",
        "needs_assi -> needs_assistance",
    ]
    assert body["ignored_columns"] == [], body
    assert _households(engine, "f13_http:") == {
        "f13_http:h1": (3, False, False),
        "f13_http:h2": (1, True, True),
    }


def test_f13_kind_missing_flag_column_is_unknown_in_every_format(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    # A Shapefile written by GDAL cuts the long name itself: needs_assistance -> needs_assi.
    frame = gpd.GeoDataFrame(
        {"id": ["a", "b"], "household_size": [2, 4], "needs_assistance": ["yes", ""]},
        geometry=[shapely.Point(lon, lat)] * 2,
        crs=4326,
    )
    shp = tmp_path / "shp" / "f13shp.shp"
    shp.parent.mkdir()
    with pytest.warns(UserWarning, match="truncated"):
        frame.to_file(shp, encoding="utf-8")
    result = cli.invoke(app, ["import", "households", str(shp)])
    assert result.exit_code == 0, result.output
    assert "needs_assi -> needs_assistance" in result.output
    # no elderly column at all: unknown (NULL); a blank needs_assistance cell: unknown too
    assert _households(engine, "f13shp:") == {
        "f13shp:a": (2, None, True),
        "f13shp:b": (4, None, None),
    }
    # A CSV whose columns went through a DBF once, in capitals.
    csv = f"id,HOUSEHOLD_,ELDERLY_LI,lon,lat\nc,3,no,{lon},{lat}\n".encode()
    response = post_import(client, role_keys, "households", "f13csv.csv", csv)
    assert response.status_code == 200, response.text
    assert response.json()["assumptions"]["truncated_columns"] == [
        "ELDERLY_LI -> elderly_living_alone",
        "HOUSEHOLD_ -> household_size",
    ]
    assert _households(engine, "f13csv:") == {"f13csv:c": (3, False, None)}
    # A household row shows the unknown flag as null, never as false.
    grid_id = _rows(engine, "SELECT grid_id FROM households WHERE external_ref = 'f13csv:c'")[0][0]
    page = client.get("/households", params={"grid_id": grid_id, "limit": 1000}).json()
    shown = [r for r in page["data"] if r["household_size"] == 3 and r["needs_assistance"] is None]
    assert shown and shown[0]["elderly_living_alone"] is False


def test_f13_kind_truncated_names_of_other_kinds_and_ambiguity(
    cli: CliRunner, loaded_city: DemoCity, engine: Engine, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    frame = gpd.GeoDataFrame(
        {
            "id": ["r1"],
            "unit_count": [3],
            "registered_at": ["2024-05-01"],
            "landlord_ref": ["L-7"],
        },
        geometry=[shapely.Point(lon, lat)],
        crs=4326,
    )
    shp = tmp_path / "ru" / "f13ru.shp"
    shp.parent.mkdir()
    with pytest.warns(UserWarning, match="truncated"):
        frame.to_file(shp, encoding="utf-8")
    result = cli.invoke(app, ["import", "rental-units", str(shp)])
    assert result.exit_code == 0, result.output
    said = "".join(c for c in result.output if c not in " │\n")  # a wrapped table cell
    assert "landlord_r->landlord_ref" in said and "registered->registered_at" in said, said
    assert _rows(
        engine,
        "SELECT landlord_ref, registered_at IS NOT NULL FROM rental_units "
        "WHERE external_ref = 'f13ru:r1'",
    ) == [("L-7", True)]
    # a 10-character name that is also given in full is not renamed (the full one is used)
    csv = tmp_path / "f13both.csv"
    csv.write_text(f"id,household_,household_size,lon,lat\nx,9,2,{lon},{lat}\n")
    both = cli.invoke(app, ["import", "households", str(csv)])
    assert both.exit_code == 0, both.output
    assert "truncated" not in both.output and "household_" in both.output  # ignored, shown
    assert _households(engine, "f13both:") == {"f13both:x": (2, None, None)}


# --- F14: re-running any file adds nothing -------------------------------------------------


def test_f14_shared_feature_ids_rerun_adds_nothing_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    engine: Engine,
    tmp_path: Path,
) -> None:
    first = cli.invoke(app, ["import", "households", str(F14), *_rejects(tmp_path)])
    assert first.exit_code == 0, first.output
    assert summary_counts(first.output)["inserted"] == 2, first.output
    again = cli.invoke(app, ["import", "households", str(F14), *_rejects(tmp_path)])
    assert again.exit_code == 0, again.output
    assert (
        summary_counts(again.output)["inserted"] == 0
        and summary_counts(again.output)["already present"] == 2
    )
    refs = set(_households(engine, "households_feature_id:"))
    assert refs == {"households_feature_id:101", "households_feature_id:102"}
    for _ in range(2):
        response = post_import(
            client, role_keys, "households", "f14_http.geojson", F14.read_bytes()
        )
        assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["already_present"]) == (0, 2), body
    assert set(_households(engine, "f14_http:")) == {"f14_http:101", "f14_http:102"}


def test_f14_kind_feature_ids_keep_a_changed_row_one_record(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    for size in (2, 3):  # the office corrected a size: the same households, by their ids
        content = _geojson(
            [
                _point_feature(lon, lat, {"household_size": size}, fid="hh-7"),
                _point_feature(lon, lat, {"household_size": 1}, fid=8),
            ]
        )
        response = post_import(client, role_keys, "households", "f14ids.geojson", content)
        assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 0, response.text
    assert set(_households(engine, "f14ids:")) == {"f14ids:hh-7", "f14ids:8"}
    # Integer ids for incidents and rental units too.
    theft = _category(engine)
    inc = _geojson(
        [
            _point_feature(lon, lat, {"category": theft, "reported_at": WHEN}, fid=41),
            _point_feature(lon, lat, {"category": theft, "reported_at": WHEN}, fid=42),
        ]
    )
    first = post_import(client, role_keys, "incidents", "f14inc.geojson", inc).json()
    again = post_import(client, role_keys, "incidents", "f14inc.geojson", inc).json()
    assert (first["inserted"], again["inserted"], again["already_present"]) == (2, 0, 2), again
    keys = _rows(
        engine, "SELECT idempotency_key FROM incidents WHERE idempotency_key LIKE 'f14inc:%'"
    )
    assert sorted(k for (k,) in keys) == ["f14inc:41", "f14inc:42"]
    ru = _geojson([_point_feature(lon, lat, {"unit_count": 2}, fid=5)])
    assert (
        post_import(client, role_keys, "rental-units", "f14ru.geojson", ru).json()["inserted"] == 1
    )
    assert (
        post_import(client, role_keys, "rental-units", "f14ru.geojson", ru).json()["inserted"] == 0
    )
    assert _rows(engine, "SELECT count(*) FROM rental_units WHERE external_ref = 'f14ru:5'") == [
        (1,)
    ]


def test_f14_kind_repeated_feature_ids_fall_back_to_content_keys(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    content = _geojson(
        [
            _point_feature(lon, lat, {"household_size": 2}, fid=9),
            _point_feature(lon, lat, {"household_size": 5}, fid=9),
        ]
    )
    first = post_import(client, role_keys, "households", "f14rep.geojson", content).json()
    assert first["inserted"] == 2, first
    assert "repeated" in first["assumptions"]["feature_ids"], first
    again = post_import(client, role_keys, "households", "f14rep.geojson", content).json()
    assert (again["inserted"], again["already_present"]) == (0, 2), again
    assert all(":sha1-" in r for r in _households(engine, "import:sha1-"))


def test_f14_kind_fids_of_gpkg_and_shapefile_are_not_ids_rerun_adds_nothing(
    cli: CliRunner, loaded_city: DemoCity, engine: Engine, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    frame = gpd.GeoDataFrame(
        {"household_size": [2, 2, 3]},
        geometry=[shapely.Point(lon, lat)] * 2 + [shapely.Point(lon + 1e-5, lat)],
        crs=4326,
    )
    gpkg = tmp_path / "f14gpkg.gpkg"
    frame.to_file(gpkg, driver="GPKG")
    shp = tmp_path / "shp" / "f14shp.shp"
    shp.parent.mkdir()
    frame.to_file(shp)
    # Content keys do not hold the file's name: the Shapefile's rows are the GeoPackage's.
    for path, inserted in ((gpkg, 3), (shp, 0)):
        first = cli.invoke(app, ["import", "households", str(path)])
        again = cli.invoke(app, ["import", "households", str(path)])
        assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
        assert summary_counts(first.output)["inserted"] == inserted, first.output
        assert summary_counts(again.output)["inserted"] == 0, again.output
        refs = _households(engine, "import:sha1-")
        assert len(refs) == 3, refs


def test_f14_kind_responders_rerun_changes_nothing(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    content = f"callsign,kind,lon,lat\nF14-A,patrol,{lon},{lat}\nF14-B,patrol,{lon},{lat}\n"
    first = post_import(client, role_keys, "responders", "f14resp.csv", content.encode()).json()
    again = post_import(client, role_keys, "responders", "f14resp.csv", content.encode()).json()
    assert (first["inserted"], again["inserted"]) == (2, 0), (first, again)
    assert _rows(engine, "SELECT count(*) FROM responders WHERE callsign LIKE 'F14-%'") == [(2,)]


# --- Identical rows in an id-less file are distinct records ---------------------------------


def test_identical_incidents_without_ids_kept_and_reruns_idempotent_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    lon += 3.3e-5  # a place of this test's own
    theft = _category(engine)

    def rows(n: int) -> str:
        return "category,reported_at,lon,lat\n" + f"{theft},{WHEN},{lon},{lat}\n" * n

    def stored() -> int:
        return _rows(
            engine,
            "SELECT count(*) FROM incidents WHERE reported_at = :t "
            "AND ST_DWithin(location, ST_SetSRID(ST_MakePoint(:x, :y), 4326), 1e-7)",
            # a file's naive times are the deployment's local time (issue 19)
            t=parse_instant(WHEN),
            x=lon,
            y=lat,
        )[0][0]

    twins = tmp_path / "twins.csv"
    twins.write_text(rows(2))
    first = cli.invoke(app, ["import", "incidents", str(twins)])
    assert first.exit_code == 0, first.output
    assert summary_counts(first.output)["inserted"] == 2 and "duplicate" not in first.output
    response = post_import(client, role_keys, "incidents", "twins.csv", rows(2).encode())
    assert (response.json()["inserted"], response.json()["already_present"]) == (0, 2)
    grown = post_import(client, role_keys, "incidents", "more_twins.csv", rows(3).encode()).json()
    assert (grown["inserted"], grown["already_present"]) == (1, 2), grown
    triplets = tmp_path / "triplets.csv"
    triplets.write_text(rows(3))
    again = cli.invoke(app, ["import", "incidents", str(triplets)])
    assert again.exit_code == 0 and summary_counts(again.output)["inserted"] == 0, again.output
    assert stored() == 3


def test_identical_households_without_ids_kept_and_reruns_idempotent_cli(
    cli: CliRunner, loaded_city: DemoCity, engine: Engine, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = tmp_path / "hhtwins.csv"
    for n, inserted in ((2, 2), (2, 0), (3, 1)):
        path.write_text("household_size,lon,lat\n" + f"2,{lon},{lat}\n" * n)
        result = cli.invoke(app, ["import", "households", str(path)])
        assert result.exit_code == 0, result.output
        assert summary_counts(result.output)["inserted"] == inserted, result.output
    assert len(_households(engine, "import:sha1-")) == 3


# --- F10: grid codes unique only within their community -------------------------------------


def _draft_with_communities(cli: CliRunner, engine: Engine, name: str, tmp_path: Path) -> str:
    result = cli.invoke(
        app,
        [
            "import",
            "boundaries",
            str(F10 / "communities.geojson"),
            "--level",
            "community",
            "--version-name",
            name,
            *_rejects(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    (version,) = _rows(engine, "SELECT id FROM boundary_versions WHERE name = :n", n=name)[0]
    return str(version)


def _grids(engine: Engine, version: str) -> list[tuple[Any, ...]]:
    return _rows(
        engine,
        "SELECT g.code, g.local_code, p.code, g.name FROM areas g JOIN areas p "
        "ON p.id = g.parent_id WHERE g.version_id = :v AND g.level = 'grid' ORDER BY g.code",
        v=int(version),
    )


EXPECTED_F10 = [
    ("C01/G01", "G01", "C01", "C01 grid 1"),
    ("C01/G02", "G02", "C01", "C01 grid 2"),
    ("C02/G01", "G01", "C02", "C02 grid 1"),
    ("C02/G02", "G02", "C02", "C02 grid 2"),
]


def test_f10_shared_local_codes_scoped_by_parent_cli(
    cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    version = _draft_with_communities(cli, engine, "f10 cli", tmp_path)
    args = ["--level", "grid", "--parent-level", "community", "--version", version]
    grids = str(F10 / "grids_local_codes.geojson")
    result = cli.invoke(app, ["import", "boundaries", grids, *args, *_rejects(tmp_path)])
    assert result.exit_code == 0, result.output
    assert summary_counts(result.output)["inserted"] == 4, result.output
    assert _grids(engine, version) == EXPECTED_F10
    # --dissolve merges only parts with the same full code: here none.
    other = _draft_with_communities(cli, engine, "f10 cli dissolve", tmp_path)
    dissolved = cli.invoke(
        app,
        [
            "import",
            "boundaries",
            grids,
            *args[:4],
            "--version",
            other,
            "--dissolve",
            *_rejects(tmp_path),
        ],
    )
    assert dissolved.exit_code == 0, dissolved.output
    assert "parts merged" not in dissolved.output, dissolved.output
    assert _grids(engine, other) == EXPECTED_F10


def test_f10_shared_local_codes_over_http_and_shown_by_areas(
    client: TestClient, role_keys: dict[str, str], engine: Engine
) -> None:
    communities = post_import(
        client,
        role_keys,
        "boundaries",
        "communities.geojson",
        (F10 / "communities.geojson").read_bytes(),
        level="community",
    )
    assert communities.status_code == 200, communities.text
    version = communities.json()["version_id"]
    grids = post_import(
        client,
        role_keys,
        "boundaries",
        "grids_local_codes.geojson",
        (F10 / "grids_local_codes.geojson").read_bytes(),
        level="grid",
        parent_level="community",
        version=version,
        dissolve="true",
    )
    assert grids.status_code == 200, grids.text
    assert (grids.json()["inserted"], grids.json()["merged_parts"]) == (4, 0), grids.text
    assert "<parent code>/<code>" in grids.json()["assumptions"]["codes"], grids.text
    assert _grids(engine, str(version)) == EXPECTED_F10
    listed = client.get("/areas", params={"version": version, "level": "grid"})
    assert listed.status_code == 200, listed.text
    shown = sorted(
        (f["properties"]["code"], f["properties"]["local_code"]) for f in listed.json()["features"]
    )
    assert shown == [(c, local) for c, local, _, _ in EXPECTED_F10]
    detail = client.get(f"/areas/{listed.json()['features'][0]['id']}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["properties"]["local_code"] in ("G01", "G02")


def _square(x: float, y: float, size: float = 0.005) -> shapely.Polygon:
    return shapely.box(x, y, x + size, y + size)


def test_f10_kind_dissolve_within_parent_duplicates_within_parent_and_file_by_file(
    cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    version = _draft_with_communities(cli, engine, "f10 kind", tmp_path)
    args = ["--level", "grid", "--parent-level", "community", "--version", version]
    # G01 of C01 in two parts, G01 of C02 in one: a GeoPackage this time
    parts = gpd.GeoDataFrame(
        {"code": ["G01", "G01", "G01"], "parent_code": ["C01", "C01", "C02"]},
        geometry=[
            _square(114.300, 30.590),
            _square(114.300, 30.595),
            _square(114.310, 30.590),
        ],
        crs=4326,
    )
    gpkg = tmp_path / "parts.gpkg"
    parts.to_file(gpkg, driver="GPKG")
    refused = cli.invoke(app, ["import", "boundaries", str(gpkg), *args, *_rejects(tmp_path)])
    assert refused.exit_code == 3, refused.output
    reasons = pd.read_csv(tmp_path / "rejects.csv", encoding="utf-8-sig").reason.tolist()
    assert len(reasons) == 1 and reasons[0].startswith("duplicate code (pass --dissolve")
    assert reasons[0].endswith("'C01/G01' first at row 1")
    other = _draft_with_communities(cli, engine, "f10 kind dissolve", tmp_path)
    merged = cli.invoke(
        app, ["import", "boundaries", str(gpkg), *args[:4], "--version", other, "--dissolve"]
    )
    assert merged.exit_code == 0, merged.output
    assert _grids(engine, other) == [
        ("C01/G01", "G01", "C01", "G01"),
        ("C02/G01", "G01", "C02", "G01"),
    ]
    c01 = _rows(
        engine,
        "SELECT ST_Area(geom) FROM areas WHERE version_id = :v AND code = 'C01/G01'",
        v=int(other),
    )[0][0]
    assert c01 == pytest.approx(0.005 * 0.01, rel=1e-6)  # both parts, not C02's
    # One file per community into the same draft: the second keeps the first one's form.
    third = _draft_with_communities(cli, engine, "f10 kind per community", tmp_path)
    for parent, x in (("C01", 114.300), ("C02", 114.310)):
        one = tmp_path / f"{parent}.geojson"
        gpd.GeoDataFrame(
            {"code": ["G01", "G02"], "parent_code": [parent, parent]},
            geometry=[_square(x, 30.590), _square(x + 0.005, 30.590)],
            crs=4326,
        ).to_file(one, driver="GeoJSON")
        result = cli.invoke(app, ["import", "boundaries", str(one), *args[:4], "--version", third])
        assert result.exit_code == 0, result.output
    assert "codes recoded in draft" in result.output, result.output  # C01's two, now full
    assert [r[:3] for r in _grids(engine, third)] == [r[:3] for r in EXPECTED_F10]


def test_f10_kind_codes_unique_alone_stay_as_they_are_and_repeats_need_parents(
    cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    version = _draft_with_communities(cli, engine, "f10 plain", tmp_path)
    plain = tmp_path / "plain.geojson"
    gpd.GeoDataFrame(
        {"code": ["P1", "P2"], "parent_code": ["C01", "C02"]},
        geometry=[_square(114.300, 30.590), _square(114.310, 30.590)],
        crs=4326,
    ).to_file(plain, driver="GeoJSON")
    args = ["--level", "grid", "--parent-level", "community", "--version", version]
    result = cli.invoke(app, ["import", "boundaries", str(plain), *args])
    assert result.exit_code == 0, result.output
    assert [r[:3] for r in _grids(engine, version)] == [("P1", None, "C01"), ("P2", None, "C02")]
    # Without --parent-level the parents are unknown: a code repeated under two parent codes
    # is refused with the way out, never a database error.
    grids = str(F10 / "grids_local_codes.geojson")
    flat = cli.invoke(app, ["import", "boundaries", grids, "--level", "grid", *_rejects(tmp_path)])
    assert flat.exit_code == 3, flat.output
    assert "Traceback" not in flat.output
    reasons = pd.read_csv(tmp_path / "rejects.csv", encoding="utf-8-sig")
    assert reasons.row.tolist() == [3, 4]
    assert set(reasons.reason) == {
        "code 'G01' repeats under another parent: give --parent-level",
        "code 'G02' repeats under another parent: give --parent-level",
    }
