"""Exact H3 cells (issue 16, case R2 of issue 15): every served resolution counts a point in
the cell that contains it, ``h3.latlng_to_cell``, never in the parent of its res-11 cell.

Checked on the shared case R2 (imported through the CLI and ``POST /imports/incidents`` into
the cases' tiny Chicago hierarchy), on files of the same kind made here (points whose coarse
cells are not the parents of their fine ones), on real Chicago crimes against an independent
count at res 6..10 (heatmap and hot spots), and through migration 0021 on existing rows.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.geometry
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.db.engine import make_engine
from geo_service.db.migrate import alembic_config
from geo_service.services.ingest.imports import ImportOptions, import_file, read_mapping_csv
from tests.conftest import REPO, SHARED_DATA, make_database
from tests.tiny import tiny_city

CASES = Path(
    os.environ.get("GEO_SHARED_CASES") or Path(__file__).resolve().parents[3] / "shared" / "cases"
)
R2 = CASES / "hidden_data" / "R2_one_point.csv"
COMMON = CASES / "common"
CHICAGO_CRIMES = SHARED_DATA / "chicago" / "chicago_crimes_2019_sample50k.csv.gz"
CATEGORY_MAP = REPO / "data" / "category_maps" / "chicago_crimes.csv"
RESOLUTIONS = range(6, 11)
# The tiny hierarchy's two grids cover this box (lon, lat); points kept 50 m inside it, so
# no edge tolerance is involved.
BOX = (-87.70, 41.75, -87.60, 41.85)
INSIDE = 0.0006
# A whole year and a window whose edges fall inside days: every source of the heatmap
# (cumulative arrays, totals, per-category rollups by day and month, raw incidents).
YEAR = ("2019-01-01T00:00:00Z", "2020-01-01T00:00:00Z")
WINDOW = ("2019-02-10T05:30:00Z", "2019-11-20T17:00:00Z")

pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason="shared field cases not present")


@pytest.fixture(scope="module")
def tiny(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A database holding only the cases' tiny hierarchy (district D1, grids G1, G2 in
    Chicago), in force since 2000: its owner engine, app-role URL and an admin client."""
    with tiny_city("geo_test_exact", tmp_path_factory.mktemp("exact")) as made:
        yield made


