"""The dispatcher's console: ``GET /console/summary``, ``GET /console/incidents``,
``GET /console/incidents/{id}``, ``GET /console/stream`` (server-sent events) and
``POST /console/incidents/{id}/reassign``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from geo_service.api.deps import ActorDep, SessionDep, SettingsDep, require
from geo_service.api.params import OutputCrs
from geo_service.api.schemas import IncidentPublic
from geo_service.api.schemas.console import (
    ConsoleIncident,
    ConsolePage,
    ConsoleSummary,
    ReassignBody,
)
from geo_service.geo.crs import rows_from_wgs84
from geo_service.services.access.scope import Scope
from geo_service.services.dispatch import console as service

router = APIRouter(prefix="/console", tags=["console"])

# A stream ticks every second and ends after five minutes (the browser reconnects at once
# with Last-Event-ID): a revoked sign-in or a changed area takes effect within that time.
STREAM_TICK_S = 1.0
STREAM_MAX_S = 300.0
HEARTBEAT_S = 15.0
RECONNECT_MS = 2000


@router.get("/summary", response_model=ConsoleSummary, response_description="the counts")
def read_console_summary(
    session: SessionDep, scope: Annotated[Scope, Depends(require("incidents:read"))]
) -> dict[str, Any]:
    """How many open incidents the caller sees, and how many are past the target of their
    current stage counted from the report, in all and per priority, by the database's clock."""
    return service.console_summary(session, scope=scope)


@router.get("/incidents", response_model=ConsolePage, response_description="a page, urgent first")
def read_console_incidents(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    crs: OutputCrs = "wgs84",
    view: Annotated[
        Literal["open", "resolved"],
        Query(description="open incidents, or resolved ones waiting to be closed"),
    ] = "open",
) -> dict[str, Any]:
    """Open incidents by priority, then most late first (``view=resolved``: the resolved ones
    not yet closed, the longest waiting first), with the counts of the open ones, how many
    wait to be closed, and the event id from which ``/console/stream`` sends what changed
    after this read; each item's ``lon``/``lat`` in ``crs`` (degrees, WGS84 by default)."""
    page = service.console_incidents(session, scope=scope, limit=limit, offset=offset, view=view)
    return {**page, "items": rows_from_wgs84(page["items"], crs)}


@router.get(
    "/incidents/{incident_id}",
    response_model=ConsoleIncident,
    response_description="the incident as the console shows it",
)
def read_console_incident(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    incident_id: uuid.UUID,
    crs: OutputCrs = "wgs84",
) -> dict[str, Any]:
    """One incident as the console lists it, in any state, with the actions the caller may
    take now (what the page reads again when someone else moved it first: a 409)."""
    item = service.console_incident(session, incident_id, scope=scope)
    return rows_from_wgs84([item], crs)[0]


@router.post(
    "/incidents/{incident_id}/reassign",
    response_model=IncidentPublic,
    response_description="the incident, dispatched to the new responder",
)
def post_reassign(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    actor: ActorDep,
    incident_id: uuid.UUID,
    body: ReassignBody,
) -> dict[str, Any]:
    """Send another available responder to a dispatched or accepted incident; the one it had
    is stood down (available again). 409 when the state or the responder does not allow it."""
    return service.reassign(
        session, incident_id, body.responder_id, scope=scope, actor=actor, note=body.note
    )


def _tick(request: Request, feed: service.ConsoleFeed, crs: str = "wgs84") -> bytes:
    """One tick's events, each with the id the stream resumes from after it; the positions
    of changed incidents and responders in ``crs``."""
    with request.app.state.sessionmaker() as session:
        events = [
            (
                name,
                {
                    **data,
                    **{
                        key: rows_from_wgs84(data[key], crs)
                        for key in ("changed", "resolved")
                        if isinstance(data.get(key), list)
                    },
                },
            )
            for name, data in feed.tick(session)
        ]
    resume = service.event_id(feed.cursor())
    return b"".join(
        f"id: {resume}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        for name, data in events
    )


# Not in the OpenAPI document: an endless text/event-stream has no response schema there, and
# the schema tests would wait on it. Starlette's StreamingResponse rather than sse-starlette:
# the protocol is a few lines of text, and this needs no new dependency.
@router.get("/stream", include_in_schema=False)
async def read_console_stream(
    request: Request,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
    since: Annotated[
        str | None,
        Query(max_length=32, description="an event id to start after (a page's event_id)"),
    ] = None,
    crs: OutputCrs = "wgs84",
) -> StreamingResponse:
    """Server-sent events for the console, scoped like ``GET /incidents``: ``incidents``
    (``changed`` open ones with ``new`` set on reports since the cursor, ``closed`` ones:
    no longer open, ``resolved``: those of them now waiting to be closed, as full items),
    ``responders`` (moves and status changes; all of them first) and ``summary`` (the counts,
    when they change). Each event's id resumes the stream (``Last-Event-ID``, or ``since`` on
    the first connection: the ``event_id`` of ``/console/incidents``). Positions in ``crs``."""
    # a reconnecting browser sends Last-Event-ID; its first connection names the page's id
    cursor = last_event_id or since
    start = service.parse_event_id(cursor) if cursor else None
    feed = service.ConsoleFeed(
        scope=scope,
        stale_s=settings.dispatch.stale_position_s,
        since=start,
        with_responders=scope.can("responders:read"),
    )

    async def events() -> AsyncIterator[bytes]:
        started = last_beat = time.monotonic()
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        while time.monotonic() - started < STREAM_MAX_S:
            if await request.is_disconnected():
                return
            chunk = await run_in_threadpool(_tick, request, feed, crs)
            if chunk:
                yield chunk
                last_beat = time.monotonic()
            if time.monotonic() - last_beat > HEARTBEAT_S:
                yield b": still here\n\n"
                last_beat = time.monotonic()
            await anyio.sleep(STREAM_TICK_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
