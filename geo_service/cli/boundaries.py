"""``geo-service boundaries versions|validate|publish|diff``: versioned boundary sets."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from geo_service.cli.common import console, database_url, fail
from geo_service.i18n import N_, format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings

app = typer.Typer(help=_("Versioned boundary sets."), no_args_is_help=True)


def _engine():  # noqa: ANN202
    from geo_service.db.engine import make_engine

    settings = Settings()
    return make_engine(database_url(settings), settings.database)


@app.command("versions", help=_("List boundary versions with their status, dates and area counts."))
def versions() -> None:
    """List boundary versions with their status, dates and area counts."""
    from geo_service.services.boundaries.catalogue import list_versions

    with fail():
        for v in list_versions(_engine()):
            console.print(
                f"{v['id']:>4}  {_(VERSION_STATUS_WORDS.get(v['status'], v['status'])):<9}  "
                + format_message(
                    "from {start} to {end}",
                    start=f"{v['effective_from'] or '-':<26}",
                    end=f"{v['effective_to'] or '-':<26}",
                )
                + f"  {version_name(v['name'])}  {area_counts(v['areas'])}"
            )


# A version's status as the list names it (vocabulary.VERSION_STATUSES)
VERSION_STATUS_WORDS = {
    "draft": N_("draft"),
    "scheduled": N_("scheduled"),
    "published": N_("published"),
    "retired": N_("retired"),
}
# The levels as the list of versions names them, from the top down
LEVEL_WORDS = {
    "district": N_("district"),
    "street": N_("street"),
    "community": N_("community"),
    "grid": N_("grid"),
}
# The names the service gives a version it creates itself (demo/load.py, planning/drafts.py):
# stored in English, shown in the command's language
DEMO_NAME = N_("Demo city")
PROPOSAL_NAME = re.compile(r"proposal for (?P<parents>.+)")


def area_counts(counts: dict[str, int] | None) -> str:
    """The areas of a version per level in words: ``district 2 · street 40 · grid 1,500``."""
    counts = counts or {}
    levels = [*LEVEL_WORDS, *sorted(set(counts) - set(LEVEL_WORDS))]
    return " · ".join(
        f"{_(LEVEL_WORDS.get(level, level))} {counts[level]:,}"
        for level in levels
        if level in counts
    )


def version_name(name: str) -> str:
    """A version's name, in the command's language when the service wrote it."""
    if name == DEMO_NAME:
        return _(DEMO_NAME)
    proposal = PROPOSAL_NAME.fullmatch(name)
    if proposal:
        return format_message("proposal for {parents}", parents=proposal["parents"])
    return name


@app.command(
    "validate",
    help=_("Check a version: overlaps, gaps, children crossing parents, slivers, unreached areas."),
)
def validate(version: int) -> None:
    """Check a version: overlaps, gaps, children crossing parents, slivers, unreached areas."""
    from geo_service.services.boundaries.validation import validate_version

    with fail():
        report = validate_version(_engine(), version)
    typer.echo(json.dumps(report, indent=2, default=str))
    if not report["valid"]:
        raise typer.Exit(1)


@app.command(
    "publish",
    help=_("Make a draft current; re-attributes households, rental units, responders, incidents."),
)
def publish(
    version: int,
    effective_from: Annotated[
        str,
        typer.Option(
            help=_(
                "Date (local midnight) or ISO time the version takes effect (local time of "
                "GEO_TIMEZONE unless it carries an offset)"
            )
        ),
    ],
    force: Annotated[
        bool, typer.Option(help=_("Publish even if validation finds problems"))
    ] = False,
    override_reason: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Why a proposal whose balance ended outside its band is published anyway "
                "(kept in the audit log)"
            )
        ),
    ] = None,
) -> None:
    """Make a draft current; re-attributes households, rental units, responders, incidents."""
    from geo_service.errors import InvalidInputError
    from geo_service.instants import parse_instant
    from geo_service.services.boundaries.publish import publish_version

    # a date is local midnight of GEO_TIMEZONE, a time without an offset local time
    try:
        when = parse_instant(effective_from, "--effective-from")
    except InvalidInputError as exc:
        console.print("[red]" + _("error:") + "[/] " + _(exc.detail))
        raise typer.Exit(2) from None
    with (
        fail(),
        console.status(
            format_message(
                "publishing version {version}: re-attributing households, rental units, "
                "responders and incidents…",
                version=version,
            )
        ),
    ):
        result = publish_version(
            _engine(), version, when, actor="cli", force=force, override_reason=override_reason
        )
    typer.echo(json.dumps(result, indent=2))


@app.command("diff", help=_("Areas added, removed, changed from version A to B, and entity moves."))
def diff(a: int, b: int) -> None:
    """Areas added, removed, changed from version A to B, and entity moves."""
    from geo_service.services.boundaries.crosswalk import diff_versions

    with fail():
        typer.echo(json.dumps(diff_versions(_engine(), a, b), indent=2, default=str))


@app.command(
    "propose",
    help=_("Propose balanced, contiguous, compact grids for communities: a draft version."),
)
def propose_command(
    scope: Annotated[
        list[str], typer.Option("--scope", help=_("Community or street code (repeatable)"))
    ],
    grids: Annotated[
        int | None, typer.Option(help=_("Grids in total (default: today's count)"))
    ] = None,
    tolerance: Annotated[float, typer.Option(help=_("Share of the mean workload"))] = 0.05,
    lock: Annotated[
        list[str] | None, typer.Option("--lock", help=_("A grid to keep as it is (repeatable)"))
    ] = None,
    h3_res: Annotated[int, typer.Option(help=_("Atoms: H3 resolution 9, 10 or 11"))] = 10,
    stability: Annotated[float, typer.Option(help=_("Weight against moving people"))] = 1.0,
    compactness: Annotated[float, typer.Option(help=_("Weight for round grids"))] = 1.0,
    window_days: Annotated[int, typer.Option(help=_("Incident window of the workload"))] = 90,
    name: Annotated[str | None, typer.Option(help=_("Name of the draft version"))] = None,
    households_min: Annotated[
        int | None, typer.Option(help=_("Fewest households a new grid may hold"))
    ] = None,
    households_max: Annotated[
        int | None, typer.Option(help=_("Most households a new grid may hold"))
    ] = None,
    area_max_m2: Annotated[float | None, typer.Option(help=_("Largest area of a new grid"))] = None,
    compactness_min: Annotated[
        float | None, typer.Option(help=_("Lowest Polsby-Popper of a new grid (reported)"))
    ] = None,
) -> None:
    """Propose balanced, contiguous, compact grids for communities: a draft version."""
    from geo_service.cli.common import progress_bar
    from geo_service.services.planning.proposals import ProposalRequest, propose

    req = ProposalRequest(
        parent_codes=scope,
        target_grids=grids,
        tolerance=tolerance,
        locked_grids=lock or [],
        h3_res=h3_res,
        stability=stability,
        compactness=compactness,
        window_days=window_days,
        name=name,
        households_min=households_min,
        households_max=households_max,
        area_max_m2=area_max_m2,
        compactness_min=compactness_min,
    )
    with fail(), progress_bar() as bar:
        task = bar.add_task(_("proposal"), total=100)

        def progress(fraction: float, message: str) -> None:
            # the planner's steps name parents and counts in English: the bar keeps its label
            bar.update(task, completed=round(fraction * 100))

        out = propose(_engine(), req, actor="geo-service boundaries propose", progress=progress)
    m = out["metrics"]
    console.print(format_message("draft version {id}", id=out["version_id"]))
    for label, key in ((_("before"), "workload_before"), (_("after"), "workload_after")):
        b = m[key]
        console.print(
            "  "
            + format_message(
                "workload {when} max/mean {ratio}  CV {cv}  Gini {gini}",
                when=f"{label:<6}",
                ratio=f"{b['max_over_mean']:.3f}",
                cv=f"{b['cv']:.3f}",
                gini=f"{b['gini']:.3f}",
            )
        )
    console.print(
        "  "
        + format_message(
            "Polsby-Popper {before} -> {after}; contiguous {contiguous}; households moved {moved}",
            before=f"{m['polsby_popper_before']:.3f}",
            after=f"{m['polsby_popper_after']:.3f}",
            contiguous=f"{m['contiguous_share']:.0%}",
            moved=f"{m['stability']['households_moved_share']:.1%}",
        )
    )
    if m.get("border_on_roads_after") is not None:
        console.print(
            "  "
            + format_message(
                "borders on roads {before} -> {after}",
                before=f"{m['border_on_roads_before']:.0%}",
                after=f"{m['border_on_roads_after']:.0%}",
            )
        )
    for broken in m["constraints"]["violations"]:
        console.print(
            "  [yellow]"
            + format_message(
                "{grid}: {constraint} {limit}, has {value}",
                grid=broken["grid"],
                constraint=broken["constraint"],
                limit=f"{broken['limit']:g}",
                value=broken["value"],
            )
            + "[/yellow]"
        )
    console.print("  " + format_message("status: {status}", status=m["status"]))
    console.print(
        format_message(
            "next: {command}", command=f"geo-service boundaries validate {out['version_id']}"
        )
    )
