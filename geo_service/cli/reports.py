"""``geo-service reports weekly``: last week's performance report, by hand or from cron."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from geo_service.cli.common import console, database_url, fail
from geo_service.i18n import format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings

app = typer.Typer(help=_("The managers' reports."), no_args_is_help=True)


def _instant(given: str | None, option: str) -> datetime | None:
    if given is None:
        return None
    try:
        value = datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            format_message(
                "{option}: not an ISO 8601 time: {value}", option=option, value=repr(given)
            )
        ) from None
    if value.tzinfo is None:
        raise typer.BadParameter(
            format_message(
                "{option} needs a timezone offset, e.g. 2026-11-30T08:00+08:00", option=option
            )
        )
    return value


@app.command(
    "weekly",
    help=_(
        "Last week's report (Monday to Monday, GEO_TIMEZONE) for the whole city at --level, as "
        "weekly_<Monday>.pdf, .xlsx, .csv and .json, into --out or POSTed to --post."
    ),
)
def weekly(
    out: Annotated[
        str | None, typer.Option("--out", help=_("Write the files into this folder."))
    ] = None,
    post: Annotated[
        str | None, typer.Option("--post", help=_("POST the files (multipart) to this URL."))
    ] = None,
    level: Annotated[str, typer.Option("--level", help=_("district|street|community|grid"))] = (
        "district"
    ),
    now_text: Annotated[
        str | None,
        typer.Option("--now", help=_("Report the week before this time (ISO 8601 with offset).")),
    ] = None,
) -> None:
    """Last week's report (Monday to Monday, GEO_TIMEZONE) for the whole city at --level, as
    weekly_<Monday>.pdf, .xlsx, .csv and .json, into --out or POSTed to --post."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from geo_service.db.engine import make_engine
    from geo_service.services.reports.weekly import deliver, weekly_report

    if (out is None) == (post is None):
        raise typer.BadParameter(_("give either --out DIR or --post URL"))
    now = _instant(now_text, "--now")
    settings = Settings()
    engine = make_engine(database_url(settings), settings.database)
    with fail(), Session(engine) as session:
        now = now or session.execute(text("SELECT now()")).scalar_one()
        report, files = weekly_report(
            session,
            now=now,
            tz=settings.api.timezone,
            level=level,
            font=settings.reports.font,
        )
        where = deliver(files, out_dir=out, post_url=post)
    for name in files:
        console.print(name)
    console.print(
        format_message(
            "week {since} to {until}: {incidents} incidents, {areas} areas -> {where}",
            since=report["since"][:10],
            until=report["until"][:10],
            incidents=report["total"]["received"],
            areas=len(report["areas"]),
            where=where,
        )
    )
