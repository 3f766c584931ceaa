"""Who may do what, and where: role permissions and area jurisdictions.

Routes ask for a permission; services receive a ``Scope`` and filter every read and check every
write against it, so no route can forget the jurisdiction.

A jurisdiction is an area code. Its grids are the grids of *every* boundary version whose
interior point lies in the area as drawn in the current version, so a user bound to a street
also sees the incidents that were filed under last year's grids of that street.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.engine import database_name
from geo_service.db.sql import sql
from geo_service.errors import NotFoundError, PermissionDeniedError
from geo_service.i18n import area_name, format_message, gettext
from geo_service.runtime import current
from geo_service.services.access.auth import Principal
from geo_service.services.boundaries.versions import version_in_force

ALL = "*"
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({ALL}),
    "dispatcher": frozenset(
        {
            "areas:read",
            "map:read",
            "layers:read",
            "incidents:read",
            "incidents:describe",
            "incidents:write",
            "responders:read",
            "responders:write",
            "households:aggregate",
            "boundaries:read",
            "imports:incidents",
            "imports:responders",
            "reports:read",
        }
    ),
    "planner": frozenset(
        {
            "areas:read",
            "map:read",
            "layers:read",
            "incidents:read",
            "boundaries:read",
            "boundaries:write",
            "workload:read",
            "proposals:write",
            "households:aggregate",
            "imports:boundaries",
            "reports:read",
        }
    ),
    "analyst": frozenset(
        {
            "areas:read",
            "map:read",
            "layers:read",
            "incidents:read",
            "households:aggregate",
            "boundaries:read",
            "reports:read",
        }
    ),
    "grid_worker": frozenset(
        {
            "areas:read",
            "map:read",
            "layers:read",
            "incidents:read",
            "incidents:describe",
            "incidents:write",
            "households:rows",
            "households:write",
            "households:aggregate",
            "responders:self",
            "imports:households",
            "imports:rental-units",
        }
    ),
}


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` has ``permission``."""
    granted = ROLE_PERMISSIONS.get(role, frozenset())
    return ALL in granted or permission in granted


@dataclass(frozen=True)
class Scope:
    """The caller and the part of the city they may see and change (None: all of it)."""

    principal: Principal
    area_id: int | None = None  # the jurisdiction area in the current version
    area_ids: frozenset[int] | None = None  # it and everything below it, current version
    grid_ids: frozenset[int] | None = None  # its grids in every version
    # the jurisdiction area's name and per-language names (areas.names), for refusals
    area_name: str | None = field(default=None, compare=False)
    area_names: Mapping[str, str] | None = field(default=None, compare=False)

    @property
    def unrestricted(self) -> bool:
        """True when the caller is bound to no area."""
        return self.grid_ids is None

    def can(self, permission: str) -> bool:
        """Whether the caller's role grants ``permission``."""
        return allowed(self.principal.role, permission)

    def require(self, permission: str) -> None:
        """Raise 403 unless the role grants ``permission``."""
        if not self.can(permission):
            raise PermissionDeniedError(
                format_message(
                    "role {role} lacks the permission {permission}",
                    role=repr(self.principal.role),
                    permission=repr(permission),
                )
            )

    def require_unrestricted(self, what: str) -> None:
        """Raise 403 for callers bound to an area (city-wide actions)."""
        if not self.unrestricted:
            raise PermissionDeniedError(
                format_message("{what} needs a user not bound to an area", what=what)
            )

    def has_grid(self, grid_id: int | None) -> bool:
        """Whether a grid lies inside the jurisdiction."""
        return self.grid_ids is None or (grid_id is not None and grid_id in self.grid_ids)

    def require_grid(self, grid_id: int | None, what: str | None = None) -> None:
        """Raise 403 unless the grid lies inside the jurisdiction.

        ``what`` names the thing refused in the reader's language (the caller translates
        it, e.g. ``gettext("this incident")``); the area is named by its name in that
        language with its code in parentheses.
        """
        if self.has_grid(grid_id):
            return
        what = what if what is not None else gettext("this")
        if self.area_name is None:
            message = format_message(
                "{what} lies outside your area ({area_code})",
                what=what,
                area_code=self.principal.area_code,
            )
        else:
            message = format_message(
                "{what} lies outside your area {area_name} ({area_code})",
                what=what,
                area_name=area_name(self.area_names, self.area_name),
                area_code=self.principal.area_code,
            )
        raise PermissionDeniedError(message)

    def require_visible_grid(self, grid_id: int | None, missing: str) -> None:
        """Raise 404 with the ``missing`` wording unless the grid lies inside the jurisdiction.

        For reads and actions on one object by id: an object outside the caller's area answers
        exactly as an id that does not exist, so ids cannot be probed across areas.
        """
        if not self.has_grid(grid_id):
            raise NotFoundError(missing)

    def commands_responder(self, responder_id: int, home_grid_id: int | None) -> bool:
        """Whether the caller may direct this responder (assign, change, locate it).

        The caller's own responder always; any other only with ``responders:write`` and a
        home grid inside the jurisdiction (a unit without a home grid is city-wide: only
        users bound to no area direct it).
        """
        if self.principal.responder_id is not None and self.principal.responder_id == responder_id:
            return True
        return self.can("responders:write") and self.has_grid(home_grid_id)

    def has_area(self, area_id: int) -> bool:
        """Whether an area of the current version lies at or below the jurisdiction."""
        return self.area_ids is None or area_id in self.area_ids

    def sees_household_rows(self, grid_ids: Iterable[int]) -> bool:
        """Household rows: admins, and a grid's own worker for that grid only."""
        if self.principal.role == "admin":
            return True
        if not self.can("households:rows") or self.grid_ids is None:
            return False
        return all(g in self.grid_ids for g in grid_ids)


_JURISDICTION = sql("scope_jurisdiction")


def scope_for(session: Session, principal: Principal) -> Scope:
    """Resolve the caller's jurisdiction (cached in the runtime for ``SCOPE_TTL_S``: it
    changes only on publish)."""
    if principal.area_code is None:
        return Scope(principal)
    version = version_in_force(session)
    url = database_name(session)
    key = (url, principal.area_code, version)
    scopes = current().caches.scopes
    hit = scopes.get(key)
    if hit is not None:
        return Scope(
            principal, hit.area_id, hit.area_ids, hit.grid_ids, hit.area_name, hit.area_names
        )
    area = session.execute(
        text("SELECT id, name, names FROM areas WHERE version_id = :v AND code = :c"),
        {"v": version, "c": principal.area_code},
    ).first()
    if area is None:
        # The area is gone from the current version: the user sees nothing until rebound.
        scope = Scope(principal, None, frozenset(), frozenset())
    else:
        row = session.execute(_JURISDICTION, {"root": area.id}).one()
        scope = Scope(
            principal,
            area.id,
            frozenset(row.area_ids or ()),
            frozenset(row.grid_ids or ()),
            area.name,
            dict(area.names or {}),
        )
    scopes.put(key, scope)
    return scope
