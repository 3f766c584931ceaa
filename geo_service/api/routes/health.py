"""``GET /health``: is the service up and can it reach PostGIS."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from geo_service.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def read_health(request: Request) -> JSONResponse:
    """Report service and database status (503 while the database is unreachable)."""
    try:
        with request.app.state.engine.connect() as conn:
            version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    except SQLAlchemyError:
        body = Health(status="degraded", database="unavailable").model_dump()
        return JSONResponse(body, status_code=503)
    return JSONResponse(Health(status="ok", database="ok", postgis=version).model_dump())