@pytest.fixture
def empty(tiny: tuple, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """The tiny hierarchy with no incidents, the CLI pointed at it."""
    engine, app_url, client = tiny
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
    monkeypatch.setenv("GEO_DATABASE_URL", app_url)
    monkeypatch.setenv("COLUMNS", "250")
    return engine, client


def _heatmap(client: TestClient, res: int, window: tuple[str, str], **extra: str) -> Counter:
    response = client.get(
        "/heatmap/h3",
        params={"res": res, "since": window[0], "until": window[1], "format": "json", **extra},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    counts = Counter({c["h3"]: c["count"] for c in body["cells"]})
    assert body["total"] == sum(counts.values())
    return counts


def _hexagons(client: TestClient, res: int, window: tuple[str, str]) -> Counter:
    """The GeoJSON heatmap's counts per hexagon."""
    return Counter(
        {f["properties"]["h3"]: f["properties"]["count"] for f in _features(client, res, window)}
    )


def _features(client: TestClient, res: int, window: tuple[str, str]) -> list[dict]:
    response = client.get(
        "/heatmap/h3", params={"res": res, "since": window[0], "until": window[1]}
    )
    assert response.status_code == 200, response.text
    return response.json()["features"]


def _hotspot_counts(client: TestClient, res: int, window: tuple[str, str]) -> Counter:
    response = client.get("/hotspots", params={"res": res, "since": window[0], "until": window[1]})
    assert response.status_code == 200, response.text
    return Counter(
        {
            f["properties"]["h3"]: f["properties"]["count"]
            for f in response.json()["features"]
            if f["properties"]["count"]
        }
    )


def _true_cells(lon: list[float], lat: list[float], res: int) -> Counter:
    """The independent count: H3 itself on the points."""
    return Counter(h3.latlng_to_cell(y, x, res) for x, y in zip(lon, lat, strict=True))


def _parent_cells(lon: list[float], lat: list[float], res: int) -> Counter:
    """What was served before: the res-``res`` parent of each point's res-11 cell."""
    return Counter(
        h3.cell_to_parent(h3.latlng_to_cell(y, x, 11), res) for x, y in zip(lon, lat, strict=True)
    )


# --- R2: the shared one-point file ----------------------------------------------------------

R2_OPTIONS = ("--set", "category=facilities", "--map", "date=reported_at")
R2_TRUE = "882664cd59fffff"  # h3.latlng_to_cell(41.8008, -87.6684, 8): contains the point
R2_PARENT = "882664cd5dfffff"  # the res-8 parent of its res-11 cell: does not
R2_WINDOW = ("2015-01-01T00:00:00Z", "2016-01-01T00:00:00Z")


def _r2_point() -> tuple[float, float]:
    row = pd.read_csv(R2).iloc[0]
    return float(row.longitude), float(row.latitude)


def _assert_r2_served_exactly(client: TestClient) -> None:
    lon, lat = _r2_point()
    for res in RESOLUTIONS:
        expected = Counter({h3.latlng_to_cell(lat, lon, res): 1})
        assert _heatmap(client, res, R2_WINDOW) == expected, res
        # the hexagon drawn contains the point
        (feature,) = _features(client, res, R2_WINDOW)
        assert shapely.geometry.shape(feature["geometry"]).contains(shapely.Point(lon, lat))
    counts = _heatmap(client, 8, R2_WINDOW)
    assert counts == Counter({R2_TRUE: 1}) and R2_PARENT not in counts
    # whole days, partial days and a category filter read other sources: the same cell
    assert _heatmap(client, 8, ("2015-06-01T11:00:00Z", "2015-06-01T13:00:00Z")) == counts
    assert _heatmap(client, 8, R2_WINDOW, category="facilities") == counts
    assert _hotspot_counts(client, 8, R2_WINDOW) == counts


def test_r2_shared_point_counted_in_the_cell_that_contains_it_cli_and_http(
    empty: tuple,
) -> None:
    engine, client = empty
    lon, lat = _r2_point()
    assert h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 11), 8) == R2_PARENT  # the case holds
    assert h3.latlng_to_cell(lat, lon, 8) == R2_TRUE
    result = CliRunner().invoke(app, ["import", "incidents", str(R2), *R2_OPTIONS])
    assert result.exit_code == 0, result.output
    _assert_r2_served_exactly(client)
    # the same file over HTTP into a clean slate: the same answer
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
    response = client.post(
        "/imports/incidents",
        files={"file": (R2.name, R2.read_bytes(), "text/csv")},
        data={"set": "category=facilities", "map": "date=reported_at"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    _assert_r2_served_exactly(client)


# --- the same kind: points whose coarse cells are not the parents of their fine cells ------


def _straddling_points(n: int) -> tuple[list[float], list[float]]:
    """Points in the tiny box whose res-6..10 cells differ from their res-11 cell's parents
    at one resolution at least (found on a fixed lattice: deterministic)."""
    xs, ys = np.meshgrid(
        np.linspace(BOX[0] + INSIDE, BOX[2] - INSIDE, 61),
        np.linspace(BOX[1] + INSIDE, BOX[3] - INSIDE, 61),
    )
    lon, lat = [], []
    for x, y in zip(xs.ravel().tolist(), ys.ravel().tolist(), strict=True):
        fine = h3.latlng_to_cell(y, x, 11)
        if any(h3.latlng_to_cell(y, x, r) != h3.cell_to_parent(fine, r) for r in RESOLUTIONS):
            lon.append(round(x, 6))
            lat.append(round(y, 6))
        if len(lon) == n:
            break
    assert len(lon) == n
    return lon, lat


def _assert_served_exactly(client: TestClient, lon: list[float], lat: list[float]) -> None:
    for res in RESOLUTIONS:
        expected = _true_cells(lon, lat, res)
        assert _heatmap(client, res, R2_WINDOW) == expected, res
        assert _hexagons(client, res, R2_WINDOW) == expected, res
        assert _hotspot_counts(client, res, R2_WINDOW) == expected, res
    # the data can tell the two apart: before 0021 this test failed
    assert any(_true_cells(lon, lat, r) != _parent_cells(lon, lat, r) for r in RESOLUTIONS)


@pytest.mark.parametrize("fmt", ["geojson", "xlsx"])
def test_kind_points_straddling_cell_edges_cli_and_http(
    empty: tuple, tmp_path: Path, fmt: str
) -> None:
    engine, client = empty
    lon, lat = _straddling_points(40)
    frame = pd.DataFrame(
        {
            "ref": [f"s{i}" for i in range(len(lon))],
            "when": [
                f"2015-0{1 + i % 9}-{1 + i % 27:02d} {i % 24:02d}:15" for i in range(len(lon))
            ],
            "category": "facilities",
            "lon": lon,
            "lat": lat,
        }
    )
    path = tmp_path / f"straddling.{fmt}"
    if fmt == "geojson":
        points = gpd.points_from_xy(frame.lon, frame.lat)
        gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]), geometry=points, crs=4326).to_file(
            path
        )
    else:
        frame.to_excel(path, index=False)
    result = CliRunner().invoke(
        app, ["import", "incidents", str(path), "--map", "when=reported_at"]
    )
    assert result.exit_code == 0, result.output
    _assert_served_exactly(client, lon, lat)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
    response = client.post(
        "/imports/incidents",
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
        data={"map": "when=reported_at"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == len(lon)
    _assert_served_exactly(client, lon, lat)


# --- real data: Chicago crimes 2019 ---------------------------------------------------------


def _chicago_rows(tmp_path: Path, n: int) -> tuple[Path, pd.DataFrame]:
    """The first ``n`` rows of the 2019 sample with coordinates inside the tiny box."""
    crimes = pd.read_csv(CHICAGO_CRIMES, dtype={"id": str, "beat": str})
    inside = crimes.longitude.between(BOX[0] + INSIDE, BOX[2] - INSIDE) & crimes.latitude.between(
        BOX[1] + INSIDE, BOX[3] - INSIDE
    )
    rows = crimes[inside].head(n)
    assert len(rows) == n
    path = tmp_path / "chicago_2019.csv"
    rows.to_csv(path, index=False)
    return path, rows


@pytest.mark.skipif(not CHICAGO_CRIMES.exists(), reason="shared Chicago data not present")
def test_chicago_heatmap_and_hotspots_equal_an_independent_h3_count(
    empty: tuple, tmp_path: Path
) -> None:
    engine, client = empty
    path, rows = _chicago_rows(tmp_path, 3000)
    report = import_file(
        engine,
        "incidents",
        path,
        ImportOptions(
            field_map={"primary_type": "category", "date": "reported_at"},
            category_map=read_mapping_csv(CATEGORY_MAP),
            tz="America/Chicago",
            status="closed",
            rejects_path=tmp_path / "rejects.csv",
        ),
        actor="test",
    )
    assert report.inserted == len(rows), report
    lon, lat = rows.longitude.tolist(), rows.latitude.tolist()
    # dates are days in Chicago: inside the window edges by their local midnight (UTC-5/-6)
    local = pd.to_datetime(rows.date).dt.tz_localize("America/Chicago").dt.tz_convert("UTC")
    in_window = (local >= pd.Timestamp(WINDOW[0])) & (local < pd.Timestamp(WINDOW[1]))
    w_lon, w_lat = rows.longitude[in_window].tolist(), rows.latitude[in_window].tolist()
    moved = 0
    for res in RESOLUTIONS:
        expected = _true_cells(lon, lat, res)
        assert _heatmap(client, res, YEAR) == expected, res
        assert _hotspot_counts(client, res, YEAR) == expected, res
        assert _heatmap(client, res, WINDOW) == _true_cells(w_lon, w_lat, res), res
        moved += sum((_parent_cells(lon, lat, res) - expected).values())
    assert _hexagons(client, 8, YEAR) == _true_cells(lon, lat, 8)
    assert moved > 0.03 * len(rows)  # a real share of points sits outside its parent cell


# --- migration 0021 on existing rows --------------------------------------------------------


def test_migration_fills_exact_cells_and_recomputes_rollups(database_url: str) -> None:
    url = make_database("geo_test_exact_migration")
    config = alembic_config(url)
    before = ScriptDirectory.from_config(config).get_revision("0021").down_revision
    assert isinstance(before, str)
    command.downgrade(config, before)
    engine = make_engine(url)
    lon, lat = _straddling_points(30)
    try:
        with engine.begin() as conn:
            columns = (
                conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = 'incidents' AND column_name LIKE 'h3%'"
                    )
                )
                .scalars()
                .all()
            )
            assert columns == ["h3"]
            for i, (x, y) in enumerate(zip(lon, lat, strict=True)):
                conn.execute(
                    text(
                        "INSERT INTO incidents (category, priority, reported_at, location, h3) "
                        "VALUES ('traffic', 3, :t, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :h)"
                    ),
                    {
                        "t": datetime(2018 + i % 2, 1 + i % 12, 1 + i % 28, 12, tzinfo=UTC),
                        "x": x,
                        "y": y,
                        "h": h3.str_to_int(h3.latlng_to_cell(y, x, 11)),
                    },
                )
        command.upgrade(config, "heads")  # every branch (0031 and 0033 follow 0027)
        with engine.connect() as conn:
            for res in RESOLUTIONS:
                stored = Counter(
                    h3.int_to_str(c)
                    for c in conn.execute(text(f"SELECT h3_{res} FROM incidents")).scalars()
                )
                assert stored == _true_cells(lon, lat, res), res
                low, high = (0x80 + res) << 52, (0x81 + res) << 52
                column = "cell" if res == 10 else f"c{res}"  # the exact cell at res
                rolled = dict(
                    conn.execute(
                        text(f"SELECT {column}, sum(n) FROM incident_rollup_day GROUP BY 1")
                    ).all()
                )
                assert {h3.int_to_str(c): n for c, n in rolled.items()} == stored, res
                if res == 8:  # the cumulative arrays keep res 8
                    finals = dict(
                        conn.execute(
                            text(
                                "SELECT cell, cum[array_upper(cum, 1)] FROM incident_cum_year "
                                "WHERE year = 2019 AND cell >= :lo AND cell < :hi AND "
                                "cum[array_upper(cum, 1)] > 0"
                            ),
                            {"lo": low, "hi": high},
                        ).all()
                    )
                    assert {h3.int_to_str(c): n for c, n in finals.items()} == stored, res
    finally:
        engine.dispose()
