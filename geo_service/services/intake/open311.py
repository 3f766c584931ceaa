"""Open311 GeoReport v2 over incidents and categories (http://wiki.open311.org/GeoReport_v2).

A *service* is a category; a *service request* is an incident. Requests come back with the
standard fields plus two extensions, ``grid`` and ``community`` (where the matter is handled)
and ``extended_status`` (our lifecycle state and escalation level). Contact fields a client
may send (email, names, phone, device and account ids) are accepted and never stored:
incidents keep no personal data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.sql import sql_source
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.services.access.scope import Scope
from geo_service.services.intake.incidents import ESCALATION_LEVELS, NewIncident, create_incident
from geo_service.vocabulary import OPEN_INCIDENT_STATUSES

SPEC = "http://wiki.open311.org/GeoReport_v2"
MAX_REQUESTS = 1000
DEFAULT_WINDOW = timedelta(days=90)


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
                "formats": ["application/json"],
            }
        ],
    }


def services(session: Session) -> list[dict[str, Any]]:
    """Every category as an Open311 service."""
    rows = session.execute(text('SELECT code, name, "group" FROM categories ORDER BY code')).all()
    return [
        {
            "service_code": code,
            "service_name": name,
            "description": name,
            "metadata": False,
            "type": "realtime",
            "keywords": group,
            "group": group,
        }
        for code, name, group in rows
    ]


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
            raise InvalidInputError(f"service_request_id {i!r} is not a request id") from None
    states = _split(status)
    if any(s not in ("open", "closed") for s in states):
        raise InvalidInputError("status must be open, closed, or both (comma separated)")
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(f"{name} must carry a timezone offset (W3C format)")
    if start_date and end_date and start_date >= end_date:
        raise InvalidInputError("start_date must be before end_date")
    return RequestFilter(ids, _split(service_code), start_date, end_date, states)


_SELECT = sql_source("open311_requests")


def _as_request(m: Any, scope: Scope | None) -> dict[str, Any]:
    status = "open" if m["status"] in OPEN_INCIDENT_STATUSES else "closed"
    target = m["resolution_target_min"]
    expected = m["reported_at"] + timedelta(minutes=target) if target else None
    describe = scope is None or scope.can("incidents:describe")
    return {
        "service_request_id": str(m["id"]),
        "status": status,
        "status_notes": m["status"].replace("_", " "),
        "service_name": m["service_name"],
        "service_code": m["category"],
        "description": m["description"] if describe else None,
        "agency_responsible": ESCALATION_LEVELS[m["escalation_level"]],
        "service_notice": None,
        "requested_datetime": m["reported_at"].isoformat(),
        "updated_datetime": m["updated_at"].isoformat(),
        "expected_datetime": expected.isoformat() if expected else None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": m["lat"],
        "long": m["lon"],
        "media_url": None,
        # extensions
        "grid": None
        if m["grid_code"] is None
        else {"code": m["grid_code"], "name": m["grid_name"]},
        "community": None
        if m["community_code"] is None
        else {"code": m["community_code"], "name": m["community_name"]},
        "extended_status": {"state": m["status"], "escalation_level": m["escalation_level"]},
    }


def list_requests(session: Session, flt: RequestFilter, *, scope: Scope) -> list[dict[str, Any]]:
    """Requests newest first: by id when ids are given (other filters ignored, as the spec
    says), else within [start_date, end_date) (default: the last 90 days), at most 1000."""
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
    if not scope.unrestricted:
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
    return [_as_request(m, scope) for m in rows]


def get_request(session: Session, request_id: str, *, scope: Scope) -> list[dict[str, Any]]:
    """One request, as the one-element list the spec returns."""
    try:
        ident = uuid.UUID(request_id)
    except ValueError:
        raise NotFoundError(f"no service request {request_id!r}") from None
    row = session.execute(text(f"{_SELECT} WHERE i.id = :id"), {"id": ident}).mappings().first()
    if row is None:
        raise NotFoundError(f"no service request {request_id!r}")
    scope.require_visible_grid(row["grid_id"], f"no service request {request_id!r}")
    return [_as_request(row, scope)]


def create_request(
    session: Session,
    *,
    service_code: str | None,
    lat: float | None,
    lon: float | None,
    description: str | None,
    scope: Scope,
    actor: str,
    radius_m: float = 50.0,
    window_s: int = 1800,
) -> list[dict[str, Any]]:
    """POST requests.json: a citizen's report becomes an incident of that category."""
    if not service_code:
        raise InvalidInputError("service_code is required (see services.json)")
    if lat is None or lon is None:
        raise InvalidInputError(
            "lat and long are required: this endpoint does not geocode address_string"
        )
    item, _ = create_incident(
        session,
        NewIncident(
            category=service_code,
            lon=lon,
            lat=lat,
            description=(description or None) and description[:4000],
            source="citizen",
        ),
        idempotency_key=None,
        actor=actor,
        scope=scope,
        radius_m=radius_m,
        window_s=window_s,
    )
    grid = item["grid"]["name"] if item["grid"] else "the city"
    return [
        {
            "service_request_id": item["id"],
            "service_notice": f"Received; {grid} handles it.",
            "account_id": None,
        }
    ]
