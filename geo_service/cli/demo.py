"""``geo-service demo``: start, migrate, load the demo city when empty, and serve."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from geo_service.cli.common import console, database_url, progress_bar
from geo_service.i18n import N_, format_message
from geo_service.i18n import gettext as _
from geo_service.settings import Settings, SimulateSettings

app = typer.Typer(help=_("The demo city."), invoke_without_command=True)
DEFAULT_OUT = Path("data/boundaries/demo_city")
# What the generator makes and loads, as the progress bars and the summary name them
CITY_WORDS = (
    N_("areas"),
    N_("boundaries"),
    N_("households"),
    N_("rental units"),
    N_("responders"),
    N_("incidents"),
    N_("categories"),
    N_("road segments"),
)
KEYS_FILE = "demo-keys.txt"  # under GEO_DATA_DIR: the keys printed at start, 0600
SIMULATOR_USER = "demo-simulator"  # geo_service.demo.load.SIMULATOR_USER (no heavy import)
# The simulator's budget: 1,500 phones (a grid worker each) reporting a fix every 30 s are
# 3,000 requests a minute; the simulator batches fixes, and sends the rest (reports, lifecycle
# actions, the shift's 1,500 status changes at 08:00 and 20:00) well under twice that.
SIMULATOR_PER_MINUTE = 6000


def demo_language() -> str:
    """The language the demo city's residents write in (its incidents' descriptions): the
    served language ``GEO_LOCALE`` names, Chinese when it names none (a Chinese city)."""
    from geo_service.i18n import supported

    return supported(os.environ.get("GEO_LOCALE") or "zh_CN") or "zh-CN"


@app.callback(
    help=_(
        "Start the database, migrate, load the demo city if the database is empty, and "
        "serve (with the city simulated as it lives, unless --no-simulate)."
    )
)
def demo(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help=_("Address to serve on."))] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=_("Port to serve on."))] = 8000,
    simulate: Annotated[
        bool,
        typer.Option(
            help=_(
                "Keep the city alive: reports arrive, responders move and work "
                "(`geo-service simulate` against this server)."
            )
        ),
    ] = True,
    speed: Annotated[
        float, typer.Option(min=0.1, max=1000, help=_("Simulated seconds per wall second."))
    ] = 1.0,
    access_log: Annotated[
        bool,
        typer.Option(
            help=_("Log a line per request (off: only warnings and errors, so the keys stay).")
        ),
    ] = False,
) -> None:
    """Start the database, migrate, load the demo city if the database is empty, and serve
    (with the city simulated as it lives, unless --no-simulate)."""
    if ctx.invoked_subcommand is not None:
        return
    # The demo city is a Chinese city: its pages, problems and messages default to Chinese
    # (a browser's switch or Accept-Language still chooses; GEO_LOCALE=en keeps English).
    os.environ.setdefault("GEO_LOCALE", "zh_CN")
    # The simulator stands for the city's devices (a phone per grid worker, every unit): its
    # account gets a fleet's request budget, not a person's (README: "The living city").
    os.environ.setdefault(
        "GEO_LIMIT_USER_REQUESTS_PER_MINUTE", f'{{"{SIMULATOR_USER}": {SIMULATOR_PER_MINUTE}}}'
    )
    from geo_service.cli.serve import run_server
    from geo_service.db.engine import make_engine
    from geo_service.db.migrate import migrate_database
    from geo_service.demo.load import database_is_empty

    settings = Settings()
    # Loading the city is set-up, done as the schema's owner (it ends with ANALYZE, which
    # only the owner may run); serving and the demo keys use the application role.
    owner_url = migrate_database(settings.database)
    url = database_url(settings)
    engine = make_engine(url, settings.database)
    if database_is_empty(engine):
        _generate_and_load(
            owner_url, seed=42, grids=1500, incidents=500_000, out=DEFAULT_OUT, end_date=None
        )
    else:
        from geo_service.demo.load import STALE_BACKLOG_H, close_stale_backlog

        _backfill(owner_url)  # and repairs a history generated before it kept to its statuses
        closed = close_stale_backlog(engine)
        console.print(
            format_message(
                "database already holds a city; serving it (closed {n} open incidents older "
                "than {hours} h left from the last run)",
                n=f"{closed:,}",
                hours=STALE_BACKLOG_H,
            )
            if closed
            else _("database already holds a city; serving it")
        )
    keys = _print_demo_keys(engine, f"http://{host}:{port}", Path(settings.database.data_dir))
    engine.dispose()
    if simulate and SIMULATOR_USER in keys:
        _simulate_in_background(f"http://{host}:{port}", keys[SIMULATOR_USER], speed)
    run_server(settings, host, port, access_log=access_log)


def _generate_visits(engine: Any, *, days: int | None = None) -> int:
    """The grid workers' household visits up to today (local): the ``days`` before it, or
    (``None``) since the newest visit stored (a demo served again)."""
    from datetime import datetime, timedelta

    from sqlalchemy import text

    from geo_service.demo.load import record_generated_visits
    from geo_service.instants import deployment_zone

    today = datetime.now(deployment_zone()).date()
    with engine.begin() as conn:
        newest = conn.execute(text("SELECT max(visited_on) FROM household_visits")).scalar_one()
        if days is not None:
            first = today - timedelta(days=days - 1)
        elif newest is None:
            first = today - timedelta(days=364)
        else:
            first = newest + timedelta(days=1)
        return record_generated_visits(conn, first=first, last=today)


def _backfill(owner_url: str) -> None:
    """Give a demo served again later the history of the time it was off."""
    from datetime import UTC, datetime

    from geo_service.db.engine import make_engine
    from geo_service.demo.load import backfill_history

    engine = make_engine(owner_url)
    with progress_bar() as bar:
        task = bar.add_task(_("history since the last run (regenerating the city)"), total=None)
        added = backfill_history(
            engine,
            language=demo_language(),
            now=datetime.now(UTC).replace(second=0, microsecond=0),
            progress=lambda step, n: bar.advance(task, n),
        )
        bar.update(task, total=1, completed=1)
    visits = _generate_visits(engine)
    engine.dispose()
    if visits:
        console.print(format_message("added {n} household visits", n=f"{visits:,}"))
    if added:
        console.print(
            format_message(
                "added {n} incidents: the history of the time the demo was off", n=f"{added:,}"
            )
        )


def _print_demo_keys(engine, base: str, data_dir: Path) -> dict[str, str]:  # noqa: ANN001
    """Issue and print the demo keys, and write them to ``data_dir/KEYS_FILE`` (mode 0600);
    return them by user name."""
    from geo_service.demo.load import issue_demo_keys

    # Plain lines, never a table: a key must survive any terminal width intact.
    lines: list[str] = []
    keys: dict[str, str] = {}
    for row in issue_demo_keys(engine):
        area = row["area"] or _("whole city")
        lines.append(f"  {row['role']:<12} {row['user']:<18} {area:<18} {row['key']}")
        keys[str(row["user"])] = str(row["key"])
    path = write_keys_file(data_dir, lines)
    typer.echo(
        "\n" + _("Demo API keys (new on every start; send as X-API-Key, or sign in at /login):")
    )
    typer.echo("\n".join(lines))
    typer.echo(format_message("(also in {path}, readable by you only)", path=str(path)))
    typer.echo(
        "\n"
        + format_message(
            'try: curl -H "X-API-Key: <key>" "{url}"',
            url=f"{base}/areas/lookup?lon=114.30&lat=30.59",
        )
        + "\n"
    )
    return keys


def write_keys_file(data_dir: Path, lines: list[str]) -> Path:
    """Write the demo keys' lines to ``data_dir/KEYS_FILE``, readable and writable by the
    owner only (0600, set before a byte is written); return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEYS_FILE
    path.unlink(missing_ok=True)  # a file left by another umask or owner is not reused
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return path


