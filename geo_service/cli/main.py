"""Entry point of the ``geo-service`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from geo_service.cli import analytics, boundaries, categories, db, demo, reports
from geo_service.cli.common import console, database_url, fail
from geo_service.cli.imports import IMPORT_EPILOG, import_command
from geo_service.cli.serve import serve
from geo_service.cli.simulate import simulate_command
from geo_service.cli.users import keys_app, users_app
from geo_service.i18n import format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings

app = typer.Typer(
    help=_("geo-service: grids, incidents and the city hierarchy."),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(boundaries.app, name="boundaries")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(categories.app, name="categories")
app.add_typer(analytics.app, name="analytics")
app.add_typer(reports.app, name="reports")
app.command(
    "export",
    help=_(
        "Export a table as partitioned GeoParquet (H3 res-3 x month); later runs write only "
        "the partitions that changed."
    ),
)(analytics.export_command)
app.command("serve", help=_("Serve the API (starts the embedded database if it is the default)."))(
    serve
)
app.command(
    "import",
    epilog=IMPORT_EPILOG,
    help=_("Import a file; rejected rows go to a reject file with their reasons."),
)(import_command)
app.command(
    "simulate",
    help=_(
        "Drive a deployment through its public API like a living city: reports at a real "
        "city's rate, dispatch by road ETA, work, patrols and positions (exit 1 on any 5xx)."
    ),
)(simulate_command)


@app.command(
    "migrate",
    help=_(
        "Migrate the database to the newest schema (creates the postgis extension), and rebuild "
        "the rollups when they count another zone's days than GEO_TIMEZONE."
    ),
)
def migrate() -> None:
    """Migrate the database to the newest schema (creates the postgis extension), and rebuild
    the rollups when they count another zone's days than GEO_TIMEZONE."""
    from geo_service.db.engine import resolve_owner_url
    from geo_service.db.migrate import upgrade_to_head

    settings = Settings()
    with fail():
        # as the schema's owner role
        url = resolve_owner_url(settings.database, start=True)
        rebuilt = upgrade_to_head(url, settings.api.timezone)
    console.print("[green]" + _("schema is up to date") + "[/]")
    if rebuilt is not None:
        console.print(
            format_message(
                "rebuilt the rollups of {n} incidents in {new_zone} days (they counted {old_zone} "
                "days) in {seconds} s",
                n=rebuilt.incidents,
                new_zone=rebuilt.new_zone,
                old_zone=rebuilt.old_zone,
                seconds=rebuilt.seconds,
            )
        )
    else:
        console.print(
            format_message(
                "rollups count days of {zone} (GEO_TIMEZONE)", zone=settings.api.timezone
            )
        )


@app.command(
    "escalate",
    help=_(
        "Climb every overdue open incident one level (grid > community > street > district). "
        "Without --once, repeat every GEO_DISPATCH_ESCALATION_INTERVAL_S seconds."
    ),
)
def escalate(
    once: Annotated[
        bool, typer.Option("--once", help=_("One round, then exit (for cron)."))
    ] = False,
    now_text: Annotated[
        str | None,
        typer.Option(
            "--now", help=_("Judge overdue at this time (ISO 8601 with offset); default: now.")
        ),
    ] = None,
) -> None:
    """Climb every overdue open incident one level (grid > community > street > district).
    Without --once, repeat every GEO_DISPATCH_ESCALATION_INTERVAL_S seconds."""
    import time

    from sqlalchemy.orm import Session

    from geo_service.db.engine import make_engine
    from geo_service.errors import InvalidInputError
    from geo_service.instants import parse_instant
    from geo_service.services.dispatch.lifecycle import WORDS, escalate_overdue

    # Parsed here, not by click's DateTime (its formats know no offset in some versions); a
    # time without an offset is local time of GEO_TIMEZONE, as everywhere.
    try:
        now = parse_instant(now_text, "--now") if now_text else None
    except InvalidInputError as exc:
        raise typer.BadParameter(_(exc.detail)) from None
    settings = Settings()
    engine = make_engine(database_url(settings), settings.database)
    while True:
        with Session(engine) as session:
            done = escalate_overdue(session, now=now, actor="geo-service escalate")
        for item in done:
            console.print(
                f"{item['id']}  "
                + format_message("level {level}", level=item["escalation_level"])
                + f"  ({_(WORDS.get(item['status'], item['status']))})"
            )
        console.print(format_message("escalated {n} incident(s)", n=len(done)))
        if once:
            return
        time.sleep(max(1.0, settings.dispatch.escalation_interval_s))


@app.command(
    "sweep-photos",
    help=_(
        "Delete stored photo files whose incident is gone (photo rows go with their incident; "
        "the files in GEO_PHOTOS_* storage go with this sweep, e.g. nightly from cron)."
    ),
)
def sweep_photos() -> None:
    """Delete stored photo files whose incident is gone (photo rows go with their incident;
    the files in GEO_PHOTOS_* storage go with this sweep, e.g. nightly from cron)."""
    from sqlalchemy.orm import Session

    from geo_service.db.engine import make_engine
    from geo_service.services.intake.photo_store import photo_store
    from geo_service.services.intake.photos import sweep_orphan_photos

    settings = Settings()
    engine = make_engine(database_url(settings), settings.database)
    try:
        with fail(), Session(engine) as session:
            store = photo_store(settings.photos, settings.database.data_dir)
            gone = sweep_orphan_photos(session, store)
    finally:
        engine.dispose()
    console.print(format_message("deleted {n} photo file(s) of incidents that are gone", n=gone))


def _digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes full-width and other scripts' digits)."""
    stripped = text.strip()
    return stripped.isascii() and stripped.isdigit()


@app.command("targets", help=_("Show the response targets per priority, or change them (--set)."))
def targets(
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help=_("PRIORITY=SECONDS to dispatch, e.g. --set 1=60 (repeatable)")),
    ] = None,
) -> None:
    """Show the response targets per priority, or change them (--set)."""
    from sqlalchemy.orm import Session

    from geo_service.cli.common import fail
    from geo_service.db.engine import make_engine
    from geo_service.services.dispatch.lifecycle import response_targets, set_response_targets

    changes: dict[int, int] = {}
    for item in set_ or []:
        priority, _sep, seconds = item.partition("=")
        if not (_digits(priority) and _digits(seconds)):
            raise typer.BadParameter(
                format_message("--set takes PRIORITY=SECONDS, got {value}", value=repr(item))
            )
        changes[int(priority)] = int(seconds)
    settings = Settings()
    engine = make_engine(database_url(settings), settings.database)
    with Session(engine) as session, fail():
        now = (
            set_response_targets(session, changes, actor="geo-service targets")
            if changes
            else response_targets(session)
        )
    for priority, seconds in sorted(now.items()):
        console.print(
            format_message(
                "priority {priority}: dispatched within {seconds} s",
                priority=priority,
                seconds=seconds,
            )
        )


if __name__ == "__main__":
    app()
