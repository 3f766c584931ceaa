"""Open311 GeoReport v2 over incidents and categories (http://wiki.open311.org/GeoReport_v2).

A *service* is a category; a *service request* is an incident. Requests come back with the
standard fields plus two extensions, ``grid`` and ``community`` (where the matter is handled)
and ``extended_status`` (our lifecycle state and escalation level). What a client sends with
a request is kept beside the incident (``service_request_details``): ``address_string`` (shown
as ``address``), ``media_url``, the answers to the service definition's ``attributes`` and
``jurisdiction_id``. Contact fields (email, names, phone, device and account ids) are accepted
and never stored: incidents keep no personal data.

Every endpoint speaks XML (required by the specification) and JSON; errors are the
specification's ``[{code, description}]`` list (``<errors><error>…``), see ``error_body``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.models import ServiceRequestDetail
from geo_service.db.sql import sql_source
from geo_service.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from geo_service.i18n import area_name, format_message, gettext, localized
from geo_service.instants import local_instant
from geo_service.services.access.scope import Scope
from geo_service.services.intake.incidents import ESCALATION_LEVELS, NewIncident, create_incident
from geo_service.vocabulary import ACCOUNT_CHANNELS, INCIDENT_STATUS_WORDS, OPEN_INCIDENT_STATUSES

SPEC = "http://wiki.open311.org/GeoReport_v2"
MAX_REQUESTS = 1000
DEFAULT_WINDOW = timedelta(days=90)


def account_source(session: Session, scope: Scope) -> str:
    """The source an account's Open311 filings carry: its channel (``users.channel``:
    ``hotline``, ``sensor``), else ``citizen``."""
    if scope.principal.user_id is None:
        return "citizen"
    channel = session.execute(
        text("SELECT channel FROM users WHERE id = :u"), {"u": scope.principal.user_id}
    ).scalar_one_or_none()
    return str(channel) if channel else "citizen"


def discovery(base_url: str) -> dict[str, Any]:
    """The discovery document: where the endpoint is and what it speaks."""
    return {
        "changeset": "2026-11-22T00:00:00Z",
        "contact": "Your city's grid management office",
        "key_service": f"{base_url}/docs",
        "endpoints": [
            {
                "specification": SPEC,
                "url": f"{base_url}/open311/v2",
                "changeset": "2026-11-22T00:00:00Z",
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


def services(session: Session) -> list[dict[str, Any]]:
    """Every category in use (not retired) as an Open311 service, named in the request's
    language."""
    rows = session.execute(
        text(
            'SELECT code, name, names, "group" FROM categories WHERE retired_at IS NULL '
            "ORDER BY code"
        )
    ).all()
    return [
        {
            "service_code": code,
            "service_name": localized(names, name),
            "description": localized(names, name),
            "metadata": True,  # every service has the attributes of SERVICE_ATTRIBUTES
            "type": "realtime",
            "keywords": group,
            "group": group,
        }
        for code, name, names, group in rows
    ]


# The attributes every service asks for (GeoReport v2 "service definition"): optional, so a
# client that sends none still files a request. Answers are kept with the request.
SERVICE_ATTRIBUTES: list[dict[str, Any]] = [
    {
        "variable": True,
        "code": "landmark",
        "datatype": "string",
        "required": False,
        "datatype_description": "A building, shop or bus stop near the problem",
        "order": 1,
        "description": "What is near the problem?",
        "values": [],
    },
    {
        "variable": True,
        "code": "danger",
        "datatype": "singlevaluelist",
        "required": False,
        "datatype_description": None,
        "order": 2,
        "description": "Is anyone in danger right now?",
        "values": [{"key": "yes", "name": "Yes"}, {"key": "no", "name": "No"}],
    },
]
MAX_ATTRIBUTE_CHARS = 500


def service_definition(session: Session, service_code: str) -> dict[str, Any]:
    """GET services/{service_code}: the attributes a request of this service may carry.

    Raises
    ------
    NotFoundError
        No service has this code.
    """
    known = session.execute(
        text("SELECT 1 FROM categories WHERE code = :c"), {"c": service_code}
    ).first()
    if known is None:
        raise NotFoundError(
            format_message(
                "no service {service_code!r} (see services.json)", service_code=service_code
            )
        )
    return {"service_code": service_code, "attributes": SERVICE_ATTRIBUTES}


def check_attributes(values: dict[str, str]) -> dict[str, str]:
    """Check the ``attribute[code]=value`` answers of a POST against ``SERVICE_ATTRIBUTES``.

    Raises
    ------
    InvalidInputError
        An unknown code, a value outside a list, or a text over ``MAX_ATTRIBUTE_CHARS``.
    """
    by_code = {a["code"]: a for a in SERVICE_ATTRIBUTES}
    out: dict[str, str] = {}
    for code, value in values.items():
        spec = by_code.get(code)
        if spec is None:
            raise InvalidInputError(
                format_message(
                    "unknown attribute {code!r}; the service definition lists {codes}",
                    code=code,
                    codes=", ".join(sorted(by_code)),
                )
            )
        if len(value) > MAX_ATTRIBUTE_CHARS:
            raise InvalidInputError(
                format_message(
                    "attribute {code!r} is longer than {max_attribute_chars}",
                    code=code,
                    max_attribute_chars=MAX_ATTRIBUTE_CHARS,
                )
            )
        keys = [v["key"] for v in spec["values"]]
        if spec["datatype"] == "singlevaluelist" and value not in keys:
            raise InvalidInputError(
                format_message(
                    "attribute {code!r} must be one of {values}", code=code, values=", ".join(keys)
                )
            )
        if value:
            out[code] = value
    return out


@dataclass(frozen=True)
class RequestFilter:
    """The filters of GET requests.json."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    status: tuple[str, ...] = ()


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def parse_filter(
    service_request_id: str | None,
    service_code: str | None,
    start_date: datetime | None,
    end_date: datetime | None,
    status: str | None,
) -> RequestFilter:
    """Check and normalise the query parameters (comma lists, W3C datetimes)."""
    ids = _split(service_request_id)
    for i in ids:
        try:
            uuid.UUID(i)
        except ValueError:
            raise InvalidInputError(
                format_message("service_request_id {i!r} is not a request id", i=i)
            ) from None
    states = _split(status)
    if any(s not in ("open", "closed") for s in states):
        raise InvalidInputError(gettext("status must be open, closed, or both (comma separated)"))
    # naive: local time of the deployment, as everywhere in the API
    start_date = start_date and local_instant(start_date, "start_date")
    end_date = end_date and local_instant(end_date, "end_date")
    if start_date and end_date and start_date >= end_date:
        raise InvalidInputError(gettext("start_date must be before end_date"))
    return RequestFilter(ids, _split(service_code), start_date, end_date, states)


