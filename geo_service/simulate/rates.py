"""How often a city reports incidents: a daily volume per grid, a diurnal and a weekly cycle.

The volume is Wuhan's (issue 17): about 17,000 incidents a day over about 16,000 grids,
1.06 a grid a day. The shape of the day is the usual one of a city service hotline (12345)
and of police calls for service: quiet from 01:00 to 06:00, rising through the morning,
highest late morning and afternoon, a second smaller peak in the evening. The weights below
are that shape, not a measurement of one city; the tests check the properties the simulator
relies on (mean 1, night below day), not the numbers.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

INCIDENTS_PER_GRID_DAY = 17_000 / 16_000  # Wuhan: ~17,000 a day over ~16,000 grids
# Relative volume per local hour 0..23 (mean 1 after normalising).
_HOURLY = np.array(
    [0.35, 0.25, 0.2, 0.18, 0.18, 0.25, 0.5, 0.9, 1.3, 1.6, 1.7, 1.6]
    + [1.3, 1.4, 1.6, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 0.9, 0.7, 0.5]
)
HOURLY = _HOURLY / _HOURLY.mean()
# Monday..Sunday (mean 1 after normalising): weekends somewhat quieter for city services.
_WEEKLY = np.array([1.05, 1.05, 1.03, 1.03, 1.04, 0.92, 0.88])
WEEKLY = _WEEKLY / _WEEKLY.mean()


def rate_per_second(local: datetime, grids: int) -> float:
    """Expected incidents per second at a local instant over ``grids`` grids.

    Parameters
    ----------
    local : datetime
        The instant in the deployment's time zone (its hour and weekday choose the weights).
    grids : int
        How many grids are simulated (>= 0).

    Returns
    -------
    float
        Incidents per second: ``INCIDENTS_PER_GRID_DAY * grids / 86400`` times the hour's and
        the weekday's weight.

    Examples
    --------
    >>> from datetime import datetime
    >>> night = rate_per_second(datetime(2026, 11, 30, 3), 16_000)
    >>> noon = rate_per_second(datetime(2026, 11, 30, 11), 16_000)
    >>> night < 17_000 / 86_400 < noon
    True
    """
    daily = INCIDENTS_PER_GRID_DAY * grids
    return float(daily / 86_400 * HOURLY[local.hour] * WEEKLY[local.weekday()])


def arrivals(rng: np.random.Generator, rate: float, seconds: float) -> int:
    """How many incidents arrive in ``seconds`` at ``rate`` per second (a Poisson draw)."""
    return int(rng.poisson(max(rate, 0.0) * max(seconds, 0.0)))
