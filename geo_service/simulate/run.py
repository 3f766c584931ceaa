"""Running a simulation against the wall clock: simulated time goes ``speed`` times as fast."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from geo_service.simulate.city import Simulation

TICK_S = 1.0  # wall seconds between two advances


def run(
    simulation: Simulation,
    *,
    speed: float,
    seconds: float | None,
    on_tick: Callable[[Simulation], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Advance ``simulation`` in real time times ``speed`` until ``seconds`` of wall time
    have passed (None: until ``stop()`` says so or the process ends).

    The model is advanced to ``start + speed * elapsed`` once a tick; a tick that takes longer
    than ``TICK_S`` (a slow server) makes the next advance longer, never skips time.
    """
    began = time.monotonic()
    while True:
        elapsed = time.monotonic() - began
        if (seconds is not None and elapsed >= seconds) or (stop is not None and stop()):
            return
        simulation.advance(simulation.start + timedelta(seconds=speed * elapsed))
        if on_tick is not None:
            on_tick(simulation)
        time.sleep(max(0.0, TICK_S - (time.monotonic() - began - elapsed)))


def now_utc() -> datetime:
    """The wall clock (UTC): where a live simulation starts."""
    return datetime.now(UTC)
