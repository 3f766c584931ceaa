"""The demo city's year of incidents: a background where people live, with seasonality and
daily rhythm, plus planted hotspots that start, grow and fade."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_service.demo.density import CENTRE_LAT, CENTRE_LON
from geo_service.geo.assign import NO_GRID

CATEGORY_MIX = {
    "disputes": 0.17,
    "public_order": 0.14,
    "safety_hazard": 0.07,
    "sanitation": 0.23,
    "facilities": 0.16,
    "traffic": 0.15,
    "social_assistance": 0.08,
}
DEFAULT_PRIORITY = {
    "disputes": 3,
    "public_order": 2,
    "safety_hazard": 1,
    "sanitation": 4,
    "facilities": 4,
    "traffic": 3,
    "social_assistance": 2,
}
# The demo's stage times (its own assumptions, in the spirit of the seeds' targets): a dispatch
# target per priority (response_targets' defaults), resolution targets per category (the
# taxonomy's), and log-normal delays that meet them most of the time.
DISPATCH_TARGET_S = {1: 60, 2: 180, 3: 300, 4: 3600}
RESOLUTION_TARGET_MIN = {
    "disputes": 4320,
    "public_order": 240,
    "safety_hazard": 120,
    "sanitation": 1440,
    "facilities": 4320,
    "traffic": 240,
    "social_assistance": 1440,
}
# Arrival targets per category, seconds from the report to a responder on scene (the
# categories' ``response_target_s``; the reports' arrival stage): the demo's assumption, in
# the spirit of the grid offices' "arrive within 15/30 minutes" for urgent matters and same
# morning or afternoon for the rest. The 1/3/5-minute tiers above are dispatch targets.
ARRIVAL_TARGET_S = {
    "disputes": 1800,
    "public_order": 1200,
    "safety_hazard": 900,
    "sanitation": 7200,
    "facilities": 7200,
    "traffic": 1200,
    "social_assistance": 3600,
}
STAMPS = ("dispatched_at", "accepted_at", "arrived_at", "resolved_at", "closed_at")
# The descriptions are drawn in the demo's language by ``demo.descriptions``.


@dataclass(frozen=True)
class PlantedHotspot:
    """A hotspot the generator plants, with the emerging-hotspot category it should produce."""

    name: str
    expected_pattern: str
    lon: float
    lat: float
    sigma_m: float
    incidents: int
    category: str
    profile: str  # how daily intensity evolves over the year


HOTSPOT_PLANS = (
    # name, expected emerging pattern, profile, share of incidents, category, sigma (m)
    ("market_night_noise", "intensifying", "ramp_up", 0.012, "public_order", 180.0),
    ("old_estate_disputes", "persistent", "steady", 0.010, "disputes", 220.0),
    ("construction_site", "diminishing", "ramp_down", 0.010, "safety_hazard", 160.0),
    ("new_development", "new", "late_burst", 0.006, "sanitation", 170.0),
    # A night market opened a year ago in a residential quarter off the centre and draws more
    # stalls every month: its noise and blocked pavements grow month on month, the trend a
    # grid office watches on the monthly emerging hot spot map (all categories together).
    ("night_market", "intensifying", "opening", 0.018, "public_order", 150.0),
)


def _profile(name: str, days: int) -> np.ndarray:
    """Daily intensity of a planted hotspot, shaped like the ArcGIS pattern it should produce.

    Intensifying, persistent and diminishing hotspots are hot throughout (ArcGIS asks for 90% of
    the bins) and differ in trend; a new hotspot appears only in the last two weeks.
    """
    t = np.arange(days) / max(days - 1, 1)
    if name == "ramp_up":
        return 0.6 + 1.4 * t
    if name == "steady":
        return np.ones(days)
    if name == "ramp_down":
        return 2.0 - 1.4 * t
    if name == "opening":
        return 1.0 + 2.5 * t
    if name == "late_burst":
        return np.where(t > 1 - 14 / max(days, 1), 1.0, 0.0)
    raise ValueError(name)


def plan_hotspots(
    rng: np.random.Generator, households: pd.DataFrame, n_incidents: int
) -> list[PlantedHotspot]:
    """Place the planted hotspots in populated places, apart from each other."""
    spots: list[PlantedHotspot] = []
    # Hotspots sit in populated places, apart from each other.
    candidates = households.sample(n=min(len(households), 4000), random_state=rng.integers(2**31))
    chosen: list[tuple[float, float]] = []
    for name, pattern, profile, share, category, sigma in HOTSPOT_PLANS:
        for lon, lat in zip(candidates.lon, candidates.lat, strict=True):
            far = all(abs(lon - a) > 0.03 or abs(lat - b) > 0.03 for a, b in chosen)
            # A new development grows on the edge of town, away from the busy centre.
            off_centre = np.hypot(lon - CENTRE_LON, lat - CENTRE_LAT)
            edge = pattern != "new" or off_centre > 0.07
            # The night market is in a quarter of its own: its growth, not the busy centre's
            # steady load, is what its cells show.
            quarter = name != "night_market" or 0.035 < off_centre < 0.07
            if far and edge and quarter:
                chosen.append((lon, lat))
                spots.append(
                    PlantedHotspot(
                        name,
                        pattern,
                        float(lon),
                        float(lat),
                        sigma,
                        int(n_incidents * share),
                        category,
                        profile,
                    )
                )
                break
    return spots


STAGES = ["reported", "dispatched", "accepted", "on_scene", "resolved", "closed", "cancelled"]
# (from hours old, to hours old, share in each of STAGES) for the last day's reports
BACKLOG = (
    (0.0, 1.0, [0.35, 0.2, 0.2, 0.15, 0.05, 0.04, 0.01]),
    (1.0, 4.0, [0.04, 0.03, 0.08, 0.15, 0.3, 0.38, 0.02]),
    (4.0, 24.0, [0.0, 0.0, 0.01, 0.02, 0.12, 0.82, 0.03]),
)


def draw_incidents(
    rng, n, days, start, end, households, hotspots, to_metric, to_wgs, index, grid_rows
) -> pd.DataFrame:  # noqa: ANN001
    """n incidents over ``days`` days from ``start``: the background plus the hotspots'."""
    n_spot = sum(h.incidents for h in hotspots)
    n_base = max(n - n_spot, 0)
    categories = np.array(list(CATEGORY_MIX))
    # Background: where people live, with a short walk around the building.
    src = rng.integers(0, len(households), n_base)
    hx, hy = to_metric.transform(households.lon.values[src], households.lat.values[src])
    bx = np.asarray(hx) + rng.normal(0, 60, n_base)
    by = np.asarray(hy) + rng.normal(0, 60, n_base)
    base_cat = rng.choice(categories, n_base, p=list(CATEGORY_MIX.values()))
    # Local days from the one ``start`` falls in to the one ``end`` falls in: the history runs
    # up to ``end`` itself. The last day is drawn as a whole one and its reports after ``end``
    # are cut below, so the hours before a demo starts are as busy as those hours ever are.
    first_day = pd.Timestamp(start).tz_convert("Asia/Shanghai").normalize()
    bins = days + 1
    today = np.ones(bins)
    # Day of year: mild seasonality, busier weekends for disputes and public order.
    day_w = (1 + 0.15 * np.sin(np.arange(bins) / days * 2 * np.pi)) * today
    base_day = rng.choice(bins, n_base, p=day_w / day_w.sum())
    weekend = (start + pd.to_timedelta(base_day, unit="D")).day_of_week >= 5
    social = np.isin(base_cat, ["disputes", "public_order"])
    redraw = social & ~weekend & (rng.random(n_base) < 0.12)
    base_day[redraw] = rng.choice(bins, int(redraw.sum()), p=today / today.sum())

    xs, ys, cats, day = [bx], [by], [base_cat], [base_day]
    for spot in hotspots:
        sx, sy = to_metric.transform(spot.lon, spot.lat)
        xs.append(sx + rng.normal(0, spot.sigma_m, spot.incidents))
        ys.append(sy + rng.normal(0, spot.sigma_m, spot.incidents))
        cats.append(np.full(spot.incidents, spot.category))
        p = np.append(_profile(spot.profile, days), 0.0) + np.append(
            np.zeros(days), _profile(spot.profile, days)[-1]
        )
        p = p * today
        # Days drawn by systematic sampling of the profile (one random offset, then evenly
        # spaced quantiles): the spot follows its profile without Poisson noise, so a steady
        # spot shows no chance trend and a ramp its ramp, whatever the seed.
        cdf = np.cumsum(p / p.sum())
        quantiles = (rng.random() + np.arange(spot.incidents)) / spot.incidents
        day.append(np.minimum(np.searchsorted(cdf, quantiles), bins - 1))
    x, y = np.concatenate(xs), np.concatenate(ys)
    cat, day_idx = np.concatenate(cats), np.concatenate(day)
    total = len(x)
    # Hour of day in local time (UTC+8): morning and evening peaks; public order at night.
    hours = np.arange(24)
    daytime = 0.2 + np.exp(-((hours - 10) ** 2) / 8) + 1.2 * np.exp(-((hours - 19) ** 2) / 6)
    night = 0.3 + np.exp(-(((hours - 23) % 24) ** 2) / 6) + np.exp(-((hours + 1) ** 2) / 6)
    hour = np.where(
        cat == "public_order",
        rng.choice(24, total, p=night / night.sum()),
        rng.choice(24, total, p=daytime / daytime.sum()),
    )
    seconds = rng.integers(0, 3600, total)
    local = (
        first_day
        + pd.to_timedelta(day_idx, unit="D")
        + pd.to_timedelta(hour * 3600 + seconds, unit="s")
    )
    reported = local.tz_convert("UTC")
    lon, lat = to_wgs.transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    grid = index.assign(lon, lat)
    priority = np.array([DEFAULT_PRIORITY[c] for c in cat])
    shift = rng.choice([-1, 0, 1], total, p=[0.1, 0.8, 0.1])
    priority = np.clip(priority + shift, 1, 4)
    age_h = (pd.Timestamp(end) - reported).total_seconds().values / 3600
    status = np.where(rng.random(total) < 0.04, "cancelled", "closed").astype(object)
    # The open backlog at the end is the recent one, as in a city that keeps up: most
    # reports of the last hour are still being handled, few of the last day, none older
    # (a grid settles small matters within hours; "resolved" waits for the check to close).
    for low, high, shares in BACKLOG:
        band = (age_h >= low) & (age_h < high)
        status[band] = rng.choice(STAGES, int(band.sum()), p=shares)
    frame = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "category": cat,
            "priority": priority,
            "status": status,
            "reported_at": reported,
            "source": rng.choice(
                ["citizen", "grid_worker", "hotline", "sensor"], total, p=[0.45, 0.3, 0.2, 0.05]
            ),
            "grid": grid,
        }
    )
    frame = frame[(frame.grid != NO_GRID) & (frame.reported_at < pd.Timestamp(end))]
    frame = frame.sort_values("reported_at", kind="stable").reset_index(drop=True)
    frame["grid_code"] = grid_rows.code.values[frame.grid.values]
    # drawn last, from a stream of their own: the map, homes and reports stay as they were
    lifecycle = lifecycles(np.random.default_rng(rng.integers(2**63)), frame, pd.Timestamp(end))
    return pd.concat([frame.drop(columns="grid"), lifecycle], axis=1)


