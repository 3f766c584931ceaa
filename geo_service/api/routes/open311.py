"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) in XML and JSON:
``discovery``, ``services``, ``services/{code}``, ``requests`` (GET and POST) and
``requests/{id}``, each as ``.xml`` or ``.json``. Errors are the specification's list
(``api/open311_format.py``), not problem documents.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from geo_service.api.deps import (
    SessionDep,
    SettingsDep,
    optional_open311_scope,
    scope_for_key,
)
from geo_service.api.open311_format import Format, respond
from geo_service.api.params import Instant
from geo_service.api.schemas import CrsParam
from geo_service.api.schemas.intake import (
    Open311Discovery,
    Open311Error,
    Open311Receipt,
    Open311Request,
    Open311Service,
    Open311ServiceDefinition,
)
from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.geo.crs import rows_from_wgs84
from geo_service.i18n import format_message
from geo_service.services.access.scope import Scope
from geo_service.services.intake import open311
from geo_service.settings import Settings

XML_BODY = {"text/xml": {"schema": {"type": "string", "description": "the same, as XML"}}}


def _error(description: str) -> dict[str, Any]:
    return {"model": list[Open311Error], "description": description, "content": XML_BODY}


# The specification's error list replaces problem documents on these routes (problems.py).
OPEN311_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Missing or invalid arguments"),
    403: _error("Invalid or missing api_key, or the key's role may not do this"),
    404: _error("No such service, request or jurisdiction"),
    413: _error("Request too large"),
    429: _error("Rate limit exceeded"),
    503: _error("Database unavailable or query too slow"),
}
OK_XML: dict[int | str, dict[str, Any]] = {200: {"content": XML_BODY}}
CREATED_XML: dict[int | str, dict[str, Any]] = {201: {"content": XML_BODY}}
router = APIRouter(prefix="/open311/v2", tags=["open311"], responses=OPEN311_ERRORS)
ReadScope = Annotated[Scope | None, Depends(optional_open311_scope)]
FORMATS = {"description": "xml (the specification's format) or json"}
# An extension of GeoReport v2 (issue 19): clients over Chinese base maps send and draw GCJ-02
# or BD-09; an unknown value is the specification's 400 error list.
CRS_NOTE = (
    "extension: the system of lat/long, wgs84 (the specification's, default), gcj02 "
    "(Amap/Gaode, Tencent) or bd09 (Baidu)"
)
ReadCrs = Annotated[CrsParam, Query(description=CRS_NOTE)]
ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_.-]{1,64})\]$")
MAX_ATTRIBUTES = 20


def _jurisdiction(settings: Settings, jurisdiction_id: str | None) -> None:
    """404 for a jurisdiction this endpoint does not serve (when one is configured)."""
    mine = settings.auth.open311_jurisdiction
    if jurisdiction_id and mine and jurisdiction_id.strip().lower() != mine.lower():
        raise NotFoundError(
            format_message(
                "jurisdiction_id {jurisdiction_id!r} was not found", jurisdiction_id=jurisdiction_id
            )
        )


@router.get(
    "/discovery.{fmt}",
    response_model=Open311Discovery,
    response_description="the discovery document",
    responses=OK_XML,
)
def read_discovery(request: Request, fmt: Format) -> Response:
    """Where this GeoReport v2 endpoint is and which formats it speaks (public)."""
    return respond("discovery", open311.discovery(str(request.base_url).rstrip("/")), fmt)


@router.get(
    "/services.{fmt}",
    response_model=list[Open311Service],
    response_description="every service (category)",
    responses=OK_XML,
)
def read_services(
    session: SessionDep, settings: SettingsDep, fmt: Format, jurisdiction_id: str | None = None
) -> Response:
    """The services (our incident categories) a request can be filed under (public)."""
    _jurisdiction(settings, jurisdiction_id)
    return respond("services", open311.services(session), fmt)


@router.get(
    "/services/{service_code}.{fmt}",
    response_model=Open311ServiceDefinition,
    response_description="the attributes a request of this service may carry",
    responses=OK_XML,
)
def read_service_definition(
    session: SessionDep,
    settings: SettingsDep,
    service_code: str,
    fmt: Format,
    jurisdiction_id: str | None = None,
) -> Response:
    """A service definition (public): the optional attributes every request may carry."""
    _jurisdiction(settings, jurisdiction_id)
    return respond("service_definition", open311.service_definition(session, service_code), fmt)


@router.get(
    "/requests.{fmt}",
    response_model=list[Open311Request],
    response_description="service requests, newest first",
    responses=OK_XML,
)
def read_requests(
    session: SessionDep,
    settings: SettingsDep,
    scope: ReadScope,
    fmt: Format,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: Instant | None = None,
    end_date: Instant | None = None,
    status: str | None = None,
    jurisdiction_id: str | None = None,
    crs: ReadCrs = "wgs84",
) -> Response:
    """Service requests in your area, newest first (default: the last 90 days, at most 1000);
    ``grid``, ``community`` and ``extended_status`` extend the standard fields. Without a key
    (``GEO_OPEN311_PUBLIC_READ``): every request, public fields only. ``crs`` (an extension)
    gives ``lat``/``long`` in GCJ-02 or BD-09."""
    _jurisdiction(settings, jurisdiction_id)
    flt = open311.parse_filter(service_request_id, service_code, start_date, end_date, status)
    found = open311.list_requests(session, flt, scope=scope)
    return respond("requests", _in_crs(found, crs, public=scope is None), fmt)


