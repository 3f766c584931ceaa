"""``geo-service db start|stop|status|url``: the embedded PostgreSQL + PostGIS cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo_service.cli.common import (
    cluster_or_exit,
    console,
    database_url,
    fail,
    settings_or_external,
)
from geo_service.settings import Settings

app = typer.Typer(help="Manage the embedded PostgreSQL + PostGIS cluster.", no_args_is_help=True)


@app.command("start")
def start() -> None:
    """Create (first time) and start the cluster; idempotent."""
    settings = settings_or_external("db start")
    cluster = cluster_or_exit(settings)
    with fail():
        url = cluster.start(settings.database.database_name)
    console.print(f"[green]running[/] on 127.0.0.1:{cluster.port} (data: {cluster.cluster_dir})")
    del url


@app.command("stop")
def stop() -> None:
    """Stop the cluster (fast shutdown)."""
    settings = settings_or_external("db stop")
    cluster = cluster_or_exit(settings)
    with fail():
        was_running = cluster.stop()
    console.print("stopped" if was_running else "not running")


@app.command("status")
def status() -> None:
    """Say whether the cluster runs, where and on which port (exit 1 when stopped)."""
    settings = settings_or_external("db status")
    cluster = cluster_or_exit(settings)
    with fail():
        st = cluster.status(settings.database.database_name)
    state = "[green]running[/]" if st.running else "[yellow]stopped[/]"
    console.print(f"{state}  port={st.port or '-'}  data={st.cluster_dir}")
    if not st.running:
        raise typer.Exit(1)


@app.command("url")
def url() -> None:
    """Print the SQLAlchemy URL of the database (starts nothing)."""
    settings = Settings()
    if settings.database.database_url:
        typer.echo(settings.database.database_url)
        return
    cluster = cluster_or_exit(settings)
    with fail():
        typer.echo(cluster.url(settings.database.database_name))


@app.command("backup")
def backup_command(file: Path) -> None:
    """Dump the database to FILE (pg_dump custom format; restore with `db restore`)."""
    from geo_service.db.cluster import backup

    with fail(), console.status(f"dumping the database to {file}…"):
        size = backup(database_url(Settings()), file)
    console.print(f"wrote {file} ({size / 1e6:.1f} MB)")


@app.command("restore")
def restore_command(
    file: Path,
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the current data without asking")
    ] = False,
) -> None:
    """Restore FILE into the database, replacing its contents (in one transaction)."""
    from geo_service.db.cluster import restore

    if not yes and not typer.confirm("This replaces everything in the database. Go on?"):
        raise typer.Exit(1)
    with fail(), console.status(f"restoring {file}…"):
        restore(database_url(Settings()), file)
    console.print(f"restored {file}")
