"""Real data in: Chicago police districts and beats, the 2019 crimes sample, stations.

The police's own ``beat`` label on each crime is an answer key for our grid assignment.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from geo_service.db.engine import make_engine
from geo_service.services.boundaries.publish import publish_version
from geo_service.services.boundaries.validation import validate_version
from geo_service.services.ingest.imports import ImportOptions, import_file, read_mapping_csv
from tests.conftest import REPO, SHARED_DATA, make_database

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
            constants={"kind": "patrol"},
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
            constants={"kind": "fire", "skills": "fire,rescue"},
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
    far = rejects[rejects.source_lat.astype(float) < 40]  # the rows geocoded in the 36.6s
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