def _simulate_in_background(base: str, key: str, speed: float) -> None:
    """Run the simulator against this server in a daemon thread, once it answers."""
    import logging
    import threading
    import time

    import httpx

    log = logging.getLogger("geo_service.simulate")

    def live() -> None:
        from geo_service.simulate.city import Simulation
        from geo_service.simulate.gateway import Gateway
        from geo_service.simulate.run import now_utc, run

        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
            for _attempt in range(600):  # the server starts within a minute or two
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            # people at the console get a head start on each new report (a minute)
            simulation = Simulation(
                Gateway(client),
                start=now_utc(),
                seed=7,
                human_grace_s=SimulateSettings().human_grace_s,
            )
            try:
                simulation.setup()
                log.warning(
                    format_message(
                        "simulating {grids} grids and {responders} responders at {speed}x "
                        "(--no-simulate stops it)",
                        grids=f"{len(simulation.grid_shapes):,}",
                        responders=f"{len(simulation.units):,}",
                        speed=f"{speed:g}",
                    )
                )
                run(simulation, speed=speed, seconds=None)
            except Exception:  # noqa: BLE001 - the demo keeps serving without the simulator
                log.exception(_("the simulator stopped"))

    threading.Thread(target=live, name="simulate", daemon=True).start()


@app.command("generate", help=_("Generate the demo city, write its boundary files, and load it."))
def generate(
    seed: Annotated[int, typer.Option(help=_("Random seed; same seed, same city."))] = 42,
    grids: Annotated[int, typer.Option(min=4, help=_("Number of grids."))] = 1500,
    incidents: Annotated[int, typer.Option(min=0, help=_("Incidents over the year."))] = 500_000,
    end_date: Annotated[
        str | None, typer.Option(help=_("Last day of incidents (YYYY-MM-DD); default today."))
    ] = None,
    out: Annotated[Path, typer.Option(help=_("Where boundary files go."))] = DEFAULT_OUT,
    load: Annotated[bool, typer.Option(help=_("Load into the database (must be empty)."))] = True,
) -> None:
    """Generate the demo city, write its boundary files, and load it."""
    end = None
    if end_date:
        try:
            end = date.fromisoformat(end_date)
        except ValueError:
            console.print(
                "[red]"
                + _("error:")
                + "[/] "
                + format_message("--end-date must be YYYY-MM-DD, got {value}", value=repr(end_date))
            )
            raise typer.Exit(2) from None
    url = None
    if load:
        from geo_service.db.engine import make_engine
        from geo_service.db.migrate import migrate_database
        from geo_service.demo.load import database_is_empty

        settings = Settings()
        url = migrate_database(settings.database)  # loading is set-up: the owner's
        engine = make_engine(url, settings.database)
        empty = database_is_empty(engine)
        engine.dispose()
        if not empty:
            console.print(
                "[red]"
                + _("error:")
                + "[/] "
                + _("the database already holds boundaries; use --no-load or an empty database")
            )
            raise typer.Exit(1)
    _generate_and_load(url, seed=seed, grids=grids, incidents=incidents, out=out, end_date=end)


