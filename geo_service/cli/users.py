"""``geo-service users`` and ``geo-service keys``: who may use the API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from geo_service.cli.common import console, database_url, fail
from geo_service.i18n import format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings

users_app = typer.Typer(help=_("Users: a role and, optionally, an area."), no_args_is_help=True)
keys_app = typer.Typer(help=_("API keys (shown once, stored hashed)."), no_args_is_help=True)
CLI_ACTOR = "cli (local admin)"


def _session():  # noqa: ANN202
    from sqlalchemy.orm import Session

    from geo_service.db.engine import make_engine
    from geo_service.db.migrate import migrate_database

    settings = Settings()
    migrate_database(settings.database)  # as the owner; the session below is the app role's
    url = database_url(settings)
    return Session(make_engine(url, settings.database))


@users_app.command("create", help=_("Create a user and a first API key (printed once)."))
def create(
    name: str,
    role: Annotated[
        str, typer.Option(help=_("admin | dispatcher | planner | analyst | grid_worker"))
    ],
    area: Annotated[
        str | None, typer.Option(help=_("Bind to an area code (a grid worker's own grid)"))
    ] = None,
    responder: Annotated[
        str | None, typer.Option(help=_("The user's own responder (callsign)"))
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            help=_("hotline | sensor: the source its Open311 filings carry (default: citizen)")
        ),
    ] = None,
) -> None:
    """Create a user and a first API key (printed once)."""
    from geo_service.services.access.auth import create_key, create_user

    with fail(), _session() as session:
        user = create_user(
            session,
            name=name,
            role=role,
            area_code=area,
            actor=CLI_ACTOR,
            responder_callsign=responder,
            channel=channel,
        )
        _, key = create_key(session, user, actor=CLI_ACTOR, label="created with the user")
        session.commit()
    console.print(
        format_message("created {role} {name} for area {area}", role=role, name=name, area=area)
        if area
        else format_message("created {role} {name}", role=role, name=name)
    )
    typer.echo(key)


@users_app.command("list", help=_("List users, their roles, areas and live keys."))
def list_() -> None:
    """List users, their roles, areas and live keys."""
    from geo_service.services.access.auth import list_users

    with fail(), _session() as session:
        rows = list_users(session)
    table = Table("id", _("name"), _("role"), _("area"), _("channel"), _("keys"), _("disabled"))
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["name"],
            r["role"],
            r["area_code"] or "-",
            r["channel"] or "citizen",
            str(r["keys"]),
            _("yes") if r["disabled"] else "",
        )
    console.print(table)


@users_app.command(
    "channel", help=_("Set the source a user's Open311 filings carry (hotline, sensor, citizen).")
)
def channel_command(
    name: str,
    channel: Annotated[str, typer.Argument(help=_("hotline | sensor | citizen"))],
) -> None:
    """Set the source a user's Open311 filings carry (hotline, sensor, citizen)."""
    from geo_service.services.access.auth import set_channel

    with fail(), _session() as session:
        set_channel(session, name, None if channel == "citizen" else channel, actor=CLI_ACTOR)
        session.commit()
    console.print(format_message("{name} files as {channel}", name=name, channel=channel))


@keys_app.command("create", help=_("Make another API key for a user (printed once)."))
def create_key_command(
    user: str,
    label: Annotated[str | None, typer.Option(help=_("What the key is for"))] = None,
) -> None:
    """Make another API key for a user (printed once)."""
    from sqlalchemy import select

    from geo_service.db.models import User
    from geo_service.errors import NotFoundError
    from geo_service.services.access.auth import create_key

    with fail(), _session() as session:
        row = session.execute(select(User).where(User.name == user)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(format_message("no user named {name}", name=repr(user)))
        _, key = create_key(session, row, actor=CLI_ACTOR, label=label)
        session.commit()
    typer.echo(key)


@keys_app.command("revoke", help=_("Revoke a key; requests with it are refused from now on."))
def revoke(prefix: Annotated[str, typer.Argument(help=_("The key, or its prefix"))]) -> None:
    """Revoke a key; requests with it are refused from now on."""
    from geo_service.services.access.auth import revoke_key

    if prefix.startswith("gs_"):
        prefix = prefix.split("_")[1]
    with fail(), _session() as session:
        revoke_key(session, prefix, actor=CLI_ACTOR)
        session.commit()
    console.print(format_message("revoked key {prefix}", prefix=prefix))
