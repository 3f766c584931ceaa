"""Importers: every format, CRS handling, each class of bad row, atomicity, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import Engine, text

from geo_service.db.engine import make_engine
from geo_service.demo.city import DemoCity, generate_city
from geo_service.demo.load import load_city
from geo_service.errors import InvalidInputError
from geo_service.geo.crs import from_wgs84
from geo_service.ingest.readers import ImportFileError
from geo_service.services.ingest import boundaries as boundary_import
from geo_service.services.ingest import writers
from geo_service.services.ingest.imports import ImportOptions, import_file
from tests.conftest import SHARED_DATA, make_database, scalar


@pytest.fixture(scope="module")
def city_db(database_url: str) -> Iterator[tuple[Engine, DemoCity]]:
    engine = make_engine(make_database("geo_test_imports"))
    city = generate_city(
        seed=11, grids=24, incidents=300, households_per_grid=5, end_date=date(2026, 6, 1)
    )
    load_city(engine, city)
    yield engine, city
    engine.dispose()


def _inside(city: DemoCity, n: int = 1) -> list[tuple[float, float]]:
    grids = city.areas[city.areas.level == "grid"]
    return [(p.x, p.y) for p in grids.geometry.representative_point()[:n]]


def _csv(tmp: Path, name: str, rows: list[dict]) -> Path:
    path = tmp / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _run(engine: Engine, kind: str, path: Path, tmp: Path, **kw: object):  # noqa: ANN202
    kw.setdefault("tz", "UTC")  # naive times here are UTC (the default is GEO_TIMEZONE: issue 19)
    return import_file(
        engine,
        kind,
        path,
        ImportOptions(rejects_path=tmp / f"{path.name}.rejects.csv", **kw),
        actor="test",
    )


def test_each_bad_incident_row_is_rejected_with_its_reason(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, city = city_db
    (lon, lat), (lon2, lat2) = _inside(city, 2)
    good = {
        "id": "1",
        "category": "sanitation",
        "reported_at": "2026-03-01 10:00",
        "lon": lon,
        "lat": lat,
        "priority": "3",
    }
    rows = [
        good,
        {**good, "id": "2", "lon": "", "lat": ""},
        {**good, "id": "3", "lon": 0, "lat": 0},
        {**good, "id": "4", "lon": 2.35, "lat": 48.85},
        {**good, "id": "5", "reported_at": "last tuesday"},
        {**good, "id": "6", "priority": "9"},
        {**good, "id": "7", "category": "alien_landing"},
        {**good, "id": "1", "lon": lon2, "lat": lat2},
        {**good, "id": "9", "lon": 514.3},
        {**good, "id": "10", "reported_at": "2001-05-01 10:00"},
        {**good, "id": "11", "priority": "two"},
        {**good, "id": "12", "lon": lon2, "lat": lat2, "reported_at": "2026-03-02T09:00:00Z"},
    ]
    report = _run(
        engine, "incidents", _csv(tmp_path, "bad.csv", rows), tmp_path, tz="Asia/Shanghai"
    )
    reasons = {r["row"]: r["reason"] for r in report.rejects}
    assert reasons == {
        2: "missing coordinates",
        3: "zero coordinates",
        4: "outside the city (in no grid)",
        5: "unparseable timestamp",
        6: "priority above 4",
        7: "unknown category 'alien_landing'",
        8: "duplicate id: 'bad:1' first at row 1",
        9: "coordinates out of range",
        10: "no boundary version in force at that time",
        11: "priority is not a number",
    }
    assert report.accepted == report.inserted == 2
    rejects = pd.read_csv(tmp_path / "bad.csv.rejects.csv", dtype=str)
    assert list(rejects.row.astype(int)) == sorted(reasons)
    assert rejects.loc[rejects.row == "7", "source_category"].item() == "alien_landing"
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT reported_at FROM incidents WHERE idempotency_key = 'bad:1'")
        ).scalar_one()
    assert stored == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in UTC+8


def test_category_map_maps_and_unknown_source_categories_are_rejected(
    city_db, tmp_path: Path
) -> None:  # noqa: ANN001
    engine, city = city_db
    ((lon, lat),) = _inside(city)
    rows = [
        {"id": str(i), "type": t, "when": "2026-04-01T08:00:00+08:00", "x": lon, "y": lat}
        for i, t in enumerate(["NOISE", "GARBAGE", "UFO"])
    ]
    report = _run(
        engine,
        "incidents",
        _csv(tmp_path, "mapped.csv", rows),
        tmp_path,
        field_map={"type": "category", "when": "reported_at"},
        category_map={"NOISE": "public_order", "GARBAGE": "sanitation"},
    )
    assert report.inserted == 2
    assert [r["reason"] for r in report.rejects] == ["unknown category 'UFO'"]
    with pytest.raises(ImportFileError, match="do not exist"):
        _run(
            engine,
            "incidents",
            _csv(tmp_path, "m2.csv", rows),
            tmp_path,
            field_map={"type": "category", "when": "reported_at"},
            category_map={"NOISE": "no_such_category"},
        )


def test_ambiguous_dates_are_settled_by_the_column_or_rejected(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, city = city_db
    ((lon, lat),) = _inside(city)
    base = {"category": "facilities", "lon": lon, "lat": lat}
    settled = [
        {**base, "id": "a", "reported_at": "2026/01/09"},  # ambiguous ...
        {**base, "id": "b", "reported_at": "2026/25/04"},
    ]  # ... settled: year/day/month
    report = _run(engine, "incidents", _csv(tmp_path, "settled.csv", settled), tmp_path)
    assert report.inserted == 2
    with engine.connect() as conn:
        when = conn.execute(
            text("SELECT reported_at FROM incidents WHERE idempotency_key = 'settled:a'")
        ).scalar_one()
    assert when == datetime(2026, 9, 1, tzinfo=UTC)  # 1 September, never 9 January
    unsettled = [{**base, "id": "c", "reported_at": "2026/01/09"}]
    report = _run(engine, "incidents", _csv(tmp_path, "unsettled.csv", unsettled), tmp_path)
    assert report.inserted == 0 and report.rejects[0]["reason"].startswith("ambiguous")
    report = _run(
        engine,
        "incidents",
        _csv(tmp_path, "explicit.csv", unsettled),
        tmp_path,
        date_formats=["%Y/%m/%d"],
    )
    assert report.inserted == 1


def test_projected_coordinates_read_as_lonlat_fail_the_file_and_write_nothing(
    city_db, tmp_path: Path
) -> None:  # noqa: ANN001
    engine, city = city_db
    points = _inside(city, 3)
    to_utm = Transformer.from_crs(4326, 32650, always_xy=True)
    xs, ys = to_utm.transform([p[0] for p in points], [p[1] for p in points])
    rows = [
        {"id": str(i), "household_size": 2, "x": x, "y": y}
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    path = _csv(tmp_path, "utm.csv", rows)
    before = scalar(engine, "SELECT count(*) FROM households")
    with pytest.raises(ImportFileError, match="looks projected"):
        _run(engine, "households", path, tmp_path)
    assert scalar(engine, "SELECT count(*) FROM households") == before
    report = _run(engine, "households", path, tmp_path, crs="EPSG:32650")
    assert report.inserted == 3
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(location), ST_Y(location) FROM households WHERE external_ref = 'utm:0'"
            )
        ).one()
    assert abs(lon - points[0][0]) < 1e-7 and abs(lat - points[0][1]) < 1e-7


def test_gcj02_and_bd09_files_are_stored_in_wgs84(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, city = city_db
    points = _inside(city, 2)
    for name in ("gcj02", "bd09"):
        lon, lat = from_wgs84([p[0] for p in points], [p[1] for p in points], name)
        rows = [
            {"id": str(i), "household_size": 1, "lon": a, "lat": b}
            for i, (a, b) in enumerate(zip(lon, lat, strict=True))
        ]
        report = _run(engine, "households", _csv(tmp_path, f"{name}.csv", rows), tmp_path, crs=name)
        assert report.inserted == 2
        with engine.connect() as conn:
            got = conn.execute(
                text(
                    "SELECT ST_X(location), ST_Y(location) FROM households "
                    f"WHERE external_ref = '{name}:0'"
                )
            ).one()
        assert abs(got[0] - points[0][0]) < 1e-8 and abs(got[1] - points[0][1]) < 1e-8


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "shp.zip", "parquet", "tsv"])
def test_every_format_imports_the_same_rows(city_db, tmp_path: Path, fmt: str) -> None:  # noqa: ANN001
    engine, city = city_db
    pts = _inside(city, 6)
    frame = gpd.GeoDataFrame(
        {
            "hid": [f"{fmt}-{i}" for i in range(6)],
            "size": [1, 2, 3, 4, 5, 6],
            "rent": ["t", "f", "t", "f", "t", "f"],
        },
        geometry=gpd.points_from_xy(*zip(*pts, strict=True)),
        crs=4326,
    )
    path = tmp_path / f"households.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path)
    elif fmt == "tsv":
        pd.DataFrame(
            {**frame.drop(columns="geometry"), "lon": frame.geometry.x, "lat": frame.geometry.y}
        ).to_csv(path, sep="\t", index=False)
    elif fmt == "shp.zip":
        folder = tmp_path / "shp"
        folder.mkdir()
        frame.to_file(folder / "households.shp")
        import shutil

        shutil.make_archive(str(tmp_path / "households"), "zip", folder)
        path = tmp_path / "households.zip"
    else:
        frame.to_file(
            path, driver={"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}[fmt]
        )
    report = _run(
        engine,
        "households",
        path,
        tmp_path,
        source_name=f"fmt-{fmt}",
        field_map={"hid": "id", "size": "household_size"},
    )
    assert (report.read, report.inserted, report.rejected) == (6, 6, 0)
    assert "rent" in report.ignored_columns  # unknown fields are never stored
    again = _run(
        engine,
        "households",
        path,
        tmp_path,
        source_name=f"fmt-{fmt}",
        field_map={"hid": "id", "size": "household_size"},
    )
    assert again.inserted == 0 and again.already_present == 6


def test_bad_numbers_for_households_and_rental_units(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, city = city_db
    ((lon, lat),) = _inside(city)
    hh = [
        {"id": "1", "household_size": 0, "lon": lon, "lat": lat},
        {"id": "2", "household_size": 60, "lon": lon, "lat": lat},
        {"id": "3", "household_size": 2, "needs_assistance": "maybe", "lon": lon, "lat": lat},
    ]
    report = _run(engine, "households", _csv(tmp_path, "hh.csv", hh), tmp_path)
    assert [r["reason"] for r in report.rejects] == [
        "household_size below 1",
        "household_size above 50",
        "needs_assistance is not true/false",
    ]
    ru = [
        {"id": "1", "unit_count": -1, "lon": lon, "lat": lat},
        {"id": "2", "occupants": "-3", "lon": lon, "lat": lat},
        {"id": "3", "status": "squatted", "lon": lon, "lat": lat},
        {"id": "4", "registered_at": "31/31/2020", "lon": lon, "lat": lat},
        {
            "id": "5",
            "unit_count": 2,
            "occupants": 4,
            "registered_at": "2024-05-01",
            "lon": lon,
            "lat": lat,
        },
    ]
    report = _run(engine, "rental-units", _csv(tmp_path, "ru.csv", ru), tmp_path)
    assert [r["reason"] for r in report.rejects] == [
        "unit_count below 1",
        "occupants below 0",
        "unknown status 'squatted'",
        "unparseable timestamp",
    ]
    assert report.inserted == 1


def test_bad_polygons_are_repaired_only_when_harmless(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, city = city_db
    ((x, y),) = _inside(city)
    d = 0.001
    square = [(x, y), (x + d, y), (x + d, y + d), (x, y + d), (x, y)]
    bowtie = shapely.Polygon([(x, y), (x + d, y + d), (x + d, y), (x, y + d), (x, y)])
    # A square with a repeated vertex and a zero-width spike: invalid, area unchanged by repair.
    spiky = shapely.Polygon(
        square[:2] + [(x + d, y + d / 2), (x + 2 * d, y + d / 2), (x + d, y + d / 2)] + square[2:]
    )
    frame = gpd.GeoDataFrame(
        {"code": ["OK", "BOW", "SPIKE", "LINE", "OK"]},
        geometry=[
            shapely.Polygon(square),
            bowtie,
            spiky,
            shapely.LineString(square[:2]),
            shapely.Polygon(square),
        ],
        crs=4326,
    )
    path = tmp_path / "areas.geojson"
    frame.to_file(path, driver="GeoJSON")
    report = _run(engine, "boundaries", path, tmp_path, level="grid")
    reasons = {r["row"]: r["reason"] for r in report.rejects}
    assert reasons[2].startswith("invalid geometry (Self-intersection")
    assert "repair would change area" in reasons[2]
    assert reasons[4] == "wrong geometry type (LineString), expected Polygon"
    assert reasons[5].startswith("duplicate code")
    assert 3 not in reasons and report.inserted == 2  # the spike was repaired
    with engine.connect() as conn:
        area = conn.execute(
            text("SELECT area_m2 FROM areas WHERE code = 'SPIKE' AND version_id = :v"),
            {"v": report.version_id},
        ).scalar_one()
    assert 9_000 < area < 11_000  # ~100 m x 100 m, measured on the spheroid


def test_unclosed_rings_are_rejected_per_feature(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, _ = city_db
    path = tmp_path / "unclosed.geojson"
    path.write_text(
        '{"type":"FeatureCollection","features":['
        '{"type":"Feature","properties":{"code":"OPEN"},"geometry":{"type":"Polygon",'
        '"coordinates":[[[114.30,30.50],[114.31,30.50],[114.31,30.51],[114.30,30.51]]]}},'
        '{"type":"Feature","properties":{"code":"SHUT"},"geometry":{"type":"Polygon",'
        '"coordinates":[[[114.30,30.50],[114.31,30.50],[114.31,30.51],[114.30,30.51],'
        "[114.30,30.50]]]}}]}"
    )
    report = _run(engine, "boundaries", path, tmp_path, level="district")
    assert report.rejects == [{"row": 1, "reason": "invalid geometry (unclosed ring)"}]
    assert report.inserted == 1


def test_parents_by_column_and_unknown_parents(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, city = city_db
    districts = city.areas[city.areas.level == "district"]
    first = _run(
        engine,
        "boundaries",
        _gdf_file(districts, tmp_path / "d.geojson"),
        tmp_path,
        level="district",
    )
    streets = city.areas[city.areas.level == "street"].copy()
    streets.loc[streets.index[0], "parent_code"] = "D99"
    report = _run(
        engine,
        "boundaries",
        _gdf_file(streets, tmp_path / "s.geojson"),
        tmp_path,
        level="street",
        parent_level="district",
        version_id=first.version_id,
    )
    assert report.rejects == [{"row": 1, "reason": "unknown parent district 'D99'"}]
    with engine.connect() as conn:
        pairs = dict(
            conn.execute(
                text(
                    "SELECT s.code, d.code FROM areas s JOIN areas d ON d.id = s.parent_id "
                    "WHERE s.version_id = :v AND s.level = 'street'"
                ),
                {"v": first.version_id},
            ).all()
        )
    assert all(code.startswith(parent + "-") for code, parent in pairs.items())
    assert len(pairs) == len(streets) - 1


def _gdf_file(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame[["code", "name", "parent_code", "geometry"]].to_file(path, driver="GeoJSON")
    return path


def test_a_failure_half_way_leaves_nothing_written(
    city_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    engine, city = city_db
    ((lon, lat),) = _inside(city)
    rows = [
        {
            "id": str(i),
            "category": "traffic",
            "reported_at": "2026-02-02T10:00:00Z",
            "lon": lon,
            "lat": lat,
        }
        for i in range(50)
    ]
    counts = {
        t: scalar(engine, f"SELECT count(*) FROM {t}")
        for t in ("incidents", "audit_log", "boundary_versions", "areas")
    }

    def explode(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers, "write_incidents", explode)
    with pytest.raises(RuntimeError):
        _run(engine, "incidents", _csv(tmp_path, "boom.csv", rows), tmp_path)
    original = boundary_import.find_parents
    monkeypatch.setattr(
        boundary_import,
        "find_parents",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash")),
    )
    districts = city.areas[city.areas.level == "district"]
    with pytest.raises(RuntimeError):
        _run(
            engine,
            "boundaries",
            _gdf_file(districts, tmp_path / "b.geojson"),
            tmp_path,
            level="street",
            parent_level="district",
        )
    monkeypatch.setattr(boundary_import, "find_parents", original)
    for table, before in counts.items():
        assert scalar(engine, f"SELECT count(*) FROM {table}") == before, table


def test_file_level_errors_are_clear(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, _ = city_db
    csv = _csv(tmp_path, "plain.csv", [{"a": 1, "b": 2}])
    with pytest.raises(ImportFileError, match="no coordinate columns"):
        _run(engine, "households", csv, tmp_path)
    with pytest.raises(ImportFileError, match="does not exist"):
        _run(engine, "households", tmp_path / "missing.csv", tmp_path)
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"not a geopackage")
    with pytest.raises(ImportFileError, match="cannot read"):
        _run(engine, "households", junk, tmp_path)
    with pytest.raises(ImportFileError, match="unknown CRS"):
        _run(engine, "households", csv, tmp_path, crs="EPSG:999999")
    good = _csv(tmp_path, "good.csv", [{"lon": 114.3, "lat": 30.6, "household_size": 1}])
    with pytest.raises(ImportFileError, match="no column 'nope'"):
        _run(engine, "households", good, tmp_path, field_map={"nope": "household_size"})
    with pytest.raises(ImportFileError, match="not a field of households"):
        _run(engine, "households", good, tmp_path, field_map={"household_size": "name"})
    with pytest.raises(InvalidInputError, match="kind must be"):
        _run(engine, "people", good, tmp_path)
    with pytest.raises(InvalidInputError, match="--level"):
        _run(engine, "boundaries", good, tmp_path)
    with pytest.raises(InvalidInputError, match="time zone"):
        _run(engine, "households", good, tmp_path, tz="Mars/Olympus")


def test_wuhan_gcj02_boundaries_land_within_3_m_of_the_wgs84_file(city_db, tmp_path: Path) -> None:  # noqa: ANN001
    engine, _ = city_db
    hubei = SHARED_DATA / "hubei"
    a = _run(
        engine,
        "boundaries",
        hubei / "wuhan_districts_gcj02.geojson",
        tmp_path,
        level="district",
        crs="gcj02",
        field_map={"adcode": "code", "district": "name"},
    )
    b = _run(
        engine,
        "boundaries",
        hubei / "wuhan_districts_wgs84.geojson",
        tmp_path,
        level="district",
        field_map={"adcode": "code", "district": "name"},
    )
    assert a.inserted == b.inserted == 14
    worst = _hausdorff_m(engine, a.version_id, b.version_id, "max")
    naive = _run(
        engine,
        "boundaries",
        hubei / "wuhan_districts_gcj02.geojson",
        tmp_path,
        level="district",
        field_map={"adcode": "code", "district": "name"},
    )
    offset = _hausdorff_m(engine, naive.version_id, b.version_id, "min")
    assert worst < 3.0
    assert offset > 300  # without --crs gcj02 the published offset stays in


def _hausdorff_m(engine: Engine, a: int, b: int, agg: str) -> float:
    """max or min over districts of the Hausdorff distance (metres, UTM 50N) between the
    same code in versions a and b.
    """
    assert agg in ("max", "min")
    with engine.connect() as conn:
        return conn.execute(
            text(
                f"SELECT {agg}(ST_HausdorffDistance(ST_Transform(x.geom, 32650), "
                "ST_Transform(y.geom, 32650))) FROM areas x JOIN areas y USING (code) "
                "WHERE x.version_id = :a AND y.version_id = :b"
            ),
            {"a": a, "b": b},
        ).scalar_one()
