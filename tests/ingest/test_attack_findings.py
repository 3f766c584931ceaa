"""Findings 4-7 of the second attack on the importers, each as a class, shown closed through
``POST /imports/{kind}`` (and the CLI where cheap): a CRS that names no place on Earth, a
missing value reaching string code, id-less rows imported twice, a re-import wiping a field
its file does not carry, and times the API itself refuses.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.demo.city import DemoCity
from geo_service.ingest.validate import CHECKS, KIND_FIELDS
from geo_service.instants import CALENDAR_RULE
from tests.conftest import grid_point, problem
from tests.ingest.helpers import post_import

BOGUS_GEOGCS = 'GEOGCS["bogus",DATUM["x",SPHEROID["x",1,0]],UNIT["foo",0]]'
NOT_EARTH_CRSS = ("+proj=longlat +a=1 +b=1", "IAU_2015:30100", "ESRI:104903", BOGUS_GEOGCS)
NOT_EARTH = "is not an Earth CRS, or cannot be transformed to WGS84 (EPSG:4326)"
COUNTED = ("households", "rental_units", "responders", "incidents", "boundary_versions", "areas")


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in COUNTED}


def _worker_point(city: DemoCity) -> tuple[float, float]:
    """A point in the grid the ``grid_worker`` key is bound to (see ``role_keys``)."""
    lon, lat, _ = grid_point(city, city.households.grid_code.value_counts().index[0])
    return lon, lat


def _csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue().encode()


# --- 4. A CRS that cannot be transformed to Earth coordinates: 422, nothing written --------


def _frame(kind: str, city: DemoCity) -> gpd.GeoDataFrame:
    lon, lat, _ = grid_point(city)
    if kind == "boundaries":
        shape = shapely.box(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
        return gpd.GeoDataFrame({"code": ["moon-1"], "name": ["Mare"]}, geometry=[shape])
    return gpd.GeoDataFrame({"size": [2]}, geometry=[shapely.Point(lon, lat)])


def _zipped_shapefile(frame: gpd.GeoDataFrame, prj: str, tmp: Path) -> bytes:
    frame.set_crs(4326).to_file(tmp / "s.shp")
    (tmp / "s.prj").write_text(prj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for ext in ("shp", "shx", "dbf", "prj"):
            archive.write(tmp / f"s.{ext}", f"s.{ext}")
    return out.getvalue()


def _geoparquet(frame: gpd.GeoDataFrame, crs: str, tmp: Path) -> bytes:
    frame.set_crs(4326).to_parquet(tmp / "p.parquet")
    table = pq.read_table(tmp / "p.parquet")
    geo = json.loads(table.schema.metadata[b"geo"])
    geo["columns"]["geometry"]["crs"] = crs
    table = table.replace_schema_metadata({**table.schema.metadata, b"geo": json.dumps(geo)})
    out = pa.BufferOutputStream()
    pq.write_table(table, out)
    return out.getvalue().to_pybytes()


def _geojson(frame: gpd.GeoDataFrame, crs: str) -> bytes:
    body = json.loads(frame.to_json())
    body["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(body).encode()


def _kind_form(kind: str) -> dict[str, object]:
    return {"level": "grid"} if kind == "boundaries" else {"map": ["size=household_size"]}


@pytest.mark.parametrize("crs", NOT_EARTH_CRSS)
def test_a_crs_field_off_the_earth_is_a_422_and_writes_nothing(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine, crs: str
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    before = _counts(engine)
    response = post_import(
        client,
        role_keys,
        "households",
        "hh.csv",
        _csv([{"household_size": 2, "lon": lon, "lat": lat}]),
        role="grid_worker",
        crs=crs,
    )
    assert response.status_code == 422, response.text
    body = problem(response)
    assert body["code"] == "import-file-error"
    assert body["detail"] == (
        f"the given CRS {NOT_EARTH}: give an EPSG code (e.g. 4326, EPSG:32650), WKT, "
        "or gcj02 / bd09"
    )
    assert "Proj" not in body["detail"] and "celestial" not in body["detail"]
    assert _counts(engine) == before


@pytest.mark.parametrize("kind", ["households", "boundaries"])
@pytest.mark.parametrize("form", ["shapefile-zip", "geoparquet", "geojson"])
def test_a_file_crs_off_the_earth_is_a_422_and_writes_nothing(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    kind: str,
    form: str,
) -> None:
    frame = _frame(kind, loaded_city)
    name, content = {
        "shapefile-zip": lambda: ("moon.zip", _zipped_shapefile(frame, BOGUS_GEOGCS, tmp_path)),
        "geoparquet": lambda: ("moon.parquet", _geoparquet(frame, "IAU_2015:30100", tmp_path)),
        "geojson": lambda: ("moon.geojson", _geojson(frame, "IAU_2015:30100")),
    }[form]()
    before = _counts(engine)
    response = post_import(client, role_keys, kind, name, content, **_kind_form(kind))
    assert response.status_code == 422, response.text
    body = problem(response)
    assert body["code"] == "import-file-error"
    assert body["detail"] == f"{name}: its CRS {NOT_EARTH}; give the file's CRS with --crs"
    assert _counts(engine) == before


def test_a_file_off_the_earth_imports_once_given_its_true_crs(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, tmp_path: Path
) -> None:
    content = _geojson(_frame("households", loaded_city), "IAU_2015:30100")
    response = post_import(
        client,
        role_keys,
        "households",
        "moon.geojson",
        content,
        crs="EPSG:4326",
        **_kind_form("households"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1


def test_cli_refuses_a_crs_off_the_earth(
    app_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", app_database_url)
    path = tmp_path / "hh.csv"
    path.write_bytes(_csv([{"household_size": 2, "lon": 114.3017, "lat": 30.587}]))
    result = CliRunner().invoke(app, ["import", "households", str(path), "--crs", "ESRI:104903"])
    assert result.exit_code == 2, result.output  # a file or option that cannot be used
    assert "is not an Earth CRS" in result.output and "Traceback" not in result.output


# --- 5. A missing value never reaches string code ----------------------------------------


@pytest.mark.parametrize(
    "body", ["lon,lat\n114.3017,30.587\n", "lon,lat,category,reported_at\n114.3017,30.587,,\n"]
)
def test_incidents_without_a_category_are_rejected_row_by_row(
    client: TestClient, role_keys: dict[str, str], engine: Engine, body: str
) -> None:
    before = _counts(engine)
    response = post_import(client, role_keys, "incidents", "inc.csv", body.encode())
    assert response.status_code == 200, response.text
    assert response.json()["rejects"] == [{"row": 1, "reason": "missing category"}]
    assert _counts(engine) == before


NULLS = {
    "None": lambda n: pd.Series([None] * n, dtype=object),
    "NaN": lambda n: pd.Series([np.nan] * n),
    "Int64 NA": lambda n: pd.Series([pd.NA] * n, dtype="Int64"),
    "boolean NA": lambda n: pd.Series([pd.NA] * n, dtype="boolean"),
    "NaT": lambda n: pd.Series([pd.NaT] * n, dtype="datetime64[ns, UTC]"),
    "mixed": lambda n: pd.Series([None, 3, [1]][:n], dtype=object),
}


@pytest.mark.parametrize("null", NULLS)
@pytest.mark.parametrize("kind", KIND_FIELDS)
def test_every_field_of_every_kind_takes_missing_values_of_any_dtype(kind: str, null: str) -> None:
    """Each field in turn holds only missing values (as GeoParquet or GeoJSON can deliver
    them); validation answers with per-row reasons, never an exception."""
    shape = {
        "boundaries": shapely.box(114.30, 30.58, 114.31, 30.59),
        "roads": shapely.LineString([(114.30, 30.58), (114.31, 30.59)]),
    }.get(kind, shapely.Point(114.30, 30.58))
    options = {
        "categories": {"fire": 1},
        "tz": "UTC",
        "date_format": None,
        "default_status": "reported",
        "source_name": "nulls",
    }
    for name in KIND_FIELDS[kind]:
        frame = gpd.GeoDataFrame({name: NULLS[null](3)}, geometry=[shape, shape, None])
        for category_map in (None, {"FIRE": "fire"}):
            checked = CHECKS[kind](frame, category_map=category_map, **options)
            assert len(checked.accepted) + len(checked.rejects) == 3
            assert checked.rejects.reason.map(type).eq(str).all()


def test_a_geoparquet_with_typed_nulls_is_rejected_row_by_row(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    frame = gpd.GeoDataFrame(
        {
            "household_size": pd.array([pd.NA, 2], dtype="Int64"),
            "needs_assistance": pd.array([True, pd.NA], dtype="boolean"),
        },
        geometry=[shapely.Point(lon, lat)] * 2,
        crs=4326,
    )
    frame.to_parquet(tmp_path / "hh.parquet")
    response = post_import(
        client, role_keys, "households", "hh.parquet", (tmp_path / "hh.parquet").read_bytes()
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rejects"] == [{"row": 1, "reason": "missing household_size"}]
    assert body["inserted"] == 1


# --- 6. Rows without ids get stable content keys: a re-run adds nothing ------------------


@pytest.mark.parametrize(
    ("kind", "table", "fields"),
    [
        ("households", "households", {"household_size": 2, "needs_assistance": "yes"}),
        ("rental-units", "rental_units", {"unit_count": 3, "registered_at": "2024-05-01"}),
    ],
)
def test_rows_without_ids_are_not_added_again_on_a_rerun(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    kind: str,
    table: str,
    fields: dict[str, object],
) -> None:
    lon, lat = _worker_point(loaded_city)
    twin = {**fields, "lon": lon, "lat": lat}
    other = {**fields, "lon": lon + 1e-5, "lat": lat}
    content = _csv([twin, twin, other])  # two identical rows: two records, kept apart
    before = _counts(engine)[table]
    first = post_import(client, role_keys, kind, "noids.csv", content, role="grid_worker").json()
    assert (first["inserted"], first["rejected"]) == (3, 0), first
    again = post_import(client, role_keys, kind, "noids.csv", content, role="grid_worker").json()
    assert (again["inserted"], again["already_present"]) == (0, 3), again
    assert _counts(engine)[table] == before + 3
    grown = _csv([twin, twin, twin, other])  # a third twin is a new record
    third = post_import(client, role_keys, kind, "noids.csv", grown, role="grid_worker").json()
    assert (third["inserted"], third["already_present"]) == (1, 3), third
    with engine.connect() as conn:
        refs = conn.execute(
            text(f"SELECT external_ref FROM {table} WHERE external_ref LIKE 'import:sha1-%'")
        ).scalars()
        assert sorted(r.rsplit("-", 1)[1] for r in refs) == ["1", "1", "2", "3"]


def test_cli_rerun_of_an_id_less_households_file_adds_nothing(
    app_database_url: str,
    loaded_city: DemoCity,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", app_database_url)
    lon, lat, _ = grid_point(loaded_city)
    path = tmp_path / "hh.csv"
    path.write_bytes(_csv([{"household_size": 4, "lon": lon, "lat": lat}] * 2))
    before = _counts(engine)["households"]
    for _ in range(2):
        result = CliRunner().invoke(app, ["import", "households", str(path)])
        assert result.exit_code == 0, result.output
    assert _counts(engine)["households"] == before + 2


# --- 7a. A column the file does not carry leaves the responder's field as it is ----------


def _responder(engine: Engine, callsign: str) -> tuple[str, list[str], float]:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT kind, skills, ST_X(position) FROM responders WHERE callsign = :c"),
            {"c": callsign},
        ).one()


def test_a_responders_file_without_skills_keeps_the_units_skills(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    unit = {"callsign": "ATTACK-7A", "kind": "medical", "lon": lon, "lat": lat}
    first = post_import(
        client, role_keys, "responders", "r.csv", _csv([{**unit, "skills": "ems;rescue"}])
    )
    assert first.json()["inserted"] == 1, first.text
    moved = {**unit, "kind": "fire", "lon": lon + 1e-5}
    second = post_import(client, role_keys, "responders", "r.csv", _csv([moved]))
    assert second.json()["inserted"] == 1, second.text
    assert _responder(engine, "ATTACK-7A") == ("fire", ["ems", "rescue"], pytest.approx(lon + 1e-5))
    # The same file again changes nothing, with or without the column.
    assert (
        post_import(client, role_keys, "responders", "r.csv", _csv([moved])).json()["inserted"] == 0
    )
    # A present column updates the field, even to no skills at all.
    cleared = post_import(client, role_keys, "responders", "r.csv", _csv([{**moved, "skills": ""}]))
    assert cleared.json()["inserted"] == 1, cleared.text
    assert _responder(engine, "ATTACK-7A")[1] == []


# --- 7b. Times outside the years the API accepts are rejected, not stored ----------------


@pytest.mark.parametrize(
    ("when", "accepted"),
    [("2262-01-01", False), ("1899-12-31T23:00:00Z", False), ("in force", True)],
)
def test_incident_times_outside_the_api_calendar_are_rejected(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    when: str,
    accepted: bool,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    if when == "in force":  # a time inside the calendar when the demo's grids were in force
        with engine.connect() as conn:
            when = conn.execute(
                text(
                    "SELECT to_char((min(effective_from) + interval '1 day') AT TIME ZONE 'UTC', "
                    '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\') '
                    "FROM boundary_versions WHERE status = 'published'"
                )
            ).scalar_one()
    row = {"category": "public_order", "reported_at": when, "lon": lon, "lat": lat}
    before = _counts(engine)["incidents"]
    body = post_import(client, role_keys, "incidents", "far.csv", _csv([row])).json()
    if accepted:
        assert body["inserted"] == 1, body
    else:
        assert body["rejects"] == [{"row": 1, "reason": f"reported_at {CALENDAR_RULE}"}]
        assert _counts(engine)["incidents"] == before


def test_incident_times_in_the_future_are_rejected_as_through_the_api(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    row = {"category": "public_order", "reported_at": "2199-12-31", "lon": lon, "lat": lat}
    before = _counts(engine)["incidents"]
    body = post_import(client, role_keys, "incidents", "later.csv", _csv([row])).json()
    assert body["rejects"] == [{"row": 1, "reason": "reported_at lies in the future"}]
    assert _counts(engine)["incidents"] == before


def test_rental_unit_registration_outside_the_api_calendar_is_rejected(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    row = {"id": "r1", "registered_at": "2262-01-01", "lon": lon, "lat": lat}
    body = post_import(client, role_keys, "rental-units", "ru.csv", _csv([row])).json()
    assert body["rejects"] == [{"row": 1, "reason": f"registered_at {CALENDAR_RULE}"}]