@router.get(
    "/requests/{request_id}.{fmt}",
    response_model=list[Open311Request],
    response_description="a one-element list: the request",
    responses=OK_XML,
)
def read_request(
    session: SessionDep,
    settings: SettingsDep,
    scope: ReadScope,
    request_id: str,
    fmt: Format,
    jurisdiction_id: str | None = None,
    crs: ReadCrs = "wgs84",
) -> Response:
    """One service request (a one-element list, as the specification has it); ``crs`` (an
    extension) gives ``lat``/``long`` in GCJ-02 or BD-09."""
    _jurisdiction(settings, jurisdiction_id)
    found = open311.get_request(session, request_id, scope=scope)
    return respond("requests", _in_crs(found, crs, public=scope is None), fmt)


def _in_crs(requests: list[dict[str, Any]], crs: str, *, public: bool) -> list[dict[str, Any]]:
    """Requests with ``lat``/``long`` in ``crs``; a public reader's stay as coarse."""
    decimals = open311.PUBLIC_DECIMALS if public else None
    return rows_from_wgs84(requests, crs, lon_key="long", lat_key="lat", decimals=decimals)


def _attributes(form: FormData) -> dict[str, str]:
    """The ``attribute[code]=value`` fields of a POST (as FixMyStreet and other clients send
    them); a multi-valued attribute keeps its first value."""
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        match = ATTRIBUTE.match(key)
        if match and isinstance(value, str) and match.group(1) not in out:
            out[match.group(1)] = value.strip()
    if len(out) > MAX_ATTRIBUTES:
        raise InvalidInputError(
            format_message("at most {max_attributes} attributes", max_attributes=MAX_ATTRIBUTES)
        )
    return out


@router.post(
    "/requests.{fmt}",
    status_code=201,
    response_model=list[Open311Receipt],
    response_description="a one-element list: the new request's id and a notice",
    responses=CREATED_XML,
)
async def post_request(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fmt: Format,
    service_code: Annotated[str | None, Form(max_length=64)] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
    long: Annotated[float | None, Form(ge=-180, le=180)] = None,
    description: Annotated[str | None, Form(max_length=4000)] = None,
    api_key: Annotated[str | None, Form(max_length=200)] = None,
    jurisdiction_id: Annotated[str | None, Form(max_length=200)] = None,
    address_string: Annotated[str | None, Form(max_length=500)] = None,
    address_id: Annotated[str | None, Form(max_length=200)] = None,
    media_url: Annotated[str | None, Form(max_length=2000)] = None,
    email: Annotated[str | None, Form(max_length=200)] = None,
    device_id: Annotated[str | None, Form(max_length=200)] = None,
    account_id: Annotated[str | None, Form(max_length=200)] = None,
    first_name: Annotated[str | None, Form(max_length=200)] = None,
    last_name: Annotated[str | None, Form(max_length=200)] = None,
    phone: Annotated[str | None, Form(max_length=200)] = None,
    source: Annotated[
        str | None,
        Form(
            max_length=16,
            description="extension: citizen, hotline or sensor; must be the account's own "
            "channel (default: it)",
        ),
    ] = None,
    crs: Annotated[CrsParam, Form(description=CRS_NOTE)] = "wgs84",
) -> Response:
    """File a service request (form-encoded, as GeoReport v2 clients send it). The key may
    come as the ``api_key`` field. ``address_string``, ``media_url`` (an http(s) link, never
    fetched), ``attribute[code]`` answers (see the service definition) and
    ``jurisdiction_id`` are kept with the request; contact fields are accepted and not
    stored. The request's source is the account's channel (a hotline's account files as
    ``hotline``), else ``citizen``; the ``source`` extension may only repeat it (403).
    ``crs`` (an extension) says ``lat``/``long`` are GCJ-02 or BD-09: they are stored as
    WGS84."""
    attributes = _attributes(await request.form())

    def file_request() -> list[dict[str, Any]]:  # database work: in a worker thread
        _jurisdiction(settings, jurisdiction_id)
        scope = scope_for_key(request, session, api_key)
        scope.require("incidents:write")
        return open311.create_request(
            session,
            service_code=service_code,
            lat=lat,
            lon=long,
            crs=crs,
            description=description,
            address_string=address_string,
            media_url=media_url,
            attributes=attributes,
            jurisdiction_id=jurisdiction_id,
            scope=scope,
            actor=scope.principal.actor,
            radius_m=settings.dispatch.duplicate_radius_m,
            window_s=settings.dispatch.duplicate_window_s,
            source=source,
        )

    return respond("requests", await run_in_threadpool(file_request), fmt, status_code=201)
