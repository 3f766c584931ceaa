"""A simulated city day driven through the public API: reports arrive from every source
(citizens, grid workers' own discovery, the 12345 hotline, sensors), dispatchers send the
best free responder, responders drive, arrive, work, resolve (a dispute with how its
mediation ended); now and then a grid worker on scene escalates a matter to the community and
further, and a resident calls back about a closed one, which is reopened and sent again;
grid workers patrol their grid on the day shift and go off duty at night.

The simulation is a discrete-time model on its own clock (``advance(to)``), deterministic for a
seed and the sequence of ``advance`` calls; it never reads the wall clock itself. Timestamps
that the server checks against its own clock (position fixes) come from ``device_clock``,
which is the wall clock when the simulator drives a real deployment.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from pyproj import Geod

from geo_service.simulate.gateway import Gateway
from geo_service.simulate.rates import arrivals, rate_per_second

GEOD = Geod(ellps="WGS84")
STEP_S = 5.0  # the model's time step (simulated seconds)
FIX_INTERVAL_S = 30.0  # a device reports its position every 30 s (Wuhan's grid workers)
PATROL_SPEED_MPS = 1.4  # a grid worker on foot
MIN_TRIP_S = 30.0
RETRY_S = 60.0  # a report nobody could take is offered again a minute later
MAX_TRIES = 60  # then left to the server's escalation and to people
PICK_UP_S = 60.0  # how often the dispatcher looks for reports it did not make (a backlog)
HANDLING_MEDIAN_S = 20 * 60.0  # time on scene, log-normal around 20 minutes
HANDLING_SIGMA = 0.6
SHIFT_HOURS = (8, 20)  # grid workers' day shift, local time
DISPUTES = "disputes"  # the category whose resolution names an outcome (mediation)
# The demo's assumption: most mediations a grid office takes on end in an agreement.
MEDIATION_SETTLED_SHARE = 0.85
# Where reports come from ("top-down dispatch merged with bottom-up discovery"): the demo
# history's shares (demo/incidents.py): citizens' apps, grid workers' own discovery, the 12345
# hotline, sensors.
SOURCE_SHARES = {"citizen": 0.45, "grid_worker": 0.3, "hotline": 0.2, "sensor": 0.05}
# The demo's assumption of how often a grid worker on scene hands a matter up: to the
# community (8% of jobs), on to the street (2.5%) and the district (0.6%): "small matters stay
# in the grid, big matters stay in the community".
ESCALATION_SHARES = (0.08, 0.025, 0.006)
ESCALATION_REASONS = (
    "beyond the grid: the community office takes it",
    "beyond the community: the street office takes it",
    "beyond the street: the district takes it",
)
# A closed matter the resident calls back about: reopened after 30 minutes to 4 hours.
REOPEN_SHARE = 0.02
REOPEN_AFTER_S = (1800.0, 4 * 3600.0)
# Who escalates on nobody's behalf (the server's scheduler, the CLI's cron run): an
# escalation by anyone else is a person's (or the simulator's own responder's).
AUTOMATIC_ESCALATORS = frozenset({"scheduler", "geo-service escalate"})


@dataclass
class Unit:
    """A simulated responder's device."""

    id: int
    kind: str
    home: int | None
    lon: float
    lat: float
    fixed: bool
    status: str = "available"  # as the server knows it
    phase: str = "idle"  # idle, driving, working
    incident: str | None = None
    leg: tuple[float, float, float, float, float, float] | None = None  # x0 y0 t0 x1 y1 t1
    work_end: float = 0.0
    next_fix: float = 0.0

    def at(self, t: float) -> tuple[float, float]:
        """The position at simulated second ``t`` (along the current leg, if any)."""
        if self.leg is None:
            return self.lon, self.lat
        x0, y0, t0, x1, y1, t1 = self.leg
        share = 1.0 if t1 <= t0 else min(1.0, max(0.0, (t - t0) / (t1 - t0)))
        return x0 + (x1 - x0) * share, y0 + (y1 - y0) * share


