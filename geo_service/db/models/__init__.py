"""GeoAlchemy2 models of the whole schema, one module per room; ``Base.metadata`` is complete.

Every table, index and constraint is declared here; ``tests/db/test_schema.py`` checks the
migrated database against it with Alembic's comparison. The migrations create the schema;
trigger functions, triggers, grants and the on-demand partitions of ``incident_cum_year`` live
only there. Every WGS84 geometry has SRID 4326; the tile caches are in web mercator (3857).

The vocabulary (statuses, levels, roles) lives in ``geo_service.vocabulary``; it is re-exported
here for older imports.
"""

from __future__ import annotations

from geo_service.db.models.access import ApiKey, AuditEntry, User, WebSession
from geo_service.db.models.base import SRID, WEB_MERCATOR, Base
from geo_service.db.models.batch import (
    BatchCell,
    BatchRun,
    BatchWorkload,
    Job,
    batch_crosswalk,
)
from geo_service.db.models.boundaries import Area, BoundaryCrosswalk, BoundaryVersion
from geo_service.db.models.dispatch import Responder, ResponseTarget, RoadSegment
from geo_service.db.models.intake import (
    Category,
    Incident,
    IncidentActionKey,
    IncidentEscalation,
    IncidentPhoto,
    ServiceRequestDetail,
)
from geo_service.db.models.layers import (
    CUM_YEAR_PARTITION_PATTERN,
    H3Cell,
    IncidentCumYear,
    IncidentRollupDay,
    IncidentRollupMonth,
    IncidentTotalDay,
    IncidentTotalMonth,
    RollupCalendar,
    TileLayer,
    tile_layer_cells,
)
from geo_service.db.models.residents import (
    DisclosureSecret,
    Household,
    HouseholdVisit,
    RentalUnit,
)
from geo_service.vocabulary import (
    AREA_LEVELS,
    INCIDENT_SOURCES,
    INCIDENT_STATUSES,
    OPEN_INCIDENT_STATUSES,
    RENTAL_STATUSES,
    RESPONDER_KINDS,
    RESPONDER_STATUSES,
    ROLES,
    VERSION_STATUSES,
)

__all__ = [
    "AREA_LEVELS",
    "CUM_YEAR_PARTITION_PATTERN",
    "INCIDENT_SOURCES",
    "INCIDENT_STATUSES",
    "OPEN_INCIDENT_STATUSES",
    "RENTAL_STATUSES",
    "RESPONDER_KINDS",
    "RESPONDER_STATUSES",
    "ROLES",
    "SRID",
    "VERSION_STATUSES",
    "WEB_MERCATOR",
    "ApiKey",
    "Area",
    "AuditEntry",
    "Base",
    "BatchCell",
    "BatchRun",
    "BatchWorkload",
    "BoundaryCrosswalk",
    "BoundaryVersion",
    "Category",
    "H3Cell",
    "DisclosureSecret",
    "Household",
    "Incident",
    "IncidentActionKey",
    "IncidentEscalation",
    "IncidentPhoto",
    "IncidentCumYear",
    "IncidentRollupDay",
    "IncidentRollupMonth",
    "IncidentTotalDay",
    "IncidentTotalMonth",
    "RollupCalendar",
    "Job",
    "HouseholdVisit",
    "RentalUnit",
    "Responder",
    "ServiceRequestDetail",
    "ResponseTarget",
    "RoadSegment",
    "TileLayer",
    "User",
    "WebSession",
    "batch_crosswalk",
    "tile_layer_cells",
]
