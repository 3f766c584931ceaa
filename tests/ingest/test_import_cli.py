"""``geo-service import`` and ``geo-service boundaries`` from the command line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.db.engine import make_engine
from geo_service.demo.city import DemoCity, generate_city
from geo_service.demo.load import load_city
from tests.conftest import make_database

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_db(database_url: str) -> Iterator[tuple[str, DemoCity]]:
    url = make_database("geo_test_cli")
    engine = make_engine(url)
    city = generate_city(
        seed=17, grids=12, incidents=100, households_per_grid=3, end_date=date(2026, 6, 1)
    )
    load_city(engine, city)
    engine.dispose()
    yield url, city


@pytest.fixture
def env(cli_db, monkeypatch: pytest.MonkeyPatch) -> DemoCity:  # noqa: ANN001
    monkeypatch.setenv("GEO_DATABASE_URL", cli_db[0])
    return cli_db[1]


def test_import_households_prints_a_summary_and_writes_rejects(
    env: DemoCity, tmp_path: Path
) -> None:
    pt = env.areas[env.areas.level == "grid"].geometry.representative_point().iloc[0]
    path = tmp_path / "hh.csv"
    pd.DataFrame(
        [
            {"id": 1, "household_size": 2, "lon": pt.x, "lat": pt.y},
            {"id": 2, "household_size": 99, "lon": pt.x, "lat": pt.y},
        ]
    ).to_csv(path, index=False)
    result = runner.invoke(app, ["import", "households", str(path)])
    assert result.exit_code == 3, result.output  # some rows rejected, the rest imported
    assert "inserted" in result.output and "household_size above 50" in result.output
    rejects = pd.read_csv(tmp_path / "hh.csv.rejects.csv")
    assert rejects.row.tolist() == [2]


def test_import_households_again_with_addresses_says_how_many_it_updated(
    env: DemoCity, tmp_path: Path
) -> None:
    pt = env.areas[env.areas.level == "grid"].geometry.representative_point().iloc[1]
    path = tmp_path / "doors.csv"
    rows = [{"id": f"door-{n}", "household_size": 2, "lon": pt.x, "lat": pt.y} for n in (1, 2)]
    pd.DataFrame(rows).to_csv(path, index=False)
    first = runner.invoke(app, ["import", "households", str(path)])
    assert first.exit_code == 0, first.output
    assert "updated (address)" not in first.output
    rows[0]["address"] = "3栋1单元101"
    pd.DataFrame(rows).to_csv(path, index=False)
    again = runner.invoke(app, ["import", "households", str(path)])
    assert again.exit_code == 0, again.output
    line = next(x for x in again.output.splitlines() if "updated (address)" in x)
    assert re.search(r"updated \(address\)\D+1\D*$", line), line


def test_import_bad_invocations_exit_non_zero_with_a_message(env: DemoCity, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["import", "households", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_map = runner.invoke(
        app, ["import", "households", str(tmp_path / "x.csv"), "--map", "no-equals"]
    )
    assert bad_map.exit_code == 2 and "SRC=FIELD" in bad_map.output
    kind = runner.invoke(app, ["import", "people", str(tmp_path / "x.csv")])
    assert kind.exit_code == 2 and "kind must be" in kind.output
    cat_map = runner.invoke(
        app,
        [
            "import",
            "incidents",
            str(tmp_path / "x.csv"),
            "--category-map",
            str(tmp_path / "nomap.csv"),
        ],
    )
    assert cat_map.exit_code == 2 and "does not exist" in cat_map.output


def test_boundaries_commands_round_trip(env: DemoCity, tmp_path: Path) -> None:
    versions = runner.invoke(app, ["boundaries", "versions"])
    assert versions.exit_code == 0 and "published" in versions.output
    valid = runner.invoke(app, ["boundaries", "validate", "1"])
    assert valid.exit_code == 0, valid.output
    assert json.loads(valid.output)["valid"] is True
    grids = env.areas[env.areas.level == "grid"]
    copy = grids.iloc[[0]].assign(code="COPY")  # the same polygon twice: an overlap
    path = tmp_path / "g.geojson"
    pd.concat([grids, copy])[["code", "name", "geometry"]].to_file(path, driver="GeoJSON")
    imported = runner.invoke(app, ["import", "boundaries", str(path), "--level", "grid"])
    assert imported.exit_code == 0, imported.output
    draft = max(v["id"] for v in _versions())
    invalid = runner.invoke(app, ["boundaries", "validate", str(draft)])
    assert invalid.exit_code == 1
    assert json.loads(invalid.output)["summary"]["sibling_overlaps"] == 1
    diff = runner.invoke(app, ["boundaries", "diff", "1", str(draft)])
    assert diff.exit_code == 0 and json.loads(diff.output)["unchanged"] == len(grids)
    bad_date = runner.invoke(
        app, ["boundaries", "publish", str(draft), "--effective-from", "next week"]
    )
    assert bad_date.exit_code == 2 and "is not a date or time" in bad_date.output
    published = runner.invoke(app, ["boundaries", "publish", "1", "--effective-from", "2026-01-01"])
    assert published.exit_code == 1 and "not a draft" in published.output
    unknown = runner.invoke(app, ["boundaries", "validate", "424242"])
    assert unknown.exit_code == 1 and "does not exist" in unknown.output


def _versions() -> list[dict]:
    from geo_service.services.boundaries.catalogue import list_versions
    from geo_service.settings import DatabaseSettings

    engine = make_engine(DatabaseSettings().database_url or "")
    try:
        return list_versions(engine)
    finally:
        engine.dispose()


def test_users_and_keys_commands(env: DemoCity) -> None:
    from sqlalchemy.orm import Session

    from geo_service.services.access.auth import authenticate_key
    from geo_service.settings import DatabaseSettings

    grid = env.areas[env.areas.level == "grid"].code.iloc[0]
    made = runner.invoke(
        app, ["users", "create", "wang.li", "--role", "grid_worker", "--area", grid]
    )
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("gs_")
    engine = make_engine(DatabaseSettings().database_url or "")
    with Session(engine) as session:
        assert authenticate_key(session, key).role == "grid_worker"
    listed = runner.invoke(app, ["users", "list"])
    assert listed.exit_code == 0 and "wang.li" in listed.output and grid in listed.output
    second = runner.invoke(app, ["keys", "create", "wang.li", "--label", "tablet"])
    assert second.exit_code == 0 and second.output.strip().startswith("gs_")
    revoked = runner.invoke(app, ["keys", "revoke", key])
    assert revoked.exit_code == 0
    with Session(engine) as session, pytest.raises(Exception, match="revoked"):
        authenticate_key(session, key)
    engine.dispose()
    for args, message in (
        (["users", "create", "wang.li", "--role", "analyst"], "already exists"),
        (["users", "create", "x", "--role", "mayor"], "role must be"),
        (["users", "create", "y", "--role", "grid_worker"], "must be bound to a grid"),
        (["users", "create", "z", "--role", "analyst", "--area", "NOPE"], "no area"),
        (["keys", "create", "nobody"], "no user"),
        (["keys", "revoke", "ffffffffffff"], "no API key"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_a_hotline_account_from_the_command_line(env: DemoCity) -> None:
    from sqlalchemy import text

    from geo_service.settings import DatabaseSettings

    made = runner.invoke(
        app, ["users", "create", "hotline-12345", "--role", "dispatcher", "--channel", "hotline"]
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["users", "list"])
    row = next(line for line in listed.output.splitlines() if "hotline-12345" in line)
    assert "hotline" in row.replace("hotline-12345", "")
    engine = make_engine(DatabaseSettings().database_url or "")

    def channel() -> str | None:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT channel FROM users WHERE name = 'hotline-12345'")
            ).scalar_one()

    assert channel() == "hotline"
    back = runner.invoke(app, ["users", "channel", "hotline-12345", "citizen"])
    assert back.exit_code == 0, back.output
    assert channel() is None
    with engine.connect() as conn:  # audited, before and after
        diff = conn.execute(
            text("SELECT diff FROM audit_log WHERE action = 'set_channel' ORDER BY id DESC")
        ).first()
    assert diff is not None and diff[0] == {"before": "hotline", "after": None}
    engine.dispose()
    for args, message in (
        (["users", "create", "q", "--role", "dispatcher", "--channel", "radio"], "channel must be"),
        (["users", "channel", "hotline-12345", "radio"], "channel must be"),
        (["users", "channel", "nobody", "hotline"], "no user"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
