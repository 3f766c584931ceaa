"""Response models of the reports room: ``GET /reports/performance``."""

from __future__ import annotations

from pydantic import Field

from geo_service.api.schemas.strict import Exact


class Rate(Exact):
    """A proportion with its 95% Wilson score interval (Wilson 1927)."""

    numerator: int
    denominator: int = Field(description="the cases counted (n)")
    rate: float | None = Field(description="numerator / denominator; null when n is 0")
    low: float | None
    high: float | None
    small_sample: bool = Field(description="fewer than 30 cases")


class StageTimes(Exact):
    """How long a stage took, from the report, where it ended (seconds)."""

    n: int
    median_s: float | None
    p90_s: float | None


class StageFigures(Exact):
    """On time in one stage, overall and per response tier (priority 1-4), and its times."""

    all: Rate
    tiers: dict[str, Rate] = Field(description="per priority, keys '1' to '4'")
    times: StageTimes


class OnTime(Exact):
    """The three stages, each counted from the report."""

    dispatch: StageFigures
    arrival: StageFigures
    resolution: StageFigures


class Escalations(Exact):
    """Incidents escalated, and the escalations to each level (from the escalation history:
    an incident escalated grid -> community -> street counts once at each)."""

    escalated: int = Field(description="incidents escalated at least once")
    by_level: dict[str, int] = Field(
        description="escalations to the community, street and district"
    )


class Disputes(Exact):
    """Incidents of the mediation group and how many resolved with a settlement."""

    received: int
    mediated: Rate = Field(description="settled over disputes resolved with an outcome")


class Figures(Exact):
    """Every figure of one group of incidents (see the README's definitions)."""

    received: int
    by_source: dict[str, int] = Field(description="citizen, grid_worker, hotline, sensor, import")
    handled: int = Field(description="resolved or closed")
    closed: int
    cancelled: int
    open: int = Field(
        description="of the window's incidents, those whose status is open when the report "
        "is made; the count open at as_of is open_at_as_of"
    )
    closure_rate: Rate = Field(description="closed over received less cancelled")
    on_time: OnTime
    escalations: Escalations
    resolved_in_grid: Rate
    resolved_in_community: Rate
    disputes: Disputes
    reopened: int
    backlog: dict[str, int] = Field(description="open at as_of, by how long they have waited")
    open_at_as_of: int = Field(
        description="incidents open at as_of (reported before it, not yet resolved, closed "
        "or cancelled then): the backlog's sum"
    )


class VisitCoverage(Exact):
    """Households visited within ``period_days`` before ``as_of`` (issue 20), an aggregate:
    exact for a caller who may read every grid's household rows in the area (admins, the
    grid's own worker), else both counts published by the disclosure module's fixed random
    rounding (null when they round to 0) and ``coverage`` computed from the published counts.
    The total sums the areas' published counts."""

    households: int | None
    visited: int | None
    coverage: float | None = Field(description="visited / households, 0..1")
    period_days: int
    exact: bool


class AreaFigures(Figures):
    """One area of the level asked for."""

    id: int
    code: str
    name: str
    parent_id: int | None
    visits: VisitCoverage


class TotalFigures(Figures):
    """Every area of the report together."""

    visits: VisitCoverage


class GridRef(Exact):
    """A grid by id and code, and its name in the request's language."""

    id: int
    code: str
    name: str = Field(description="the grid's name in the request's language (areas.names)")


class WorkerFigures(Figures):
    """One grid worker: the incidents assigned to them."""

    responder_id: int
    callsign: str
    grid: GridRef = Field(description="the grid they are homed in")
    discovered_in_grid: int = Field(
        description="incidents of their grid from a grid worker's own discovery"
    )


class PeriodFigures(Exact):
    """One local week (from Monday) or month."""

    start: str = Field(description="its first local day, YYYY-MM-DD")
    whole: bool = Field(description="the period lies wholly inside the window and is over")
    partial: bool = Field(
        description="not whole: the window cuts the period or as_of falls inside it"
    )
    days: float = Field(
        description="the local days of the period inside [since, as_of), to two decimals"
    )
    period_days: int = Field(description="the period's length in days (7, or the month's)")
    received: int
    closed: int
    closure_rate: Rate
    on_time_resolution: Rate


class PeriodChange(Exact):
    """The last whole period against the whole one before (partial periods are never
    compared)."""

    current: str
    previous: str
    received: int
    received_previous: int
    received_change_pct: float | None
    closure_rate_change: float | None
    on_time_resolution_change: float | None


class Trends(Exact):
    """The window by local week and month."""

    weeks: list[PeriodFigures]
    months: list[PeriodFigures]
    week_over_week: PeriodChange | None
    month_over_month: PeriodChange | None


class RankEntry(Exact):
    """An area or worker in a ranking, by the lower bound of its Wilson interval."""

    id: int | None
    code: str
    name: str | None
    rank: int
    rate: float | None
    low: float | None
    high: float | None
    denominator: int
    small_sample: bool


class UnrankedWorker(Exact):
    """A grid worker with no case to rate in the period."""

    id: int
    code: str = Field(description="the worker's callsign")
    received: int = Field(description="incidents assigned to them in the window")


class Rankings(Exact):
    """Areas by closure rate and by resolution on time; workers by resolution on time."""

    closure_rate: list[RankEntry]
    on_time_resolution: list[RankEntry]
    workers_on_time_resolution: list[RankEntry] = Field(
        description="the workers with at least one case to rate (n > 0)"
    )
    workers_not_ranked: list[UnrankedWorker] = Field(
        description="the workers with no case to rate in the period (n = 0): not ranked"
    )


class ParentRef(Exact):
    """The area reported under."""

    id: int
    code: str
    name: str
    level: str


class PerformancePublic(Exact):
    """``GET /reports/performance``."""

    level: str
    parent: ParentRef | None
    version_id: int
    since: str
    until: str
    as_of: str = Field(description="when open incidents are judged: min(until, now)")
    timezone: str
    total: TotalFigures
    areas: list[AreaFigures]
    workers: list[WorkerFigures]
    trends: Trends
    rankings: Rankings