def lifecycles(rng: np.random.Generator, frame: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """The lifecycle stamps, escalation level and dispute outcome of generated incidents, as
    the service would have left them for their status: dispatched, accepted, arrived (one in
    ten resolved or closed ones settled without a visit), resolved and closed in turn, each a
    log-normal delay after the last; a cancelled one was cancelled after 0-2 of those stages.

    Every stamp its status implies is there and none after ``end``: an incident whose drawn
    stages would run past ``end`` has them squeezed into its age (a report of ten minutes ago
    already on scene got there fast). An incident climbs one escalation level per missed
    target (dispatch, resolution), as the server's escalation does, and ``escalated_at`` is
    when it missed the last of them; a resolved dispute ended settled 85% of the time."""
    n = len(frame)
    reach = frame.status.map(
        {"reported": 0, "dispatched": 1, "accepted": 2, "on_scene": 3, "resolved": 4, "closed": 5}
    )
    cancelled = (frame.status == "cancelled").to_numpy()
    reach = reach.fillna(0).to_numpy().astype(int)
    reach[cancelled] = rng.integers(0, 3, int(cancelled.sum()))
    dispatch_s = frame.priority.map(DISPATCH_TARGET_S).to_numpy(float)
    resolution_s = frame.category.map(RESOLUTION_TARGET_MIN).to_numpy(float) * 60
    medians = (0.35 * dispatch_s, np.full(n, 30.0), np.full(n, 480.0), 0.25 * resolution_s,
               np.full(n, 7200.0))  # fmt: skip
    # seconds from the report to each stage (stages, incidents)
    elapsed = np.cumsum(
        np.stack([median * np.exp(rng.normal(0.0, 0.8, n)) for median in medians]),
        axis=0,
    )
    no_visit = rng.random(n) < 0.1
    age = (end - frame.reported_at).dt.total_seconds().to_numpy()
    cols = np.arange(n)
    last = np.where(reach > 0, elapsed[np.clip(reach - 1, 0, len(STAMPS) - 1), cols], 0.0)
    squeeze = np.where(last > age, age / np.maximum(last, 1e-9), 1.0)
    elapsed = elapsed * squeeze
    last = last * squeeze
    at = frame.reported_at.array
    out: dict[str, object] = {}
    for i, name in enumerate(STAMPS):
        keep = reach > i
        if name == "arrived_at":  # settled without a visit: only a resolved or closed one
            keep &= ~(no_visit & (reach >= 4))
        stamp = pd.Series(at + pd.to_timedelta(elapsed[i], unit="s"), index=frame.index)
        out[name] = stamp.where(keep)
    gone_s = np.minimum(last + 1800.0 * rng.random(n), age)
    gone = pd.Series(at + pd.to_timedelta(gone_s, unit="s"), index=frame.index)
    out["cancelled_at"] = gone.where(cancelled)
    waited = lambda name: (out[name] - frame.reported_at).dt.total_seconds()  # noqa: E731
    late_dispatch = (waited("accepted_at") > dispatch_s).to_numpy()
    late_resolution = (waited("resolved_at") > resolution_s).to_numpy()
    out["escalation_level"] = (late_dispatch.astype(int) + late_resolution.astype(int)).clip(0, 3)
    missed_s = np.where(late_resolution, resolution_s, np.where(late_dispatch, dispatch_s, np.nan))
    escalated = pd.Series(
        at + pd.to_timedelta(np.nan_to_num(missed_s), unit="s"), index=frame.index
    )
    out["escalated_at"] = escalated.where(late_dispatch | late_resolution)
    disputes = (frame.category == "disputes").to_numpy() & (reach >= 4)
    settled = rng.random(n) < 0.85
    outcome = pd.Series(None, index=frame.index, dtype=object)
    outcome[disputes & settled] = "settled"
    outcome[disputes & ~settled] = "unsettled"
    out["outcome"] = outcome
    return pd.DataFrame(out, index=frame.index)


# The share of a grid's incidents its own grid worker handles, by category: the demo's
# assumption after "small matters stay in the grid" (refuse, facilities, neighbours' disputes
# and welfare visits are the grid worker's daily round; order, traffic and hazards need the
# community's patrol more often). The rest go to the patrol of the grid's community.
GRID_WORKER_SHARE = {
    "disputes": 0.7,
    "public_order": 0.45,
    "safety_hazard": 0.35,
    "sanitation": 0.85,
    "facilities": 0.8,
    "traffic": 0.4,
    "social_assistance": 0.85,
}
IN_FLIGHT = ("dispatched", "accepted", "on_scene")  # a responder holds these (it is busy)


def assign_responders(
    rng: np.random.Generator, incidents: pd.DataFrame, community_of_grid: pd.Series
) -> pd.DataFrame:
    """``incidents`` with ``responder_callsign``: who was sent to each incident ever
    dispatched (None for the rest). The grid's own worker takes ``GRID_WORKER_SHARE`` of its
    incidents, the community's patrol (``PAT-<community>-1``) the others. A responder holds one
    incident in flight at a time (the service's ``ux_incidents_open_responder``): one in
    flight whose responder and the alternative already hold one waits as ``reported``
    (``demote``). ``community_of_grid``: community code by grid code."""
    frame = incidents.copy()
    sent = frame.dispatched_at.notna().to_numpy()
    own = rng.random(len(frame)) < frame.category.map(GRID_WORKER_SHARE).to_numpy(float)
    worker = ("GW-" + frame.grid_code).to_numpy(object)
    patrol = ("PAT-" + frame.grid_code.map(community_of_grid) + "-1").to_numpy(object)
    first, second = np.where(own, worker, patrol), np.where(own, patrol, worker)
    callsign = np.array(np.where(sent, first, None), dtype=object)
    taken: set[str] = set()
    waiting = np.zeros(len(frame), dtype=bool)
    # in reported order; the history's last hours only: a few dozen a thousand grids
    for i in np.flatnonzero(frame.status.isin(IN_FLIGHT).to_numpy()):
        free = [c for c in (first[i], second[i]) if c not in taken]
        if free:
            taken.add(free[0])
            callsign[i] = free[0]
        else:
            waiting[i] = True
    frame["responder_callsign"] = callsign
    return demote(frame, waiting)


def demote(incidents: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``incidents`` with those under ``mask`` back to ``reported``: not sent, no stage
    stamps, no responder (a report nobody was free to take)."""
    frame = incidents.copy()
    if not mask.any():
        return frame
    frame.loc[mask, "status"] = "reported"
    for column in STAMPS:
        frame.loc[mask, column] = pd.NaT
    frame.loc[mask, "responder_callsign"] = None
    return frame


def responder_status(responders: pd.DataFrame, incidents: pd.DataFrame) -> pd.Series:
    """The responders' status as the service keeps it: ``busy`` exactly while holding an
    incident in flight (``IN_FLIGHT``); the others keep their drawn status, ``available``
    where it was drawn busy."""
    holding = incidents.responder_callsign[incidents.status.isin(IN_FLIGHT)]
    status = responders.status.where(responders.status != "busy", "available")
    return status.where(~responders.callsign.isin(set(holding)), "busy")
