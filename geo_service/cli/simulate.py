"""``geo-service simulate``: drive any deployment through its public API like a living city."""

from __future__ import annotations

from typing import Annotated

import typer

from geo_service.cli.common import console
from geo_service.i18n import N_, format_message
from geo_service.i18n import gettext as _

# What the simulation counts (``Totals.counts``), as the summary names them
COUNT_WORDS = (
    N_("accepted"),
    N_("adopted"),
    N_("arrived"),
    N_("closed"),
    N_("closed (picked up)"),
    N_("dispatched"),
    N_("fixes"),
    N_("freed"),
    N_("left to people"),
    N_("left waiting"),
    N_("off duty"),
    N_("on duty"),
    N_("picked up"),
    N_("report refused"),
    N_("reported"),
    N_("resolved"),
    N_("taken by people"),
)
KEY_HELP = _("API key of a dispatcher or admin (the simulator dispatches, and reports positions).")


def simulate_command(
    url: Annotated[
        str, typer.Option(help=_("The deployment's base URL."))
    ] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(help=KEY_HELP, envvar="GEO_SIMULATE_KEY")] = "",
    speed: Annotated[
        float, typer.Option(min=0.1, max=1000, help=_("Simulated seconds per wall second."))
    ] = 20.0,
    grids: Annotated[
        int | None, typer.Option(min=1, help=_("Simulate only this many grids (default: all)."))
    ] = None,
    minutes: Annotated[
        float | None, typer.Option(min=0.0, help=_("Stop after this many wall minutes."))
    ] = None,
    seed: Annotated[int, typer.Option(help=_("Same seed, same city day."))] = 7,
    tz: Annotated[
        str, typer.Option(help=_("The city's time zone (shifts, the hour of day)."))
    ] = "Asia/Shanghai",
    human_grace: Annotated[
        float,
        typer.Option(
            min=0,
            max=86_400,
            envvar="GEO_SIMULATE_HUMAN_GRACE_S",
            help=_(
                "Simulated seconds a new report is left to the people at the console before "
                "the simulator dispatches it."
            ),
        ),
    ] = 60.0,
) -> None:
    """Reports arrive at a real city's rate (Wuhan: ~17,000 a day over ~16,000 grids) with the
    day's and the week's cycle; the best free responder is dispatched by road ETA, drives there,
    works, resolves; grid workers patrol their grid on the day shift (08:00-20:00) and go off
    duty at night; every device reports its position every 30 simulated seconds through
    ``POST /responders/positions``. Exit 1 when the server answers 5xx (listed)."""
    import httpx

    from geo_service.simulate.city import Simulation
    from geo_service.simulate.gateway import ApiError, Gateway
    from geo_service.simulate.run import now_utc, run

    if not key:
        console.print(
            "[red]"
            + _("error:")
            + "[/] "
            + _("give --key (or GEO_SIMULATE_KEY): a dispatcher or admin key")
        )
        raise typer.Exit(2)
    client = httpx.Client(base_url=url.rstrip("/"), headers={"X-API-Key": key}, timeout=60)
    gateway = Gateway(client)
    simulation = Simulation(
        gateway, start=now_utc(), seed=seed, tz=tz, grids=grids, human_grace_s=human_grace
    )
    try:
        simulation.setup()
    except (httpx.HTTPError, ApiError, ValueError) as exc:
        console.print(
            "[red]"
            + _("error:")
            + "[/] "
            + format_message("cannot read the city from {url}: {error}", url=url, error=exc)
        )
        raise typer.Exit(2) from None
    console.print(
        format_message(
            "simulating {grids} grids, {responders} responders at {speed}x; Ctrl-C stops",
            grids=f"{len(simulation.grid_shapes):,}",
            responders=f"{len(simulation.units):,}",
            speed=f"{speed:g}",
        )
    )

    def show(sim: Simulation) -> None:
        counts = sim.totals.counts
        status.update(
            format_message(
                "{time} (simulated)  reported {reported}  dispatched {dispatched}  resolved "
                "{resolved}  waiting {waiting}  fixes {fixes}",
                time=f"{sim.now.astimezone(sim.zone):%Y-%m-%d %H:%M}",
                reported=f"{counts['reported']:,}",
                dispatched=f"{counts['dispatched']:,}",
                resolved=f"{counts['resolved']:,}",
                waiting=f"{len(sim.waiting):,}",
                fixes=f"{counts['fixes']:,}",
            )
        )

    try:
        with console.status(_("starting")) as status:
            run(
                simulation,
                speed=speed,
                seconds=None if minutes is None else minutes * 60,
                on_tick=show,
            )
    except KeyboardInterrupt:
        pass
    except (httpx.HTTPError, ApiError) as exc:
        console.print("[red]" + _("error:") + f"[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        client.close()
    counts = simulation.totals.counts
    console.print(", ".join(f"{_(k)} {v:,}" for k, v in sorted(counts.items())))
    errors = gateway.tally.server_errors
    if errors:
        console.print(
            "[red]"
            + format_message("{n} server errors", n=len(errors))
            + "[/]:\n"
            + "\n".join(errors[:10])
        )
        raise typer.Exit(1)
