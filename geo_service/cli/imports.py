"""``geo-service import KIND FILE``: bring data from other systems in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID
from rich.table import Table

from geo_service.cli.common import console, database_url, fail, progress_bar
from geo_service.errors import (
    ConflictError,
    GeoServiceError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
)
from geo_service.i18n import N_, format_message
from geo_service.i18n import gettext as _
from geo_service.ingest.defaults import EDGE_TOLERANCE_M
from geo_service.settings import Settings

KIND_HELP = _("boundaries | incidents | households | rental-units | responders | roads")

# The steps of an import, as the progress bars name them
STEP_WORDS = (N_("read"), N_("validate"), N_("assign"), N_("write"))

# The kinds of file, as the summary's title names them
KIND_WORDS = {
    "boundaries": N_("boundaries"),
    "incidents": N_("incidents"),
    "households": N_("households"),
    "rental-units": N_("rental-units"),
    "responders": N_("responders"),
    "roads": N_("roads"),
}

# Exit codes a script can test (also in the README, "Files from the field").
EXIT_ALL_IN = 0
EXIT_UNEXPECTED = 1  # any other error (database, a draft that is not a draft, ...)
EXIT_UNREADABLE = 2  # missing, unreadable or unsupported file, bad options
EXIT_SOME_REJECTED = 3  # some rows rejected (the reject file), the rest imported
EXIT_REFUSED = 4  # --max-rejected-share exceeded: nothing written
IMPORT_EPILOG = _(
    "Exit codes: 0 every row imported; "
    "3 some rows rejected (listed in the reject file), the rest imported; "
    "4 refused by --max-rejected-share: more rows rejected than allowed, nothing written; "
    "2 the file cannot be read (missing, unreadable, not an accepted format) or bad options; "
    "1 any other error.\n\n"
    "The reject file (<input>.rejects.csv, UTF-8 with BOM for Excel) has the columns row "
    "(1-based feature number; in a CSV/TSV/Excel table the header is not counted, so row 1 "
    "is line 2 of a CSV), reason, and source_<column> with the row's values as read."
)


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        if "=" not in value:
            console.print(
                "[red]"
                + _("error:")
                + "[/] "
                + format_message(
                    "{option} takes SRC=FIELD pairs, got {value}", option=option, value=repr(value)
                )
            )
            raise typer.Exit(2)
        left, right = value.split("=", 1)
        out[left.strip()] = right.strip()
    return out


def import_command(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    file: Annotated[
        Path,
        typer.Argument(
            help=_(
                "GeoJSON, GPKG, Shapefile (.shp or .zip), "
                "GeoParquet, KML/KMZ, Excel .xlsx/.xls, or CSV/TSV with lon/lat columns"
            )
        ),
    ],
    crs: Annotated[
        str | None,
        typer.Option(
            help=_("EPSG code, WKT, or gcj02 / bd09; files that declare a CRS are reprojected")
        ),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help=_(
                "SRC=FIELD: source column to our field (repeatable). SRC may join columns "
                "with '+': 'date+time=reported_at' joins their text with a space, parsed as usual "
                "(--date-format applies to it); columns all named year, month, day and optionally "
                "hour, minute, second (any case), e.g. 'YEAR+MONTH+DAY+HOUR+MINUTE=reported_at', "
                "build the time from whole numbers (--date-format does not apply)"
            ),
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help=_("FIELD=VALUE for every row (repeatable)"))
    ] = None,
    category_map: Annotated[
        Path | None, typer.Option(help=_("CSV source,ours; unknown categories are rejected"))
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            help=_("Time zone of naive timestamps (default: GEO_TIMEZONE, Asia/Shanghai)")
        ),
    ] = None,
    date_format: Annotated[
        list[str] | None,
        typer.Option(
            help=_("strptime format of naive timestamps (repeatable: tried per row in order)")
        ),
    ] = None,
    ambiguous_time: Annotated[
        str,
        typer.Option(
            help=_("a local time that occurs twice (DST fall-back): earliest | latest | reject")
        ),
    ] = "reject",
    layer: Annotated[str | None, typer.Option(help=_("Layer of a multi-layer file"))] = None,
    swap_xy: Annotated[
        bool, typer.Option("--swap-xy", help=_("the file's lon/lat (x/y) are the other way round"))
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Text encoding of a Shapefile's DBF or a CSV/TSV/TXT "
                "(default: .cpg or a UTF-16 BOM, else UTF-8, else GB18030)"
            )
        ),
    ] = None,
    status: Annotated[
        str, typer.Option(help=_("incidents: status of rows without one"))
    ] = "reported",
    source_name: Annotated[
        str | None, typer.Option(help=_("Prefix of stable keys (default: the file name)"))
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help=_("Reject file (default: <input>.rejects.csv)"))
    ] = None,
    level: Annotated[
        str | None, typer.Option(help=_("boundaries: district | street | community | grid"))
    ] = None,
    parent_level: Annotated[
        str | None, typer.Option(help=_("boundaries: level of the parents"))
    ] = None,
    version: Annotated[
        int | None, typer.Option(help=_("boundaries: add to this draft version"))
    ] = None,
    version_name: Annotated[
        str | None, typer.Option(help=_("boundaries: name of a new draft"))
    ] = None,
    dissolve: Annotated[
        bool, typer.Option(help=_("boundaries: merge features that share a code into one area"))
    ] = False,
    edge_tolerance: Annotated[
        float,
        typer.Option(
            help=_("metres: points this close outside the city go to the nearest grid"),
            min=0,
            max=1000,
        ),
    ] = EDGE_TOLERANCE_M,
    max_rejected_share: Annotated[
        float,
        typer.Option(
            help=_("0..1: above this share of rejected rows nothing is written (exit 4)"),
            min=0,
            max=1,
        ),
    ] = 1.0,
    accept_approximate_transform: Annotated[
        bool,
        typer.Option(
            "--accept-approximate-transform",
            help=_("accept a datum shift known only to tens of metres (e.g. Xian 1980)"),
        ),
    ] = False,
) -> None:
    """Import a file; rejected rows go to a reject file with their reasons."""
    from geo_service.db.engine import make_engine
    from geo_service.db.migrate import migrate_database
    from geo_service.services.ingest.imports import (
        ImportOptions,
        RejectedShareExceededError,
        import_file,
        read_mapping_csv,
    )

    with fail(), _import_exit_codes(RejectedShareExceededError):
        options = ImportOptions(
            crs=crs,
            field_map=_pairs(map_, "--map"),
            constants=_pairs(set_, "--set"),
            category_map=read_mapping_csv(category_map) if category_map else None,
            tz=tz,
            date_formats=list(date_format or []),
            ambiguous_time=ambiguous_time,
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
            edge_tolerance_m=edge_tolerance,
            max_rejected_share=max_rejected_share,
            accept_approximate_transform=accept_approximate_transform,
        )
        settings = Settings()
        migrate_database(settings.database)  # as the owner; the import runs as the app role
        url = database_url(settings)
        engine = make_engine(url, settings.database)
        with progress_bar() as bar:
            tasks: dict[str, TaskID] = {}

            def step(name: str, done: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(_(name), total=total)
                if name == "write":
                    bar.update(tasks[name], advance=done, total=total)
                else:
                    bar.update(tasks[name], completed=done, total=total)

            report = import_file(engine, kind, file, options, actor="cli", progress=step)
        engine.dispose()
    table = Table(
        title=format_message(
            "import {kind}: {file}", kind=_(KIND_WORDS.get(kind, kind)), file=file.name
        ),
        show_header=False,
    )
    table.add_row(_("read"), f"{report.read:,}")
    # rows the import took in, not incidents a responder accepted (the status "accepted")
    table.add_row(_("rows accepted by the import"), f"{report.accepted:,}")
    table.add_row(_("inserted"), f"{report.inserted:,}")
    table.add_row(_("already present"), f"{report.already_present:,}")
    if report.updated:  # households whose address the file filled or changed
        table.add_row(_("updated (address)"), f"{report.updated:,}")
    table.add_row(_("rejected"), f"{report.rejected:,}")
    for reason, count in sorted(report.rejected_by_reason.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {_(reason)}", f"{count:,}")
    if report.encoding:
        table.add_row(_("encoding"), report.encoding)
    if report.dimensions_dropped:
        dims = _(" and ").join(report.dimensions_dropped)
        table.add_row(
            _("dropped"), format_message("{dims} values (geometries stored 2D)", dims=dims)
        )
    for label, shown in _assumption_rows(report.assumptions):
        table.add_row(label, shown)
    if report.merged_parts:
        table.add_row(_("parts merged"), f"{report.merged_parts:,}")
    if report.version_id:
        table.add_row(_("draft version"), str(report.version_id))
    if report.ignored_columns:
        table.add_row(_("ignored columns"), ", ".join(report.ignored_columns[:12]))
    console.print(table)
    if report.reject_file:
        console.print(format_message("rejected rows: {path}", path=report.reject_file))
    if report.rejected:
        raise typer.Exit(EXIT_SOME_REJECTED)


# How the summary names what the import assumed (``ImportReport.assumptions``); other keys
# are shown with their underscores as spaces.
ASSUMPTION_LABELS = {
    "crs": N_("CRS"),
    "transformation_accuracy_m": N_("transformation accuracy"),
    "tz": N_("time zone of naive times"),
    "transformation": N_("transformation"),
    "ambiguous_time": N_("repeated local times (DST)"),
    "truncated_columns": N_("columns matched by truncated names"),
    "date_formats": N_("date formats"),
    "edge_snapped": N_("snapped to the nearest grid"),
    "decimal_comma": N_("decimal comma read in"),
    "kmz_documents_not_read": N_("KMZ documents not read (only doc.kml)"),
}


# What the summary shows for the import's own values of an assumption (the report keeps
# them as they are: they are codes and PROJ's or our descriptions)
ASSUMPTION_VALUES = {
    ("ambiguous_time", "reject"): N_("reject the row"),
    ("ambiguous_time", "earliest"): N_("the earlier of the two"),
    ("ambiguous_time", "latest"): N_("the later of the two"),
    ("transformation", "none (the data is in WGS 84)"): N_("none (the data is in WGS 84)"),
    ("transformation_accuracy_m", "unknown"): N_("unknown"),
    ("crs", "GCJ-02 (the offset of WGS 84 that Amap/Gaode and Tencent maps publish)"): N_(
        "GCJ-02 (the offset of WGS 84 that Amap/Gaode and Tencent maps publish)"
    ),
    ("crs", "BD-09 (Baidu's offset of GCJ-02)"): N_("BD-09 (Baidu's offset of GCJ-02)"),
    (
        "transformation",
        "inverse of the public GCJ-02 formula, iterated (geo_service.geo.crs.gcj02_to_wgs84)",
    ): N_("inverse of the public GCJ-02 formula, iterated (geo_service.geo.crs.gcj02_to_wgs84)"),
    (
        "transformation",
        "inverse of Baidu's BD-09 formula, then of GCJ-02, iterated (geo_service.geo.crs.to_wgs84)",
    ): N_(
        "inverse of Baidu's BD-09 formula, then of GCJ-02, iterated (geo_service.geo.crs.to_wgs84)"
    ),
}


def _assumption_rows(assumptions: dict[str, object]) -> list[tuple[str, str]]:
    """(label, value) rows of the summary table for what the import assumed."""
    rows = []
    for key, value in assumptions.items():
        if key in ("encoding", "dimensions_dropped", "edge_tolerance_m"):
            continue  # encoding and dimensions have rows of their own; the tolerance: below
        if isinstance(value, dict):
            shown = ", ".join(f"{k} -> {v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            shown = ", ".join(map(str, value))
        elif isinstance(value, float):
            shown = f"{value:g}"
        elif isinstance(value, str) and (key, value) in ASSUMPTION_VALUES:
            # translated: its meaning; untranslated (English) the value as the option takes it
            said = _(ASSUMPTION_VALUES[key, value])
            shown = said if said != ASSUMPTION_VALUES[key, value] else value
        else:
            shown = str(value)
        if key.endswith("_m") and isinstance(value, int | float):
            shown += " m"
        if key == "edge_snapped":
            tolerance = assumptions.get("edge_tolerance_m")
            within = (
                format_message(" (edge tolerance {metres} m)", metres=f"{tolerance:g}")
                if tolerance
                else ""
            )
            shown = f"{value:,}{within}"
        rows.append((_(ASSUMPTION_LABELS.get(key, key.replace("_", " "))), shown))
    return rows


@contextmanager
def _import_exit_codes(refused: type[GeoServiceError]) -> Iterator[None]:
    """Exit 4 when the share of rejected rows is over the limit (``refused``), 2 for a file
    or options that cannot be used; other errors are left to ``fail()`` (exit 1)."""
    try:
        yield
    except refused as exc:
        console.print("[red]" + _("refused:") + "[/] " + _(exc.detail))
        for reason, count in sorted(exc.extra.get("rejected_by_reason", {}).items()):
            console.print(f"  {_(reason)}: {count:,}")
        reject_file = getattr(exc, "reject_file", None)
        if reject_file:
            console.print(format_message("rejected rows: {path}", path=reject_file))
        raise typer.Exit(EXIT_REFUSED) from None
    except (InvalidInputError, LimitExceededError, NotFoundError, ConflictError) as exc:
        # an option that names nothing usable (an unknown or published --version) is a wrong
        # option, like a bad value: exit 2
        console.print("[red]" + _("error:") + "[/] " + _(exc.detail))
        raise typer.Exit(EXIT_UNREADABLE) from None
