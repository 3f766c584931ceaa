"""Real data in: Chicago police districts and beats, the 2019 crimes sample, stations.

The police's own ``beat`` label on each crime is an answer key for our grid assignment.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from geo_service.api.app import create_app
from geo_service.cli.main import app
from geo_service.db.engine import make_engine
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.boundaries.publish import publish_version
from geo_service.services.boundaries.validation import validate_version
from geo_service.services.ingest.imports import ImportOptions, import_file, read_mapping_csv
from geo_service.settings import DatabaseSettings, LimitSettings, Settings
from tests.conftest import REPO, SHARED_DATA, make_database, role_url

CHICAGO = SHARED_DATA / "chicago"
CATEGORY_MAP = REPO / "data" / "category_maps" / "chicago_crimes.csv"


@pytest.fixture(scope="module")
def chicago(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, dict, Path]]:
    engine = make_engine(make_database("geo_test_chicago"))
    tmp = tmp_path_factory.mktemp("chicago")
    reports = {}
    reports["districts"] = import_file(
        engine,
        "boundaries",
        CHICAGO / "chicago_district_bounds.geojson",
        ImportOptions(
            level="district",
            field_map={"dist_num": "code", "dist_label": "name"},
            version_name="Chicago police 2019",
            dissolve=True,
            rejects_path=tmp / "d.csv",
        ),
        actor="test",
    )
    version = reports["districts"].version_id
    reports["beats"] = import_file(
        engine,
        "boundaries",
        CHICAGO / "chicago_beat_bounds.geojson",
        ImportOptions(
            level="grid",
            parent_level="district",
            version_id=version,
            field_map={"beat_num": "code"},
            dissolve=True,
            rejects_path=tmp / "b.csv",
        ),
        actor="test",
    )
    reports["validation"] = validate_version(engine, version)
    publish_version(engine, version, datetime(2019, 1, 1, tzinfo=UTC), actor="test", force=True)
    crimes = ImportOptions(
        field_map={"primary_type": "category", "date": "reported_at"},
        category_map=read_mapping_csv(CATEGORY_MAP),
        tz="America/Chicago",
        status="closed",
        rejects_path=tmp / "crimes.rejects.csv",
    )
    reports["crimes"] = import_file(
        engine, "incidents", CHICAGO / "chicago_crimes_2019_sample50k.csv.gz", crimes, actor="test"
    )
    reports["crimes_again"] = import_file(
        engine, "incidents", CHICAGO / "chicago_crimes_2019_sample50k.csv.gz", crimes, actor="test"
    )
    reports["police"] = import_file(
        engine,
        "responders",
        CHICAGO / "chicago_police_stations.csv",
        ImportOptions(
            field_map={"DISTRICT NAME": "callsign"},
            constants={"kind": "patrol", "fixed": "true"},  # stations: never stale
            rejects_path=tmp / "p.csv",
        ),
        actor="test",
    )
    reports["fire"] = import_file(
        engine,
        "responders",
        CHICAGO / "chicago_fire_stations.csv",
        ImportOptions(
            field_map={"NAME": "callsign"},
            constants={"kind": "fire", "skills": "fire,rescue", "fixed": "yes"},
            rejects_path=tmp / "f.csv",
        ),
        actor="test",
    )
    yield engine, reports, tmp
    engine.dispose()


def test_districts_and_beats_nest_by_beat_number(chicago) -> None:  # noqa: ANN001
    engine, reports, _ = chicago
    assert reports["districts"].inserted == 23 and reports["districts"].merged_parts == 2
    assert reports["beats"].inserted == 275 and reports["beats"].rejected == 0
    with engine.connect() as conn:
        pairs = conn.execute(
            text(
                "SELECT g.code, d.code FROM areas g JOIN areas d ON d.id = g.parent_id "
                "WHERE g.level = 'grid'"
            )
        ).all()
    assert len(pairs) == 275
    # beat_num is district (2 digits) + sector + beat: the spatial parent must agree.
    assert all(int(beat[:2]) == int(district) for beat, district in pairs)


def test_validation_reports_the_small_real_gaps_between_layers(chicago) -> None:  # noqa: ANN001
    report = chicago[1]["validation"]
    assert report["summary"]["sibling_overlaps"] == 0
    assert report["summary"]["invalid_geometries"] == 0
    gaps = report["findings"]["gaps_in_parent"]
    assert gaps and all(0 < g["area_m2"] < 1000 for g in gaps)


def test_crimes_without_coordinates_or_outside_the_city_are_rejected(chicago) -> None:  # noqa: ANN001
    _, reports, tmp = chicago
    crimes = reports["crimes"]
    source = pd.read_csv(CHICAGO / "chicago_crimes_2019_sample50k.csv.gz", dtype=str)
    no_coords = int(source.latitude.isna().sum())
    assert crimes.rejected_by_reason["missing coordinates"] == no_coords == 266
    assert crimes.rejected_by_reason["outside the city (in no grid)"] > 0
    assert crimes.accepted + crimes.rejected == crimes.read == 50_000
    assert crimes.accepted > 49_000
    rejects = pd.read_csv(tmp / "crimes.rejects.csv", dtype=str)
    assert len(rejects) == crimes.rejected
    # the file's own column names (latitude), not ours (lat)
    far = rejects[rejects.source_latitude.astype(float) < 40]  # the rows geocoded in the 36.6s
    assert len(far) and set(far.reason) == {"outside the city (in no grid)"}


def test_assigned_beat_matches_the_police_label_for_90_percent(chicago) -> None:  # noqa: ANN001
    engine = chicago[0]
    with engine.connect() as conn:
        ours = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT split_part(i.idempotency_key, ':', 2) AS id, a.code FROM incidents i "
                    "JOIN areas a ON a.id = i.grid_id"
                )
            ).all(),
            columns=["id", "code"],
        )
    source = pd.read_csv(CHICAGO / "chicago_crimes_2019_sample50k.csv.gz", dtype=str)
    joined = ours.merge(source[["id", "beat"]], on="id")
    assert len(joined) == len(ours)
    agreement = (joined.code == joined.beat.str.zfill(4)).mean()
    assert agreement >= 0.90


def test_reimporting_the_same_file_adds_nothing(chicago) -> None:  # noqa: ANN001
    engine, reports, _ = chicago
    again = reports["crimes_again"]
    assert again.inserted == 0 and again.already_present == reports["crimes"].accepted
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
            == reports["crimes"].inserted
        )


def test_categories_come_from_the_map_and_times_from_chicago_local_time(chicago) -> None:  # noqa: ANN001
    engine = chicago[0]
    with engine.connect() as conn:
        cats = dict(conn.execute(text("SELECT category, count(*) FROM incidents GROUP BY 1")).all())
        first = conn.execute(
            text(
                "SELECT reported_at FROM incidents WHERE idempotency_key = "
                "'chicago_crimes_2019_sample50k:11879189'"
            )
        ).scalar_one()
    assert cats["public_order"] > cats["facilities"] > 0
    assert set(cats) <= {
        "public_order",
        "facilities",
        "safety_hazard",
        "traffic",
        "social_assistance",
        "disputes",
    }
    # "2019-11-01" in America/Chicago (CDT, UTC-5) is 05:00 UTC.
    assert first == datetime(2019, 11, 1, 5, 0, tzinfo=UTC)


def test_stations_become_responders_in_their_grids(chicago) -> None:  # noqa: ANN001
    engine, reports, _ = chicago
    assert reports["police"].inserted == 23 and reports["fire"].inserted == 92
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, count(*), count(home_grid_id) FROM responders GROUP BY kind")
        ).all()
    counts = {kind: (n, homed) for kind, n, homed in rows}
    assert counts == {"patrol": (23, 23), "fire": (92, 92)}
    with engine.connect() as conn:  # stations stand where they are: never stale
        assert conn.execute(text("SELECT bool_and(fixed) FROM responders")).scalar_one()


def _chicago_2010s_file(path: Path, dst_rows: int = 43) -> pd.DataFrame:
    """The 2019 sample as the 2010–2019 extracts come: no id column, ``date`` as
    "MM/DD/YYYY hh:mm:ss AM" with a time of day (derived from the case number, so the file is
    the same on every run), and ``dst_rows`` rows in the fall-back hour, 2019-11-03 01:xx."""
    source = pd.read_csv(CHICAGO / "chicago_crimes_2019_sample50k.csv.gz", dtype=str)
    number = source.case_number.str[2:].astype(int)
    seconds = (number * 7919) % 86_400  # a deterministic spread over the day
    when = pd.to_datetime(source.date) + pd.to_timedelta(seconds, unit="s")
    in_city = source.index[source.latitude.notna()]
    fall_back = in_city[:: len(in_city) // dst_rows][:dst_rows]
    when[fall_back] = pd.Timestamp("2019-11-03 01:00") + pd.to_timedelta(
        seconds[fall_back] % 3600, unit="s"
    )
    source["date"] = when.dt.strftime("%m/%d/%Y %I:%M:%S %p")
    source.drop(columns=["id"]).to_csv(path, index=False, compression="gzip")
    source["fall_back"] = source.index.isin(fall_back)
    return source


def test_the_2010s_kind_of_file_imports_without_preprocessing_cli_and_http(  # noqa: ANN001
    chicago, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No id column, 12-hour times, DST rows: in with --ambiguous-time earliest, beats agree,
    and a second run (over HTTP) adds nothing."""
    engine = chicago[0]
    path = tmp_path / "chicago_2010s.csv.gz"
    source = _chicago_2010s_file(path)
    cases = source.case_number.tolist()
    monkeypatch.setenv("GEO_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("COLUMNS", "250")
    options = ["--map", "primary_type=category", "--map", "date=reported_at"]
    # The case number, kept as the description, is how this test finds each row again.
    options += ["--map", "case_number=description", "--category-map", str(CATEGORY_MAP)]
    options += ["--tz", "America/Chicago", "--ambiguous-time", "earliest", "--status", "closed"]
    try:
        result = CliRunner().invoke(
            app,
            ["import", "incidents", str(path), *options, "--rejects", str(tmp_path / "r.csv")],
        )
        assert "Traceback" not in result.output and result.exit_code in (0, 3), result.output
        rejects = pd.read_csv(tmp_path / "r.csv", dtype=str)
        assert not rejects.reason.str.contains("occurs twice|timestamp").any()
        with engine.connect() as conn:
            ours = pd.DataFrame(
                conn.execute(
                    text(
                        "SELECT i.description AS case_number, a.code, i.reported_at "
                        "FROM incidents i JOIN areas a ON a.id = i.grid_id "
                        "WHERE i.description = ANY(:cases)"
                    ),
                    {"cases": cases},
                ).all(),
                columns=["case_number", "code", "reported_at"],
            )
        assert len(ours) + len(rejects) == 50_000 and len(ours) > 49_000
        joined = ours.merge(source, on="case_number")
        assert (joined.code == joined.beat.str.zfill(4)).mean() >= 0.90
        # The fall-back hour is in, read as CDT (UTC-5), the earlier of the two 01:xx.
        dst = joined[joined.fall_back]
        assert len(dst) >= 40
        assert dst.reported_at.dt.strftime("%Y-%m-%d %H").eq("2019-11-03 06").all()
        # Twelve-hour local times: 11/01/2019 hh:mm:ss PM is CDT, 12/10/2019 is CST.
        for _, row in joined[~joined.fall_back].head(200).iterrows():
            local = pd.Timestamp(datetime.strptime(row.date, "%m/%d/%Y %I:%M:%S %p"))
            assert row.reported_at == local.tz_localize("America/Chicago").tz_convert("UTC")
        # A second run, over HTTP, finds every row already present.
        name = make_url(engine.url).database
        assert name is not None
        with Session(engine) as session:
            user = create_user(
                session, name="chicago-admin", role="admin", area_code=None, actor="t"
            )
            key = create_key(session, user, actor="t")[1]
            session.commit()
        settings = Settings(
            database=DatabaseSettings(
                database_url=role_url(name, "app"),
                database_owner_url=engine.url.render_as_string(hide_password=False),
            ),
            limits=LimitSettings(requests_per_minute=100_000, burst=10_000),
        )
        with TestClient(create_app(settings), headers={"X-API-Key": key}) as client:
            response = client.post(
                "/imports/incidents",
                files={"file": (path.name, path.read_bytes(), "application/gzip")},
                data={
                    "map": ["primary_type=category", "date=reported_at", "case_number=description"],
                    "category_map": [f"{k}={v}" for k, v in read_mapping_csv(CATEGORY_MAP).items()],
                    "tz": "America/Chicago",
                    "ambiguous_time": "earliest",
                    "status": "closed",
                },
            )
        assert response.status_code == 200, response.text
        again = response.json()
        assert again["inserted"] == 0 and again["already_present"] == len(ours)
        assert again["assumptions"]["ambiguous_time"] == "earliest"
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incidents WHERE description = ANY(:c)"), {"c": cases})


def test_a_district_of_beats_is_redrawn_on_last_years_crimes(chicago) -> None:  # noqa: ANN001
    """Issue 18: a hierarchy of districts and grids (no communities) can be proposed on, over
    a past window (``until``), and every figure is a finite number."""
    import math

    from geo_service.services.planning.proposals import ProposalRequest, propose

    engine, _, _ = chicago
    with engine.connect() as conn:
        district, beats = conn.execute(
            text(
                "SELECT d.code, count(g.id) FROM areas d JOIN areas g ON g.parent_id = d.id "
                "WHERE d.level = 'district' GROUP BY d.code ORDER BY count(g.id) DESC, d.code "
                "LIMIT 1"
            )
        ).one()
    request = ProposalRequest(
        parent_codes=[district],
        window_days=365,
        until=datetime(2020, 1, 1, 6, tzinfo=UTC),  # midnight in Chicago: the whole of 2019
        h3_res=10,
    )
    result = propose(engine, request, actor="test")
    metrics = result["metrics"]
    (parent,) = metrics["parents"]
    assert len(parent["workload_by_grid"]) == beats

    def finite(value: object) -> bool:
        if isinstance(value, dict):
            return all(finite(v) for v in value.values())
        if isinstance(value, list):
            return all(finite(v) for v in value)
        return not isinstance(value, float) or math.isfinite(value)

    assert finite(metrics), metrics
    # the window held the year's crimes: the plan balanced a real workload
    assert metrics["workload_before"]["max_over_mean"] > 1.0
    assert sum(parent["workload_by_grid"].values()) > 0
