"""``geo-service categories``: the incident taxonomy as a grid office manages it: names per
language, targets, handling effort, retiring (the same service as ``/categories``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from geo_service.cli.common import console, database_url, fail
from geo_service.i18n import format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings

app = typer.Typer(
    help=_("Incident categories: names per language, targets, handling effort, retiring."),
    no_args_is_help=True,
)
CLI_ACTOR = "geo-service categories"


def _session():  # noqa: ANN202
    from sqlalchemy.orm import Session

    from geo_service.db.engine import make_engine

    settings = Settings()
    return Session(make_engine(database_url(settings), settings.database))


def _show(category: dict[str, Any]) -> None:
    names = ", ".join(f"{tag}: {name}" for tag, name in sorted(category["names"].items()))
    state = _("retired") if category["retired"] else _("in use")
    # names are what people typed: never read as console markup
    console.print(
        f"{escape(category['code'])}  [bold]{escape(category['name'])}[/]  ({escape(names)})  "
        f"{state}"
    )


@app.command("list", help=_("List the categories (names in GEO_LOCALE / LANG)."))
def list_command(
    retired: Annotated[bool, typer.Option("--retired", help=_("Also the retired ones."))] = False,
    as_json: Annotated[bool, typer.Option("--json", help=_("As JSON."))] = False,
) -> None:
    """List the categories."""
    from geo_service.services.intake.categories import list_categories

    with fail(), _session() as session:
        rows = list_categories(session, include_retired=retired)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    console.print(_categories_table(rows, console.width))


# Below this many columns the eight columns of the list cannot be read side by side: each
# category is shown as a block of label / value lines instead
WIDE_LIST_COLUMNS = 120


def _categories_table(rows: list[dict[str, Any]], width: int) -> Table:
    """The categories as a table: one row each when ``width`` allows, else one block each."""
    labels = (
        _("code"),
        _("name"),
        _("names"),
        _("priority"),
        _("effort (min)"),
        _("arrival target (s)"),
        _("resolution target (min)"),
        _("retired"),
    )
    cells = [
        (
            r["code"],
            r["name"],
            ", ".join(f"{k}: {v}" for k, v in sorted(r["names"].items())),
            str(r["default_priority"]),
            str(r["handling_effort_min"]),
            "-" if r["response_target_s"] is None else str(r["response_target_s"]),
            "-" if r["resolution_target_min"] is None else str(r["resolution_target_min"]),
            _("yes") if r["retired"] else "",
        )
        for r in rows
    ]
    if width >= WIDE_LIST_COLUMNS:
        table = Table(*labels)
        for column in table.columns:  # a long name wraps in its cell, never cut to "…"
            column.overflow = "fold"
        for row in cells:
            table.add_row(*row)
        return table
    table = Table(show_header=False, show_lines=False)
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for row in cells:
        for i, (label, value) in enumerate(zip(labels, row, strict=True)):
            table.add_row(label, value, end_section=i == len(labels) - 1)
    return table


def _names(values: list[str] | None) -> dict[str, str]:
    names: dict[str, str] = {}
    for item in values or []:
        tag, sep, name = item.partition("=")
        if not sep:
            raise typer.BadParameter(
                format_message("--name takes LANGUAGE=NAME, got {item}", item=repr(item))
            )
        names[tag.strip()] = name
    return names


NameOption = Annotated[
    list[str] | None,
    typer.Option(
        "--name", help=_("LANGUAGE=NAME, e.g. --name en=Noise --name zh-CN=噪声扰民 (repeatable)")
    ),
]
ResolutionOption = Annotated[
    int | None, typer.Option("--resolution-min", help=_("Resolution target, minutes."))
]
ResponseOption = Annotated[
    int | None,
    typer.Option(
        "--response-s", help=_("Arrival target: seconds from the report to a responder on scene.")
    ),
]


@app.command("create", help=_("Create a category (an English name is required)."))
def create_command(
    code: str,
    name: NameOption = None,
    group: Annotated[str, typer.Option(help=_("Its group."))] = "other",
    priority: Annotated[int, typer.Option(help=_("Default priority, 1..4."))] = 3,
    effort: Annotated[
        int, typer.Option("--effort", help=_("Handling effort per incident, minutes."))
    ] = 30,
    resolution: ResolutionOption = None,
    response: ResponseOption = None,
) -> None:
    """Create a category."""
    from geo_service.services.intake.categories import create_category

    fields = {
        "code": code,
        "names": _names(name),
        "group": group,
        "default_priority": priority,
        "handling_effort_min": effort,
        "resolution_target_min": resolution,
        "response_target_s": response,
    }
    with fail(), _session() as session:
        _show(create_category(session, fields, actor=CLI_ACTOR))


@app.command("set", help=_("Rename a category (per language), set its targets and effort."))
def set_command(
    code: str,
    name: NameOption = None,
    priority: Annotated[int | None, typer.Option(help=_("Default priority, 1..4."))] = None,
    effort: Annotated[
        int | None, typer.Option("--effort", help=_("Handling effort per incident, minutes."))
    ] = None,
    resolution: ResolutionOption = None,
    response: ResponseOption = None,
) -> None:
    """Rename a category and set its targets and handling effort."""
    from geo_service.services.intake.categories import update_category

    changes: dict[str, Any] = {"names": _names(name)}
    for field, value in (
        ("default_priority", priority),
        ("handling_effort_min", effort),
        ("resolution_target_min", resolution),
        ("response_target_s", response),
    ):
        if value is not None:
            changes[field] = value
    with fail(), _session() as session:
        _show(update_category(session, code, changes, actor=CLI_ACTOR))


@app.command("retire", help=_("Retire a category: no new incident may take it."))
def retire_command(code: str) -> None:
    """Retire a category."""
    from geo_service.services.intake.categories import set_retired

    with fail(), _session() as session:
        _show(set_retired(session, code, True, actor=CLI_ACTOR))


@app.command("restore", help=_("Bring a retired category back into use."))
def restore_command(code: str) -> None:
    """Restore a retired category."""
    from geo_service.services.intake.categories import set_retired

    with fail(), _session() as session:
        _show(set_retired(session, code, False, actor=CLI_ACTOR))
