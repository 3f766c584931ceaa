"""``GET /audit``: the audit log, for admins. There is no way to change it over the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from geo_service.api.deps import SessionDep, require
from geo_service.api.params import Instant
from geo_service.api.schemas import RowIdQuery
from geo_service.api.schemas.access import AuditPublic
from geo_service.services.access.audit import list_audit
from geo_service.services.access.scope import Scope

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPublic, response_description="audit rows, newest first")
def read_audit(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("audit:read"))],
    entity: str | None = None,
    since: Instant | None = None,
    before_id: RowIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Who changed what, when: newest first; page with ``before_id``."""
    return list_audit(session, entity=entity, since=since, before_id=before_id, limit=limit)
