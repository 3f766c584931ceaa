"""``geo-service export`` and ``geo-service analytics run``: the batch path past one server."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from geo_service.cli.common import console, database_url, fail, progress_bar
from geo_service.i18n import N_, format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings

app = typer.Typer(help=_("Batch analytics over the exported dataset."), no_args_is_help=True)

# the kinds are words of the progress bar and summary too: marked for the catalogue
EXPORT_KINDS = (N_("incidents"), N_("households"), N_("rental-units"))
RUN_KINDS = (
    N_("heatmap"),
    N_("hotspots"),
    N_("emerging"),
    N_("workload"),
    N_("reattribute"),
    N_("proposals"),
)


def _engine():  # noqa: ANN202
    from geo_service.db.engine import make_engine

    settings = Settings()
    return make_engine(database_url(settings), settings.database)


def _choice(value: str, options: tuple[str, ...], what: str) -> str:
    if value not in options:
        raise typer.BadParameter(
            format_message("{what} must be one of {options}", what=what, options=", ".join(options))
        )
    return value


def export_command(
    kind: Annotated[str, typer.Argument(help=_("incidents, households or rental-units"))],
    to: Annotated[Path, typer.Option("--to", help=_("Dataset folder (created when missing)"))],
    format: Annotated[str, typer.Option("--format", help=_("Only geoparquet"))] = "geoparquet",  # noqa: A002
) -> None:
    """Export a table as partitioned GeoParquet (H3 res-3 x month); later runs write only
    the partitions that changed."""
    from geo_service.services.batch.export import export_dataset

    _choice(kind, EXPORT_KINDS, "kind")
    _choice(format, ("geoparquet",), "format")
    with fail(), progress_bar() as bar:
        task = bar.add_task(_(kind), total=None)

        def progress(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=max(total, 1), description=_(kind))

        out = export_dataset(_engine(), kind, to, progress=progress)
    console.print(
        format_message(
            "{kind}: {written} of {partitions} partitions written ({rows} rows), {unchanged} "
            "unchanged, {removed} removed, in {seconds} s -> {path}",
            kind=_(out["kind"]),
            written=out["written"],
            partitions=out["partitions"],
            rows=f"{out['rows_written']:,}",
            unchanged=out["unchanged"],
            removed=out["removed"],
            seconds=out["seconds"],
            path=out["path"],
        )
    )


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    from geo_service.errors import InvalidInputError
    from geo_service.instants import parse_instant

    # a date is local midnight of GEO_TIMEZONE, a time without an offset local time
    try:
        return parse_instant(value, name)
    except InvalidInputError as exc:
        raise typer.BadParameter(_(exc.detail)) from None


@app.command(
    "run",
    help=_("Run a batch computation on the chosen engine and store it for the API and tiles."),
)
def run(
    kind: Annotated[str, typer.Argument(help=", ".join(RUN_KINDS))],
    dataset: Annotated[Path, typer.Option(help=_("The exported dataset"))] = Path("export"),
    engine: Annotated[str, typer.Option(help=_("local (in-process) or dask"))] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Dask scheduler, e.g. tcp://host:8786 (default: a "
                "LocalCluster of --workers processes)"
            )
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help=_("LocalCluster worker processes"))] = 2,
    res: Annotated[int, typer.Option(help=_("H3 resolution 6..10"))] = 8,
    since: Annotated[str | None, typer.Option(help=_("ISO 8601 with offset"))] = None,
    until: Annotated[str | None, typer.Option(help=_("ISO 8601 with offset"))] = None,
    category: Annotated[str | None, typer.Option(help=_("Category code"))] = None,
    k: Annotated[int, typer.Option(help=_("k-ring neighbourhood 1..3"))] = 1,
    bin: Annotated[
        str,
        typer.Option(
            help=_("emerging: day, week, month, quarter or year (calendar bins of GEO_TIMEZONE)")
        ),
    ] = "month",  # noqa: A002
    window_days: Annotated[int, typer.Option(help=_("workload window"))] = 90,
    bbox: Annotated[
        str | None, typer.Option(help=_("heatmap: minlon,minlat,maxlon,maxlat"))
    ] = None,
    version: Annotated[int | None, typer.Option(help=_("reattribute: boundary version"))] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help=_("proposals: community code (repeatable)"))
    ] = None,
) -> None:
    """Run a batch computation on the chosen engine and store it for the API and tiles."""
    from geo_service.errors import InvalidInputError
    from geo_service.geo.bbox import BBox
    from geo_service.services.batch.execute import run_batch
    from geo_service.services.batch.request import BatchRequest

    _choice(kind, RUN_KINDS, "kind")
    _choice(engine, ("local", "dask"), "engine")
    box = None
    if bbox is not None:
        try:
            box = BBox.parse(bbox)
        except InvalidInputError as exc:
            raise typer.BadParameter(_(exc.detail)) from None
    req = BatchRequest(
        kind=kind,
        dataset=dataset,
        res=res,
        since=_when(since, "since"),
        until=_when(until, "until"),
        category=category,
        k=k,
        bin=bin,
        window_days=window_days,
        bbox=box,
        version_id=version,
        scope=tuple(scope or ()),
    )
    with fail(), progress_bar() as bar:
        task = bar.add_task(f"{_(kind)} ({engine})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        out = run_batch(
            _engine(),
            req,
            engine_name=engine,
            scheduler=scheduler,
            workers=workers,
            actor=f"geo-service analytics run ({engine})",
            progress=progress,
        )
    console.print(
        format_message(
            "batch run {id}: {kind} on {engine}, {partitions} partitions, {seconds} s",
            id=out["run_id"],
            kind=_(kind),
            engine=engine,
            partitions=out["partitions"],
            seconds=out["seconds"],
        )
    )
    console.print(json.dumps(out["summary"], default=str))
