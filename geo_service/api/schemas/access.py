"""Contracts of the access room: bearer tokens and the audit log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from geo_service.api.schemas.geojson import Timestamp
from geo_service.api.schemas.strict import Exact


class TokenPublic(Exact):
    """An OAuth2 bearer token (RFC 6749 section 5.1)."""

    access_token: str = Field(description="a JWT naming the key it was issued for (``kid``)")
    token_type: Literal["bearer"]
    expires_in: int = Field(description="seconds")


class AuditEntryPublic(Exact):
    """One audit row: who did what to which entity, when, and the change."""

    id: int
    who: str
    at: Timestamp
    action: str
    entity: str
    entity_id: str | None
    diff: dict[str, Any] = Field(description="the change, e.g. before/after; by action")


class AuditPublic(Exact):
    """``GET /audit``: audit rows newest first."""

    data: list[AuditEntryPublic]
    next_before_id: int | None = Field(description="pass as ``before_id`` for the next page")