_SELECT = sql_source("open311_requests")


PUBLIC_DECIMALS = 3  # public read mode: lat/long to ~100 m


def _public(request: dict[str, Any]) -> dict[str, Any]:
    """The fields a reader without a key sees (public read mode, ``GEO_OPEN311_PUBLIC_READ``):
    no description, address, photo or handling area; the location to ~100 m."""
    hidden = ("description", "address", "media_url")
    out = {k: (None if k in hidden else v) for k, v in request.items()}
    out["lat"] = round(request["lat"], PUBLIC_DECIMALS)
    out["long"] = round(request["long"], PUBLIC_DECIMALS)
    out.pop("grid")
    out.pop("community")
    out["extended_status"] = {"state": request["extended_status"]["state"]}
    return out


def _as_request(m: Any, scope: Scope | None) -> dict[str, Any]:
    status = "open" if m["status"] in OPEN_INCIDENT_STATUSES else "closed"
    target = m["resolution_target_min"]
    expected = m["reported_at"] + timedelta(minutes=target) if target else None
    describe = scope is None or scope.can("incidents:describe")
    return {
        "service_request_id": str(m["id"]),
        "status": status,
        "status_notes": gettext(
            INCIDENT_STATUS_WORDS.get(m["status"], m["status"].replace("_", " "))
        ),
        "service_name": localized(m["service_names"], m["service_name"]),  # the request's language
        "service_code": m["category"],
        "description": m["description"] if describe else None,
        "agency_responsible": ESCALATION_LEVELS[m["escalation_level"]],
        "service_notice": None,
        "requested_datetime": m["reported_at"].isoformat(),
        "updated_datetime": m["updated_at"].isoformat(),
        "expected_datetime": expected.isoformat() if expected else None,
        "address": m["address_string"],
        "address_id": None,
        "zipcode": None,
        "lat": m["lat"],
        "long": m["lon"],
        "media_url": m["media_url"],
        # extensions
        "grid": None
        if m["grid_code"] is None
        else {"code": m["grid_code"], "name": area_name(m["grid_names"], m["grid_name"])},
        "community": None
        if m["community_code"] is None
        else {
            "code": m["community_code"],
            "name": area_name(m["community_names"], m["community_name"]),
        },
        "extended_status": {"state": m["status"], "escalation_level": m["escalation_level"]},
    }


