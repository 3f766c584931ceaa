"""The shared vocabulary: every closed set of words the schema, the services and the API agree on.

One home for each list, so a CHECK constraint, a service's validation and a SQL filter cannot
drift apart. SQL takes these as bound parameters (``status = ANY(:open)`` with
``{"open": list(OPEN_INCIDENT_STATUSES)}``), never typed into the statement. Migrations keep
their own frozen copies: a revision must not change meaning when this module does.
"""

from __future__ import annotations

from geo_service.i18n import N_

# Boundaries: the hierarchy, coarsest first, and a version's lifecycle.
AREA_LEVELS = ("district", "street", "community", "grid")
VERSION_STATUSES = ("draft", "scheduled", "published", "retired")
# Versions whose areas were or are in force (the grid of a moment is found among these).
IN_FORCE_VERSION_STATUSES = ("published", "retired")
# ... and those that will be: published for a future moment, switched to when it comes.
SCHEDULED_VERSION_STATUS = "scheduled"

# Incidents: the lifecycle and where reports come from.
INCIDENT_STATUSES = (
    "reported",
    "dispatched",
    "accepted",
    "on_scene",
    "resolved",
    "closed",
    "cancelled",
)
OPEN_INCIDENT_STATUSES = ("reported", "dispatched", "accepted", "on_scene")
CLOSED_INCIDENT_STATUSES = tuple(s for s in INCIDENT_STATUSES if s not in OPEN_INCIDENT_STATUSES)
# Each status as people read it (``gettext`` it where shown: refusals, Open311 status_notes).
INCIDENT_STATUS_WORDS = {
    "reported": N_("reported"),
    "dispatched": N_("dispatched"),
    "accepted": N_("accepted"),
    "on_scene": N_("on scene"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "cancelled": N_("cancelled"),
}
# Done by the responder, not yet closed by a dispatcher (the console lists them to close).
AWAITING_CLOSE_STATUSES = ("resolved",)
INCIDENT_SOURCES = ("citizen", "grid_worker", "hotline", "sensor", "import")
# How a resolved dispute ended (``incidents.outcome``, migration 0030).
INCIDENT_OUTCOMES = ("settled", "unsettled")
# How a resolved incident was settled (the grid worker's phone asks for one, issue 20):
# settled on the spot, referred to another office, nothing found, a duplicate, other.
RESOLUTION_CODES = ("settled", "referred", "no_issue", "duplicate", "other")

# Residents.
RENTAL_STATUSES = ("registered", "expired", "unregistered")
# What a grid worker's household visit came to (issue 20).
VISIT_OUTCOMES = ("met", "no_answer", "refused", "moved")

# Dispatch.
RESPONDER_KINDS = ("grid_worker", "patrol", "mediator", "fire", "medical")
RESPONDER_STATUSES = ("available", "busy", "off_duty")
# Who may be sent to what (issue 19's fresh user: a fire unit offered first for a neighbour
# dispute). The kinds of unit an incident's candidates are drawn from, by the category's
# code, else its group (``categories.group``), else every kind. The grid worker comes
# first where a small matter stays in the grid; emergencies go to the services that carry
# the kit. A dispatcher can still ask for another kind (``kind=``) on the candidates.
GROUP_RESPONDER_KINDS: dict[str, tuple[str, ...]] = {
    "mediation": ("mediator", "grid_worker", "patrol"),
    "order": ("patrol", "grid_worker"),
    "safety": ("fire", "patrol", "grid_worker"),
    "environment": ("grid_worker",),
    "welfare": ("grid_worker", "medical", "mediator"),
    "fire": ("fire",),
    "medical": ("medical",),
}
CATEGORY_RESPONDER_KINDS: dict[str, tuple[str, ...]] = {
    "disputes": ("mediator", "grid_worker", "patrol"),
    "safety_hazard": ("fire", "patrol", "grid_worker"),
    "traffic": ("patrol", "grid_worker"),
}


def responder_kinds_for(category: str, group: str | None) -> tuple[str, ...] | None:
    """The kinds of responder suited to a category (by code, else group), None: any kind.

    >>> responder_kinds_for("disputes", "mediation")
    ('mediator', 'grid_worker', 'patrol')
    >>> responder_kinds_for("potholes", "environment")
    ('grid_worker',)
    >>> responder_kinds_for("other", "misc") is None
    True
    """
    return CATEGORY_RESPONDER_KINDS.get(category) or GROUP_RESPONDER_KINDS.get(group or "")


# Access: the roles a user may hold.
ROLES = ("admin", "dispatcher", "planner", "analyst", "grid_worker")
# The intake channel an account files for (``users.channel``, migration 0036): its Open311
# filings carry this source instead of ``citizen`` (a 12345 hotline's operators, a sensor
# gateway). An account without one is a citizens' channel.
ACCOUNT_CHANNELS = ("hotline", "sensor")

# Background jobs and batch runs.
JOB_STATUSES = ("queued", "running", "done", "failed")
ACTIVE_JOB_STATUSES = ("queued", "running")
BATCH_KINDS = ("heatmap", "hotspots", "emerging", "workload", "reattribute", "proposals")
BATCH_ENGINES = ("local", "dask")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """A ``column IN (...)`` SQL condition over a fixed vocabulary, for DDL only.

    CHECK constraints and partial-index predicates are schema text and cannot take bound
    parameters; queries bind the tuple instead (``column = ANY(:values)``).

    >>> sql_in("status", ("draft", "published"))
    "status IN ('draft', 'published')"
    """
    if not all(v.replace("_", "").replace("-", "").isalnum() for v in values):
        raise ValueError(f"not a vocabulary word in {values!r}")
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"
