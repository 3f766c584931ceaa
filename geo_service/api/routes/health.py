"""``GET /health``: is the service up and can it reach PostGIS."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from geo_service.api.schemas import Health

router = APIRouter(tags=["health"])

# Connect (2 s) plus one trivial statement: past this the database counts as unavailable.
HEALTH_TIMEOUT_S = 3.0


@router.get(
    "/health",
    response_model=Health,
    response_description="the service and its database are up",
    responses={503: {"model": Health, "description": "the database is unreachable"}},
)
async def read_health(request: Request) -> JSONResponse:
    """Report service and database status (503 while the database is unreachable).

    The check runs on the event loop over a connection of its own (the probe engine: no pool,
    a short connect timeout), so it answers in seconds even when every worker thread and every
    pooled connection is busy with slow requests.
    """
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            async with request.app.state.probe_engine.connect() as conn:
                result = await conn.execute(text("SELECT postgis_lib_version()"))
                version = result.scalar_one()
    except (SQLAlchemyError, OSError, TimeoutError):
        body = Health(status="degraded", database="unavailable").model_dump()
        return JSONResponse(body, status_code=503)
    return JSONResponse(Health(status="ok", database="ok", postgis=version).model_dump())
