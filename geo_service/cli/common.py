"""Shared helpers of the CLI: console, error exits, database resolution."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from geo_service.db.cluster import EmbeddedCluster
from geo_service.errors import GeoServiceError, MissingSystemPackageError
from geo_service.i18n import format_message, gettext
from geo_service.i18n import gettext as _
from geo_service.ingest.uploads import ImportFileError  # and UnsupportedFileError, a subclass
from geo_service.settings import Settings

console = Console(stderr=True, soft_wrap=True)


@contextmanager
def fail() -> Iterator[None]:
    """Turn domain errors into a one-line message; exit 2 for missing system packages and for
    a file that cannot be read (missing, unreadable, not an accepted format)."""
    try:
        yield
    except (MissingSystemPackageError, ImportFileError) as exc:
        console.print("[red]" + _("error:") + "[/] " + gettext(exc.detail))
        raise typer.Exit(2) from None
    except GeoServiceError as exc:
        console.print("[red]" + _("error:") + "[/] " + gettext(exc.detail))
        raise typer.Exit(1) from None


def settings_or_external(command: str) -> Settings:
    """Settings; refuses cluster commands when GEO_DATABASE_URL points elsewhere."""
    settings = Settings()
    if settings.database.database_url:
        console.print(
            format_message(
                "GEO_DATABASE_URL is set: `{command}` does not manage an external server",
                command=command,
            )
        )
        raise typer.Exit(1)
    return settings


def cluster_or_exit(settings: Settings) -> EmbeddedCluster:
    """The embedded cluster of these settings."""
    return EmbeddedCluster(settings.database.data_dir, log=lambda m: console.print(m))


def database_url(settings: Settings) -> str:
    """The URL to use, starting the embedded cluster unless GEO_DATABASE_URL is set."""
    from geo_service.db.engine import resolve_database_url

    with fail():
        return resolve_database_url(settings.database, start=True)


def progress_bar() -> Progress:
    """The progress bar every long command shows."""
    return Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
