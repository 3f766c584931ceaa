"""The weekly report: last week's performance (Monday 00:00 to Monday 00:00 local time) as
PDF, XLSX, CSV and JSON, written to a folder or POSTed to a URL.

``geo-service reports weekly --out DIR | --post URL`` makes one by hand; with
``GEO_REPORTS_WEEKLY_DIR`` or ``GEO_REPORTS_WEEKLY_URL`` set the server makes each one once,
after the week is over (``weekly_due``): every delivery writes an audit row naming its week,
and a transaction-level advisory lock lets one process deliver at a time, so several workers
and restarts deliver each week once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service import runtime
from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message, gettext
from geo_service.services.access.audit import record_audit
from geo_service.services.access.auth import Principal
from geo_service.services.access.scope import Scope
from geo_service.services.reports import exports
from geo_service.services.reports.performance import ReportRequest, performance, report_title
from geo_service.services.reports.periods import start_of_local_week
from geo_service.vocabulary import AREA_LEVELS

AUDIT_ACTION = "weekly_report"
AUDIT_ENTITY = "report"
# The scheduled report is the city's: made with a scope bound to no area.
SYSTEM = Principal(user_id=0, name="weekly report", role="admin")


def last_week(now: datetime, tz: str) -> tuple[datetime, datetime]:
    """The last whole local ISO week before ``now``: its Monday 00:00 and the next Monday's.

    >>> from datetime import timezone
    >>> s, u = last_week(datetime(2026, 11, 30, 1, tzinfo=timezone.utc), "Asia/Shanghai")
    >>> s.isoformat(), u.isoformat()
    ('2026-11-23T00:00:00+08:00', '2026-11-30T00:00:00+08:00')
    """
    until = start_of_local_week(now, tz)
    since = start_of_local_week(until - timedelta(days=1), tz)
    return since, until


def weekly_report(
    session: Session,
    *,
    now: datetime,
    tz: str,
    level: str = "district",
    week_of: datetime | None = None,
    font: str | None = None,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The report of the week before ``now`` (or of the week holding ``week_of``) for the
    whole city at ``level``, and its files by name (``weekly_<Monday>.pdf|xlsx|csv|json``)."""
    if level not in AREA_LEVELS:
        raise InvalidInputError(
            format_message("level must be one of {values}", values=", ".join(AREA_LEVELS))
        )
    if week_of is not None:
        since = start_of_local_week(week_of, tz)
        until = start_of_local_week(since + timedelta(days=8), tz)
    else:
        since, until = last_week(now, tz)
    report = performance(
        session,
        # files leave the service for any manager: household counts are published, never
        # exact, whatever the (system) caller could see
        ReportRequest(
            level=level,
            since=since,
            until=until,
            visit_period_days=runtime.current().settings.visits.period_days,
            min_count=runtime.current().settings.auth.min_cell_count,
            round_visits=True,
        ),
        scope=Scope(SYSTEM),
        tz=tz,
        now=now,
    )
    stem = f"weekly_{since.date().isoformat()}"
    title = f"{report_title(report)}, {since.date().isoformat()}"
    files = {
        f"{stem}.pdf": exports.to_pdf(report, title=title, font=font),
        f"{stem}.xlsx": exports.to_xlsx(report),
        f"{stem}.csv": exports.to_csv(report),
        f"{stem}.json": json.dumps(report, ensure_ascii=False, indent=1).encode(),
    }
    return report, files


def deliver(files: dict[str, bytes], *, out_dir: str | None, post_url: str | None) -> str:
    """Write the files into ``out_dir`` (made if missing) or POST them to ``post_url`` as one
    multipart request (field ``files``); say where they went. Raises InvalidInputError for
    neither or both, a URL that is not http(s), or a receiver that answers an error."""
    if (out_dir is None) == (post_url is None):
        raise InvalidInputError(gettext("give either a folder or a URL"))
    if out_dir is not None:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (folder / name).write_bytes(content)
        return str(folder)
    assert post_url is not None
    if not post_url.startswith(("http://", "https://")):
        raise InvalidInputError(gettext("the URL must be http(s)"))
    import httpx

    try:
        answer = httpx.post(
            post_url,
            files=[("files", (name, content)) for name, content in files.items()],
            timeout=60,
        )
    except httpx.HTTPError as exc:
        raise InvalidInputError(
            format_message("could not POST the report: {name}", name=type(exc).__name__)
        ) from None
    if answer.status_code >= 400:
        raise InvalidInputError(
            format_message("the receiver answered {status_code}", status_code=answer.status_code)
        )
    return post_url


def weekly_due(session: Session, now: datetime, tz: str) -> datetime | None:
    """The Monday of last week when its report has not been delivered yet, else None."""
    since, _ = last_week(now, tz)
    done = session.execute(
        text(
            "SELECT 1 FROM audit_log WHERE action = :a AND entity = :e AND entity_id = :w LIMIT 1"
        ),
        {"a": AUDIT_ACTION, "e": AUDIT_ENTITY, "w": since.date().isoformat()},
    ).first()
    return None if done else since


def deliver_weekly_if_due(
    session: Session,
    *,
    now: datetime,
    tz: str,
    level: str,
    out_dir: str | None,
    post_url: str | None,
    font: str | None = None,
) -> str | None:
    """The server's weekly task: deliver last week's report once (an audit row records it;
    an advisory lock keeps other processes out meanwhile). Returns the week delivered."""
    if not session.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtext('geo.weekly_report'))")
    ).scalar_one():
        session.rollback()
        return None
    week = weekly_due(session, now, tz)
    if week is None:
        session.rollback()
        return None
    _, files = weekly_report(session, now=now, tz=tz, level=level, font=font)
    where = deliver(files, out_dir=out_dir, post_url=post_url)
    record_audit(
        session,
        who="weekly report",
        action=AUDIT_ACTION,
        entity=AUDIT_ENTITY,
        entity_id=week.date().isoformat(),
        diff={"level": level, "files": sorted(files), "to": where},
    )
    session.commit()
    return week.date().isoformat()
