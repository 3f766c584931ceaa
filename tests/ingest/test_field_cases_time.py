"""Issue 15, times: F02 (offsets kept for every GDAL format), F08 (``--date-format`` on the
file's own text), several ``--date-format`` per column, R1 (an id-less file with one bad time),
the DST fall-back hour (``--ambiguous-time``) and the spring-forward gap, and times built from
several columns (``--map "date+time=reported_at"``, ``--map "YEAR+MONTH+DAY=..."``).

Each through the CLI and ``POST /imports/{kind}``: the shared case, and files of the same kind
made here (other formats, zones, column layouts). All times are fixed, never the clock.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from geo_service.cli.main import app
from geo_service.demo.city import DemoCity
from tests.conftest import as_role, grid_point, problem
from tests.ingest.helpers import CASES
from tests.tiny import tiny_city

F02 = CASES / "import" / "F02_geojson_gpkg_datetime_offset_dropped" / "incidents_offset.geojson"
F08 = CASES / "import" / "F08_geojson_date_format_rejected" / "incidents_slashdates.geojson"
R1 = CASES / "hidden_data" / "R1_noid_bad_time.csv"
COMMON = CASES / "common"

pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason="shared field cases not present")


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _import(runner: CliRunner, kind: str, path: Path, *args: str) -> Result:
    rejects = Path(tempfile.mkdtemp(prefix="i15time-")) / "rejects.csv"  # never beside a case
    if "--tz" not in args:  # naive times here are UTC (the default is GEO_TIMEZONE: issue 19)
        args = (*args, "--tz", "UTC")
    result = runner.invoke(app, ["import", kind, str(path), "--rejects", str(rejects), *args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _imported(result: Result) -> None:
    """A run that wrote its rows: exit 0, or the documented code of "some rows rejected"."""
    assert result.exit_code not in (1, 2), result.output


def _post(client: TestClient, headers: dict, kind: str, name: str, content: bytes, **data):  # noqa: ANN001, ANN003, ANN202
    data.setdefault("tz", "UTC")  # naive times here are UTC (the default is GEO_TIMEZONE)
    return client.post(
        f"/imports/{kind}",
        files={"file": (name, content, "application/octet-stream")},
        data=data,
        headers=headers,
    )


def _times(engine: Engine, prefix: str) -> dict[str, datetime]:
    """reported_at of the incidents whose key starts with ``prefix:``, by the rest of the key."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT idempotency_key, reported_at FROM incidents "
                "WHERE idempotency_key LIKE :p ORDER BY 1"
            ),
            {"p": prefix + ":%"},
        ).all()
    return {key.split(":", 1)[1]: when for key, when in rows}