@dataclass
class Waiting:
    """A report not yet taken by a responder."""

    incident: str
    lon: float
    lat: float
    category: str
    tries: int = 0
    next_try: float = 0.0
    queued_at: float = 0.0  # when the simulator took it on (its state then was its own doing)
    escalations_seen: int = 0  # escalations it had then (not by the scheduler)


@dataclass
class Totals:
    """What the simulation did so far."""

    counts: Counter[str] = field(default_factory=Counter)

    def __getitem__(self, key: str) -> int:
        return self.counts[key]


class Simulation:
    """The simulated city, driven through ``gateway``.

    Parameters
    ----------
    gateway : Gateway
        The public API (any httpx client signed in as a dispatcher or admin).
    start : datetime
        The simulated instant of the first ``advance`` (timezone-aware).
    seed : int
        Same seed, same reports, choices and trips (given the same server answers).
    tz : str
        The deployment's IANA time zone (shifts and the hour of day).
    grids : int, optional
        Simulate only this many grids (chosen by the seed) with their workers and a matching
        share of the other responders; default every grid.
    device_clock : callable, optional
        The time stamped on position fixes (default: the wall clock, UTC), which the server
        compares with its own clock.
    human_grace_s : float
        Simulated seconds a new, picked-up or reopened report is left alone before the
        simulated dispatcher tries it, so that a person at the console can go first
        (``GEO_SIMULATE_HUMAN_GRACE_S``; the demo's default is a minute). Whatever the grace,
        an incident someone else has dispatched, accepted or escalated is theirs: the
        simulator only moves it when it is one of its own responders' jobs.
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        start: datetime,
        seed: int = 7,
        tz: str = "Asia/Shanghai",
        grids: int | None = None,
        device_clock: Callable[[], datetime] | None = None,
        human_grace_s: float = 0.0,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.api = gateway
        self.start = start
        self.zone = ZoneInfo(tz)
        # Independent streams: what citizens report does not depend on where the
        # responders happened to stand when the simulation began, nor on trips and work.
        # (spawned children depend on their index only: the first four are those of old)
        streams = np.random.SeedSequence(seed).spawn(6)
        self.rng = np.random.default_rng(streams[0])  # reports: when, where, what
        self.unit_rng = np.random.default_rng(streams[1])  # choices of grids and responders
        self.work_rng = np.random.default_rng(streams[2])  # patrols and time on scene
        self.outcome_rng = np.random.default_rng(streams[3])  # how mediations end
        self.source_rng = np.random.default_rng(streams[4])  # who reports
        self.fate_rng = np.random.default_rng(streams[5])  # escalations and reopenings
        self.seed = seed
        self.want_grids = grids
        self.device_clock = device_clock or (lambda: datetime.now(UTC))
        if human_grace_s < 0:
            raise ValueError("human_grace_s must be 0 or more")
        self.human_grace_s = human_grace_s
        self._escalated: Counter[str] = Counter()  # escalations the simulator made, per incident
        self.t = 0.0
        self.units: dict[int, Unit] = {}
        self.waiting: list[Waiting] = []
        self.grid_shapes: dict[int, shapely.Polygon] = {}
        self.categories: list[str] = []
        self.totals = Totals()
        self._reports = 0
        self._known: set[str] = set()  # incidents this dispatcher is handling or handled
        self._picked: set[str] = set()  # of those, the ones others reported
        self._disputes: set[str] = set()  # disputes sent out: resolved with an outcome
        self._where: dict[str, Waiting] = {}  # sent out, not yet closed: where, what
        self._reopening: list[tuple[Waiting, float]] = []  # closed, to be called back, when
        self._next_pick_up = 0.0
        self._next_fix_round = 0.0
        # in-progress incidents found with nobody simulated on them: (incident, due, status)
        self._finishing: list[tuple[str, float, str]] = []
        self._grid_index: shapely.STRtree | None = None

    # --- set-up ------------------------------------------------------------------------------

    def setup(self) -> None:
        """Read the city through the API: grids, service codes, responders."""
        features = sorted(self.api.grids(), key=lambda f: int(f["id"]))
        if not features:
            raise ValueError("the deployment has no grids to simulate")
        chosen = features
        if self.want_grids is not None and self.want_grids < len(features):
            picks = self.unit_rng.choice(len(features), size=self.want_grids, replace=False)
            chosen = [features[i] for i in sorted(picks.tolist())]
        self.grid_shapes = {int(f["id"]): shapely.geometry.shape(f["geometry"]) for f in chosen}
        self._grid_index = shapely.STRtree(list(self.grid_shapes.values()))
        self.categories = sorted(self.api.categories())
        if not self.categories:
            raise ValueError("the deployment offers no service codes to report")
        share = len(chosen) / len(features)
        others: list[dict[str, Any]] = []
        for feature in sorted(self.api.responders(), key=lambda f: int(f["id"])):
            props = feature["properties"]
            if props["kind"] == "grid_worker":
                if props["home_grid_id"] in self.grid_shapes:
                    self._add_unit(feature)
            else:
                others.append(feature)
        keep = math.ceil(len(others) * share)
        if keep:
            picks = self.unit_rng.choice(len(others), size=keep, replace=False)
            for i in sorted(picks.tolist()):
                self._add_unit(others[i])

    def _add_unit(self, feature: dict[str, Any]) -> None:
        props = feature["properties"]
        home = props["home_grid_id"]
        if feature.get("geometry"):
            lon, lat = feature["geometry"]["coordinates"][:2]
        elif home in self.grid_shapes:
            lon, lat = self._point_in(self.grid_shapes[home], self.unit_rng)
        else:
            grid = self.grid_shapes[int(self.unit_rng.choice(sorted(self.grid_shapes)))]
            lon, lat = self._point_in(grid, self.unit_rng)
        unit = Unit(
            id=int(feature["id"]),
            kind=props["kind"],
            home=home,
            lon=float(lon),
            lat=float(lat),
            fixed=bool(props.get("fixed")),
            status=props["status"],
        )
        unit.next_fix = float(self.unit_rng.uniform(0, FIX_INTERVAL_S))  # devices are not in step
        if unit.status == "busy":  # on a job when the simulation began
            unit.phase = "working"
            unit.work_end = float(self.unit_rng.uniform(0, HANDLING_MEDIAN_S))
        self.units[unit.id] = unit

    # --- the clock ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The simulated instant."""
        return self.start + timedelta(seconds=self.t)

    def advance(self, to: datetime) -> None:
        """Run the model up to the simulated instant ``to`` in steps of ``STEP_S``."""
        end = (to - self.start).total_seconds()
        while self.t < end - 1e-9:
            dt = min(STEP_S, end - self.t)
            self._step(dt)
            self.t += dt
        self._send_fixes()

    # --- one step ----------------------------------------------------------------------------

    def _step(self, dt: float) -> None:
        local = self.now.astimezone(self.zone)
        self._shifts(local)
        for _ in range(arrivals(self.rng, rate_per_second(local, len(self.grid_shapes)), dt)):
            self._report()
        self._pick_up()
        self._finish()
        self._reopen()
        self._dispatch()
        if self.t >= self._next_fix_round:  # devices report as the day goes, not only at its end
            self._send_fixes()
            self._next_fix_round = self.t + FIX_INTERVAL_S
        for unit in self.units.values():
            self._move(unit)

    def _shifts(self, local: datetime) -> None:
        on_shift = SHIFT_HOURS[0] <= local.hour < SHIFT_HOURS[1]
        for unit in self.units.values():
            if unit.kind != "grid_worker" or unit.phase != "idle":
                continue
            want = "available" if on_shift else "off_duty"
            if unit.status != want and unit.status in ("available", "off_duty"):
                if self.api.set_status(unit.id, want):
                    unit.status = want
                    self.totals.counts["on duty" if on_shift else "off duty"] += 1

    def _report(self) -> None:
        grid = int(self.rng.choice(sorted(self.grid_shapes)))
        lon, lat = self._point_in(self.grid_shapes[grid], self.rng)
        category = str(self.rng.choice(self.categories))
        self._reports += 1
        key = f"simulate-{self.seed}-{self.start.isoformat()}-{self._reports}"
        source = str(self.source_rng.choice(list(SOURCE_SHARES), p=list(SOURCE_SHARES.values())))
        made = self.api.report(category, lon, lat, key, source)
        if made is None:
            self.totals.counts["report refused"] += 1
            return
        self.totals.counts["reported"] += 1
        self.totals.counts[f"reported ({source})"] += 1
        self._known.add(made["id"])
        self.waiting.append(self._queued(made["id"], lon, lat, category))

    def _pick_up(self) -> None:
        """Take on reports the dispatcher did not make (the demo's backlog when it starts,
        Open311 reports, a colleague's): open, not yet sent, in the grids simulated."""
        if self.t < self._next_pick_up:
            return
        # the first look finds the backlog the city began with; later ones may find what
        # people are handling, which the simulator leaves to them
        backlog = self._next_pick_up == 0.0
        self._next_pick_up = self.t + PICK_UP_S
        for item in self.api.open_incidents():
            if item["id"] in self._known or self._grid_index is None:
                continue
            point = shapely.Point(item["lon"], item["lat"])
            if not len(self._grid_index.query(point, predicate="intersects")):
                continue
            self._known.add(item["id"])
            self._picked.add(item["id"])
            if item["status"] == "reported" and item["responder_id"] is None:
                self.totals.counts["picked up"] += 1
                queued = self._queued(item["id"], item["lon"], item["lat"], item["category"])
                queued.escalations_seen = int(item.get("escalation_level") or 0)
                self.waiting.append(queued)
                continue
            # already under way (a backlog the city was generated with, another dispatcher's):
            # its responder, if simulated and free, works it to the end; else it is finished
            # on the responder's behalf after the rest of a handling time
            unit = self.units.get(item["responder_id"] or -1)
            if not backlog and (unit is None or unit.phase != "idle"):
                # someone else's dispatch to a responder the simulator does not move: theirs
                self.totals.counts["left to people"] += 1
                continue
            self.totals.counts["adopted"] += 1
            if unit is not None and unit.phase == "working" and unit.incident is None:
                # busy when the simulation began: this is the job it is on (it is freed by
                # resolving it, never by a status change that would leave the job held)
                if item["status"] == "dispatched":
                    self.api.act(item["id"], "accept")
                unit.incident = item["id"]
            elif unit is not None and unit.phase == "idle":
                if item["status"] == "dispatched":  # sent, not yet accepted: it accepts now
                    self.api.act(item["id"], "accept")
                unit.status, unit.phase, unit.incident = "busy", "working", item["id"]
                unit.work_end = self.t + self._rest_of_a_job()
            else:
                self._finishing.append((item["id"], self.t + self._rest_of_a_job(), item["status"]))

    def _rest_of_a_job(self) -> float:
        """What is left of a job under way: part of a log-normal handling time."""
        whole = HANDLING_MEDIAN_S * math.exp(self.work_rng.normal(0.0, HANDLING_SIGMA))
        return whole * float(self.work_rng.uniform(0.1, 1.0))

    def _finish(self) -> None:
        """Finish adopted incidents nobody simulated works on, when their time has come."""
        still = []
        for incident, due, status in self._finishing:
            if due > self.t:
                still.append((incident, due, status))
                continue
            steps = {"dispatched": ("accept", "arrive"), "accepted": ("arrive",)}.get(status, ())
            for action in (*steps, "resolve", "close"):
                if not self.api.act(incident, action):
                    break
            else:
                self.totals.counts["closed (picked up)"] += 1
        self._finishing = still

    def _queued(self, incident: str, lon: float, lat: float, category: str) -> Waiting:
        """A report to dispatch, after the people's head start (``human_grace_s``)."""
        return Waiting(
            incident, lon, lat, category, next_try=self.t + self.human_grace_s, queued_at=self.t
        )

    @staticmethod
    def _touched_by_others(found: dict[str, Any], item: Waiting) -> bool:
        """Whether someone else moved an incident the simulator left reported: dispatched
        (or further), or escalated it since (the scheduler's escalations are nobody's)."""
        if found["status"] != "reported" or found.get("responder_id") is not None:
            return True
        by_people = [
            e for e in found.get("escalations") or [] if e.get("by") not in AUTOMATIC_ESCALATORS
        ]
        return len(by_people) > item.escalations_seen

    def _dispatch(self) -> None:
        still: list[Waiting] = []
        for item in self.waiting:
            if item.next_try > self.t:
                still.append(item)
                continue
            if self.t > item.queued_at:
                # time has passed since it was taken on: read it again, someone may have it
                found = self.api.incident(item.incident)
                if found is None or self._touched_by_others(found, item):
                    self._leave_to_others(item, found)
                    continue
            if not self._send_someone(item):
                item.tries += 1
                item.next_try = self.t + RETRY_S
                if item.tries < MAX_TRIES:
                    still.append(item)
                else:
                    self.totals.counts["left waiting"] += 1
        self.waiting = still

    def _leave_to_others(self, item: Waiting, found: dict[str, Any] | None) -> None:
        """Drop a report someone else took on; if they sent one of the simulator's idle
        responders, that responder does its job (accepts, drives there, works)."""
        unit = None if found is None else self.units.get(found.get("responder_id") or -1)
        if (
            found is None
            or unit is None
            or unit.phase != "idle"
            or found["status"] not in ("dispatched", "accepted")
        ):
            self.totals.counts["left to people"] += 1
            return
        if found["status"] == "dispatched" and not self.api.act(item.incident, "accept"):
            self.totals.counts["left to people"] += 1
            return
        self.totals.counts["taken by people"] += 1
        self._where[item.incident] = item
        if item.category == DISPUTES:
            self._disputes.add(item.incident)
        self._drive(unit, item, MIN_TRIP_S)

    def _drive(self, unit: Unit, item: Waiting, trip: float) -> None:
        """Send ``unit`` on its way to ``item`` (``trip`` simulated seconds)."""
        unit.status, unit.phase, unit.incident = "busy", "driving", item.incident
        x, y = unit.at(self.t)
        unit.lon, unit.lat = x, y
        unit.leg = (x, y, self.t, item.lon, item.lat, self.t + trip)

    def _send_someone(self, item: Waiting) -> bool:
        for candidate in self.api.candidates(item.incident):
            unit = self.units.get(int(candidate["id"]))
            if unit is None or unit.phase != "idle" or unit.status != "available":
                continue
            if not self.api.act(item.incident, "dispatch", unit.id):
                continue  # taken meanwhile (another dispatcher, a device's status)
            self.totals.counts["dispatched"] += 1
            if item.category == DISPUTES:
                self._disputes.add(item.incident)
            self._where[item.incident] = item
            if self.api.act(item.incident, "accept"):
                self.totals.counts["accepted"] += 1
            self._drive(unit, item, max(MIN_TRIP_S, float(candidate.get("eta_s") or MIN_TRIP_S)))
            return True
        return False

    def _move(self, unit: Unit) -> None:
        if unit.phase == "driving" and unit.leg is not None and self.t >= unit.leg[5]:
            unit.lon, unit.lat = unit.leg[3], unit.leg[4]
            unit.leg = None
            assert unit.incident is not None
            if self.api.act(unit.incident, "arrive"):
                self.totals.counts["arrived"] += 1
                self._escalate(unit.incident)
            unit.phase = "working"
            work = HANDLING_MEDIAN_S * math.exp(self.work_rng.normal(0.0, HANDLING_SIGMA))
            unit.work_end = self.t + work
        elif unit.phase == "working" and self.t >= unit.work_end and unit.incident is None:
            # busy when the simulation began, on a job it does not know: done now
            if self.api.set_status(unit.id, "available"):
                unit.phase, unit.status = "idle", "available"
                self.totals.counts["freed"] += 1
            else:
                unit.work_end = self.t + RETRY_S
        elif unit.phase == "working" and self.t >= unit.work_end:
            assert unit.incident is not None
            if self.api.act(unit.incident, "resolve", outcome=self._outcome(unit.incident)):
                self.totals.counts["resolved"] += 1
            if self.api.act(unit.incident, "close"):
                # "closed" counts the simulator's own reports; a backlog's apart
                picked = unit.incident in self._picked
                self.totals.counts["closed (picked up)" if picked else "closed"] += 1
                where = self._where.pop(unit.incident, None)
                if where is not None and self.fate_rng.random() < REOPEN_SHARE:
                    after = float(self.fate_rng.uniform(*REOPEN_AFTER_S))
                    self._reopening.append((where, self.t + after))
            unit.phase, unit.incident, unit.status = "idle", None, "available"
        elif unit.phase == "idle" and unit.status == "available" and not unit.fixed:
            self._patrol(unit)

    def _escalate(self, incident: str) -> None:
        """The grid worker on scene hands a matter up, now and then (``ESCALATION_SHARES``):
        one level at a time, each with its reason; the same worker then sees it through."""
        draw = self.fate_rng.random()
        for share, reason in zip(ESCALATION_SHARES, ESCALATION_REASONS, strict=True):
            if draw >= share or not self.api.act(incident, "escalate", note=reason):
                return
            self._escalated[incident] += 1
            self.totals.counts["escalated"] += 1

    def _reopen(self) -> None:
        """A resident calls back about a closed matter: it is reopened and dispatched again."""
        still = []
        for item, due in self._reopening:
            if due > self.t:
                still.append((item, due))
            elif self.api.act(item.incident, "reopen"):
                self.totals.counts["reopened"] += 1
                queued = self._queued(item.incident, item.lon, item.lat, item.category)
                queued.escalations_seen = self._escalated[item.incident]
                self.waiting.append(queued)
        self._reopening = still

    def _outcome(self, incident: str) -> str | None:
        """How a dispute this dispatcher sent someone to ended (the managers' reports count
        mediations); None for any other incident."""
        if incident not in self._disputes:
            return None
        self._disputes.discard(incident)
        settled = self.outcome_rng.random() < MEDIATION_SETTLED_SHARE
        return "settled" if settled else "unsettled"

    def _patrol(self, unit: Unit) -> None:
        if unit.kind != "grid_worker" or unit.home not in self.grid_shapes:
            return
        if unit.leg is not None and self.t < unit.leg[5]:
            return
        x, y = unit.at(self.t)
        unit.lon, unit.lat = x, y
        tx, ty = self._point_in(self.grid_shapes[unit.home], self.work_rng)
        metres = GEOD.inv(x, y, tx, ty)[2]
        unit.leg = (x, y, self.t, tx, ty, self.t + max(STEP_S, metres / PATROL_SPEED_MPS))

    def _send_fixes(self) -> None:
        fixes = []
        stamp = self.device_clock()
        for unit in self.units.values():
            if unit.fixed or unit.status == "off_duty" or unit.next_fix > self.t:
                continue
            lon, lat = unit.at(self.t)
            fixes.append((unit.id, round(lon, 7), round(lat, 7), stamp))
            unit.next_fix = self.t + FIX_INTERVAL_S
        if fixes:
            # a unit someone else took off duty shares no position (the server refuses it)
            off_duty = self.api.positions(fixes)
            for rid in off_duty:
                self.units[rid].status = "off_duty"
            self.totals.counts["fixes"] += len(fixes) - len(off_duty)

    @staticmethod
    def _point_in(polygon: shapely.Polygon, rng: np.random.Generator) -> tuple[float, float]:
        """A uniformly random point in ``polygon`` (rejection sampling in its bounds)."""
        minx, miny, maxx, maxy = polygon.bounds
        for _ in range(200):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if polygon.contains(shapely.Point(x, y)):
                return float(x), float(y)
        point = polygon.representative_point()
        return float(point.x), float(point.y)