def _generate_and_load(
    url: str | None, *, seed: int, grids: int, incidents: int, out: Path, end_date: date | None
) -> None:
    from geo_service.db.engine import make_engine
    from geo_service.demo.city import generate_city
    from geo_service.demo.geography import level_counts
    from geo_service.demo.load import load_city, write_boundary_files

    households = 300 * grids
    with progress_bar() as bar:
        tasks = {
            "boundaries": bar.add_task(_("boundaries"), total=sum(level_counts(grids).values())),
            "households": bar.add_task(_("households"), total=households),
            "rental units": bar.add_task(_("rental units"), total=None),
            "incidents": bar.add_task(_("incidents"), total=incidents),
        }

        def gen_progress(step: str, n: int) -> None:
            if step in tasks:
                bar.advance(tasks[step], n)

        city = generate_city(
            seed=seed,
            grids=grids,
            incidents=incidents,
            end_date=end_date,
            progress=gen_progress,
            language=demo_language(),
        )
        for task in tasks.values():
            # a step of unknown size (rental units) counted what it made: that is its total
            shown = bar.tasks[task]
            done = shown.total if shown.total is not None else shown.completed
            bar.update(task, completed=done, total=done)
        paths = write_boundary_files(city, out)
        if url is None:
            console.print(format_message("wrote {n} files to {path}", n=len(paths), path=out))
            return
        sizes = {
            "areas": len(city.areas),
            "households": len(city.households),
            "rental units": len(city.rental_units),
            "responders": len(city.responders),
            "incidents": len(city.incidents),
        }
        load_tasks = {
            k: bar.add_task(format_message("load {what}", what=_(k)), total=v)
            for k, v in sizes.items()
        }

        def load_progress(step: str, n: int) -> None:
            if step in load_tasks:
                bar.advance(load_tasks[step], n)

        engine = make_engine(url)
        counts = load_city(engine, city, progress=load_progress)
        counts["household_visits"] = _generate_visits(engine, days=365)
        engine.dispose()
    console.print(
        _("loaded demo city:")
        + " "
        + ", ".join(
            f"{v:,} {_(LOADED_WORDS.get(k, k.replace('_', ' ')))}" for k, v in counts.items()
        )
    )


# What the loader counts (``load_city``'s keys and the visits), as the summary names them
LOADED_WORDS = {
    "areas": N_("areas"),
    "households": N_("households"),
    "rental_units": N_("rental units"),
    "responders": N_("responders"),
    "incidents": N_("incidents"),
    "incident_escalations": N_("incident escalations"),
    "road_segments": N_("road segments"),
    "household_visits": N_("household visits"),
}