def list_requests(
    session: Session, flt: RequestFilter, *, scope: Scope | None
) -> list[dict[str, Any]]:
    """Requests newest first: by id when ids are given (other filters ignored, as the spec
    says), else within [start_date, end_date) (default: the last 90 days), at most 1000.
    ``scope=None`` is the public read mode: every request, public fields only."""
    params: dict[str, Any] = {"limit": MAX_REQUESTS}
    where = []
    if flt.ids:
        where.append("i.id = ANY(CAST(:ids AS uuid[]))")
        params["ids"] = list(flt.ids)
    else:
        end = flt.end or datetime.now(UTC)
        start = flt.start or end - DEFAULT_WINDOW
        where.append("i.reported_at >= :start AND i.reported_at < :end")
        params.update(start=start, end=end)
        if flt.service_codes:
            where.append("i.category = ANY(:codes)")
            params["codes"] = list(flt.service_codes)
        if flt.status and set(flt.status) != {"open", "closed"}:
            negate = "" if flt.status == ("open",) else "NOT "
            where.append(f"{negate}(i.status = ANY(:open))")
            params["open"] = list(OPEN_INCIDENT_STATUSES)
    if scope is not None and not scope.unrestricted:
        where.append("i.grid_id = ANY(:grids)")
        params["grids"] = sorted(scope.grid_ids or ())
    rows = (
        session.execute(
            text(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY i.reported_at DESC LIMIT :limit"),
            params,
        )
        .mappings()
        .all()
    )
    if scope is None:
        return [_public(_as_request(m, None)) for m in rows]
    return [_as_request(m, scope) for m in rows]


def get_request(session: Session, request_id: str, *, scope: Scope | None) -> list[dict[str, Any]]:
    """One request, as the one-element list the spec returns (``scope=None``: public read
    mode, public fields only)."""
    try:
        ident = uuid.UUID(request_id)
    except ValueError:
        raise NotFoundError(
            format_message("no service request {request_id!r}", request_id=request_id)
        ) from None
    row = session.execute(text(f"{_SELECT} WHERE i.id = :id"), {"id": ident}).mappings().first()
    if row is None:
        raise NotFoundError(
            format_message("no service request {request_id!r}", request_id=request_id)
        )
    if scope is None:
        return [_public(_as_request(row, None))]
    scope.require_visible_grid(
        row["grid_id"],
        format_message("no service request {request_id!r}", request_id=request_id),
    )
    return [_as_request(row, scope)]


def create_request(
    session: Session,
    *,
    service_code: str | None,
    lat: float | None,
    lon: float | None,
    crs: str = "wgs84",
    description: str | None,
    scope: Scope,
    actor: str,
    address_string: str | None = None,
    media_url: str | None = None,
    attributes: dict[str, str] | None = None,
    jurisdiction_id: str | None = None,
    radius_m: float = 50.0,
    window_s: int = 1800,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """POST requests: a citizen's report becomes an incident of that category; the address
    as written, the photo link, the attribute answers and the jurisdiction are kept with it.

    The incident's ``source`` is the filing account's channel (``users.channel``: a 12345
    hotline's operators file as ``hotline``, a sensor gateway as ``sensor``), else
    ``citizen``. ``source``, our extension field, may name it again; a value other than the
    account's own is refused, so a citizens' app cannot pass its reports off as the hotline's.

    Raises
    ------
    InvalidInputError
        No service code, no lat/long (addresses are not geocoded), a ``media_url`` that is
        not an http(s) URL, attribute answers the service definition does not allow, or a
        ``source`` that is not ``citizen``, ``hotline`` or ``sensor`` (400).
    PermissionDeniedError
        ``source`` names a channel the account does not file for (403).
    """
    own = account_source(session, scope)
    if source is not None and source.strip():
        claimed = source.strip().lower()
        if claimed not in ("citizen", *ACCOUNT_CHANNELS):
            raise InvalidInputError(
                format_message(
                    "source must be one of {sources}",
                    sources=", ".join(("citizen", *ACCOUNT_CHANNELS)),
                )
            )
        if claimed != own:
            raise PermissionDeniedError(
                format_message(
                    "this account files as {own}; it may not file as {claimed}",
                    own=own,
                    claimed=claimed,
                )
            )
    if not service_code:
        raise InvalidInputError(gettext("service_code is required (see services.json)"))
    if lat is None or lon is None:
        raise InvalidInputError(
            gettext("lat and long are required: this endpoint does not geocode address_string")
        )
    media = (media_url or "").strip() or None
    if media is not None and not media.lower().startswith(("http://", "https://")):
        raise InvalidInputError(gettext("media_url must be an http:// or https:// URL"))
    answers = check_attributes(attributes or {})
    address = (address_string or "").strip() or None

    def keep_details(db: Session, incident_id: uuid.UUID) -> None:
        db.add(
            ServiceRequestDetail(
                incident_id=incident_id,
                address_string=address,
                media_url=media,
                attributes=answers,
                jurisdiction_id=jurisdiction_id or None,
            )
        )
        db.flush()

    item, _ = create_incident(
        session,
        NewIncident(
            category=service_code,
            lon=lon,
            lat=lat,
            crs=crs,
            description=(description or None) and description[:4000],
            source=own,
        ),
        idempotency_key=None,
        actor=actor,
        scope=scope,
        radius_m=radius_m,
        window_s=window_s,
        with_details=keep_details,
    )
    notice = (
        format_message("Received; {grid} handles it.", grid=item["grid"]["name"])
        if item["grid"]
        else format_message("Received; the city handles it.")
    )
    return [
        {
            "service_request_id": item["id"],
            "service_notice": notice,
            "account_id": None,
        }
    ]
