from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.db.cluster import EmbeddedCluster

runner = CliRunner()


def test_db_status_and_url_of_the_running_test_cluster(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.environ.get("GEO_DATABASE_URL"):
        pytest.skip("external database: no embedded cluster to report on")
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 0, result.output
    assert "running" in result.output
    url = runner.invoke(app, ["db", "url"])
    # the application role by default; migrations' owner on request
    assert url.exit_code == 0 and url.output.startswith("postgresql+psycopg://geo_app:")
    owner = runner.invoke(app, ["db", "url", "--role", "owner"])
    assert owner.exit_code == 0 and owner.output.startswith("postgresql+psycopg://geo_owner:")


def test_migrate_against_an_explicit_url_is_idempotent(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", database_url)
    for _ in range(2):
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output


def test_cluster_commands_refuse_to_manage_an_external_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", "postgresql://x@example.invalid/db")
    result = runner.invoke(app, ["db", "start"])
    assert result.exit_code == 1 and "GEO_DATABASE_URL is set" in result.output
    url = runner.invoke(app, ["db", "url"])
    assert url.output.strip() == "postgresql://x@example.invalid/db"


def test_missing_postgres_binaries_exit_2_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEO_DATABASE_URL", raising=False)
    monkeypatch.setenv("GEO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GEO_PG_BINDIR", str(tmp_path / "no-postgres-here"))
    result = runner.invoke(app, ["db", "start"])
    assert result.exit_code == 2
    assert "postgresql-15-postgis-3" in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_demo_generate_writes_boundary_files(tmp_path: Path) -> None:
    out = tmp_path / "city"
    result = runner.invoke(
        app,
        [
            "demo",
            "generate",
            "--seed",
            "3",
            "--grids",
            "24",
            "--incidents",
            "200",
            "--no-load",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    import geopandas as gpd

    grids = gpd.read_file(out / "grids.geojson")
    assert len(grids) == 24 and grids.crs.to_epsg() == 4326
    assert set(grids.columns) >= {"code", "name", "level", "parent_code", "area_m2"}
    planted = json.loads((out / "planted_hotspots.json").read_text())
    assert planted["seed"] == 3 and planted["hotspots"]


def test_demo_generate_rejects_bad_options(tmp_path: Path) -> None:
    bad_date = runner.invoke(
        app, ["demo", "generate", "--no-load", "--end-date", "31/12/2026", "--out", str(tmp_path)]
    )
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    too_small = runner.invoke(
        app, ["demo", "generate", "--no-load", "--grids", "2", "--out", str(tmp_path)]
    )
    assert too_small.exit_code == 2
    assert not (tmp_path / "grids.geojson").exists()


def test_demo_generate_refuses_to_load_into_a_non_empty_database(
    database_url: str,
    loaded_city,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", database_url)
    result = runner.invoke(
        app, ["demo", "generate", "--grids", "8", "--incidents", "10", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1 and "already holds" in result.output


@pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop only happens as root")
def test_cluster_under_a_closed_directory_relocates_and_survives_a_stale_pid(
    tmp_path: Path,
) -> None:
    closed = tmp_path / "home"
    closed.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o755)
    cluster = EmbeddedCluster(closed / "checkout" / ".geo-service", log=lambda m: None)
    try:
        url = cluster.start("geo")
        assert cluster.running() and url.endswith("/geo")
        assert not str(cluster.cluster_dir).startswith(str(closed))  # relocated
        assert cluster.start("geo") == url  # idempotent
        cluster.stop()
        assert not cluster.running()
        # A crash leaves postmaster.pid behind with a dead pid: start must still work.
        (cluster.pgdata / "postmaster.pid").write_text("999999\n" + str(cluster.pgdata) + "\n")
        subprocess.run(
            ["chown", "postgres:postgres", str(cluster.pgdata / "postmaster.pid")], check=True
        )
        cluster.start("geo")
        assert cluster.running()
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(cluster.cluster_dir.parent, ignore_errors=True)


def test_serve_command_serves_the_api_over_http(database_url: str, loaded_city) -> None:  # noqa: ANN001
    import socket
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "GEO_DATABASE_URL": database_url}
    exe = Path(sys.executable).parent / "geo-service"
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 30
        body = None
        while time.time() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert body is not None, proc.stderr.read(2000) if proc.poll() is not None else "timeout"
        assert body["status"] == "ok" and body["database"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_backup_and_restore_round_trip(
    database_url: str,
    loaded_city,
    tmp_path: Path,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import text

    from geo_service.db.engine import make_engine
    from tests.conftest import make_database

    tables = (
        "areas",
        "incidents",
        "households",
        "rental_units",
        "responders",
        "users",
        "audit_log",
        "categories",
    )

    def snapshot(url: str) -> dict:
        engine = make_engine(url)
        with engine.connect() as conn:
            out = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
            out["geometry"] = conn.execute(
                text("SELECT md5(string_agg(ST_AsText(geom), ',' ORDER BY id)) FROM areas")
            ).scalar_one()
        engine.dispose()
        return out

    dump = tmp_path / "geo.dump"
    monkeypatch.setenv("GEO_DATABASE_URL", database_url)
    made = runner.invoke(app, ["db", "backup", str(dump)])
    assert made.exit_code == 0, made.output
    target = make_database("geo_test_restore")
    monkeypatch.setenv("GEO_DATABASE_URL", target)
    restored = runner.invoke(app, ["db", "restore", str(dump), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert snapshot(target) == snapshot(database_url)
    missing = runner.invoke(app, ["db", "restore", str(tmp_path / "none.dump"), "--yes"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    refused = runner.invoke(app, ["db", "restore", str(dump)], input="n\n")
    assert refused.exit_code == 1


def test_demo_prints_whole_working_keys_for_every_role(
    engine, loaded_city, capsys, tmp_path
) -> None:  # noqa: ANN001, E501
    import re

    from sqlalchemy.orm import Session

    from geo_service.cli.demo import KEYS_FILE, _print_demo_keys
    from geo_service.services.access.auth import authenticate_key

    _print_demo_keys(engine, "http://127.0.0.1:8123", tmp_path)
    out = capsys.readouterr().out
    assert '"http://127.0.0.1:8123/areas/lookup?' in out  # the address actually served
    keys = re.findall(r"(\w+)\s+demo-\S+\s+.+?\s(gs_[0-9a-f]{12}_\S+)$", out, re.M)
    assert [role for role, _ in keys] == [
        "admin",
        "dispatcher",
        "planner",
        "analyst",
        "grid_worker",
        "dispatcher",  # demo-simulator: the living city's own account
    ]
    # the same keys in the file, whose path is printed: off the screen, not lost
    saved = (tmp_path / KEYS_FILE).read_text()
    assert str(tmp_path / KEYS_FILE) in out.replace("\n", "")
    assert all(key in saved for _, key in keys) and "demo-simulator" in saved
    with Session(engine) as session:
        for role, key in keys:
            assert authenticate_key(session, key).role == role
