"""Contracts of the dispatcher's console: open incidents urgency first with the server's
counts, and the body of a reassignment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from geo_service.api.schemas.strict import Exact


class PriorityCount(Exact):
    """Open and overdue incidents of one priority."""

    priority: int
    open: int
    overdue: int


class ConsoleSummary(Exact):
    """Open and overdue incidents the caller sees, counted by the server at ``now``."""

    now: str = Field(description="the database clock every count was judged by")
    open: int
    overdue: int = Field(description="past the target of their current stage since reported")
    by_priority: list[PriorityCount]


class ConsoleIncident(Exact):
    """An incident as the console lists it: open, or resolved and waiting to be closed."""

    id: str
    category: str
    category_name: str = Field(
        description="the category's name in the request's language (Accept-Language, the "
        "page's switch or GEO_LOCALE), else its English name"
    )
    priority: int
    status: str
    description: str | None
    lon: float
    lat: float
    grid_code: str | None
    grid_name: str | None
    reported_at: str
    updated_at: str
    resolved_at: str | None = Field(
        default=None, description="when it was resolved (None until then, and after a reopen)"
    )
    responder_id: int | None
    responder_callsign: str | None
    escalation_level: int
    escalated_to: str
    stage: Literal["dispatch", "resolve"] = Field(
        description="dispatch until accepted (the priority's target), then resolve (the category's)"
    )
    target_s: int | None = Field(description="the stage's target, seconds from the report")
    due_at: str | None = Field(description="reported_at + target_s")
    late_s: float | None = Field(
        description="seconds past due_at at now (negative: not yet; None once not open)"
    )
    overdue: bool
    actions: list[str] = Field(description="what the caller may do with it from the console")
    new: bool | None = Field(default=None, description="stream only: reported since the cursor")


class ConsolePage(ConsoleSummary):
    """A page of open incidents, by priority and then most late first (or, ``view=resolved``,
    of resolved ones waiting to be closed, the longest waiting first), with the counts of the
    open ones; ``event_id`` is where the console's stream resumes from."""

    resolved: int = Field(description="resolved incidents the caller sees, not yet closed")
    offset: int
    next_offset: int | None
    event_id: str
    items: list[ConsoleIncident]


class ReassignBody(BaseModel):
    """Who to send instead."""

    model_config = ConfigDict(extra="forbid")

    responder_id: int = Field(ge=1, le=2**31 - 1, description="the responder to send instead")
    note: str | None = Field(default=None, max_length=2000)
