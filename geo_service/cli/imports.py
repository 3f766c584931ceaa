"""``geo-service import KIND FILE``: bring data from other systems in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID
from rich.table import Table

from geo_service.cli.common import console, database_url, fail, progress_bar
from geo_service.settings import Settings

KIND_HELP = "boundaries | incidents | households | rental-units | responders | roads"


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        if "=" not in value:
            console.print(f"[red]error:[/] {option} takes SRC=FIELD pairs, got {value!r}")
            raise typer.Exit(2)
        left, right = value.split("=", 1)
        out[left.strip()] = right.strip()
    return out


def import_command(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    file: Annotated[
        Path,
        typer.Argument(
            help="GeoJSON, GPKG, Shapefile (.shp or .zip), "
            "GeoParquet, or CSV/TSV with lon/lat columns"
        ),
    ],
    crs: Annotated[
        str | None,
        typer.Option(
            help="EPSG code, WKT, or gcj02 / bd09; files that declare a CRS are reprojected"
        ),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="SRC=FIELD: source column to our field (repeatable)"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="FIELD=VALUE for every row (repeatable)")
    ] = None,
    category_map: Annotated[
        Path | None, typer.Option(help="CSV source,ours; unknown categories are rejected")
    ] = None,
    tz: Annotated[str, typer.Option(help="Time zone of naive timestamps")] = "UTC",
    date_format: Annotated[
        str | None,
        typer.Option(help="strptime format of naive timestamps, when the column is ambiguous"),
    ] = None,
    layer: Annotated[str | None, typer.Option(help="Layer of a multi-layer file")] = None,
    swap_xy: Annotated[
        bool, typer.Option("--swap-xy", help="the file's lon/lat (x/y) are the other way round")
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option(help="Shapefile DBF text encoding (default: .cpg, else UTF-8 or GB18030)"),
    ] = None,
    status: Annotated[str, typer.Option(help="incidents: status of rows without one")] = "reported",
    source_name: Annotated[
        str | None, typer.Option(help="Prefix of stable keys (default: the file name)")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Reject file (default: <input>.rejects.csv)")
    ] = None,
    level: Annotated[
        str | None, typer.Option(help="boundaries: district | street | community | grid")
    ] = None,
    parent_level: Annotated[
        str | None, typer.Option(help="boundaries: level of the parents")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="boundaries: add to this draft version")
    ] = None,
    version_name: Annotated[
        str | None, typer.Option(help="boundaries: name of a new draft")
    ] = None,
    dissolve: Annotated[
        bool, typer.Option(help="boundaries: merge features that share a code into one area")
    ] = False,
) -> None:
    """Import a file; rejected rows go to a reject file with their reasons."""
    from geo_service.db.engine import make_engine
    from geo_service.db.migrate import migrate_database
    from geo_service.services.ingest.imports import ImportOptions, import_file, read_mapping_csv

    with fail():
        options = ImportOptions(
            crs=crs,
            field_map=_pairs(map_, "--map"),
            constants=_pairs(set_, "--set"),
            category_map=read_mapping_csv(category_map) if category_map else None,
            tz=tz,
            date_format=date_format,
            layer=layer,
            swap_xy=swap_xy,
            encoding=encoding,
            status=status,
            source_name=source_name,
            rejects_path=rejects,
            level=level,
            parent_level=parent_level,
            version_id=version,
            version_name=version_name,
            dissolve=dissolve,
        )
        settings = Settings()
        migrate_database(settings.database)  # as the owner; the import runs as the app role
        url = database_url(settings)
        engine = make_engine(url, settings.database)
        with progress_bar() as bar:
            tasks: dict[str, TaskID] = {}

            def step(name: str, done: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                if name == "write":
                    bar.update(tasks[name], advance=done, total=total)
                else:
                    bar.update(tasks[name], completed=done, total=total)

            report = import_file(engine, kind, file, options, actor="cli", progress=step)
        engine.dispose()
    table = Table(title=f"import {kind}: {file.name}", show_header=False)
    table.add_row("read", f"{report.read:,}")
    table.add_row("accepted", f"{report.accepted:,}")
    table.add_row("inserted", f"{report.inserted:,}")
    table.add_row("already present", f"{report.already_present:,}")
    table.add_row("rejected", f"{report.rejected:,}")
    for reason, count in sorted(report.rejected_by_reason.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {reason}", f"{count:,}")
    if report.encoding:
        table.add_row("encoding", report.encoding)
    if report.dimensions_dropped:
        dims = " and ".join(report.dimensions_dropped)
        table.add_row("dropped", f"{dims} values (geometries stored 2D)")
    if report.merged_parts:
        table.add_row("parts merged", f"{report.merged_parts:,}")
    if report.version_id:
        table.add_row("draft version", str(report.version_id))
    if report.ignored_columns:
        table.add_row("ignored columns", ", ".join(report.ignored_columns[:12]))
    console.print(table)
    if report.reject_file:
        console.print(f"rejected rows: {report.reject_file}")