def _csv(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --- F02: offsets honoured for every format read through GDAL ------------------------------


def test_f02_shared_geojson_keeps_offsets_whatever_tz_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    engine: Engine,
) -> None:
    # --tz applies to naive times only: "+08:00" and "Z" say when they happened.
    result = _import(cli, "incidents", F02, "--tz", "America/Chicago", "--source-name", "f02cli")
    assert result.exit_code == 0, result.output
    expected = {"tz-1": _at(2024, 5, 1, 1), "tz-2": _at(2024, 5, 1, 9)}
    assert _times(engine, "f02cli") == expected
    response = _post(
        client,
        as_role(role_keys, "admin"),
        "incidents",
        F02.name,
        F02.read_bytes(),
        tz="America/Chicago",
        source_name="f02http",
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2
    assert _times(engine, "f02http") == expected


def _points_frame(lon: float, lat: float, times: list) -> gpd.GeoDataFrame:  # noqa: ANN001
    return gpd.GeoDataFrame(
        {
            "id": [f"r{i}" for i in range(len(times))],
            "category": "facilities",
            "reported_at": times,
        },
        geometry=[shapely.Point(lon + i * 1e-5, lat) for i in range(len(times))],
        crs=4326,
    )


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_f02_kind_offsets_and_naive_times_in_gdal_formats_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    fmt: str,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = tmp_path / f"times.{fmt}"
    if fmt == "gpkg":
        # typed DateTime fields, each value with its own offset (or none: read in --tz)
        written = ["2024-05-01T09:00:00+08:00", "2024-05-01T09:00:00-05:00", "2024-05-01T09:00"]
        for i, when in enumerate(written):
            row = _points_frame(lon, lat, [pd.Timestamp(when)])
            row["id"] = [f"r{i}"]
            pyogrio.write_dataframe(row, path, layer="incidents", append=i > 0)
    else:
        frame = _points_frame(
            lon, lat, ["2024-05-01T09:00:00+08:00", "2024-05-01T09:00:00-05:00", "2024-05-01 09:00"]
        )
        path.write_text(frame.to_json())
    expected = {"r0": _at(2024, 5, 1, 1), "r1": _at(2024, 5, 1, 14), "r2": _at(2024, 5, 1, 1)}
    result = _import(cli, "incidents", path, "--tz", "Asia/Shanghai", "--source-name", "k" + fmt)
    assert result.exit_code == 0, result.output
    assert _times(engine, "k" + fmt) == expected
    response = _post(
        client,
        as_role(role_keys, "admin"),
        "incidents",
        path.name,
        path.read_bytes(),
        tz="Asia/Shanghai",
        source_name="h" + fmt,
    )
    assert response.status_code == 200, response.text
    assert _times(engine, "h" + fmt) == expected
    assert response.json()["assumptions"]["tz"] == "Asia/Shanghai"


# --- F08: --date-format applies to the file's own text --------------------------------------


def test_f08_shared_geojson_date_format_reads_the_files_text_cli_and_http(
    cli: CliRunner, client: TestClient, role_keys: dict[str, str], engine: Engine
) -> None:
    fmt = "%Y/%m/%d %H:%M:%S"
    result = _import(
        cli, "incidents", F08, "--date-format", fmt, "--tz", "Asia/Shanghai", "--source-name", "c8"
    )
    assert result.exit_code == 0, result.output
    assert _times(engine, "c8") == {"sd-1": _at(2024, 5, 3, 1)}
    response = _post(
        client,
        as_role(role_keys, "admin"),
        "incidents",
        F08.name,
        F08.read_bytes(),
        date_format=fmt,
        tz="Asia/Shanghai",
        source_name="h8",
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0 and response.json()["inserted"] == 1
    assert response.json()["assumptions"]["date_formats"] == [fmt]
    assert _times(engine, "h8") == {"sd-1": _at(2024, 5, 3, 1)}


@pytest.mark.parametrize(
    ("written", "fmt", "expected"),
    [
        # day first with dots, and month first with a 12-hour clock: GDAL would read neither
        # the way the file means, or pre-parse the first one into its own text
        ("03.05.2024 09:00", "%d.%m.%Y %H:%M", _at(2024, 5, 3, 9)),
        ("05/03/2024 09:00 PM", "%m/%d/%Y %I:%M %p", _at(2024, 5, 3, 21)),
        ("2024/03/05 09:00:00", "%Y/%d/%m %H:%M:%S", _at(2024, 5, 3, 9)),
    ],
)
def test_f08_kind_date_formats_on_geojson_and_gpkg_text_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
    written: str,
    fmt: str,
    expected: datetime,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    frame = _points_frame(lon, lat, [written])
    geojson = tmp_path / "own.geojson"
    geojson.write_text(frame.to_json())
    gpkg = tmp_path / "own.gpkg"
    pyogrio.write_dataframe(frame, gpkg, layer="incidents")
    for n, path in enumerate((geojson, gpkg)):
        response = _post(
            client,
            as_role(role_keys, "admin"),
            "incidents",
            path.name,
            path.read_bytes(),
            date_format=fmt,
            source_name=f"f8h{n}",
        )
        assert response.status_code == 200, response.text
        assert _times(engine, f"f8h{n}") == {"r0": expected}, response.json()
        result = _import(cli, "incidents", path, "--date-format", fmt, "--source-name", f"f8c{n}")
        assert result.exit_code == 0, result.output
        assert _times(engine, f"f8c{n}") == {"r0": expected}


# --- several --date-format, tried per row in order (Chicago, September 2014) ----------------

CHICAGO_2014 = ["%m/%d/%Y %I:%M:%S %p", "%Y/%d/%m %H:%M:%S", "%m/%d/%Y"]


def _mixed_rows(lon: float, lat: float) -> list[dict]:
    texts = ["09/15/2014 01:05:00 AM", "2014/16/09 13:00:00", "09/17/2014", "09/18/2014 11:00 PM"]
    return [
        {"id": f"m{i}", "category": "facilities", "lon": lon, "lat": lat, "date": t}
        for i, t in enumerate(texts)
    ]


def test_several_date_formats_are_tried_per_row_cli_and_http(
    tiny_env: tuple,
    tmp_path: Path,
) -> None:
    cli, client, engine, headers, lon, lat = tiny_env
    path = _csv(tmp_path, "sept2014.csv", _mixed_rows(lon, lat))
    expected = {  # CDT, UTC-5; the last row matches none of the formats (no seconds)
        "m0": _at(2014, 9, 15, 6, 5),
        "m1": _at(2014, 9, 16, 18),
        "m2": _at(2014, 9, 17, 5),
    }
    args = ["--map", "date=reported_at", "--tz", "America/Chicago"]
    args += [a for fmt in CHICAGO_2014 for a in ("--date-format", fmt)]
    result = _import(cli, "incidents", path, *args, "--source-name", "mc")
    _imported(result)
    assert _times(engine, "mc") == expected
    assert "unparseable timestamp" in result.output
    response = _post(
        client,
        headers,
        "incidents",
        path.name,
        path.read_bytes(),
        map="date=reported_at",
        tz="America/Chicago",
        date_format=CHICAGO_2014,
        source_name="mh",
    )
    assert response.status_code == 200, response.text
    assert _times(engine, "mh") == expected
    assert response.json()["rejects"] == [{"row": 4, "reason": "unparseable timestamp"}]
    # One format alone takes its own rows only.
    response = _post(
        client,
        headers,
        "incidents",
        path.name,
        path.read_bytes(),
        map="date=reported_at",
        tz="America/Chicago",
        date_format=CHICAGO_2014[0],
        source_name="m1",
    )
    assert set(_times(engine, "m1")) == {"m0"}


def test_several_date_formats_keep_the_ambiguity_rule_cli_and_http(
    tiny_env: tuple,
    tmp_path: Path,
) -> None:
    cli, client, engine, headers, lon, lat = tiny_env
    both = ["--date-format", "%d/%m/%Y", "--date-format", "%m/%d/%Y"]
    base = {"category": "facilities", "lon": lon, "lat": lat}
    # Nothing settles "01/02/2014": 1 February or 2 January; the order of the formats is no
    # evidence, so the row is rejected.
    alone = _csv(tmp_path, "alone.csv", [{**base, "id": "a", "reported_at": "01/02/2014"}])
    result = _import(cli, "incidents", alone, *both, "--source-name", "amb")
    assert "ambiguous" in result.output and _times(engine, "amb") == {}
    response = _post(
        client,
        headers,
        "incidents",
        alone.name,
        alone.read_bytes(),
        date_format=["%d/%m/%Y", "%m/%d/%Y"],
        source_name="amb",
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejects"][0]["reason"].startswith("ambiguous")
    assert _times(engine, "amb") == {}
    # A row only the second format reads settles the column: month first.
    rows = [
        {**base, "id": "a", "reported_at": "01/02/2014"},
        {**base, "id": "b", "reported_at": "03/25/2014"},
    ]
    settled = _csv(tmp_path, "settled.csv", rows)
    result = _import(cli, "incidents", settled, *both, "--source-name", "set")
    assert result.exit_code == 0, result.output
    assert _times(engine, "set") == {"a": _at(2014, 1, 2), "b": _at(2014, 3, 25)}
    response = _post(
        client,
        headers,
        "incidents",
        settled.name,
        settled.read_bytes(),
        date_format=["%d/%m/%Y", "%m/%d/%Y"],
        source_name="seth",
    )
    assert _times(engine, "seth") == {"a": _at(2014, 1, 2), "b": _at(2014, 3, 25)}


def test_a_bad_date_format_is_refused_with_a_message_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = _csv(tmp_path, "bad.csv", _mixed_rows(lon, lat))
    result = _import(cli, "incidents", path, "--map", "date=reported_at", "--date-format", "%Q")
    assert result.exit_code != 0 and "--date-format '%Q'" in result.output
    response = _post(
        client,
        as_role(role_keys, "admin"),
        "incidents",
        path.name,
        path.read_bytes(),
        map="date=reported_at",
        date_format="%Q",
    )
    assert response.status_code in (400, 422) and "%Q" in problem(response)["detail"]
    assert _times(engine, "bad") == {}


# --- R1: an id-less file with one bad time, into the tiny common/ hierarchy -----------------


@pytest.fixture(scope="module")
def tiny(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A database holding only the cases' tiny hierarchy (district D1, grids G1, G2 in
    Chicago), published; its owner engine, app-role URL and an admin client."""
    with tiny_city("geo_test_tiny", tmp_path_factory.mktemp("tiny")) as made:
        yield made


@pytest.fixture
def tiny_env(tiny: tuple, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """The tiny Chicago hierarchy, in force since 2000, with no incidents: a CLI runner on
    it, its admin client and headers, its owner engine, and a point in grid G2."""
    engine, app_url, client = tiny
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
        conn.execute(text("DELETE FROM rental_units"))
    monkeypatch.setenv("GEO_DATABASE_URL", app_url)
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner(), client, engine, {}, -87.6277, 41.7922


def _tiny_incidents(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT a.code, i.reported_at FROM incidents i JOIN areas a ON a.id = i.grid_id "
                "ORDER BY i.reported_at"
            )
        ).all()


# The file has neither category nor a column named like ours for the time.
# Its naive times are read as UTC here (the default is GEO_TIMEZONE: issue 19).
R1_OPTIONS = ("--set", "category=facilities", "--map", "date=reported_at", "--tz", "UTC")


def test_r1_shared_noid_file_with_a_bad_time_cli_and_http(
    tiny: tuple, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine, app_url, client = tiny
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
    monkeypatch.setenv("GEO_DATABASE_URL", app_url)
    monkeypatch.setenv("COLUMNS", "250")
    rejects = tmp_path / "r1.rejects.csv"
    result = CliRunner().invoke(
        app,
        ["import", "incidents", str(R1), *R1_OPTIONS, "--rejects", str(rejects)],
    )
    assert "Traceback" not in result.output and result.exit_code not in (1, 2), result.output
    assert "unparseable timestamp" in result.output, result.output
    assert _tiny_incidents(engine) == [("G2", _at(2010, 11, 7, 0, 30))]
    table = pd.read_csv(rejects, dtype=str)
    assert table.row.tolist() == ["2"] and table.reason.tolist() == ["unparseable timestamp"]
    # Over HTTP into a clean slate: the same outcome; and a second run adds nothing.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
    for inserted in (1, 0):
        response = client.post(
            "/imports/incidents",
            files={"file": (R1.name, R1.read_bytes(), "text/csv")},
            data={"set": "category=facilities", "map": "date=reported_at", "tz": "UTC"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["inserted"] == inserted and body["rejected"] == 1
        assert body["rejects"] == [{"row": 2, "reason": "unparseable timestamp"}]
    assert _tiny_incidents(engine) == [("G2", _at(2010, 11, 7, 0, 30))]


@pytest.mark.parametrize("fmt", ["geojson", "xlsx", "tsv"])
def test_r1_kind_noid_files_with_bad_times_http(tiny: tuple, tmp_path: Path, fmt: str) -> None:
    engine, _, client = tiny
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
    frame = pd.DataFrame(
        {
            "when": ["2010-11-07 00:30", "2010-02-30 10:00", "", "2010-11-08T10:00:00Z"],
            "category": "facilities",
            "lon": [-87.6277, -87.6683, -87.6683, -87.6683],
            "lat": [41.7922, 41.7513, 41.7513, 41.7513],
        }
    )
    path = tmp_path / f"noid.{fmt}"
    if fmt == "geojson":
        points = gpd.points_from_xy(frame.lon, frame.lat)
        gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]), geometry=points, crs=4326).to_file(
            path
        )
    elif fmt == "xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, sep="\t", index=False)
    response = client.post(
        "/imports/incidents",
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
        data={"map": "when=reported_at", "tz": "UTC"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rejects"] == [
        {"row": 2, "reason": "unparseable timestamp"},
        {"row": 3, "reason": "missing timestamp"},
    ]
    assert _tiny_incidents(engine) == [
        ("G2", _at(2010, 11, 7, 0, 30)),
        ("G1", _at(2010, 11, 8, 10)),
    ]


# --- DST: the fall-back hour and the spring-forward gap -------------------------------------


def _dst_file(tmp_path: Path, lon: float, lat: float) -> Path:
    rows = [
        {"id": "back", "reported_at": "2019-11-03 01:30"},  # twice in Chicago (CDT, then CST)
        {"id": "gap", "reported_at": "2019-03-10 02:30"},  # never on Chicago's clocks
        {"id": "plain", "reported_at": "2019-07-01 12:00"},
    ]
    return _csv(
        tmp_path, "dst.csv", [{**r, "category": "facilities", "lon": lon, "lat": lat} for r in rows]
    )


GAP = "does not exist in America/Chicago: the clocks went forward"


@pytest.mark.parametrize(
    ("choice", "back"),
    [("reject", None), ("earliest", _at(2019, 11, 3, 6, 30)), ("latest", _at(2019, 11, 3, 7, 30))],
)
def test_dst_fall_back_hour_follows_ambiguous_time_and_the_gap_is_rejected_cli_and_http(
    tiny_env: tuple,
    tmp_path: Path,
    choice: str,
    back: datetime | None,
) -> None:
    cli, client, engine, headers, lon, lat = tiny_env
    path = _dst_file(tmp_path, lon, lat)
    expected = {"plain": _at(2019, 7, 1, 17)} | ({"back": back} if back else {})
    args = ["--tz", "America/Chicago"]
    if choice != "reject":  # the default
        args += ["--ambiguous-time", choice]
    result = _import(cli, "incidents", path, *args, "--source-name", "dc" + choice)
    _imported(result)
    assert _times(engine, "dc" + choice) == expected
    assert re.search(rf"repeated local times \(DST\)\s*│\s*{choice}", result.output)
    assert "does not exist in America/Chicago" in result.output
    data = {"tz": "America/Chicago", "source_name": "dh" + choice}
    if choice != "reject":
        data["ambiguous_time"] = choice
    response = _post(client, headers, "incidents", path.name, path.read_bytes(), **data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert _times(engine, "dh" + choice) == expected
    assert body["assumptions"]["ambiguous_time"] == choice
    assert body["assumptions"]["tz"] == "America/Chicago"
    reasons = {r["row"]: r["reason"] for r in body["rejects"]}
    assert reasons[2] == GAP
    if choice == "reject":
        assert reasons[1].startswith("occurs twice in America/Chicago: the clocks went back")
    else:
        assert 1 not in reasons


def test_dst_rows_are_plain_times_in_a_zone_without_dst_cli_and_http(
    tiny_env: tuple,
    tmp_path: Path,
) -> None:
    cli, client, engine, headers, lon, lat = tiny_env
    path = _dst_file(tmp_path, lon, lat)
    expected = {  # CST, UTC+8, all year
        "back": _at(2019, 11, 2, 17, 30),
        "gap": _at(2019, 3, 9, 18, 30),
        "plain": _at(2019, 7, 1, 4),
    }
    result = _import(cli, "incidents", path, "--tz", "Asia/Shanghai", "--source-name", "sc")
    assert result.exit_code == 0, result.output
    assert _times(engine, "sc") == expected
    response = _post(
        client,
        headers,
        "incidents",
        path.name,
        path.read_bytes(),
        tz="Asia/Shanghai",
        source_name="sh",
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
    assert _times(engine, "sh") == expected


def test_an_unknown_ambiguous_time_choice_is_refused_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = _dst_file(tmp_path, lon, lat)
    result = _import(cli, "incidents", path, "--ambiguous-time", "first", "--source-name", "u")
    assert result.exit_code != 0 and "--ambiguous-time must be one of" in result.output
    response = _post(
        client,
        as_role(role_keys, "admin"),
        "incidents",
        path.name,
        path.read_bytes(),
        ambiguous_time="first",
        source_name="u",
    )
    assert response.status_code == 422, response.text
    assert _times(engine, "u") == {}


# --- times from several columns ---------------------------------------------------------


def test_time_built_from_year_month_day_hour_minute_columns_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    # Vancouver 2020: YEAR, MONTH, DAY, HOUR, MINUTE; one month that does not exist
    parts = [(2020, 3, 8, 2, 30), (2020, 7, 1, 13, 5), (2020, 13, 1, 0, 0), (2020, 11, 1, 1, 15)]
    rows = [
        {"id": f"v{i}", "TYPE": "x", "X": lon, "Y": lat, "YEAR": y, "MONTH": m, "DAY": d}
        | {"HOUR": h, "MINUTE": mi}
        for i, (y, m, d, h, mi) in enumerate(parts)
    ]
    path = _csv(tmp_path, "vancouver.csv", rows)
    mapping = ["YEAR+MONTH+DAY+HOUR+MINUTE=reported_at", "X=lon", "Y=lat"]
    expected = {  # America/Vancouver: PDT (UTC-7) in July; 8 March 02:30 is in the gap
        "v1": _at(2020, 7, 1, 20, 5),
        "v3": _at(2020, 11, 1, 8, 15),  # the fall-back hour, earliest: still PDT
    }
    args = [a for m in mapping for a in ("--map", m)]
    args += ["--set", "category=facilities", "--tz", "America/Vancouver"]
    args += ["--ambiguous-time", "earliest", "--date-format", "%d/%m/%Y"]  # not for parts
    result = _import(cli, "incidents", path, *args, "--source-name", "vc")
    _imported(result)
    assert _times(engine, "vc") == expected
    assert "built from YEAR, MONTH, DAY, HOUR, MINUTE" in result.output
    response = _post(
        client,
        as_role(role_keys, "admin"),
        "incidents",
        path.name,
        path.read_bytes(),
        map=mapping,
        set="category=facilities",
        tz="America/Vancouver",
        ambiguous_time="earliest",
        source_name="vh",
    )
    assert response.status_code == 200, response.text
    assert _times(engine, "vh") == expected
    reasons = {r["row"]: r["reason"] for r in response.json()["rejects"]}
    assert reasons == {
        1: "does not exist in America/Vancouver: the clocks went forward",
        3: "unparseable timestamp",
    }
    assert (
        response.json()["assumptions"]["reported_at"] == "built from YEAR, MONTH, DAY, HOUR, MINUTE"
    )


def test_date_and_time_columns_are_joined_then_parsed_cli_and_http(
    tiny_env: tuple,
    tmp_path: Path,
) -> None:
    cli, client, engine, headers, lon, lat = tiny_env
    # Houston 2010: a date and an hour column; --date-format applies to "date hour".
    houston = _csv(
        tmp_path,
        "houston.csv",
        [
            {"id": "h1", "Date": "01/05/2010", "Hour": 13, "lon": lon, "lat": lat},
            {"id": "h2", "Date": "01/30/2010", "Hour": "", "lon": lon, "lat": lat},
        ],
    )
    common = ["--set", "category=facilities", "--tz", "America/Chicago"]
    args = ["--map", "Date+Hour=reported_at", "--date-format", "%m/%d/%Y %H", *common]
    result = _import(cli, "incidents", houston, *args, "--source-name", "hc")
    _imported(result)
    assert _times(engine, "hc") == {"h1": _at(2010, 1, 5, 19)}
    response = _post(
        client,
        headers,
        "incidents",
        houston.name,
        houston.read_bytes(),
        map="Date+Hour=reported_at",
        date_format="%m/%d/%Y %H",
        set="category=facilities",
        tz="America/Chicago",
        source_name="hh",
    )
    assert response.status_code == 200, response.text
    assert _times(engine, "hh") == {"h1": _at(2010, 1, 5, 19)}
    assert response.json()["rejects"][0]["row"] == 2
    # date + time, inferred without a format; the file's own reported_at is not used.
    both = _csv(
        tmp_path,
        "datetime.csv",
        [
            {"id": "d1", "date": "2020-07-01", "time": "08:15", "reported_at": "x"}
            | {"lon": lon, "lat": lat},
            # a date with a blank time is not that day's midnight: rejected, the column named
            {"id": "d2", "date": "2020-07-02", "time": "", "reported_at": "x"}
            | {"lon": lon, "lat": lat},
        ],
    )
    result = _import(
        cli, "incidents", both, "--map", "date+time=reported_at", *common, "--source-name", "dc"
    )
    assert result.exit_code == 3, result.output
    assert _times(engine, "dc") == {"d1": _at(2020, 7, 1, 13, 15)}
    response = _post(
        client,
        headers,
        "incidents",
        both.name,
        both.read_bytes(),
        map="date+time=reported_at",
        set="category=facilities",
        tz="America/Chicago",
        source_name="dh",
    )
    assert response.status_code == 200, response.text
    assert _times(engine, "dh") == {"d1": _at(2020, 7, 1, 13, 15)}
    (reject,) = response.json()["rejects"]
    assert reject["row"] == 2
    assert reject["reason"] == (
        "reported_at is incomplete: column 'time' is blank (--map date+time=reported_at)"
    )


def test_rental_units_registered_at_from_date_and_time_columns_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = _csv(
        tmp_path,
        "units.csv",
        [{"id": "u1", "reg_date": "2021/03/04", "reg_time": "10:00", "lon": lon, "lat": lat}],
    )
    args = ["--map", "reg_date+reg_time=registered_at", "--date-format", "%Y/%m/%d %H:%M"]
    result = _import(cli, "rental-units", path, *args, "--tz", "Asia/Shanghai")
    assert result.exit_code == 0, result.output
    response = _post(
        client,
        as_role(role_keys, "admin"),
        "rental-units",
        path.name,
        path.read_bytes(),
        map="reg_date+reg_time=registered_at",
        date_format="%Y/%m/%d %H:%M",
        tz="Asia/Shanghai",
        source_name="uh",
    )
    assert response.status_code == 200, response.text
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                text(
                    "SELECT external_ref, registered_at FROM rental_units "
                    "WHERE external_ref IN ('units:u1', 'uh:u1')"
                )
            ).all()
        )
    assert stored == {"units:u1": _at(2021, 3, 4, 2), "uh:u1": _at(2021, 3, 4, 2)}


def test_an_unknown_column_in_a_combination_is_named_cli_and_http(
    cli: CliRunner,
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    path = _csv(
        tmp_path,
        "nohour.csv",
        [{"id": "n1", "category": "facilities", "date": "2020-07-01", "lon": lon, "lat": lat}],
    )
    for mapping in ("date+hour=reported_at", "YEAR+MONTH+DAY=reported_at"):
        missing = "hour" if mapping.startswith("date") else "YEAR"
        result = _import(cli, "incidents", path, "--map", mapping)
        assert result.exit_code == 2, result.output
        assert f"no column {missing!r}" in result.output
        response = _post(
            client,
            as_role(role_keys, "admin"),
            "incidents",
            path.name,
            path.read_bytes(),
            map=mapping,
        )
        assert response.status_code in (400, 422), response.text
        assert f"no column {missing!r}" in problem(response)["detail"]
    # Parts without year, month and day cannot make a time.
    path = _csv(tmp_path, "parts.csv", [{"HOUR": 1, "MINUTE": 2, "lon": lon, "lat": lat}])
    result = _import(cli, "incidents", path, "--map", "HOUR+MINUTE=reported_at")
    assert result.exit_code == 2 and "needs year, month and day" in result.output
    assert _times(engine, "nohour") == {} and _times(engine, "parts") == {}
