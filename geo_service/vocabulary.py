"""The shared vocabulary: every closed set of words the schema, the services and the API agree on.

One home for each list, so a CHECK constraint, a service's validation and a SQL filter cannot
drift apart. SQL takes these as bound parameters (``status = ANY(:open)`` with
``{"open": list(OPEN_INCIDENT_STATUSES)}``), never typed into the statement. Migrations keep
their own frozen copies: a revision must not change meaning when this module does.
"""

from __future__ import annotations

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
