"""The weekly report: last local week (Monday to Monday, Asia/Shanghai) as PDF, XLSX, CSV and
JSON, into a folder or POSTed to a URL, by hand (``geo-service reports weekly``) or by the
server once a week (an audit row per week keeps it to once). The clock is given or held."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi import FastAPI, UploadFile
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from geo_service import runtime
from geo_service.api.app import create_app, weekly_report_once
from geo_service.cli.main import app as cli
from geo_service.demo.city import DemoCity
from geo_service.errors import InvalidInputError
from geo_service.services.reports.weekly import deliver, deliver_weekly_if_due, weekly_report
from geo_service.settings import ReportSettings, Settings
from tests.conftest import serving

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def monday_after_data(engine: Engine, loaded_city: DemoCity) -> datetime:
    """A Monday 09:00 local in the week after the demo's newest incident: the week before it
    holds the demo's last days."""
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(reported_at) FROM incidents")).scalar_one()
    day = newest.astimezone(ZONE).date()
    monday = day + timedelta(days=7 - day.weekday())
    return datetime.combine(monday, time(9), tzinfo=ZONE)


def _weekly_audits(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT entity_id FROM audit_log WHERE action = 'weekly_report' ORDER BY id")
            ).scalars()
        )


def test_the_server_delivers_last_week_once(
    engine: Engine, monday_after_data: datetime, tmp_path: Path
) -> None:
    now = monday_after_data
    week = (now - timedelta(days=7)).date().isoformat()
    with Session(engine) as session:
        assert (
            deliver_weekly_if_due(
                session, now=now, tz="Asia/Shanghai", level="community", out_dir=str(tmp_path),
                post_url=None,
            )
            == week
        )  # fmt: skip
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"weekly_{week}.{s}" for s in ("csv", "json", "pdf", "xlsx")]
    report = json.loads((tmp_path / f"weekly_{week}.json").read_text())
    assert report["since"] == f"{week}T00:00:00+08:00"
    assert report["until"] == f"{now.date().isoformat()}T00:00:00+08:00"
    assert report["level"] == "community" and report["total"]["received"] > 0
    assert (tmp_path / f"weekly_{week}.pdf").read_bytes().startswith(b"%PDF")
    # every instant in local time with its offset: as_of is the week's end (before now)
    assert report["as_of"] == report["until"]
    table = pd.read_csv(tmp_path / f"weekly_{week}.csv", encoding="utf-8-sig")
    assert set(table.as_of) == {report["until"]} and set(table.since) == {report["since"]}
    pdf = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / f"weekly_{week}.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    last = (now - timedelta(days=1)).date().isoformat()
    assert f"{week} – {last} (Asia/Shanghai)" in pdf
    assert f"as of {now.date().isoformat()} 00:00 +08:00" in pdf
    # an hour later, or from another process: already delivered
    with Session(engine) as session:
        assert (
            deliver_weekly_if_due(
                session, now=now + timedelta(hours=1), tz="Asia/Shanghai", level="community",
                out_dir=str(tmp_path), post_url=None,
            )
            is None
        )  # fmt: skip
    assert _weekly_audits(engine) == [week]


def test_the_scheduled_task_follows_the_held_clock(
    engine: Engine, settings: Settings, monday_after_data: datetime, tmp_path: Path
) -> None:
    mine = settings.model_copy(
        update={"reports": ReportSettings(weekly_dir=str(tmp_path), weekly_level="district")}
    )
    clock = runtime.current().clock
    clock.set(monday_after_data - timedelta(days=7) + timedelta(hours=1))  # the week before
    try:
        first = weekly_report_once(sessionmaker(engine), mine)
        assert first == (monday_after_data - timedelta(days=14)).date().isoformat()
        assert weekly_report_once(sessionmaker(engine), mine) is None  # same week: done
        clock.advance(7 * 86400)  # a week later the next one is due
        second = weekly_report_once(sessionmaker(engine), mine)
        assert second == (monday_after_data - timedelta(days=7)).date().isoformat()
    finally:
        clock.release()
    assert len(list(tmp_path.glob("*.pdf"))) == 2
    # the server runs the task only when a folder or URL is set
    with TestClient(create_app(mine)) as c:
        assert "weekly-report" in c.app.state.runtime.periodic  # type: ignore[attr-defined]
    with TestClient(create_app(settings)) as c:
        assert "weekly-report" not in c.app.state.runtime.periodic  # type: ignore[attr-defined]


def test_the_report_is_posted_to_a_url(engine: Engine, monday_after_data: datetime) -> None:
    received: dict[str, Any] = {}
    receiver = FastAPI()

    @receiver.post("/inbox")
    async def inbox(files: list[UploadFile]) -> dict:
        for f in files:
            received[f.filename] = await f.read()
        return {"ok": True}

    with Session(engine) as session:
        _, files = weekly_report(session, now=monday_after_data, tz="Asia/Shanghai")
    with serving(receiver) as base:
        assert deliver(files, out_dir=None, post_url=f"{base}/inbox") == f"{base}/inbox"
        with pytest.raises(InvalidInputError, match="answered 404"):
            deliver(files, out_dir=None, post_url=f"{base}/nowhere")
    assert received == files


@pytest.mark.parametrize(
    ("out", "url", "why"),
    [(None, None, "either"), ("/tmp/x", "http://y", "either"), (None, "ftp://x/y", "http")],
)
def test_deliver_needs_one_folder_or_http_url(out: Any, url: Any, why: str) -> None:
    with pytest.raises(InvalidInputError, match=why):
        deliver({"a.csv": b""}, out_dir=out, post_url=url)


def test_the_command_writes_the_files(
    engine: Engine,
    database_url: str,
    monday_after_data: datetime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", database_url)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["reports", "weekly", "--out", str(tmp_path), "--now", monday_after_data.isoformat()],
    )
    assert result.exit_code == 0, result.output
    week = (monday_after_data - timedelta(days=7)).date().isoformat()
    assert (tmp_path / f"weekly_{week}.xlsx").stat().st_size > 0
    both = runner.invoke(cli, ["reports", "weekly", "--out", "a", "--post", "http://b"])
    assert both.exit_code == 2
    naive = runner.invoke(cli, ["reports", "weekly", "--out", "a", "--now", "2026-01-01T00:00"])
    assert naive.exit_code == 2 and "offset" in naive.output
