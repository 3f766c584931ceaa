"""Domain exceptions, their HTTP status, and the RFC 9457 problem-details rendering."""

from __future__ import annotations

from typing import Any


class GeoServiceError(Exception):
    """Base of every error geo-service raises on purpose."""

    status = 500
    code = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """Return the RFC 9457 problem-details body for this error."""
        body: dict[str, Any] = {
            "type": f"https://geo-service.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class NotFoundError(GeoServiceError):
    """The thing asked for does not exist."""

    status = 404
    code = "not-found"
    title = "Not found"


class OutsideCityError(GeoServiceError):
    """A location lies outside every area of the boundary version in force."""

    status = 404
    code = "outside-city"
    title = "Location outside the city"


class InvalidInputError(GeoServiceError):
    """Input that is well-formed but makes no sense (bad bbox, unknown category, ...)."""

    status = 422
    code = "invalid-input"
    title = "Invalid input"


class LocationOutsideCityError(InvalidInputError):
    """A submitted location lies outside every grid (a write, so 422 rather than 404)."""

    code = "outside-city"
    title = "Location outside the city"


class ConflictError(GeoServiceError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyKeyReusedError(ConflictError):
    """An Idempotency-Key came back with a different request body."""

    code = "idempotency-key-reused"
    title = "Idempotency key reused"


class AuthenticationError(GeoServiceError):
    """No valid credentials."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class StaleCredentialError(AuthenticationError):
    """Credentials that were valid once: an expired token, a revoked key, a disabled user.
    Refused like any other, but not counted as a guess by the failed-credentials limit."""


class PermissionDeniedError(GeoServiceError):
    """Valid credentials, but not allowed to do this (role or jurisdiction)."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class RateLimitedError(GeoServiceError):
    """Too many requests from one caller."""

    status = 429
    code = "rate-limited"
    title = "Too many requests"


class ServerBusyError(GeoServiceError):
    """The process runs as much expensive work as it may at once; retry shortly."""

    status = 503
    code = "server-busy"
    title = "Server busy"


class LimitExceededError(GeoServiceError):
    """A request is larger than a configured limit allows."""

    status = 413
    code = "limit-exceeded"
    title = "Request too large"


class DatabaseUnavailableError(GeoServiceError):
    """The database cannot be reached."""

    status = 503
    code = "database-unavailable"
    title = "Database unavailable"


class ClusterError(GeoServiceError):
    """The embedded PostgreSQL cluster cannot be set up or run."""

    code = "cluster-error"
    title = "Embedded database error"


class MissingSystemPackageError(ClusterError):
    """PostgreSQL or PostGIS binaries are not installed."""

    code = "missing-system-package"


class UnsupportedMediaError(GeoServiceError):
    """An upload whose content is not one of the accepted media types."""

    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"
