"""Contracts of the intake room: the incident list (GeoJSON) and Open311 GeoReport v2.

The request (``IncidentCreate``) and the single incident (``IncidentPublic``) stay in the
package ``__init__``, shared by the intake and dispatch routes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from geo_service.api.schemas import AreaRef
from geo_service.api.schemas.geojson import Feature, FeatureCollection, Point, Timestamp
from geo_service.api.schemas.strict import Exact

# The vocabulary's words (geo_service.vocabulary; a test keeps them equal).
IncidentStatus = Literal[
    "reported", "dispatched", "accepted", "on_scene", "resolved", "closed", "cancelled"
]
IncidentSource = Literal["citizen", "grid_worker", "hotline", "sensor", "import"]
AreaLevel = Literal["district", "street", "community", "grid"]

# --- incidents -----------------------------------------------------------------------------


class IncidentProperties(Exact):
    """An incident as a feature's properties: ``IncidentPublic`` less lon/lat."""

    id: str = Field(description="UUID")
    category: str
    priority: int = Field(description="1 = most urgent")
    status: IncidentStatus
    description: str | None = Field(description="null for roles that may not read it")
    source: IncidentSource
    reported_at: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    h3: str = Field(description="H3 cell (resolution 11) of the location")
    grid: AreaRef | None
    responder_id: int | None
    escalation_level: int
    escalated_to: AreaLevel = Field(description="the level the incident is handled at")
    possible_duplicate_of: str | None
    resolution_code: str | None = Field(description="how a resolve settled it")
    dispatched_at: Timestamp | None
    accepted_at: Timestamp | None
    arrived_at: Timestamp | None
    resolved_at: Timestamp | None
    closed_at: Timestamp | None
    cancelled_at: Timestamp | None
    escalated_at: Timestamp | None


class IncidentFeature(Feature[Point, IncidentProperties]):
    """An incident as a GeoJSON Feature (``id`` is the incident's UUID)."""

    id: str


class PageLink(Exact):
    """A link to another page of a list."""

    rel: Literal["next"]
    type: str
    href: str


class IncidentsPublic(FeatureCollection[IncidentFeature]):
    """``GET /incidents``: a page of incidents, newest first."""

    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")
    links: list[PageLink]


# --- Open311 GeoReport v2 ------------------------------------------------------------------


class Open311Endpoint(Exact):
    """One endpoint of the discovery document."""

    specification: str
    url: str
    changeset: str
    type: Literal["production"]
    formats: list[str]


class Open311Discovery(Exact):
    """``discovery.json``."""

    changeset: str
    contact: str
    key_service: str
    endpoints: list[Open311Endpoint]


class Open311Service(Exact):
    """A service: one of our incident categories."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime"]
    keywords: str
    group: str


class Open311Place(Exact):
    """Where a request is handled (extension)."""

    code: str
    name: str


class Open311ExtendedStatus(Exact):
    """Our lifecycle state and escalation level (extension)."""

    state: IncidentStatus
    escalation_level: int | None = Field(default=None, description="absent in the public read mode")


class Open311Request(Exact):
    """A service request: the standard fields, then the extensions ``grid``, ``community``
    and ``extended_status``."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str
    service_notice: None
    requested_datetime: Timestamp
    updated_datetime: Timestamp
    expected_datetime: Timestamp | None
    address: str | None = Field(description="the address_string the client sent")
    address_id: None
    zipcode: None
    lat: float
    long: float
    media_url: str | None = Field(description="the photo link the client sent (never fetched)")
    grid: Open311Place | None = Field(default=None, description="absent in public read mode")
    community: Open311Place | None = Field(default=None, description="absent in public read")
    extended_status: Open311ExtendedStatus


class Open311AttributeValue(Exact):
    """One choice of a list attribute."""

    key: str
    name: str


class Open311Attribute(Exact):
    """One attribute of a service definition (GeoReport v2)."""

    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[Open311AttributeValue]


class Open311ServiceDefinition(Exact):
    """``services/{service_code}.json``: the attributes a request may carry."""

    service_code: str
    attributes: list[Open311Attribute]


class Open311Error(Exact):
    """One error of the specification's error list (``[{code, description}]``)."""

    code: int = Field(description="the HTTP status: 400, 403 or 404 as the specification names")
    description: str


class Open311Receipt(Exact):
    """The answer to a new request."""

    service_request_id: str
    service_notice: str
    account_id: None


# --- categories (issue 19) -----------------------------------------------------------------

LanguageTag = Literal["en", "zh-CN"]
CategoryName = Annotated[str, Field(min_length=1, max_length=200)]


class CategoryBase(BaseModel):
    """What a grid office sets on a category besides its code."""

    model_config = ConfigDict(extra="forbid")

    group: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    default_priority: Annotated[int, Field(ge=1, le=4)] | None = None
    handling_effort_min: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = Field(
        default=None, description="minutes of work per incident (the workload formula)"
    )
    response_target_s: Annotated[int, Field(ge=1, le=7 * 86400)] | None = Field(
        default=None,
        description="arrival target: seconds from the report to a responder on scene (the "
        "reports' arrival stage; dispatch targets are the priority's, resolution_target_min "
        "the resolution's; null: none)",
    )
    resolution_target_min: Annotated[int, Field(ge=1, le=365 * 24 * 60)] | None = Field(
        default=None, description="minutes from the report to resolution (null: none)"
    )


class CategoryCreate(CategoryBase):
    """``POST /categories``: a new category; ``names.en`` is required."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = Field(
        description="the stable key incidents, imports and Open311 use"
    )
    names: dict[LanguageTag, CategoryName] = Field(
        description='the name per language, e.g. {"en": "Noise", "zh-CN": "噪声扰民"}'
    )
    handling_effort_min: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = Field(
        description="minutes of work per incident (the workload formula)"
    )


class CategoryUpdate(CategoryBase):
    """``PATCH /categories/{code}``: rename (the languages given; the others stay) and set
    targets and handling effort. A member sent as null clears a target."""

    names: dict[LanguageTag, CategoryName] | None = None


class CategoryPublic(Exact):
    """A category: its code, its name in the request's language and in every language."""

    code: str
    name: str = Field(description="in the request's language (Accept-Language, ?lang=, GEO_LOCALE)")
    names: dict[str, str] = Field(description="BCP 47 tag -> name")
    group: str
    default_priority: int
    handling_effort_min: int
    response_target_s: int | None = Field(
        description="arrival target, seconds from the report to a responder on scene"
    )
    resolution_target_min: int | None
    retired: bool
    retired_at: str | None = Field(description="when it was retired (RFC 3339), else null")


class CategoriesPublic(Exact):
    """Every category, by code."""

    data: list[CategoryPublic]
    count: int


class PhotoPublic(Exact):
    """A stored photo of an incident (a JPEG re-encoded without EXIF, and its thumbnail)."""

    id: str
    incident_id: str
    content_type: str = Field(description="image/jpeg: every photo is re-encoded")
    width: int = Field(description="pixels, upright")
    height: int = Field(description="pixels, upright")
    bytes: int
    thumbnail_bytes: int
    created_at: Timestamp
    url: str = Field(description="the photo (incidents:describe and an incident you see)")
    thumbnail_url: str


class PhotosPublic(Exact):
    """``GET /incidents/{id}/photos``: oldest first."""

    data: list[PhotoPublic]
    count: int
