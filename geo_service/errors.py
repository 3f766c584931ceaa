"""Domain exceptions, their HTTP status, and the RFC 9457 problem-details rendering."""

from __future__ import annotations

from typing import Any

from geo_service.i18n import N_, gettext


class GeoServiceError(Exception):
    """Base of every error geo-service raises on purpose."""

    status = 500
    code = "internal-error"
    title = N_("Internal error")

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """Return the RFC 9457 problem-details body for this error."""
        body: dict[str, Any] = {
            "type": f"https://geo-service.dev/problems/{self.code}",
            # in the request's language (geo_service/i18n.py); a detail made with
            # format_message is translated already, a plain one marked with N_ is here
            "title": gettext(self.title),
            "status": self.status,
            "detail": gettext(self.detail),
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
    title = N_("Not found")


class OutsideCityError(GeoServiceError):
    """A location lies outside every area of the boundary version in force."""

    status = 404
    code = "outside-city"
    title = N_("Location outside the city")


class InvalidInputError(GeoServiceError):
    """Input that is well-formed but makes no sense (bad bbox, unknown category, ...)."""

    status = 422
    code = "invalid-input"
    title = N_("Invalid input")


class LocationOutsideCityError(InvalidInputError):
    """A submitted location lies outside every grid (a write, so 422 rather than 404)."""

    code = "outside-city"
    title = N_("Location outside the city")


class ConflictError(GeoServiceError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    title = N_("Conflict")


class IdempotencyKeyReusedError(ConflictError):
    """An Idempotency-Key came back with a different request body."""

    code = "idempotency-key-reused"
    title = N_("Idempotency key reused")


class AuthenticationError(GeoServiceError):
    """No valid credentials."""

    status = 401
    code = "unauthenticated"
    title = N_("Authentication required")


class StaleCredentialError(AuthenticationError):
    """Credentials that were valid once: an expired token, a revoked key, a disabled user.
    Refused like any other, but not counted as a guess by the failed-credentials limit."""


class PermissionDeniedError(GeoServiceError):
    """Valid credentials, but not allowed to do this (role or jurisdiction)."""

    status = 403
    code = "forbidden"
    title = N_("Forbidden")


class RateLimitedError(GeoServiceError):
    """Too many requests from one caller."""

    status = 429
    code = "rate-limited"
    title = N_("Too many requests")


class ServerBusyError(GeoServiceError):
    """The process runs as much expensive work as it may at once; retry shortly."""

    status = 503
    code = "server-busy"
    title = N_("Server busy")


class LimitExceededError(GeoServiceError):
    """A request is larger than a configured limit allows."""

    status = 413
    code = "limit-exceeded"
    title = N_("Request too large")


class DatabaseUnavailableError(GeoServiceError):
    """The database cannot be reached."""

    status = 503
    code = "database-unavailable"
    title = N_("Database unavailable")


class RollupZoneMismatchError(GeoServiceError):
    """The rollups count the days of another time zone than ``GEO_TIMEZONE``; ``geo-service
    migrate`` rebuilds them (issue 19)."""

    status = 503
    code = "rollups-zone-mismatch"
    title = N_("Rollups of another time zone")


class ClusterError(GeoServiceError):
    """The embedded PostgreSQL cluster cannot be set up or run."""

    code = "cluster-error"
    title = N_("Embedded database error")


class MissingSystemPackageError(ClusterError):
    """PostgreSQL or PostGIS binaries are not installed."""

    code = "missing-system-package"


class MissingFontError(GeoServiceError):
    """A PDF was asked for and no font that holds Chinese is installed."""

    status = 503
    code = "pdf-font-missing"
    title = N_("PDF font missing")


class UnsupportedMediaError(GeoServiceError):
    """An upload whose content is not one of the accepted media types."""

    status = 415
    code = "unsupported-media-type"
    title = N_("Unsupported media type")
