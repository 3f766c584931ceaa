"""Entry point of the ``geo-service`` command."""

from __future__ import annotations

import typer

from geo_service.cli import boundaries, db, demo
from geo_service.cli.common import console, database_url
from geo_service.cli.imports import import_command
from geo_service.cli.serve import serve
from geo_service.cli.users import keys_app, users_app
from geo_service.settings import Settings

app = typer.Typer(
    help="geo-service: grids, incidents and the city hierarchy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(boundaries.app, name="boundaries")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)
app.command("import")(import_command)


@app.command("migrate")
def migrate() -> None:
    """Migrate the database to the newest schema (creates the postgis extension)."""
    from geo_service.db.migrate import upgrade_to_head

    upgrade_to_head(database_url(Settings()))
    console.print("[green]schema is up to date[/]")


if __name__ == "__main__":
    app()
