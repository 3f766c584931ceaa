"""``geo-service serve``: serve the API over an existing database."""

from __future__ import annotations

from typing import Annotated

import typer

from geo_service.cli.common import console, database_url
from geo_service.i18n import format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings


def run_server(
    settings: Settings, host: str, port: int, workers: int = 1, *, access_log: bool = True
) -> None:
    """Serve the API with uvicorn on ``host:port`` (several worker processes if asked);
    ``access_log=False`` leaves out uvicorn's line per request (warnings and errors stay)."""
    import uvicorn

    from geo_service.api.app import create_app

    if workers > 1:
        # Each worker process builds its own app (and engine) from the environment.
        console.print(
            format_message(
                "serving on http://{host}:{port} with {workers} workers",
                host=host,
                port=port,
                workers=workers,
            )
        )
        uvicorn.run(
            "geo_service.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=access_log,
        )
        return
    console.print(
        format_message(
            "serving on {base}  (map: {base}/map, API docs: {base}/docs)",
            base=f"http://{host}:{port}",
        )
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log)


def serve(
    host: Annotated[str, typer.Option(help=_("Address to serve on."))] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=_("Port to serve on."))] = 8000,
    workers: Annotated[int, typer.Option(min=1, help=_("Worker processes."))] = 1,
) -> None:
    """Serve the API (starts the embedded database if it is the default)."""
    settings = Settings()
    database_url(settings)
    run_server(settings, host, port, workers)
