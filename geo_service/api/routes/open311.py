"""Open311 GeoReport v2: ``/open311/v2/discovery.json``, ``services.json``,
``requests.json`` (GET and POST) and ``requests/{id}.json``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse

from geo_service.api.deps import SessionDep, SettingsDep, require, scope_for_key
from geo_service.api.params import Instant
from geo_service.api.schemas.intake import (
    Open311Discovery,
    Open311Receipt,
    Open311Request,
    Open311Service,
)
from geo_service.services.access.scope import Scope
from geo_service.services.intake import open311

router = APIRouter(prefix="/open311/v2", tags=["open311"])
ReadScope = Annotated[Scope, Depends(require("incidents:read"))]


@router.get(
    "/discovery.json",
    response_model=Open311Discovery,
    response_description="the discovery document",
)
def read_discovery(request: Request) -> dict[str, Any]:
    """Where this GeoReport v2 endpoint is and which formats it speaks (public)."""
    return open311.discovery(str(request.base_url).rstrip("/"))


@router.get(
    "/services.json",
    response_model=list[Open311Service],
    response_description="every service (category)",
)
def read_services(session: SessionDep) -> list[dict[str, Any]]:
    """The services (our incident categories) a request can be filed under (public)."""
    return open311.services(session)


@router.get(
    "/requests.json",
    response_model=list[Open311Request],
    response_description="service requests, newest first",
)
def read_requests(
    session: SessionDep,
    scope: ReadScope,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: Instant | None = None,
    end_date: Instant | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Service requests in your area, newest first (default: the last 90 days, at most 1000);
    ``grid``, ``community`` and ``extended_status`` extend the standard fields."""
    flt = open311.parse_filter(service_request_id, service_code, start_date, end_date, status)
    return open311.list_requests(session, flt, scope=scope)


@router.get(
    "/requests/{request_id}.json",
    response_model=list[Open311Request],
    response_description="a one-element list: the request",
)
def read_request(session: SessionDep, scope: ReadScope, request_id: str) -> list[dict[str, Any]]:
    """One service request (a one-element list, as the specification has it)."""
    return open311.get_request(session, request_id, scope=scope)


@router.post(
    "/requests.json",
    status_code=201,
    response_model=list[Open311Receipt],
    response_description="a one-element list: the new request's id and a notice",
)
def post_request(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    service_code: Annotated[str | None, Form(max_length=64)] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
    long: Annotated[float | None, Form(ge=-180, le=180)] = None,
    description: Annotated[str | None, Form(max_length=4000)] = None,
    api_key: Annotated[str | None, Form(max_length=200)] = None,
    address_string: Annotated[str | None, Form(max_length=500)] = None,
    media_url: Annotated[str | None, Form(max_length=2000)] = None,
    email: Annotated[str | None, Form(max_length=200)] = None,
    device_id: Annotated[str | None, Form(max_length=200)] = None,
    account_id: Annotated[str | None, Form(max_length=200)] = None,
    first_name: Annotated[str | None, Form(max_length=200)] = None,
    last_name: Annotated[str | None, Form(max_length=200)] = None,
    phone: Annotated[str | None, Form(max_length=200)] = None,
) -> JSONResponse:
    """File a service request (form-encoded, as GeoReport v2 clients send it). The key may
    come as the ``api_key`` field. Contact fields are accepted and not stored."""
    scope = scope_for_key(request, session, api_key)
    scope.require("incidents:write")
    body = open311.create_request(
        session,
        service_code=service_code,
        lat=lat,
        lon=long,
        description=description,
        scope=scope,
        actor=scope.principal.actor,
        radius_m=settings.dispatch.duplicate_radius_m,
        window_s=settings.dispatch.duplicate_window_s,
    )
    return JSONResponse(body, status_code=201)
