"""``geo-service db start|stop|status|url``: the embedded PostgreSQL + PostGIS cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo_service.cli.common import (
    cluster_or_exit,
    console,
    fail,
    settings_or_external,
)
from geo_service.db.cluster_roles import ROLES
from geo_service.i18n import format_message
from geo_service.i18n import gettext as _
from geo_service.services.access.audit import record_audit
from geo_service.settings import Settings

app = typer.Typer(help=_("Manage the embedded PostgreSQL + PostGIS cluster."), no_args_is_help=True)


@app.command("start", help=_("Create (first time) and start the cluster; idempotent."))
def start() -> None:
    """Create (first time) and start the cluster; idempotent."""
    settings = settings_or_external("db start")
    cluster = cluster_or_exit(settings)
    with fail():
        url = cluster.start(settings.database.database_name)
    console.print(
        "[green]"
        + format_message(
            "running on 127.0.0.1:{port} (data: {path})",
            port=cluster.port,
            path=cluster.cluster_dir,
        )
        + "[/]"
    )
    console.print(
        _(
            "roles: geo_owner (migrations), geo_app (API and CLI), geo_purge (audit retention); "
            "`geo-service db url --role ...` prints each one's URL"
        )
    )
    del url


@app.command("stop", help=_("Stop the cluster (fast shutdown)."))
def stop() -> None:
    """Stop the cluster (fast shutdown)."""
    settings = settings_or_external("db stop")
    cluster = cluster_or_exit(settings)
    with fail():
        was_running = cluster.stop()
    console.print(_("stopped") if was_running else _("not running"))


@app.command(
    "status", help=_("Say whether the cluster runs, where and on which port (exit 1 when stopped).")
)
def status() -> None:
    """Say whether the cluster runs, where and on which port (exit 1 when stopped)."""
    settings = settings_or_external("db status")
    cluster = cluster_or_exit(settings)
    with fail():
        st = cluster.status(settings.database.database_name)
    state = "[green]" + _("running") + "[/]" if st.running else "[yellow]" + _("stopped") + "[/]"
    console.print(
        state
        + "  "
        + format_message("port={port}  data={path}", port=st.port or "-", path=st.cluster_dir)
    )
    if not st.running:
        raise typer.Exit(1)


@app.command("url", help=_("Print the SQLAlchemy URL of the database as ROLE (starts nothing)."))
def url(
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help=_(
                "app: what the API and CLI use | owner: migrations | purge: audit retention "
                "| admin: the cluster's superuser"
            ),
        ),
    ] = "app",
) -> None:
    """Print the SQLAlchemy URL of the database as ROLE (starts nothing)."""
    settings = Settings()
    if role not in ROLES:
        console.print(
            "[red]"
            + _("error:")
            + "[/] "
            + format_message("--role must be one of {roles}", roles=", ".join(ROLES))
        )
        raise typer.Exit(2)
    if settings.database.database_url:
        external = {
            "app": settings.database.database_url,
            "owner": settings.database.database_owner_url or settings.database.database_url,
        }
        if role not in external:
            console.print(
                "[red]"
                + _("error:")
                + "[/] "
                + format_message("no {role} URL is configured for an external server", role=role)
            )
            raise typer.Exit(1)
        typer.echo(external[role])
        return
    cluster = cluster_or_exit(settings)
    with fail():
        typer.echo(cluster.url(settings.database.database_name, role=role))  # type: ignore[arg-type]


def _owner_url(settings: Settings) -> str:
    from geo_service.db.engine import resolve_owner_url

    with fail():
        return resolve_owner_url(settings.database, start=True)


@app.command(
    "purge-audit",
    help=_(
        "Retention: delete audit rows older than N days, as the purge role (the only role the "
        "audit trigger lets delete), and record the purge itself in the audit log."
    ),
)
def purge_audit(
    older_than_days: Annotated[
        int, typer.Option(min=30, help=_("Delete audit rows older than this many days."))
    ],
    yes: Annotated[bool, typer.Option("--yes", help=_("Delete without asking"))] = False,
) -> None:
    """Retention: delete audit rows older than N days, as the purge role (the only role the
    audit trigger lets delete), and record the purge itself in the audit log."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from geo_service.db.engine import make_engine, normalise_url

    settings = Settings()
    db = settings.database
    if db.database_purge_url:
        purge_url = normalise_url(db.database_purge_url)
    elif db.database_url:
        console.print(
            "[red]" + _("error:") + "[/] " + _("set GEO_DATABASE_PURGE_URL (the purge role's URL)")
        )
        raise typer.Exit(1)
    else:
        cluster = cluster_or_exit(settings)
        with fail():
            cluster.start(db.database_name)
            purge_url = cluster.url(db.database_name, role="purge")
    cut_off = datetime.now(UTC) - timedelta(days=older_than_days)
    if not yes and not typer.confirm(
        format_message("Delete every audit row before {day}?", day=f"{cut_off:%Y-%m-%d}")
    ):
        raise typer.Exit(1)
    engine = make_engine(purge_url, db)
    try:
        with engine.begin() as conn:
            deleted = conn.execute(
                text("DELETE FROM audit_log WHERE at < :cut"), {"cut": cut_off}
            ).rowcount
            record_audit(
                conn,
                who="cli (retention purge)",
                action="purge",
                entity="audit_log",
                entity_id="-",
                diff={"before": cut_off.isoformat(), "deleted": deleted},
            )
    finally:
        engine.dispose()
    console.print(
        format_message(
            "deleted {n} audit rows from before {time} UTC",
            n=f"{deleted:,}",
            time=f"{cut_off:%Y-%m-%d %H:%M}",
        )
    )


@app.command(
    "backup",
    help=_("Dump the database to FILE (pg_dump custom format; restore with `db restore`)."),
)
def backup_command(file: Path) -> None:
    """Dump the database to FILE (pg_dump custom format; restore with `db restore`)."""
    from geo_service.db.cluster_tools import backup

    with fail(), console.status(format_message("dumping the database to {file}…", file=file)):
        # as the owner: it reads every table, whatever the application role may read
        size = backup(_owner_url(Settings()), file)
    console.print(format_message("wrote {file} ({mb} MB)", file=file, mb=f"{size / 1e6:.1f}"))


@app.command(
    "restore",
    help=_("Restore FILE into the database, replacing its contents (in one transaction)."),
)
def restore_command(
    file: Path,
    yes: Annotated[
        bool, typer.Option("--yes", help=_("Replace the current data without asking"))
    ] = False,
) -> None:
    """Restore FILE into the database, replacing its contents (in one transaction)."""
    from geo_service.db.cluster_tools import restore

    if not yes and not typer.confirm(_("This replaces everything in the database. Go on?")):
        raise typer.Exit(1)
    with fail(), console.status(format_message("restoring {file}…", file=file)):
        # dropping and re-creating tables is the owner's (the application role may not)
        restore(_owner_url(Settings()), file)
    console.print(format_message("restored {file}", file=file))
